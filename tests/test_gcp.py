"""Google Cloud credentials through google-auth, with token refresh over our own Session."""

import json
import pickle

import pytest
from recording_server import Response

import dicomweb_client

google_credentials = pytest.importorskip('google.oauth2.credentials')


def test_static_token_is_sent_as_bearer(recording_server):
    recording_server.add(
        'GET', '/studies', Response(body=b'[]', content_type='application/dicom+json')
    )
    credentials = google_credentials.Credentials(token='static-token')
    session = dicomweb_client.create_session_from_gcp_credentials(credentials)
    client = dicomweb_client.DICOMwebClient(recording_server.url, session=session)
    assert client.search_for_studies() == []
    assert recording_server.last.header('Authorization') == 'Bearer static-token'


def test_expired_credentials_are_refreshed_through_the_token_endpoint(recording_server):
    answer = json.dumps({'access_token': 'fresh-token', 'expires_in': 3600}).encode()
    recording_server.add('POST', '/token', Response(body=answer, content_type='application/json'))
    recording_server.add(
        'GET', '/studies', Response(body=b'[]', content_type='application/dicom+json')
    )
    credentials = google_credentials.Credentials(
        token=None,
        refresh_token='refresh-me',
        client_id='id',
        client_secret='secret',
        token_uri=recording_server.url + '/token',
    )
    session = dicomweb_client.create_session_from_gcp_credentials(credentials)
    client = dicomweb_client.DICOMwebClient(recording_server.url, session=session)
    client.search_for_studies()
    client.search_for_studies()
    token_requests = [r for r in recording_server.requests if r.path == '/token']
    assert len(token_requests) == 1  # refreshed once, then reused
    assert b'refresh_token=refresh-me' in token_requests[0].body
    searches = [r for r in recording_server.requests if r.path == '/studies']
    assert [r.header('Authorization') for r in searches] == ['Bearer fresh-token'] * 2


def test_the_gcp_url_works_as_a_client_url():
    url = dicomweb_client.GoogleCloudHealthcareURL('p', 'us-east4', 'd', 's')
    client = dicomweb_client.DICOMwebClient(str(url))
    assert client.base_url == str(url)
    assert client.url_prefix.endswith('/dicomStores/s/dicomWeb')


def test_a_client_with_google_credentials_can_be_pickled(recording_server):
    recording_server.add(
        'GET', '/studies', Response(body=b'[]', content_type='application/dicom+json')
    )
    credentials = google_credentials.Credentials(token='static-token')
    session = dicomweb_client.create_session_from_gcp_credentials(credentials)
    client = pickle.loads(
        pickle.dumps(dicomweb_client.DICOMwebClient(recording_server.url, session=session))
    )
    assert client.search_for_studies() == []
    assert recording_server.last.header('Authorization') == 'Bearer static-token'
