"""A ``requests.Session`` passed as ``session=`` (code written for the established package)."""

import gzip
import json
import pickle

import pytest
from recording_server import Response, multipart_response

import dicomweb_client

requests = pytest.importorskip('requests')

STUDY, SERIES, INSTANCE = '1.2.3', '1.2.3.4', '1.2.3.4.5'


@pytest.fixture
def requests_client(recording_server):
    """A DICOMwebClient on the recording server that sends through a requests.Session."""
    session = requests.Session()
    session.headers['X-From'] = 'requests'
    client = dicomweb_client.DICOMwebClient(
        recording_server.url, session=session, headers={'X-Extra': '1'}
    )
    client.set_http_retry_params(wait_exponential_multiplier=1)
    return client


def test_search_goes_through_the_requests_session(requests_client, recording_server):
    recording_server.add(
        'GET',
        '/studies',
        Response(body=b'[{"0020000D": {"vr": "UI"}}]', content_type='application/dicom+json'),
    )
    assert requests_client.search_for_studies(search_filters={'PatientID': 'P*'}) == [
        {'0020000D': {'vr': 'UI'}}
    ]
    request = recording_server.last
    assert request.query == {'PatientID': ['P*']}
    assert request.header('X-From') == 'requests' and request.header('X-Extra') == '1'
    assert request.header('Accept') == 'application/dicom+json, application/json'


def test_frames_are_streamed_from_the_requests_response(requests_client, recording_server):
    frames = [bytes([n]) * 1000 for n in range(3)]
    recording_server.queue(multipart_response(frames, 'application/octet-stream'))
    got = requests_client.retrieve_instance_frames(STUDY, SERIES, INSTANCE, [1, 2, 3])
    assert got == frames


def test_store_streams_the_body_through_requests(requests_client, recording_server, tmp_path):
    path = tmp_path / 'a.dcm'
    path.write_bytes(b'\0' * 128 + b'DICM' + b'x' * 100)
    recording_server.add(
        'POST', '/studies', Response(body=b'{}', content_type='application/dicom+json')
    )
    requests_client.store_instances([path])
    body = recording_server.last.body
    assert path.read_bytes() in body
    assert recording_server.last.chunked


def test_errors_and_retries_follow_the_client(requests_client, recording_server):
    recording_server.queue(
        Response(status=503, body=b'busy'),
        Response(body=b'[]', content_type='application/dicom+json'),
    )
    assert requests_client.search_for_studies() == []
    assert len(recording_server.requests) == 2
    recording_server.queue(Response(status=404, body=b'no such study'))
    with pytest.raises(requests.exceptions.HTTPError) as caught:
        requests_client.retrieve_study_metadata(STUDY)
    assert isinstance(caught.value, dicomweb_client.HTTPError)
    assert caught.value.status_code == 404 and 'no such study' in str(caught.value)


def test_compressed_answers_are_left_to_requests(requests_client, recording_server):
    items = [{'0020000D': {'vr': 'UI', 'Value': [f'1.2.{n}']}} for n in range(100)]
    recording_server.add(
        'GET',
        '/studies',
        Response(
            body=gzip.compress(json.dumps(items).encode()),
            content_type='application/dicom+json',
            headers={'Content-Encoding': 'gzip'},
        ),
    )
    assert requests_client.search_for_studies() == items
    # requests asks for what it can decode and decodes it; nothing is decoded twice
    assert (
        recording_server.last.header('Accept-Encoding')
        == requests.utils.default_headers()['Accept-Encoding']
    )


def test_a_client_with_a_requests_session_can_be_pickled(requests_client, recording_server):
    recording_server.add(
        'GET', '/studies', Response(body=b'[]', content_type='application/dicom+json')
    )
    copy = pickle.loads(pickle.dumps(requests_client))
    assert copy.search_for_studies() == []
    assert recording_server.last.header('X-From') == 'requests'
