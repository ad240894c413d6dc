"""Opt-in parallel retrieval (``workers=``): same answers as sequential, over several
connections."""

import json

import pytest
from recording_server import Response, multipart_response

import dicom_data
import dicomweb_client

STUDY, SERIES, INSTANCE = '1.2.3', '1.2.3.4', '1.2.3.4.5'


@pytest.fixture(scope='module')
def stored(orthanc):
    orthanc.reset()
    study = dicom_data.make_study(n_series=2, n_instances=3)
    multiframe = dicom_data.make_instance(
        study_uid=study[0].StudyInstanceUID, frames=7, rows=8, columns=8, seed=42
    )
    client = dicomweb_client.DICOMwebClient(orthanc.url)
    client.store_instances(study + [multiframe])
    yield client, study, multiframe
    orthanc.reset()


def _uids(datasets):
    return [ds.SOPInstanceUID for ds in datasets]


def test_parallel_series_equals_sequential(stored):
    client, study, _ = stored
    series_uid = study[0].SeriesInstanceUID
    sequential = client.retrieve_series(study[0].StudyInstanceUID, series_uid)
    parallel = client.retrieve_series(study[0].StudyInstanceUID, series_uid, workers=3)
    assert sorted(_uids(parallel)) == sorted(_uids(sequential))
    by_uid = {ds.SOPInstanceUID: ds.PixelData for ds in sequential}
    assert all(ds.PixelData == by_uid[ds.SOPInstanceUID] for ds in parallel)


def test_parallel_study_holds_every_instance(stored):
    client, study, multiframe = stored
    parallel = list(client.iter_study(study[0].StudyInstanceUID, workers=4))
    assert sorted(_uids(parallel)) == sorted(_uids(study) + [multiframe.SOPInstanceUID])


def test_parallel_frames_come_back_in_the_order_asked(stored):
    client, _, ds = stored
    numbers = [7, 1, 3, 2, 6, 5, 4]
    frames = client.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, numbers, workers=3
    )
    assert frames == [dicom_data.frame_bytes(ds, n) for n in numbers]


def test_frames_are_split_over_several_connections(recording_server):
    def answer(request):
        numbers = request.path.rsplit('/', 1)[1].split(',')
        return multipart_response(
            [n.encode() * 10 for n in numbers], 'application/octet-stream', delay=0.2
        )

    recording_server.add('GET', None, answer)
    client = dicomweb_client.DICOMwebClient(recording_server.url)
    frames = client.retrieve_instance_frames(STUDY, SERIES, INSTANCE, [1, 2, 3, 4, 5, 6], workers=3)
    assert frames == [str(n).encode() * 10 for n in range(1, 7)]
    assert sorted(r.path.rsplit('/', 1)[1] for r in recording_server.requests) == [
        '1,2',
        '3,4',
        '5,6',
    ]
    assert recording_server.connection_count == 3


@pytest.mark.parametrize('workers', [0, -1, 1.5, True])
def test_bad_worker_counts_are_rejected_before_sending(recording_server, workers):
    client = dicomweb_client.DICOMwebClient(recording_server.url)
    with pytest.raises(ValueError, match='workers'):
        client.retrieve_instance_frames(STUDY, SERIES, INSTANCE, [1, 2], workers=workers)
    with pytest.raises(ValueError, match='workers'):
        client.retrieve_series(STUDY, SERIES, workers=workers)
    assert recording_server.requests == []


def test_one_worker_is_the_ordinary_single_request(recording_server):
    recording_server.queue(multipart_response([b'a', b'b'], 'application/octet-stream'))
    client = dicomweb_client.DICOMwebClient(recording_server.url)
    assert client.retrieve_instance_frames(STUDY, SERIES, INSTANCE, [1, 2], workers=1) == [
        b'a',
        b'b',
    ]
    assert len(recording_server.requests) == 1


def test_a_failing_instance_fails_the_parallel_series(recording_server):
    found = [
        {
            '0020000E': {'vr': 'UI', 'Value': [SERIES]},
            '00080018': {'vr': 'UI', 'Value': [f'{INSTANCE}.{n}']},
        }
        for n in range(3)
    ]

    def search(request):
        page = [] if request.query.get('offset', ['0']) != ['0'] else found
        return Response(body=json.dumps(page).encode(), content_type='application/dicom+json')

    recording_server.add('GET', None, Response(status=500, body=b'broken instance'))
    recording_server.add('GET', '/studies/1.2.3/series/1.2.3.4/instances', search)
    client = dicomweb_client.DICOMwebClient(recording_server.url)
    with pytest.raises(dicomweb_client.HTTPError, match='broken instance'):
        client.retrieve_series(STUDY, SERIES, workers=2)


def test_get_remaining_refuses_a_server_that_ignores_offset(recording_server):
    recording_server.add(
        'GET',
        '/studies',
        Response(
            body=b'[{"0020000D": {"vr": "UI", "Value": ["1.2"]}}]',
            content_type='application/dicom+json',
        ),
    )
    client = dicomweb_client.DICOMwebClient(recording_server.url)
    with pytest.raises(ValueError, match='offset'):
        client.search_for_studies(get_remaining=True)
    assert len(recording_server.requests) == 2


def test_sixteen_workers_reuse_their_connections(recording_server):
    found = [
        {
            '0020000E': {'vr': 'UI', 'Value': [SERIES]},
            '00080018': {'vr': 'UI', 'Value': [f'{INSTANCE}.{n}']},
        }
        for n in range(64)
    ]
    instance = dicom_data.to_bytes(dicom_data.make_instance(rows=4, columns=4))

    def search(request):
        page = [] if request.query.get('offset', ['0']) != ['0'] else found
        return Response(body=json.dumps(page).encode(), content_type='application/dicom+json')

    recording_server.add('GET', None, multipart_response([instance], delay=0.01))
    recording_server.add('GET', '/studies/1.2.3/series/1.2.3.4/instances', search)
    client = dicomweb_client.DICOMwebClient(recording_server.url)
    assert len(client.retrieve_series(STUDY, SERIES, workers=16)) == 64
    # the threads hand their connections on to each other: no new one per instance
    assert recording_server.connection_count <= 16 + 1
