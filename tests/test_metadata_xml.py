"""Metadata asked for as DICOM XML (PS3.19) and handed back as DICOM JSON."""

import pytest
from pydicom.dataset import Dataset
from recording_server import multipart_response

import dicomweb_client

STUDY, SERIES, INSTANCE = '1.2.3', '1.2.3.4', '1.2.3.4.5'

XML_INSTANCE = b"""<?xml version="1.0" encoding="UTF-8"?>
<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">
  <DicomAttribute tag="00080005" vr="CS" keyword="SpecificCharacterSet">
    <Value number="1">ISO_IR 100</Value>
  </DicomAttribute>
  <DicomAttribute tag="00080018" vr="UI"><Value number="1">1.2.3.4.5</Value></DicomAttribute>
  <DicomAttribute tag="00100010" vr="PN">
    <PersonName number="1">
      <Alphabetic><FamilyName>Doe</FamilyName><GivenName>Jane</GivenName></Alphabetic>
    </PersonName>
  </DicomAttribute>
  <DicomAttribute tag="00280010" vr="US"><Value number="1">512</Value></DicomAttribute>
  <DicomAttribute tag="00281050" vr="DS">
    <Value number="2">60.5</Value><Value number="1">40</Value>
  </DicomAttribute>
  <DicomAttribute tag="00081115" vr="SQ">
    <Item number="1">
      <DicomAttribute tag="0020000E" vr="UI"><Value number="1">1.2.3.4</Value></DicomAttribute>
    </Item>
  </DicomAttribute>
  <DicomAttribute tag="00100020" vr="LO"/>
  <DicomAttribute tag="7FE00010" vr="OW"><BulkData uri="http://x/bulk/7fe00010"/></DicomAttribute>
</NativeDicomModel>
"""


@pytest.fixture
def web_client(recording_server):
    """A DICOMwebClient on the recording server."""
    return dicomweb_client.DICOMwebClient(recording_server.url)


@pytest.mark.filterwarnings('ignore:No bulk data URI handler')
def test_instance_metadata_as_xml_is_converted_to_json(web_client, recording_server):
    recording_server.queue(multipart_response([XML_INSTANCE], 'application/dicom+xml'))
    metadata = web_client.retrieve_instance_metadata(
        STUDY, SERIES, INSTANCE, media_type='application/dicom+xml'
    )
    request = recording_server.last
    assert request.path == f'/studies/{STUDY}/series/{SERIES}/instances/{INSTANCE}/metadata'
    assert request.header('Accept') == 'multipart/related; type="application/dicom+xml"'
    assert metadata['00100010'] == {'vr': 'PN', 'Value': [{'Alphabetic': 'Doe^Jane'}]}
    assert metadata['00280010'] == {'vr': 'US', 'Value': [512]}
    assert metadata['00281050'] == {'vr': 'DS', 'Value': [40.0, 60.5]}
    assert metadata['00081115']['Value'][0]['0020000E']['Value'] == ['1.2.3.4']
    assert metadata['00100020'] == {'vr': 'LO'}
    assert metadata['7FE00010'] == {'vr': 'OW', 'BulkDataURI': 'http://x/bulk/7fe00010'}
    dataset = Dataset.from_json(metadata)
    assert dataset.PatientName == 'Doe^Jane'
    assert dataset.Rows == 512


def test_series_metadata_as_xml_gives_one_item_per_part(web_client, recording_server):
    recording_server.queue(
        multipart_response([XML_INSTANCE, XML_INSTANCE], 'application/dicom+xml')
    )
    items = web_client.retrieve_series_metadata(STUDY, SERIES, media_type='application/dicom+xml')
    assert len(items) == 2
    assert items[0]['00080018']['Value'] == ['1.2.3.4.5']


def test_malformed_xml_raises(web_client, recording_server):
    recording_server.queue(
        multipart_response([b'<NativeDicomModel><oops>'], 'application/dicom+xml')
    )
    with pytest.raises(ValueError, match='XML'):
        web_client.retrieve_study_metadata(STUDY, media_type='application/dicom+xml')


def test_unknown_metadata_media_type_is_rejected_before_sending(web_client, recording_server):
    with pytest.raises(ValueError, match='media_type'):
        web_client.retrieve_study_metadata(STUDY, media_type='text/html')
    assert recording_server.requests == []
