"""Tests of the "Attribute tags and keywords" section: lookups without importing pydicom.

The module answers keyword, tag and UID-name lookups from pydicom's own dictionary files
read on their own, and imports pydicom itself only when a data set is made or parsed;
these tests hold both halves: the answers equal pydicom's, and a search never imports it.
"""

from __future__ import annotations

import json

import pydicom
import pydicom.datadict
import pytest
from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary
from pydicom._uid_dict import UID_dictionary

import dicomweb_client as dwc
from helpers import run_python
from recording_server import RecordingServer, Response

# -- the dictionary read on its own equals pydicom's -------------------------------------


def test_every_standard_keyword_maps_to_the_tag_pydicom_gives() -> None:
    tables = dwc._keyword_tables()
    keywords = {entry[4] for entry in DicomDictionary.values() if entry[4]}
    assert set(tables.tags) == keywords
    for keyword in keywords:
        assert tables.tags[keyword] == pydicom.datadict.tag_for_keyword(keyword), keyword


def test_every_standard_tag_maps_to_the_keyword_pydicom_gives() -> None:
    tables = dwc._keyword_tables()
    for tag in DicomDictionary:
        assert tables.keywords.get(tag, '') == pydicom.datadict.keyword_for_tag(tag), hex(tag)


@pytest.mark.parametrize(
    'tag',
    [
        0x60000010,
        0x60020010,
        0x601E3000,
        0x50000005,
        0x50FE3000,
        0x00203101,
        0x00203150,
        0x10000000,
        0x10011000,
    ],
)
def test_repeating_groups_resolve_as_in_pydicom(tag: int, monkeypatch) -> None:
    monkeypatch.setattr(dwc, '_loaded_datadict', lambda: None)  # the standalone tables
    assert dwc._keyword_for_tag(tag) == pydicom.datadict.keyword_for_tag(tag)


def test_every_repeater_of_the_dictionary_is_known(monkeypatch) -> None:
    monkeypatch.setattr(dwc, '_loaded_datadict', lambda: None)
    for mask, entry in RepeatersDictionary.items():
        if entry[4]:
            tag = int(mask.replace('x', '2'), 16)
            assert dwc._keyword_for_tag(tag) == pydicom.datadict.keyword_for_tag(tag), mask


def test_unknown_tags_and_keywords_answer_like_pydicom(monkeypatch) -> None:
    monkeypatch.setattr(dwc, '_loaded_datadict', lambda: None)
    assert dwc._keyword_for_tag(0x00091001) == ''
    assert dwc._tag_for_keyword('NoSuchKeyword') is None


def test_uid_names_are_pydicoms() -> None:
    for uid, entry in UID_dictionary.items():
        assert dwc._uid_name(uid) == entry[0]
    assert dwc._uid_name('1.2.840.10008.5.1.4.1.1.2') == 'CT Image Storage'
    assert dwc._uid_name('1.2.3.4') is None


def test_entries_added_to_pydicom_are_seen_once_pydicom_is_loaded() -> None:
    pydicom.datadict.add_dict_entries(
        {0x00980010: ('LO', '1', 'Our Test Attribute', '', 'OurTestAttribute')}
    )
    try:
        assert dwc.lookup_tag('OurTestAttribute') == '00980010'
        assert dwc._keyword_for_tag(0x00980010) == 'OurTestAttribute'
    finally:
        del pydicom.datadict.DicomDictionary[0x00980010]
        del pydicom.datadict.keyword_dict['OurTestAttribute']


def test_the_file_client_columns_carry_the_tags_of_their_keywords() -> None:
    for column in dwc._COLUMNS:
        assert column.tag == f'{pydicom.datadict.tag_for_keyword(column.keyword):08X}'
    for tag, keyword in dwc._COMPUTED_BY_TAG.items():
        assert tag == f'{pydicom.datadict.tag_for_keyword(keyword):08X}'
    assert set(dwc._COMPUTED_BY_TAG.values()) == set(dwc._COMPUTED)


# -- misspelt attribute names --------------------------------------------------------------


@pytest.mark.parametrize(
    'name, suggestion',
    [
        ('PatientNmae', 'PatientName'),
        ('StudyInstanceUid', 'StudyInstanceUID'),
        ('modality', 'Modality'),
        ('SeriesDescripton', 'SeriesDescription'),
        ('ReferencedSeriesSequence.SeriesInstanceUD', 'SeriesInstanceUID'),
    ],
)
def test_a_misspelt_keyword_is_answered_with_the_nearest_one(name: str, suggestion: str) -> None:
    with pytest.raises(dwc.UnknownAttributeError) as caught:
        dwc._check_attribute(name, 'search_filters')
    assert isinstance(caught.value, ValueError)  # what the established package raises
    assert caught.value.suggestion == suggestion
    assert f"did you mean {suggestion!r}" in str(caught.value)
    assert '"search_filters"' in str(caught.value)


def test_a_name_near_no_keyword_gets_no_suggestion() -> None:
    with pytest.raises(dwc.UnknownAttributeError) as caught:
        dwc._check_attribute('Qx', 'fields')
    assert caught.value.suggestion is None
    assert 'did you mean' not in str(caught.value)


def test_a_search_with_a_misspelt_filter_sends_nothing(recording_server: RecordingServer) -> None:
    client = dwc.DICOMwebClient(recording_server.url)
    with pytest.raises(ValueError, match="did you mean 'PatientName'"):
        client.search_for_studies(search_filters={'PatientNmae': 'Doe'})
    assert recording_server.requests == []


# -- pydicom is imported only when a data set is made or parsed ------------------------------

PYDICOM_LOADED = (
    "import sys; print(json.dumps(sorted(m for m in ('pydicom', 'numpy') if m in sys.modules)))"
)


def test_importing_the_module_imports_neither_pydicom_nor_numpy() -> None:
    result = run_python(f'import json, dicomweb_client\n{PYDICOM_LOADED}', check=True)
    assert json.loads(result.stdout) == []


def test_a_search_and_keyword_lookups_do_not_import_pydicom(
    recording_server: RecordingServer,
) -> None:
    recording_server.add(
        None,
        None,
        Response(
            200,
            {'Content-Type': 'application/dicom+json'},
            b'[{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}]',
        ),
    )
    code = f'''
        import json, dicomweb_client
        client = dicomweb_client.DICOMwebClient({recording_server.url!r})
        found = client.search_for_studies(search_filters={{'PatientName': 'Doe*'}},
                                          fields=['StudyDescription'])
        assert found[0]['0020000D']['Value'] == ['1.2.3'], found
        assert dicomweb_client.lookup_tag('PatientID') == '00100020'
        {PYDICOM_LOADED}
    '''
    assert json.loads(run_python(code, check=True).stdout) == []


def test_the_cli_searches_without_importing_pydicom(recording_server: RecordingServer) -> None:
    recording_server.add(
        None, None, Response(200, {'Content-Type': 'application/dicom+json'}, b'[]')
    )
    code = f'''
        import json, sys, dicomweb_client_cli
        code = dicomweb_client_cli.main(['--url', {recording_server.url!r}, 'search',
                                         'studies', '--filter', 'PatientID=1',
                                         '--output', 'table'])
        assert code == 0, code
        {PYDICOM_LOADED}
    '''
    assert json.loads(run_python(code, check=True).stdout.splitlines()[-1]) == []


def test_the_first_data_set_imports_pydicom_and_takes_its_place() -> None:
    code = '''
        import json, sys, dicomweb_client
        assert type(dicomweb_client.pydicom).__name__ == '_DeferredModule'
        dataset = dicomweb_client.pydicom.Dataset()
        assert dicomweb_client.pydicom is sys.modules['pydicom']
        assert 'pydicom.encaps' in sys.modules and 'pydicom.errors' in sys.modules
        print(json.dumps(type(dataset).__name__))
    '''
    assert json.loads(run_python(code, check=True).stdout) == 'Dataset'


def test_threads_that_first_use_pydicom_together_all_get_it() -> None:
    code = '''
        import json, threading, dicomweb_client
        barrier = threading.Barrier(8)
        seen, errors = [], []
        def first_use():
            barrier.wait()
            try:
                seen.append(dicomweb_client.pydicom.Dataset)
            except Exception as error:
                errors.append(repr(error))
        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps([len(set(map(id, seen))), len(seen), errors]))
    '''
    assert json.loads(run_python(code, check=True).stdout) == [1, 8, []]
