"""The same round trip on both clients: DICOMwebClient on Orthanc and DICOMfileClient on a
folder (store -> search -> retrieve; delete where the server allows it)."""

import pytest

import dicom_data
import dicomweb_client


@pytest.fixture(scope='module')
def data():
    study = dicom_data.make_study(n_series=2, n_instances=2, patient_id='RT1', modality='MR')
    multiframe = dicom_data.make_instance(
        study_uid=study[0].StudyInstanceUID,
        frames=4,
        rows=8,
        columns=8,
        seed=7,
        patient_id='RT1',
        modality='MR',
    )
    return study + [multiframe]


@pytest.fixture(params=['web', 'file'])
def client(request, data, tmp_path):
    if request.param == 'web':
        orthanc = request.getfixturevalue('orthanc_clean')
        yield dicomweb_client.DICOMwebClient(orthanc.url)
    else:
        with dicomweb_client.DICOMfileClient(tmp_path.as_uri(), in_memory=True) as files:
            yield files


def _values(results, tag):
    return sorted(item[tag]['Value'][0] for item in results)


def test_store_search_retrieve(client, data):
    report = client.store_instances(data)
    assert sorted(item.ReferencedSOPInstanceUID for item in report.ReferencedSOPSequence) == sorted(
        ds.SOPInstanceUID for ds in data
    )
    assert not report.get('FailedSOPSequence')

    study_uid = data[0].StudyInstanceUID
    assert _values(client.search_for_studies(search_filters={'PatientID': 'RT1'}), '0020000D') == [
        study_uid
    ]
    series = client.search_for_series(study_uid)
    assert _values(series, '0020000E') == sorted({ds.SeriesInstanceUID for ds in data})
    instances = client.search_for_instances(study_uid, get_remaining=True)
    assert _values(instances, '00080018') == sorted(ds.SOPInstanceUID for ds in data)
    assert len(client.search_for_instances(study_uid, limit=2)) == 2
    assert client.search_for_studies(search_filters={'PatientID': 'nobody'}) == []

    originals = {ds.SOPInstanceUID: ds for ds in data}
    for ds in client.retrieve_study(study_uid):
        assert ds.PixelData == originals[ds.SOPInstanceUID].PixelData
    first = data[0]
    one = client.retrieve_instance(
        first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID
    )
    assert one.PixelData == first.PixelData
    metadata = client.retrieve_series_metadata(first.StudyInstanceUID, first.SeriesInstanceUID)
    assert first.SOPInstanceUID in _values(metadata, '00080018')


def test_frames_and_rendering(client, data):
    client.store_instances(data)
    ds = data[-1]
    numbers = [4, 1, 3]
    frames = client.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, numbers
    )
    assert frames == [dicom_data.frame_bytes(ds, n) for n in numbers]
    png = client.retrieve_instance_frames_rendered(
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        [2],
        media_types=('image/png',),
    )
    assert png.startswith(b'\x89PNG')


def test_errors_are_http_errors(client):
    with pytest.raises(dicomweb_client.HTTPError) as caught:
        client.retrieve_study_metadata('1.2.3.4.5.6.7.8.9')
    assert caught.value.status_code == 404
    with pytest.raises(ValueError):
        client.retrieve_study('../etc')


def test_delete_where_supported(client, data):
    client.store_instances(data)
    first = data[0]
    if isinstance(client, dicomweb_client.DICOMwebClient):
        with pytest.raises(dicomweb_client.HTTPError) as caught:  # Orthanc: 405
            client.delete_instance(
                first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID
            )
        assert caught.value.status_code == 405
        return
    client.delete_instance(first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    remaining = client.search_for_instances(first.StudyInstanceUID)
    assert first.SOPInstanceUID not in _values(remaining, '00080018')
    client.delete_study(first.StudyInstanceUID)
    assert client.search_for_studies() == []
