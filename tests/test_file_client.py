"""Tests of DICOMfileClient: the DICOMweb client API on a folder of Part 10 files."""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import datetime
import inspect
import io
import json
import logging
import multiprocessing
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.uid import generate_uid

import dicomweb_client
from concurrency import search_instances_in_this_process
from dicomweb_client import DICOMfileClient
from dicom_data import (
    frame_bytes,
    make_archive,
    make_instance,
    make_study,
    pydicom_test_files,
    to_bytes,
    write_files,
    write_part10,
)
from helpers import API_SIGNATURES, PROJECT_ROOT

# the module that implements the client (the only place that names it is the import above)
IMPLEMENTATION = sys.modules[DICOMfileClient.__module__]
IMPORT_PATHS = [str(PROJECT_ROOT / 'dev'), str(PROJECT_ROOT)]
EXPLICIT = '1.2.840.10008.1.2.1'
IMPLICIT = '1.2.840.10008.1.2'
INDEX_NAME = '.dicomweb_client.sqlite'


# -- data --------------------------------------------------------------------------------


def _archive_datasets() -> list:
    """Three studies of three patients, CT and MR series, with a few extra attributes."""
    datasets = make_archive(3, 2, 2, rows=8, columns=8)
    for index, ds in enumerate(datasets):
        study = index // 4
        ds.Modality = 'CT' if index % 4 < 2 else 'MR'
        ds.InstitutionName = ['General Hospital', 'St. Mary', 'Clinic [North]'][study]
        ds.BodyPartExamined = 'CHEST' if index % 4 < 2 else 'HEAD'
        ds.StudyTime = ['083000', '121500.5', '1700'][study]
        ds.SeriesDescription = f'{ds.Modality} series {index % 4 // 2 + 1}'
        ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
        ds.RequestAttributesSequence = [pydicom.Dataset()]
        ds.RequestAttributesSequence[0].ScheduledProcedureStepID = f'SPS{study}'
    datasets[4].PatientName = 'Müller^Hans=ミュラー^ハンス'
    datasets[4].SpecificCharacterSet = 'ISO_IR 192'
    for ds in datasets[4:8]:
        ds.PatientName = 'Müller^Hans=ミュラー^ハンス'
        ds.SpecificCharacterSet = 'ISO_IR 192'
    return datasets


@pytest.fixture
def archive_datasets() -> list:
    return _archive_datasets()


@pytest.fixture
def archive_tree(tmp_path: Path, archive_datasets: list) -> Path:
    """A folder with the archive datasets in nested folders, plus a stray text file."""
    root = tmp_path / 'archive'
    for ds in archive_datasets:
        folder = root / ds.PatientID / f'series{ds.SeriesNumber}'
        write_files([ds], folder)
    (root / 'README.txt').write_text('not DICOM')
    return root


@pytest.fixture
def file_client(archive_tree: Path) -> DICOMfileClient:
    with DICOMfileClient(archive_tree.as_uri()) as opened:
        yield opened


def _uids(results: list, tag: str = '0020000D') -> set:
    return {item[tag]['Value'][0] for item in results}


def _write(ds: pydicom.Dataset, path: Path, implicit: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if implicit:
        meta = pydicom.dataset.FileMetaDataset(ds.file_meta)
        ds = pydicom.Dataset(ds)
        ds.file_meta = meta
        ds.file_meta.TransferSyntaxUID = IMPLICIT
    write_part10(path, ds)
    return path


# -- construction and API surface -------------------------------------------------------------


@pytest.mark.shared_reference
def test_signatures_match_the_documented_api() -> None:
    spec = json.loads(API_SIGNATURES.read_text())['dicomweb_client.api']['DICOMfileClient']
    for name, documented in spec['members'].items():
        signature = inspect.signature(getattr(DICOMfileClient, name))
        have = [(p.name, p.default) for p in signature.parameters.values() if p.name != 'self']
        text = documented.split(' -> ')[0].strip()[1:-1]
        want = [part.split(':')[0].split('=')[0].strip() for part in _split_params(text)]
        want = [item for item in want if item not in ('self', '')]
        assert [n for n, _ in have][: len(want)] == want, name
        for part in _split_params(text):
            if '=' in part:
                pname, default = part.split(':')[0].strip(), part.rsplit('=', 1)[1].strip()
                assert dict(have)[pname.split('=')[0].strip()] == eval(default), (name, pname)


def _split_params(text: str) -> list:
    parts, depth, current = [], 0, ''
    for char in text:
        depth += char in '([{'
        depth -= char in ')]}'
        if char == ',' and depth == 0:
            parts.append(current.strip())
            current = ''
        else:
            current += char
    return parts + ([current.strip()] if current.strip() else [])


def test_attributes(file_client: DICOMfileClient, archive_tree: Path) -> None:
    assert file_client.base_url == archive_tree.as_uri()
    assert file_client.scheme == 'file' and file_client.protocol is None
    assert file_client.qido_url_prefix is None and file_client.wado_url_prefix is None
    assert file_client.lookup_keyword('00080018') == 'SOPInstanceUID'
    assert file_client.lookup_tag('SOPInstanceUID') == '00080018'
    for name in dir(dicomweb_client.DICOMClient):
        if not name.startswith('_'):
            assert hasattr(file_client, name), name


@pytest.mark.parametrize(
    'url, error',
    [
        ('http://localhost/archive', ValueError),
        ('/tmp/archive', ValueError),
        ('file://host/tmp/archive', ValueError),
        ('file:relative', ValueError),
        (42, TypeError),
    ],
)
def test_bad_urls(url, error) -> None:
    with pytest.raises(error, match='url'):
        DICOMfileClient(url)


def test_bad_flags(archive_tree: Path) -> None:
    with pytest.raises(TypeError, match='update_db'):
        DICOMfileClient(archive_tree.as_uri(), update_db='yes')
    with pytest.raises(TypeError, match='db_dir'):
        DICOMfileClient(archive_tree.as_uri(), db_dir=3)
    with pytest.raises(ValueError, match='folder'):
        DICOMfileClient((archive_tree / 'README.txt').as_uri())
    with pytest.raises(FileNotFoundError, match='no archive folder'):
        DICOMfileClient((archive_tree / 'missing').as_uri(), readonly=True)
    with pytest.raises(ValueError, match='read-only'):
        DICOMfileClient((archive_tree / 'missing').as_uri(), readonly=True, create_folder=True)
    assert not (archive_tree / 'missing').exists()
    with pytest.raises(TypeError, match='create_folder'):
        DICOMfileClient((archive_tree / 'new').as_uri(), create_folder=1)


def test_missing_folder_is_an_error_unless_created(archive_tree: Path) -> None:
    typo = archive_tree / 'typo' / 'archive'
    with pytest.raises(dicomweb_client.ArchiveNotFoundError) as caught:
        DICOMfileClient(typo.as_uri())
    # a FileNotFoundError naming the folder and the way out, and the sqlite3 error the
    # established package raises there
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value, sqlite3.OperationalError)
    assert caught.value.filename == str(typo) and 'create_folder=True' in str(caught.value)
    assert not (archive_tree / 'typo').exists()
    with DICOMfileClient(typo.as_uri(), create_folder=True) as client:
        assert client.search_for_studies() == []
    assert typo.is_dir()


# -- indexing ---------------------------------------------------------------------------------


def test_index_skips_non_dicom_and_corrupt_files(archive_tree: Path, caplog) -> None:
    good = make_instance(rows=4, columns=4)
    data = to_bytes(good)
    (archive_tree / 'truncated.dcm').write_bytes(data[:300])
    (archive_tree / 'garbage.dcm').write_bytes(b'\0' * 128 + b'DICM' + os.urandom(500))
    (archive_tree / 'empty.dcm').write_bytes(b'')
    no_uids = pydicom.Dataset()
    no_uids.PatientName = 'No^Uids'
    no_uids.file_meta = pydicom.dataset.FileMetaDataset()
    no_uids.file_meta.TransferSyntaxUID = EXPLICIT
    no_uids.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.1.3.10'
    no_uids.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    write_part10(archive_tree / 'no_uids.dcm', no_uids)
    with caplog.at_level(logging.WARNING, logger='dicomweb_client'):
        client = DICOMfileClient(archive_tree.as_uri())
    assert len(client.search_for_instances()) == 12
    skipped = ' '.join(record.getMessage() for record in caplog.records)
    for name in ('README.txt', 'truncated.dcm', 'garbage.dcm', 'empty.dcm', 'no_uids.dcm'):
        assert name in skipped
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='dicomweb_client'):
        DICOMfileClient(archive_tree.as_uri(), update_db=True)
    assert not caplog.records  # unchanged skipped files are not read (nor reported) again
    (archive_tree / 'truncated.dcm').write_bytes(data)  # repaired: indexed on the next update
    client = DICOMfileClient(archive_tree.as_uri(), update_db=True)
    assert len(client.search_for_instances()) == 13


def test_update_db_finds_new_changed_and_removed_files(
    archive_tree: Path, archive_datasets: list
) -> None:
    client = DICOMfileClient(archive_tree.as_uri())
    assert len(client.search_for_studies()) == 3
    extra = make_instance(rows=4, columns=4, patient_id='NEW')
    write_files([extra], archive_tree / 'new')
    changed = archive_datasets[0]
    path = next(archive_tree.rglob(f'{changed.SOPInstanceUID}.dcm'))
    modified = pydicom.dcmread(path)
    modified.PatientID = 'CHANGED'
    modified.StudyInstanceUID = generate_uid()
    pydicom.dcmwrite(path, modified)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    removed = archive_datasets[-1]
    next(archive_tree.rglob(f'{removed.SOPInstanceUID}.dcm')).unlink()
    stale = DICOMfileClient(archive_tree.as_uri())  # no update asked: the index stays as it was
    assert len(stale.search_for_instances()) == 12
    fresh = DICOMfileClient(archive_tree.as_uri(), update_db=True)
    instances = fresh.search_for_instances()
    assert len(instances) == 12
    assert extra.SOPInstanceUID in _uids(instances, '00080018')
    assert removed.SOPInstanceUID not in _uids(instances, '00080018')
    found = fresh.search_for_instances(search_filters={'SOPInstanceUID': changed.SOPInstanceUID})
    assert found[0]['00100020']['Value'] == ['CHANGED']
    assert len(fresh.search_for_studies()) == 5
    assert stale.search_for_instances(search_filters={'PatientID': 'NEW'})  # same index file


def test_recreate_db_and_schema(archive_tree: Path) -> None:
    DICOMfileClient(archive_tree.as_uri())
    index = archive_tree / INDEX_NAME
    with sqlite3.connect(index) as connection:
        connection.execute("UPDATE meta SET value = 'old' WHERE key = 'schema'")
    assert len(DICOMfileClient(archive_tree.as_uri()).search_for_instances()) == 12  # rebuilt
    with sqlite3.connect(index) as connection:
        connection.execute('DELETE FROM instances')
    assert DICOMfileClient(archive_tree.as_uri()).search_for_instances() == []
    recreated = DICOMfileClient(archive_tree.as_uri(), recreate_db=True)
    assert len(recreated.search_for_instances()) == 12


def test_damaged_index_is_rebuilt(archive_tree: Path, caplog) -> None:
    (archive_tree / INDEX_NAME).write_bytes(b'this is not an SQLite database' * 100)
    with caplog.at_level(logging.WARNING, logger='dicomweb_client'):
        client = DICOMfileClient(archive_tree.as_uri())
    assert 'damaged index' in caplog.text
    assert len(client.search_for_instances()) == 12


def test_in_memory_writes_no_file(archive_tree: Path, tmp_path: Path) -> None:
    before = sorted(tmp_path.rglob('*'))
    client = DICOMfileClient(archive_tree.as_uri(), in_memory=True)
    assert len(client.search_for_series()) == 6
    assert sorted(tmp_path.rglob('*')) == before


def test_db_dir(archive_tree: Path, tmp_path: Path) -> None:
    db_dir = tmp_path / 'index'
    client = DICOMfileClient(archive_tree.as_uri(), db_dir=db_dir)
    assert len(client.search_for_studies()) == 3
    assert not (archive_tree / INDEX_NAME).exists()
    assert len(list(db_dir.glob('*.sqlite'))) == 1


def test_readonly(archive_tree: Path, tmp_path: Path, archive_datasets: list, monkeypatch) -> None:
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    before = sorted(archive_tree.rglob('*'))
    client = DICOMfileClient(archive_tree.as_uri(), readonly=True)  # index built in the cache
    assert len(client.search_for_instances()) == 12
    assert sorted(archive_tree.rglob('*')) == before
    assert list((tmp_path / 'cache').rglob('*.sqlite'))
    ds = archive_datasets[0]
    with pytest.raises(PermissionError, match='store_instances refused.*readonly=True'):
        client.store_instances([make_instance()])
    with pytest.raises(dicomweb_client.HTTPError) as raised:
        client.delete_study(ds.StudyInstanceUID)
    assert raised.value.status_code == 403
    assert (
        client.retrieve_instance(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        ).PatientID
        == ds.PatientID
    )
    DICOMfileClient(archive_tree.as_uri()).close()  # an index beside the archive ...
    reader = DICOMfileClient(archive_tree.as_uri(), readonly=True)  # ... is opened read-only
    with pytest.raises(sqlite3.OperationalError, match='readonly'):
        reader._index.connection.execute('DELETE FROM files')
    assert len(reader.search_for_studies()) == 3


# -- searching --------------------------------------------------------------------------------


def test_study_answers(file_client: DICOMfileClient, archive_datasets: list) -> None:
    studies = file_client.search_for_studies()
    assert len(studies) == 3
    first = studies[0]
    assert list(first) == sorted(first)
    ds = archive_datasets[0]
    assert first['0020000D'] == {'vr': 'UI', 'Value': [ds.StudyInstanceUID]}
    assert first['00100010'] == {'vr': 'PN', 'Value': [{'Alphabetic': 'Doe^Patient1'}]}
    assert first['00080061'] == {'vr': 'CS', 'Value': ['CT', 'MR']}
    assert first['00201206'] == {'vr': 'IS', 'Value': [2]}
    assert first['00201208'] == {'vr': 'IS', 'Value': [4]}
    assert first['00081190']['Value'][0] == f'{file_client.base_url}/studies/{ds.StudyInstanceUID}'
    assert '00080018' not in first
    names = {s['0020000D']['Value'][0]: s['00100010']['Value'][0] for s in studies}
    assert names[archive_datasets[4].StudyInstanceUID] == {
        'Alphabetic': 'Müller^Hans',
        'Ideographic': 'ミュラー^ハンス',
    }


def test_series_and_instance_answers(file_client: DICOMfileClient, archive_datasets: list) -> None:
    ds = archive_datasets[0]
    series = file_client.search_for_series(ds.StudyInstanceUID)
    assert len(series) == 2
    assert series[0]['00201209'] == {'vr': 'IS', 'Value': [2]}
    assert '00100020' not in series[0]  # scoped to the study: no study attributes
    assert file_client.search_for_series()[0]['00100020']['Value'] == ['P1']
    assert series[0]['00200011'] == {'vr': 'IS', 'Value': [1]}
    instances = file_client.search_for_instances(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert [i['00200013']['Value'][0] for i in instances] == [1, 2]
    assert instances[0]['00280010'] == {'vr': 'US', 'Value': [8]}
    assert instances[0]['00280008'] == {'vr': 'IS', 'Value': [1]}  # an image has a frame
    assert '00083002' not in instances[0]
    syntaxes = file_client.search_for_instances(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, fields=['AvailableTransferSyntaxUID']
    )
    assert syntaxes[0]['00083002'] == {'vr': 'UI', 'Value': [EXPLICIT]}
    assert len(file_client.search_for_instances(series_instance_uid=ds.SeriesInstanceUID)) == 2
    assert len(file_client.search_for_instances(ds.StudyInstanceUID)) == 4
    assert file_client.search_for_series(generate_uid()) == []


FILTERS = [
    # (level, filters, expected number of results)
    ('studies', {'PatientID': 'P2'}, 1),
    ('studies', {'PatientID': ['P1', 'P3']}, 2),
    ('studies', {'PatientID': 'P1\\P3'}, 2),
    ('studies', {'PatientID': 'P?'}, 3),
    ('studies', {'PatientID': 'p2'}, 0),  # case-sensitive for other VRs than PN
    ('studies', {'PatientName': 'doe^patient1'}, 1),  # PN is case-insensitive
    ('studies', {'PatientName': 'DOE*'}, 2),
    ('studies', {'PatientName': 'müller^hans'}, 1),
    ('studies', {'PatientName': 'Doe'}, 0),
    ('studies', {'PatientName': '*'}, 3),
    ('studies', {'PatientName': ''}, 3),
    ('studies', {'StudyDate': '20240102'}, 1),
    ('studies', {'StudyDate': '20240102-20240103'}, 2),
    ('studies', {'StudyDate': '-20240102'}, 2),
    ('studies', {'StudyDate': '20240103-'}, 1),
    ('studies', {'StudyDate': datetime.date(2024, 1, 1)}, 1),
    ('studies', {'StudyTime': '1200-1800'}, 2),
    ('studies', {'StudyTime': '0830'}, 1),
    ('studies', {'StudyTime': '-1215'}, 2),
    ('studies', {'StudyTime': '-1214'}, 1),
    ('studies', {'ModalitiesInStudy': 'MR'}, 3),
    ('studies', {'ModalitiesInStudy': ['US', 'CT']}, 3),
    ('studies', {'ModalitiesInStudy': 'US'}, 0),
    ('studies', {'AccessionNumber': 'ACC000?'}, 3),
    ('studies', {'InstitutionName': 'St. Mary'}, 1),
    ('studies', {'InstitutionName': 'Clinic [North]'}, 1),
    ('studies', {'InstitutionName': '*Hospital'}, 1),
    ('studies', {'SeriesDescription': 'MR series 2'}, 3),
    ('studies', {'BodyPartExamined': 'HEAD', 'PatientID': 'P3'}, 1),
    ('studies', {'RequestAttributesSequence.ScheduledProcedureStepID': 'SPS1'}, 1),
    ('studies', {'00100020': 'P1'}, 1),
    ('studies', {'NumberOfStudyRelatedInstances': 4}, 3),
    ('studies', {'IssuerOfPatientID': '""'}, 3),
    ('studies', {'StudyInstanceUID': None}, None),  # filled in by the test: a UID list
    ('series', {'Modality': 'CT'}, 3),
    ('series', {'SeriesNumber': 2}, 3),
    ('series', {'SeriesNumber': '1'}, 3),
    ('series', {'SeriesDescription': 'CT*'}, 3),
    ('series', {'BodyPartExamined': 'HEAD'}, 3),
    ('series', {'PatientID': 'P1', 'Modality': 'MR'}, 1),
    ('series', {'ImageType': 'AXIAL'}, 6),
    ('instances', {'InstanceNumber': 2}, 6),
    ('instances', {'SOPClassUID': '1.2.840.10008.5.1.4.1.1.2'}, 12),
    ('instances', {'Modality': 'MR', 'StudyDate': '20240103'}, 2),
    ('instances', {'ContentDate': '20240101-20240102'}, 8),
    ('instances', {'Rows': 8}, 12),
    ('instances', {'SpecificCharacterSet': 'ISO_IR 192'}, 4),
]


@pytest.mark.parametrize('force_json', [False, True], ids=['columns', 'json'])
@pytest.mark.parametrize('level, filters, count', FILTERS)
def test_filters(
    file_client: DICOMfileClient, archive_datasets: list, level, filters, count, force_json
) -> None:
    if 'StudyInstanceUID' in filters:
        wanted = [archive_datasets[0].StudyInstanceUID, archive_datasets[8].StudyInstanceUID]
        filters, count = {'StudyInstanceUID': ','.join(wanted)}, 2
    with json_matching(force_json):
        results = getattr(file_client, f'search_for_{level}')(search_filters=filters)
    assert len(results) == count
    levels = ('studies', 'series', 'instances')
    for key in filters:  # matching keys of the level searched (or above) are returned
        tag = key if key[0].isdigit() else file_client.lookup_tag(key.split('.')[0])
        returned = all(tag in result for result in results)
        lower = IMPLEMENTATION._answer_level(tag) > levels.index(level)
        assert returned != lower or key in ('IssuerOfPatientID', 'PatientName'), key


def test_fuzzy_person_names(file_client: DICOMfileClient) -> None:
    assert file_client.search_for_studies(search_filters={'PatientName': 'hans'}) == []
    fuzzy = file_client.search_for_studies(
        fuzzymatching=True, search_filters={'PatientName': 'hans'}
    )
    assert len(fuzzy) == 1
    assert (
        len(
            file_client.search_for_studies(
                fuzzymatching=True, search_filters={'PatientName': 'pat*'}
            )
        )
        == 2
    )
    assert (
        len(
            file_client.search_for_studies(
                fuzzymatching=True, search_filters={'ReferringPhysicianName': 'doc'}
            )
        )
        == 3
    )


def test_limit_offset_and_fields(file_client: DICOMfileClient) -> None:
    everything = file_client.search_for_instances()
    pages = [file_client.search_for_instances(limit=5, offset=offset) for offset in (0, 5, 10)]
    assert [len(page) for page in pages] == [5, 5, 2]
    assert sum(pages, []) == everything
    assert file_client.search_for_instances(offset=11) == everything[11:]
    assert file_client.search_for_studies(limit=0) == []
    assert len(file_client.search_for_studies(limit=2, get_remaining=True)) == 2
    studies = file_client.search_for_studies(
        fields=['InstitutionName', 'StudyDescription', '00180015']
    )
    assert all('00081030' in study for study in studies)
    # series and instance attributes are not study answers (PS3.18 10.6.3.3.1)
    assert not any('00080080' in study or '00180015' in study for study in studies)
    series = file_client.search_for_series(fields=['InstitutionName', 'Rows'])
    assert all('00080080' in item and '00280010' not in item for item in series)
    nested = file_client.search_for_series(
        fields=['RequestAttributesSequence.ScheduledProcedureStepID']
    )
    assert nested[0]['00400275']['Value'][0]['00400009']['Value'] == ['SPS0']
    everything = file_client.search_for_studies(fields=['all'])
    assert '00100030' in everything[0] and '00080018' not in everything[0]
    assert '00080080' not in everything[0]  # a series attribute
    instance = file_client.search_for_instances(limit=1, fields=['all'])[0]
    assert '00080064' in instance and '7FE00010' not in instance


@pytest.mark.parametrize(
    'filters, error',
    [
        ({'NoSuchKeyword': 'x'}, ValueError),
        ({'StudyDate': '2024-01-01'}, ValueError),
        ({'StudyDate': 'yesterday'}, ValueError),
        ({'StudyTime': '25:00-'}, ValueError),
        ({'SeriesNumber': 'one'}, ValueError),
        ({'PatientID': {'a': 1}}, TypeError),
        ({'limit': 3}, ValueError),
    ],
)
def test_bad_filters(file_client: DICOMfileClient, filters, error) -> None:
    with pytest.raises(error, match='search_filters'):
        file_client.search_for_studies(search_filters=filters)


def test_bad_search_arguments(file_client: DICOMfileClient) -> None:
    with pytest.raises(ValueError, match='limit'):
        file_client.search_for_studies(limit=-1)
    with pytest.raises(TypeError, match='fuzzymatching'):
        file_client.search_for_studies(fuzzymatching='yes')
    with pytest.raises(ValueError, match='fields'):
        file_client.search_for_studies(fields=['NoSuchKeyword'])
    with pytest.raises(ValueError, match='study_instance_uid'):
        file_client.search_for_series('1.2/3')


# -- what searches answer (PS3.18 10.6.3.3) -----------------------------------------------

STUDY_KEYS = {  # tag: VR of the attributes every study answer holds
    '00080020': 'DA',
    '00080030': 'TM',
    '00080050': 'SH',
    '00080061': 'CS',
    '00080090': 'PN',
    '00100010': 'PN',
    '00100020': 'LO',
    '00100030': 'DA',
    '00100040': 'CS',
    '0020000D': 'UI',
    '00200010': 'SH',
    '00201206': 'IS',
    '00201208': 'IS',
    '00081190': 'UR',
}
SERIES_KEYS = {
    '00080060': 'CS',
    '0020000E': 'UI',
    '00200011': 'IS',
    '00201209': 'IS',
    '00081190': 'UR',
}
INSTANCE_KEYS = {
    '00080016': 'UI',
    '00080018': 'UI',
    '00200013': 'IS',
    '00280010': 'US',
    '00280011': 'US',
    '00280100': 'US',
    '00280008': 'IS',
    '00081190': 'UR',
}
BARE_ATTRIBUTES = (
    'PatientName',
    'PatientID',
    'PatientBirthDate',
    'PatientSex',
    'StudyDate',
    'StudyTime',
    'AccessionNumber',
    'ReferringPhysicianName',
    'StudyID',
    'StudyDescription',
    'SeriesNumber',
    'SeriesDescription',
    'InstanceNumber',
    'SpecificCharacterSet',
)


@pytest.fixture
def bare(tmp_path: Path) -> tuple:
    """A client on an image without patient and study attributes, series or instance
    number, and a structured report (no pixels) of another series of its study."""
    image = make_instance(rows=4, columns=4, bits=8, modality='OT')
    for keyword in BARE_ATTRIBUTES:
        delattr(image, keyword)
    report = make_instance(
        study_uid=image.StudyInstanceUID,
        modality='SR',
        rows=4,
        columns=4,
        bits=8,
        sop_class_uid='1.2.840.10008.5.1.4.1.1.88.11',
    )
    for keyword in BARE_ATTRIBUTES + (
        'Rows',
        'Columns',
        'BitsAllocated',
        'BitsStored',
        'HighBit',
        'PixelRepresentation',
        'SamplesPerPixel',
        'PhotometricInterpretation',
        'PixelData',
    ):
        delattr(report, keyword)
    write_files([image, report], tmp_path / 'bare')
    return DICOMfileClient((tmp_path / 'bare').as_uri(), in_memory=True), image, report


def _keys(answer: dict) -> dict:
    return {tag: element['vr'] for tag, element in answer.items()}


def test_answers_hold_the_required_attributes_even_without_values(bare: tuple) -> None:
    client, image, _ = bare
    (study,) = client.search_for_studies()
    assert _keys(study) == STUDY_KEYS
    for tag in (
        '00100010',
        '00100020',
        '00100030',
        '00100040',
        '00080020',
        '00080030',
        '00080050',
        '00080090',
        '00200010',
    ):
        assert study[tag] == {'vr': STUDY_KEYS[tag]}, tag  # Type 2: present and empty
    assert study['00080061'] == {'vr': 'CS', 'Value': ['OT', 'SR']}
    assert study['00201206']['Value'] == [2] and study['00201208']['Value'] == [2]
    series = client.search_for_series(search_filters={'Modality': 'OT'})
    assert _keys(series[0]) == {**STUDY_KEYS, **SERIES_KEYS}
    assert series[0]['00200011'] == {'vr': 'IS'}
    assert series[0]['00201209']['Value'] == [1]
    instances = client.search_for_instances()
    assert all(_keys(item) == {**STUDY_KEYS, **SERIES_KEYS, **INSTANCE_KEYS} for item in instances)
    by_sop = {item['00080018']['Value'][0]: item for item in instances}
    answer = by_sop[image.SOPInstanceUID]
    assert answer['00200013'] == {'vr': 'IS'}
    assert answer['00280008'] == {'vr': 'IS', 'Value': [1]}  # one frame without the attribute
    assert answer['00280010'] == {'vr': 'US', 'Value': [4]}
    report = next(item for sop, item in by_sop.items() if sop != image.SOPInstanceUID)
    for tag in ('00280008', '00280010', '00280011', '00280100'):
        assert report[tag] == {'vr': INSTANCE_KEYS[tag]}, tag  # no image: empty


def test_number_of_frames_of_a_single_frame_image_matches_one(bare: tuple) -> None:
    client, image, _ = bare
    found = client.search_for_instances(search_filters={'NumberOfFrames': 1})
    assert [item['00080018']['Value'] for item in found] == [[image.SOPInstanceUID]]
    assert found[0]['00280008'] == {'vr': 'IS', 'Value': [1]}


def test_scoped_searches_answer_their_own_level(bare: tuple) -> None:
    client, image, _ = bare
    study = image.StudyInstanceUID
    scoped = client.search_for_series(study)
    assert all(_keys(item) == SERIES_KEYS for item in scoped)
    in_study = client.search_for_instances(study)
    assert all(_keys(item) == {**SERIES_KEYS, **INSTANCE_KEYS} for item in in_study)
    in_series = client.search_for_instances(study, image.SeriesInstanceUID)
    assert [_keys(item) for item in in_series] == [INSTANCE_KEYS]
    # a series UID without a study UID is a matching key of all instances
    assert _keys(client.search_for_instances(series_instance_uid=image.SeriesInstanceUID)[0]) == {
        **STUDY_KEYS,
        **SERIES_KEYS,
        **INSTANCE_KEYS,
    }
    # included fields of higher levels come back (empty without a value), matching keys
    # of higher levels and fields of lower levels do not
    fields = client.search_for_series(study, fields=['PatientID', 'Rows'])
    assert all(item['00100020'] == {'vr': 'LO'} and '00280010' not in item for item in fields)
    matched = client.search_for_series(study, search_filters={'PatientID': '*'})
    assert all('00100020' not in item for item in matched)
    everything = client.search_for_series(study, fields=['all'])
    assert all('00100010' not in item and '00280010' not in item for item in everything)
    assert all('00080060' in item for item in everything)
    assert '00080060' not in client.search_for_studies(search_filters={'Modality': 'OT'})[0]


def test_none_as_a_filter_value_is_universal_matching(bare: tuple) -> None:
    client, _, _ = bare
    found = client.search_for_studies(search_filters={'StudyDescription': None})
    assert len(found) == 1 and found[0]['00081030'] == {'vr': 'LO'}


# -- errors are of the established package's built-in classes too -----------------------


def _http_error(raised: pytest.ExceptionInfo, *classes: type, status: int = 0) -> None:
    """The error is an OSError (as the established package's) and of ``classes``; with a
    ``status`` an HTTPError of that status, else an argument error (no HTTPError)."""
    assert isinstance(raised.value, OSError)
    if status:
        assert raised.value.status_code == status
    else:
        assert not isinstance(raised.value, dicomweb_client.HTTPError)
    for error_class in classes:
        assert isinstance(raised.value, error_class), error_class


def test_transfer_syntaxes_the_client_cannot_make(tmp_path: Path) -> None:
    native = make_instance(rows=8, columns=8)
    write_files([native], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    uids = (native.StudyInstanceUID, native.SeriesInstanceUID, native.SOPInstanceUID)
    syntax = '1.2.840.10008.1.2.4.90'
    with pytest.raises(OSError, match='cannot be converted') as raised:
        client.retrieve_instance(*uids, media_types=(('application/dicom', syntax),))
    _http_error(raised, ValueError, status=406)
    with pytest.raises(OSError) as raised:
        client.retrieve_series(*uids[:2], media_types=(('application/dicom', syntax),))
    _http_error(raised, ValueError, status=406)
    # a UID that names no transfer syntax of application/dicom is a wrong argument
    with pytest.raises(OSError, match='not one PS3.18 defines') as raised:
        client.retrieve_instance(*uids, media_types=(('application/dicom', '1.2.3.4'),))
    _http_error(raised, ValueError)
    with pytest.raises(OSError, match='not available as image/jpeg') as raised:
        client.retrieve_instance_frames(*uids, [1], media_types=('image/jpeg',))
    _http_error(raised, ValueError, status=406)
    with pytest.raises(OSError) as raised:
        client.retrieve_instance_frames(*uids, [1], media_types=('application/dicom',))
    _http_error(raised, ValueError)
    with pytest.raises(OSError, match='cannot render') as raised:
        client.retrieve_instance_rendered(*uids, media_types=('application/pdf',))
    _http_error(raised, ValueError, status=406)
    with pytest.raises(OSError) as raised:
        client.retrieve_series_rendered(*uids[:2], media_types=('text/html',))
    _http_error(raised, ValueError, status=406)
    with pytest.raises(TypeError, match='media type alone') as raised:
        client.retrieve_instance_frames_rendered(
            *uids, [1], media_types=(('image/jpeg', '1.2.840.10008.1.2.4.50'),)
        )
    _http_error(raised, OSError)


def test_decompressing_keeps_the_sop_instance_uid(tmp_path: Path) -> None:
    rle = make_instance(rows=8, columns=8, compressed=True)
    write_files([rle], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    decoded = client.retrieve_instance(
        rle.StudyInstanceUID,
        rle.SeriesInstanceUID,
        rle.SOPInstanceUID,
        media_types=(('application/dicom', EXPLICIT),),
    )
    assert decoded.file_meta.TransferSyntaxUID == EXPLICIT
    assert decoded.SOPInstanceUID == rle.SOPInstanceUID


def test_argument_errors_are_http_errors_too(
    file_client: DICOMfileClient, archive_datasets: list
) -> None:
    ds = archive_datasets[0]
    with pytest.raises(OSError, match='limit') as raised:
        file_client.search_for_studies(limit=-1)
    _http_error(raised, ValueError)
    with pytest.raises(OSError, match='search_filters') as raised:
        file_client.search_for_series(search_filters=[('PatientID', 'P1')])
    _http_error(raised, TypeError)
    with pytest.raises(OSError, match='study_instance_uid') as raised:
        file_client.retrieve_study(None)
    _http_error(raised, TypeError)
    with pytest.raises(OSError, match='frame_numbers') as raised:
        file_client.retrieve_instance_frames(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [0]
        )
    _http_error(raised, ValueError)
    with pytest.raises(OSError, match='empty') as raised:
        file_client.retrieve_bulkdata('')
    _http_error(raised, ValueError)
    for call in (
        lambda: file_client.delete_study(None),
        lambda: file_client.delete_series(ds.StudyInstanceUID, None),
        lambda: file_client.delete_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, None),
    ):
        with pytest.raises(OSError, match='is required') as raised:
            call()
        _http_error(raised, ValueError, TypeError)
    assert len(file_client.search_for_instances()) == len(archive_datasets)  # nothing deleted
    assert inspect.signature(DICOMfileClient.retrieve_study).parameters['media_types']


NAMES = st.text(alphabet='abAB^ =*?[é', min_size=0, max_size=6)


@contextlib.contextmanager
def json_matching(on: bool = True):
    """While on, every matching key is matched on the stored metadata, as the keys of
    attributes without an index column are: both ways must give the same answers."""
    original = dicomweb_client._matched_in_column
    if on:
        dicomweb_client._matched_in_column = lambda column, criterion: False
    try:
        yield
    finally:
        dicomweb_client._matched_in_column = original


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=NAMES, fuzzy=st.booleans())
def test_column_and_json_matching_agree(
    name_client: DICOMfileClient, pattern: str, fuzzy: bool
) -> None:
    filters = {'PatientName': pattern, 'StudyDescription': pattern.replace('^', '')}
    for key, value in filters.items():
        by_column = name_client.search_for_studies(fuzzymatching=fuzzy, search_filters={key: value})
        with json_matching():
            by_json = name_client.search_for_studies(
                fuzzymatching=fuzzy, search_filters={key: value}
            )
        assert by_column == by_json


DATES = st.sampled_from(['', '20240101', '20240102', '20240103', '2024', '20231231'])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(low=DATES, high=DATES, single=st.booleans())
def test_column_and_json_date_matching_agree(
    name_client: DICOMfileClient, low: str, high: str, single: bool
) -> None:
    value = low if single else f'{low}-{high}'
    if (
        value in ('', '-')
        or (low and not low.isdigit())
        or len(low) not in (0, 8)
        or (len(high) not in (0, 8))
    ):
        return
    by_column = name_client.search_for_studies(search_filters={'StudyDate': value})
    with json_matching():
        assert name_client.search_for_studies(search_filters={'StudyDate': value}) == by_column


@pytest.fixture(scope='module')
def name_client(tmp_path_factory: pytest.TempPathFactory) -> DICOMfileClient:
    """An in-memory archive of studies with awkward names (built once for the module)."""
    root = tmp_path_factory.mktemp('names')
    names = ['ab^AB', 'Ab^ba', 'a b^B=é^a', '', 'A*^?', 'éa^[b]', 'b^a^ab', 'AB']
    dates = ['20240101', '', '20240102', '20240103', '20231231', '', '20240102', '2024']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pydicom on the invalid date '2024'
        datasets = [
            make_instance(
                rows=2,
                columns=2,
                patient_name=name,
                study_description=name.replace('^', ' '),
                study_date=date,
                bits=8,
            )
            for name, date in zip(names, dates)
        ]
    for ds in datasets:
        ds.SpecificCharacterSet = 'ISO_IR 192'
    write_files(datasets, root)
    with DICOMfileClient(root.as_uri(), in_memory=True) as client:
        yield client


# -- retrieving -------------------------------------------------------------------------------


def test_retrieve_instances(file_client: DICOMfileClient, archive_datasets: list) -> None:
    ds = archive_datasets[0]
    instance = file_client.retrieve_instance(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert instance.SOPInstanceUID == ds.SOPInstanceUID
    assert instance.PixelData == ds.PixelData
    study = file_client.retrieve_study(ds.StudyInstanceUID)
    assert [item.InstanceNumber for item in study] == [1, 2, 1, 2]
    series = file_client.retrieve_series(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, media_types=(('application/dicom', '*'),)
    )
    assert {item.SOPInstanceUID for item in series} == {
        item.SOPInstanceUID for item in archive_datasets[:2]
    }
    iterator = file_client.iter_series(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert not isinstance(iterator, list)
    assert next(iterator).SeriesInstanceUID == ds.SeriesInstanceUID
    assert len(list(file_client.iter_study(ds.StudyInstanceUID))) == 4


def test_retrieve_not_found_and_bad_input(
    file_client: DICOMfileClient, archive_datasets: list
) -> None:
    ds = archive_datasets[0]
    with pytest.raises(FileNotFoundError):
        file_client.retrieve_study(generate_uid())
    with pytest.raises(dicomweb_client.HTTPError) as raised:
        file_client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, generate_uid())
    assert raised.value.status_code == 404
    with pytest.raises(ValueError, match='study_instance_uid'):
        file_client.iter_study('../../etc')
    with pytest.raises(TypeError, match='study_instance_uid'):
        file_client.retrieve_study(None)
    with pytest.raises(ValueError, match='media type'):
        file_client.retrieve_study(ds.StudyInstanceUID, media_types=('image/jpeg',))
    with pytest.raises(TypeError, match='media_types'):
        file_client.retrieve_study(ds.StudyInstanceUID, media_types=42)
    with pytest.raises(ValueError, match='sop_instance_uid'):
        file_client.retrieve_instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, 'a/b')


def test_transfer_syntax_choice(tmp_path: Path) -> None:
    native = make_instance(rows=8, columns=8)
    rle = make_instance(rows=8, columns=8, frames=2, compressed=True)
    _write(native, tmp_path / 'implicit.dcm', implicit=True)
    write_files([rle], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    uids = (native.StudyInstanceUID, native.SeriesInstanceUID, native.SOPInstanceUID)
    as_stored = client.retrieve_instance(*uids)
    assert as_stored.file_meta.TransferSyntaxUID == IMPLICIT
    explicit = client.retrieve_instance(*uids, media_types=(('application/dicom', EXPLICIT),))
    assert explicit.file_meta.TransferSyntaxUID == EXPLICIT
    assert explicit.PixelData == native.PixelData
    rle_uids = (rle.StudyInstanceUID, rle.SeriesInstanceUID, rle.SOPInstanceUID)
    decoded = client.retrieve_instance(*rle_uids, media_types=(('application/dicom', EXPLICIT),))
    assert decoded.file_meta.TransferSyntaxUID == EXPLICIT
    assert np.array_equal(decoded.pixel_array, rle.pixel_array)
    with pytest.raises(ValueError, match='cannot be converted'):
        client.retrieve_instance(
            *rle_uids, media_types=(('application/dicom', '1.2.840.10008.1.2.4.50'),)
        )
    either = client.retrieve_instance(
        *rle_uids,
        media_types=(('application/dicom', '1.2.840.10008.1.2.4.50'), ('application/dicom', '*')),
    )
    assert either.file_meta.TransferSyntaxUID == rle.file_meta.TransferSyntaxUID


@pytest.mark.filterwarnings('ignore::UserWarning')  # pydicom on odd encodings
@pytest.mark.parametrize(
    'name',
    [
        'MR_small_bigendian.dcm',
        'image_dfl.dcm',
        'SC_rgb_jpeg.dcm',
        'JPEG2000.dcm',
        'SC_rgb_rle.dcm',
    ],
)
def test_files_read_by_pydicom(tmp_path: Path, name: str) -> None:
    """Big endian, deflated and compressed files: frames, conversion and rendering."""
    from pydicom.data import get_testdata_file

    source = get_testdata_file(name, download=False)
    if source is None:
        pytest.skip(f'{name} is not bundled with pydicom')
    (tmp_path / name).write_bytes(Path(source).read_bytes())
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    (item,) = client.search_for_instances()
    uids = [item[tag]['Value'][0] for tag in ('0020000D', '0020000E', '00080018')]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ds = pydicom.dcmread(tmp_path / name)
        try:
            expected = ds.pixel_array
        except Exception as error:  # noqa: BLE001 - pydicom 2 with later Pillow or numpy
            pytest.skip(f'pydicom {pydicom.__version__} cannot decode {name} here: {error!r}')
    frames = int(ds.get('NumberOfFrames', 1) or 1)
    first = expected[0] if frames > 1 else expected
    (frame,) = client.retrieve_instance_frames(*uids, [1])
    assert frame == first.astype(first.dtype.newbyteorder('<')).tobytes()
    converted = client.retrieve_instance(*uids, media_types=(('application/dicom', EXPLICIT),))
    assert converted.file_meta.TransferSyntaxUID == EXPLICIT
    assert np.array_equal(converted.pixel_array, expected)
    image = Image.open(io.BytesIO(client.retrieve_instance_rendered(*uids)))
    assert image.size == (ds.Columns, ds.Rows)
    metadata = client.retrieve_instance_metadata(*uids)
    assert metadata['00100010'] == ds.to_json_dict()['00100010']


def test_metadata_and_bulk_data(tmp_path: Path) -> None:
    ds = make_instance(rows=8, columns=8)
    ds.add_new(0x00291010, 'OB', bytes(range(256)) * 8)  # 2048 bytes: bulk data
    ds.add_new(0x00291011, 'OB', b'small!')
    ds.ReferencedImageSequence = [pydicom.Dataset()]
    ds.ReferencedImageSequence[0].add_new(0x00291010, 'OB', b'\x07' * 1500)
    write_files([ds], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    metadata = client.retrieve_instance_metadata(*uids)
    assert metadata['00291011'] == {'vr': 'OB', 'InlineBinary': 'c21hbGwh'}
    assert metadata['00100010'] == {'vr': 'PN', 'Value': [{'Alphabetic': 'Doe^Jane'}]}
    assert metadata['00200013'] == {'vr': 'IS', 'Value': [1]}
    pixel_url = metadata['7FE00010']['BulkDataURI']
    assert pixel_url.startswith(client.base_url + '/studies/')
    assert client.retrieve_bulkdata(pixel_url) == [ds.PixelData]
    assert client.retrieve_bulkdata(pixel_url, byte_range=(2, 5)) == [ds.PixelData[2:6]]
    assert client.retrieve_bulkdata(metadata['00291010']['BulkDataURI']) == [bytes(range(256)) * 8]
    nested = metadata['00081140']['Value'][0]['00291010']['BulkDataURI']
    assert list(client.iter_bulkdata(nested)) == [b'\x07' * 1500]
    assert client.retrieve_study_metadata(ds.StudyInstanceUID) == [metadata]
    assert client.retrieve_series_metadata(*uids[:2]) == [metadata]
    with pytest.raises(ValueError, match='bulk data URL'):
        client.retrieve_bulkdata('file:///etc/passwd')
    with pytest.raises(FileNotFoundError):
        client.retrieve_bulkdata(pixel_url.replace('7FE00010', '00291099'))
    with pytest.raises(ValueError, match='byte_range'):
        client.retrieve_bulkdata(pixel_url, byte_range=(5, 2))


def test_metadata_matches_pydicom(file_client: DICOMfileClient, archive_tree: Path) -> None:
    for path in archive_tree.rglob('*.dcm'):
        ds = pydicom.dcmread(path)
        expected = ds.to_json_dict()
        expected.pop('7FE00010')
        metadata = file_client.retrieve_instance_metadata(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        assert metadata.pop('7FE00010')['vr'] == 'OW'
        assert metadata == expected


def test_header_reader_matches_pydicom_on_its_test_files() -> None:
    """The fast header reader gives what pydicom's to_json_dict gives."""
    implementation = IMPLEMENTATION
    compared = 0
    folder = Path(pydicom.data.__file__).parent / 'test_files'  # no download: local files
    for name in sorted(str(path) for path in folder.glob('*.dcm')):
        if Path(name).name == 'badVR.dcm':  # values pydicom drops as invalid
            continue
        data = Path(name).read_bytes()
        try:
            header = implementation._parse_part10(data, True)
        except (implementation._NotIndexable, implementation._Unsupported):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            reference = implementation._parse_with_pydicom(name)
        mine = _comparable(header.metadata)
        theirs = _comparable(reference.metadata)
        assert {tag: mine.get(tag) for tag in theirs} == theirs, name
        assert set(mine) - set(theirs) <= {'300C0002'}, name  # dropped by pydicom: bad UID
        assert (header.pixel_tag, header.transfer_syntax) == (
            reference.pixel_tag,
            reference.transfer_syntax,
        ), name
        compared += 1
    assert compared >= 40


def _comparable(metadata: dict) -> dict:
    """DICOM JSON without the differences allowed between the readers: empty sequences
    (``"Value": []`` or no value) and nested bulk data URIs (which name their item path
    in one reader only)."""
    import re

    text = json.dumps(metadata).replace(', "Value": []', '')
    for match in set(re.findall(r'bulkdata/[0-9A-F/]+', text)):
        text = text.replace(match, 'bulkdata/' + match.rsplit('/', 1)[-1])
    return json.loads(text)


def test_frames(tmp_path: Path) -> None:
    native = make_instance(rows=8, columns=6, frames=3)
    rle = make_instance(rows=8, columns=6, frames=3, compressed=True)
    rgb = make_instance(rows=4, columns=4, frames=2, samples_per_pixel=3)
    write_files([native, rle, rgb], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)

    def uids(ds):
        return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID

    frames = client.retrieve_instance_frames(*uids(native), [3, 1])
    assert frames == [frame_bytes(native, 3), frame_bytes(native, 1)]
    assert client.retrieve_instance_frames(*uids(rgb), [2]) == [frame_bytes(rgb, 2)]
    stored = client.retrieve_instance_frames(*uids(rle), [2], media_types=('image/dicom-rle',))
    assert stored == [frame_bytes(rle, 2)]
    wildcard = client.retrieve_instance_frames(*uids(rle), [1], media_types=('*/*',))
    assert wildcard == [frame_bytes(rle, 1)]
    decoded = list(client.iter_instance_frames(*uids(rle), [2]))
    assert decoded == [rle.pixel_array[1].tobytes()]
    with pytest.raises(ValueError, match='not available'):
        client.retrieve_instance_frames(*uids(native), [1], media_types=('image/jpeg',))
    with pytest.raises(ValueError, match='frame_numbers'):
        client.retrieve_instance_frames(*uids(native), [4])
    with pytest.raises(ValueError, match='frame_numbers'):
        client.retrieve_instance_frames(*uids(native), [0])
    with pytest.raises(TypeError, match='frame_numbers'):
        client.retrieve_instance_frames(*uids(native), '1')
    url = (
        f'{client.base_url}/studies/{uids(rle)[0]}/series/{uids(rle)[1]}/instances/'
        f'{uids(rle)[2]}/frames/1,3'
    )
    assert client.retrieve_bulkdata(url, media_types=('image/dicom-rle',)) == [
        frame_bytes(rle, 1),
        frame_bytes(rle, 3),
    ]
    pixel_url = client.retrieve_instance_metadata(*uids(rle))['7FE00010']['BulkDataURI']
    assert len(client.retrieve_bulkdata(pixel_url, media_types=('image/dicom-rle',))) == 3


def test_frames_of_a_file_changed_after_indexing(tmp_path: Path) -> None:
    ds = make_instance(rows=8, columns=8, frames=2)
    (path,) = write_files([ds], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    ds.add_new(0x00291010, 'OB', b'\x01' * 4000)  # the pixel data moves in the file
    ds.PixelData = bytes(reversed(ds.PixelData))
    write_part10(path, ds)
    frames = client.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [1]
    )
    assert frames == [frame_bytes(ds, 1)]


def test_rendering(tmp_path: Path) -> None:
    grey = make_instance(rows=16, columns=12)
    grey.WindowCenter, grey.WindowWidth = 30000, 20000
    multi = make_instance(rows=8, columns=8, frames=3, bits=8, compressed=True)
    rgb = make_instance(rows=8, columns=8, samples_per_pixel=3)
    write_files([grey, multi, rgb], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    uids = (grey.StudyInstanceUID, grey.SeriesInstanceUID, grey.SOPInstanceUID)
    jpeg = Image.open(io.BytesIO(client.retrieve_instance_rendered(*uids)))
    assert (jpeg.format, jpeg.size, jpeg.mode) == ('JPEG', (12, 16), 'L')
    png = client.retrieve_instance_rendered(*uids, media_types=('image/png',))
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    values = grey.pixel_array.astype(float)
    expected = np.clip(((values - 29999.5) / 19999 + 0.5) * 255, 0, 255)
    assert np.abs(pixels.astype(float) - expected).max() <= 1
    wide = client.retrieve_instance_rendered(
        *uids, media_types=('image/png',), params={'window': '32768,65536'}
    )
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(wide))), pixels)
    small = client.retrieve_instance_rendered(*uids, params={'viewport': '6,6', 'quality': 50})
    assert Image.open(io.BytesIO(small)).size == (4, 6)
    if 'image/jp2' in _writable():
        jp2 = client.retrieve_instance_rendered(*uids, media_types=('image/jp2',))
        assert Image.open(io.BytesIO(jp2)).format == 'JPEG2000'
    colour = client.retrieve_instance_rendered(
        rgb.StudyInstanceUID, rgb.SeriesInstanceUID, rgb.SOPInstanceUID, media_types=('image/png',)
    )
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(colour))), rgb.pixel_array)
    multi_uids = (multi.StudyInstanceUID, multi.SeriesInstanceUID, multi.SOPInstanceUID)
    animated = client.retrieve_instance_frames_rendered(
        *multi_uids, [1, 3], media_types=('image/gif',)
    )
    assert Image.open(io.BytesIO(animated)).n_frames == 2
    single = client.retrieve_instance_frames_rendered(*multi_uids, [2], media_types=('image/png',))
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(single))), _stretched(multi.pixel_array[1])
    )
    series = client.retrieve_series_rendered(*uids[:2], media_types=('image/*',))
    assert Image.open(io.BytesIO(series)).format == 'JPEG'
    with pytest.raises(ValueError, match='quality'):
        client.retrieve_instance_rendered(*uids, params={'quality': 101})
    with pytest.raises(ValueError, match='viewport'):
        client.retrieve_instance_rendered(*uids, params={'viewport': 'big'})
    with pytest.raises(ValueError, match='render'):
        client.retrieve_instance_rendered(*uids, media_types=('text/html',))
    with pytest.raises(ValueError, match='media type'):
        client.retrieve_instance_rendered(*uids, media_types=('application/dicom',))


def _writable() -> set:
    from PIL import features

    return {'image/jp2'} if features.check('jpg_2000') else set()


def _stretched(array: np.ndarray) -> np.ndarray:
    values = array.astype(float)
    low, high = values.min(), values.max()
    return np.rint(np.clip((values - low) * 255 / (high - low), 0, 255)).astype(np.uint8)


def test_render_encapsulated_pdf(tmp_path: Path) -> None:
    ds = make_instance(rows=2, columns=2)
    del ds.PixelData
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.104.1'
    ds.EncapsulatedDocument = b'%PDF-1.4 ' + b'x' * 2001
    ds.MIMETypeOfEncapsulatedDocument = 'application/pdf'
    write_files([ds], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    document = client.retrieve_instance_rendered(
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        media_types=('application/pdf',),
    )
    assert document == ds.EncapsulatedDocument


# -- storing and deleting --------------------------------------------------------------------


def test_store_search_retrieve_delete_round_trip(tmp_path: Path) -> None:
    root = tmp_path / 'store'
    client = DICOMfileClient(root.as_uri(), create_folder=True)
    datasets = make_study(2, 2, rows=4, columns=4)
    report = client.store_instances(datasets[:3])
    assert len(report.ReferencedSOPSequence) == 3 and 'FailedSOPSequence' not in report
    client.store_instances([to_bytes(datasets[3])], datasets[3].StudyInstanceUID)
    study_uid = datasets[0].StudyInstanceUID
    for ds in datasets:
        path = root / ds.StudyInstanceUID / ds.SeriesInstanceUID / f'{ds.SOPInstanceUID}.dcm'
        assert pydicom.dcmread(path).SOPInstanceUID == ds.SOPInstanceUID
    assert not list(root.rglob('.dwc-*'))  # no temporary files left
    found = client.search_for_studies(search_filters={'StudyInstanceUID': study_uid})
    assert found[0]['00201208']['Value'] == [4]
    assert len(client.retrieve_study(study_uid)) == 4
    reopened = DICOMfileClient(root.as_uri(), update_db=True)
    assert len(reopened.search_for_instances()) == 4
    first = datasets[0]
    client.delete_instance(study_uid, first.SeriesInstanceUID, first.SOPInstanceUID)
    assert len(client.search_for_instances()) == 3
    assert client.search_for_series(
        study_uid, search_filters={'SeriesInstanceUID': first.SeriesInstanceUID}
    )[0]['00201209']['Value'] == [1]
    client.delete_series(study_uid, datasets[2].SeriesInstanceUID)
    assert len(client.search_for_series()) == 1
    client.delete_study(study_uid)
    assert client.search_for_studies() == []
    assert sorted(p.name for p in root.iterdir()) == sorted(
        p.name for p in root.iterdir() if p.name.startswith(INDEX_NAME)
    )
    with pytest.raises(FileNotFoundError):
        client.delete_study(study_uid)
    assert DICOMfileClient(root.as_uri(), update_db=True).search_for_studies() == []


def test_store_again_is_an_update(archive_tree: Path, archive_datasets: list) -> None:
    client = DICOMfileClient(archive_tree.as_uri())
    ds = copy.deepcopy(archive_datasets[0])
    ds.PatientID = 'UPDATED'
    client.store_instances([ds])
    client.store_instances([ds])
    assert len(client.search_for_instances()) == 12
    found = client.search_for_instances(search_filters={'SOPInstanceUID': ds.SOPInstanceUID})
    assert found[0]['00100020']['Value'] == ['UPDATED']
    assert len(list(archive_tree.rglob(f'{ds.SOPInstanceUID}.dcm'))) == 1  # the old file is gone
    recreated = DICOMfileClient(archive_tree.as_uri(), recreate_db=True)
    assert len(recreated.search_for_instances()) == 12


def test_store_inputs_and_failures(tmp_path: Path) -> None:
    root = tmp_path / 'store'
    client = DICOMfileClient(root.as_uri(), create_folder=True)
    from_path, from_file, bare = (make_instance(rows=2, columns=2) for _ in range(3))
    (path,) = write_files([from_path], tmp_path / 'elsewhere')
    del bare.file_meta  # no file meta: written as Explicit VR Little Endian
    other_study = make_instance(rows=2, columns=2)
    with open(path, 'rb'):
        pass
    report = client.store_instances(
        [str(path), io.BytesIO(to_bytes(from_file)), bare, other_study, b'not dicom'],
        study_instance_uid=None,
    )
    assert len(report.ReferencedSOPSequence) == 4
    assert len(report.FailedSOPSequence) == 1
    assert report.FailedSOPSequence[0].FailureReason == 0xC000
    mismatch = client.store_instances(
        [make_instance(rows=2, columns=2)] * 1
        + [make_instance(rows=2, columns=2, study_uid=other_study.StudyInstanceUID)],
        study_instance_uid=other_study.StudyInstanceUID,
    )
    assert len(mismatch.ReferencedSOPSequence) == 1
    assert mismatch.FailedSOPSequence[0].FailureReason == 0xA900
    twice = make_instance(rows=2, columns=2)
    changed = copy.deepcopy(twice)
    changed.PatientID = 'SECOND'
    client.store_instances([twice, changed])  # one request, one instance: the last wins
    found = client.search_for_instances(search_filters={'SOPInstanceUID': twice.SOPInstanceUID})
    assert [item['00100020']['Value'] for item in found] == [['SECOND']]
    with pytest.raises(TypeError, match='single'):
        client.store_instances(make_instance())
    with pytest.raises(ValueError, match='at least one'):
        client.store_instances([])
    with pytest.raises(TypeError, match='datasets'):
        client.store_instances([42])
    with pytest.raises(ValueError, match='study_instance_uid'):
        client.store_instances([from_path], study_instance_uid='x/y')


@pytest.mark.parametrize('attribute', ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'])
@pytest.mark.parametrize(
    'uid',
    ['../../etc', '..', '1.2/3', '/etc/passwd', '1.2\\..\\3', '1.2.3/', '', '1.2.abc', '1' * 65],
)
def test_store_refuses_uids_that_are_not_safe_file_names(tmp_path: Path, attribute, uid) -> None:
    root = tmp_path / 'a' / 'b' / 'store'
    client = DICOMfileClient(root.as_uri(), create_folder=True)
    ds = make_instance(rows=2, columns=2)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pydicom's own complaint about the invalid UID
        setattr(ds, attribute, uid)
        with pytest.raises(ValueError, match='no instance was stored') as raised:
            client.store_instances([ds])
    assert raised.value.status_code == 409
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*') if p.is_file())
    assert all(name.startswith(f'a{os.sep}b{os.sep}store{os.sep}{INDEX_NAME}') for name in files), (
        files
    )


def test_delete_failure_keeps_files_and_rows(
    archive_tree: Path, archive_datasets: list, monkeypatch
) -> None:
    client = DICOMfileClient(archive_tree.as_uri())
    ds = archive_datasets[0]

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError('disk I/O error')

    monkeypatch.setattr(dicomweb_client._ArchiveIndex, 'delete_rows', staticmethod(broken))
    with pytest.raises(sqlite3.OperationalError):
        client.delete_study(ds.StudyInstanceUID)
    monkeypatch.undo()
    assert len(client.search_for_instances(ds.StudyInstanceUID)) == 4
    assert len(list(archive_tree.rglob('*.dcm'))) == 12
    assert not list(archive_tree.rglob('.dwc-*'))


def test_interrupted_store_and_delete_are_repaired_by_the_next_update(
    archive_tree: Path, archive_datasets: list, monkeypatch
) -> None:
    client = DICOMfileClient(archive_tree.as_uri())

    def crash(*args, **kwargs):
        raise KeyboardInterrupt('killed')

    monkeypatch.setattr(dicomweb_client._ArchiveIndex, 'index_stored', crash)
    new = make_instance(rows=2, columns=2)
    with pytest.raises(KeyboardInterrupt):
        client.store_instances([new])  # the file is written, the index row is not
    monkeypatch.undo()
    # a delete killed after moving a file aside, before committing
    ds = archive_datasets[5]
    path = next(archive_tree.rglob(f'{ds.SOPInstanceUID}.dcm'))
    aside = path.with_name(f'.dwc-del-1-{path.name}')
    path.rename(aside)
    os.utime(aside, (time.time() - 120, time.time() - 120))  # left two minutes ago
    repaired = DICOMfileClient(archive_tree.as_uri(), update_db=True)
    sops = _uids(repaired.search_for_instances(), '00080018')
    assert new.SOPInstanceUID in sops and ds.SOPInstanceUID not in sops
    assert not list(archive_tree.rglob('.dwc-*'))


def test_duplicate_sop_instances(archive_tree: Path, archive_datasets: list) -> None:
    ds = archive_datasets[0]
    original = next(archive_tree.rglob(f'{ds.SOPInstanceUID}.dcm'))
    copy = archive_tree / 'copies' / 'copy.dcm'
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    client = DICOMfileClient(archive_tree.as_uri())
    assert len(client.search_for_instances()) == 12
    indexed = client._stored(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)[0]
    (archive_tree / indexed.path).unlink()
    updated = DICOMfileClient(archive_tree.as_uri(), update_db=True)
    assert (
        updated.retrieve_instance(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        ).SOPInstanceUID
        == ds.SOPInstanceUID
    )
    updated.delete_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert not original.exists() and not copy.exists()


# -- concurrency and crashes ------------------------------------------------------------------

_INDEXER = textwrap.dedent('''
    import sys, time
    sys.path[:0] = {paths!r}
    implementation = __import__({module!r})
    original = implementation._read_records
    def slow(root, paths):
        time.sleep(0.05)
        return original(root, paths)
    implementation._read_records = slow
    implementation._INDEX_BATCH_SIZE = 20
    implementation._POOL_CHUNK_SIZE = 20
    implementation._POOL_THRESHOLD = 10 ** 9
    implementation.DICOMfileClient({url!r})
''')


def _many_files(root: Path, count: int) -> list:
    template = make_instance(rows=2, columns=2)
    sops = []
    for index in range(count):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.InstanceNumber = index + 1
        write_part10(root / f'{index:04d}.dcm', template)
        sops.append(template.SOPInstanceUID)
    return sops


def test_killed_while_indexing(tmp_path: Path) -> None:
    root = tmp_path / 'big'
    root.mkdir()
    sops = _many_files(root, 300)
    script = _INDEXER.format(
        paths=IMPORT_PATHS, module=DICOMfileClient.__module__, url=root.as_uri()
    )
    process = subprocess.Popen([sys.executable, '-c', script])
    index = root / INDEX_NAME
    deadline = time.monotonic() + 20
    rows = 0
    while time.monotonic() < deadline and rows < 40:
        time.sleep(0.02)
        rows = _count_rows(index)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < _count_rows(index) < 300  # killed in the middle
    client = DICOMfileClient(root.as_uri())  # an unfinished index is completed on opening
    assert _uids(client.search_for_instances(), '00080018') == set(sops)
    assert client.search_for_series()[0]['00201209']['Value'] == [300]


def _count_rows(index: Path) -> int:
    if not index.exists():
        return 0
    try:
        with sqlite3.connect(f'{index.as_uri()}?mode=ro', uri=True, timeout=1) as connection:
            return connection.execute('SELECT count(*) FROM instances').fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_readers_in_other_processes_during_an_update(archive_tree: Path) -> None:
    DICOMfileClient(archive_tree.as_uri()).close()
    _many_files(archive_tree, 60)
    reader = textwrap.dedent(f'''
        import sys
        sys.path[:0] = {IMPORT_PATHS!r}
        DICOMfileClient = __import__({DICOMfileClient.__module__!r}).DICOMfileClient
        counts = set()
        for _ in range(30):
            client = DICOMfileClient({archive_tree.as_uri()!r})
            counts.add(len(client.search_for_instances()))
            client.close()
        print(sorted(counts))
    ''')
    process = subprocess.Popen([sys.executable, '-c', reader], stdout=subprocess.PIPE, text=True)
    DICOMfileClient(archive_tree.as_uri(), update_db=True)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert set(json.loads(output)) <= {12, 72}


def test_process_pool_indexing(tmp_path: Path, monkeypatch) -> None:
    import concurrent.futures
    import multiprocessing

    method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else 'spawn'
    monkeypatch.setattr(
        IMPLEMENTATION, '_pool_context', lambda: (multiprocessing.get_context(method), 10)
    )
    monkeypatch.setattr(IMPLEMENTATION, '_POOL_CHUNK_SIZE', 8)
    pools = []

    class CountedPool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, 'ProcessPoolExecutor', CountedPool)
    sops = _many_files(tmp_path, 40)
    (tmp_path / 'junk.bin').write_bytes(b'junk')
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    client_sops = _uids(client.search_for_instances(), '00080018')
    assert client_sops == set(sops)
    assert len(pools) == 1


def test_bundled_pydicom_files(tmp_path: Path, caplog) -> None:
    for path in pydicom_test_files():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    with caplog.at_level(logging.WARNING, logger='dicomweb_client'):
        client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    instances = client.search_for_instances()
    assert len(instances) == 3  # MR_small_RLE.dcm is MR_small.dcm compressed: same UIDs
    assert 'is indexed from' in caplog.text
    for item in instances:
        uids = [item[tag]['Value'][0] for tag in ('0020000D', '0020000E', '00080018')]
        ds = pydicom.dcmread(tmp_path / client._stored(*uids)[0].path)
        frames = client.retrieve_instance_frames(*uids, [1], media_types=('*/*',))
        assert frames == [frame_bytes(ds, 1)]
        image = client.retrieve_instance_rendered(*uids, media_types=('image/png',))
        assert Image.open(io.BytesIO(image)).size == (ds.Columns, ds.Rows)


# -- the same answers as a DICOMweb server ------------------------------------------------

ORTHANC_QUERIES = [
    ('studies', {}),
    ('studies', {'PatientID': 'P2'}),
    ('studies', {'PatientID': 'P*'}),
    ('studies', {'PatientName': 'Doe^Patient?'}),
    ('studies', {'StudyDate': '20240102-20240103'}),
    ('studies', {'StudyDate': '-20240101'}),
    ('studies', {'AccessionNumber': 'ACC0003'}),
    ('studies', {'ModalitiesInStudy': 'MR'}),
    ('series', {}),
    ('series', {'Modality': 'CT'}),
    ('series', {'SeriesNumber': '2'}),
    ('instances', {}),
    ('instances', {'InstanceNumber': '1'}),
    ('instances', {'SOPClassUID': '1.2.840.10008.5.1.4.1.1.4'}),
]


def test_same_answers_as_orthanc(orthanc_clean, archive_tree: Path, archive_datasets: list) -> None:
    orthanc_clean.upload(to_bytes(ds) for ds in archive_datasets)
    web = dicomweb_client.DICOMwebClient(orthanc_clean.url)
    files = DICOMfileClient(archive_tree.as_uri(), in_memory=True)
    for level, filters in ORTHANC_QUERIES:
        tag = {'studies': '0020000D', 'series': '0020000E', 'instances': '00080018'}[level]
        expected = getattr(web, f'search_for_{level}')(search_filters=filters)
        answered = getattr(files, f'search_for_{level}')(search_filters=filters)
        assert _uids(answered, tag) == _uids(expected, tag), (level, filters)
        assert len(answered) == len(expected)
    study = archive_datasets[0].StudyInstanceUID
    assert _uids(files.search_for_series(study), '0020000E') == _uids(
        web.search_for_series(study), '0020000E'
    )
    web_study = web.search_for_studies(search_filters={'StudyInstanceUID': study})[0]
    file_study = files.search_for_studies(search_filters={'StudyInstanceUID': study})[0]
    for tag in ('00080020', '00080050', '00080061', '00100010', '00100020', '00201206', '00201208'):
        assert file_study[tag] == web_study[tag], tag
    assert set(web_study) - set(file_study) == set()


# -- pickling -------------------------------------------------------------------------------


@pytest.mark.parametrize('in_memory', [False, True], ids=['index-on-disk', 'index-in-memory'])
def test_a_pickled_client_opens_the_same_archive(tmp_path: Path, in_memory: bool) -> None:
    write_files(make_study(2, 2), tmp_path / 'archive')
    client = DICOMfileClient(
        (tmp_path / 'archive').as_uri(),
        in_memory=in_memory,
        db_dir=None if in_memory else tmp_path / 'index',
    )
    expected = client.search_for_instances()
    reopened = pickle.loads(pickle.dumps(client))
    assert reopened.search_for_instances() == expected and len(expected) == 4
    assert reopened.base_url == client.base_url
    reopened.close()
    client.close()


def test_a_client_goes_to_a_spawned_worker_process(tmp_path: Path) -> None:
    write_files(make_study(1, 3), tmp_path)
    with DICOMfileClient(tmp_path.as_uri()) as client:
        expected = client.search_for_instances()
        context = multiprocessing.get_context('spawn')
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            found = pool.submit(search_instances_in_this_process, client).result(timeout=60)
    assert sorted(map(str, found)) == sorted(map(str, expected))


# -- symbolic links: indexing never leaves the archive --------------------------------------

needs_symlinks = pytest.mark.skipif(
    not hasattr(os, 'symlink') or sys.platform == 'win32',
    reason='symbolic links need a POSIX file system',
)


@pytest.fixture
def inside_and_outside(tmp_path: Path) -> tuple:
    """An archive with one study, and beside it (outside) a folder of another patient."""
    root = tmp_path / 'archive'
    inside = make_study(1, 2, patient_id='INSIDE', rows=4, columns=4)
    write_files(inside, root / 'study')
    outside = make_study(1, 2, patient_id='OUTSIDE', rows=4, columns=4, seed=9)
    write_files(outside, tmp_path / 'elsewhere' / 'study')
    return root, tmp_path / 'elsewhere', inside, outside


def _indexed(client: DICOMfileClient) -> list:
    return sorted(path for (path,) in client._index.connection.execute('SELECT path FROM files'))


def _sops(client: DICOMfileClient) -> list:
    return sorted(item['00080018']['Value'][0] for item in client.search_for_instances())


def _warnings(caplog) -> str:
    return '\n'.join(
        record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING
    )


@needs_symlinks
def test_a_link_to_a_folder_outside_is_not_indexed(inside_and_outside: tuple, caplog) -> None:
    root, elsewhere, inside, _ = inside_and_outside
    os.symlink(elsewhere, root / 'other-patient')
    os.symlink('/etc', root / 'etc')
    with caplog.at_level(logging.WARNING, logger='dicomweb_client'):
        client = DICOMfileClient(root.as_uri())
    assert _sops(client) == sorted(ds.SOPInstanceUID for ds in inside)
    assert not client.search_for_studies(search_filters={'PatientID': 'OUTSIDE'})
    assert all(path.startswith('study/') for path in _indexed(client))
    messages = _warnings(caplog)
    for name in ('other-patient', 'etc'):
        assert messages.count(str(root / name)) == 1, messages
    assert 'outside the archive' in messages


@needs_symlinks
def test_a_link_to_a_file_outside_is_not_indexed(inside_and_outside: tuple, caplog) -> None:
    root, elsewhere, inside, outside = inside_and_outside
    target = elsewhere / 'study' / f'{outside[0].SOPInstanceUID}.dcm'
    os.symlink(target, root / 'study' / 'stolen.dcm')
    os.symlink(os.path.relpath(target, root), root / 'relative.dcm')
    with caplog.at_level(logging.WARNING, logger='dicomweb_client'):
        client = DICOMfileClient(root.as_uri())
    assert _sops(client) == sorted(ds.SOPInstanceUID for ds in inside)
    messages = _warnings(caplog)
    assert messages.count(str(root / 'study' / 'stolen.dcm')) == 1
    assert messages.count(str(root / 'relative.dcm')) == 1


@needs_symlinks
def test_links_inside_the_archive_index_their_targets_once(
    inside_and_outside: tuple, caplog
) -> None:
    root, _, inside, _ = inside_and_outside
    os.symlink(root / 'study', root / 'same-study')  # absolute, to a folder
    os.symlink('study', root / 'relative-study')  # relative, to a folder
    first = f'{inside[0].SOPInstanceUID}.dcm'
    os.symlink(Path('study') / first, root / 'same-file.dcm')  # to a file
    (root / 'deep' / 'er').mkdir(parents=True)
    os.symlink('../../study', root / 'deep' / 'er' / 'up')
    with caplog.at_level(logging.WARNING, logger='dicomweb_client'):
        client = DICOMfileClient(root.as_uri())
    assert _indexed(client) == sorted(f'study/{ds.SOPInstanceUID}.dcm' for ds in inside)
    assert _sops(client) == sorted(ds.SOPInstanceUID for ds in inside)
    assert not _warnings(caplog)  # neither duplicates nor links to complain about
    assert (
        client.retrieve_instance(
            inside[0].StudyInstanceUID, inside[0].SeriesInstanceUID, inside[0].SOPInstanceUID
        ).PatientID
        == 'INSIDE'
    )


@needs_symlinks
def test_the_archive_may_itself_be_reached_through_a_link(
    inside_and_outside: tuple, tmp_path: Path
) -> None:
    root, _, inside, _ = inside_and_outside
    os.symlink(root, tmp_path / 'alias')
    os.symlink(tmp_path / 'alias' / 'study', root / 'via-alias')  # inside, by the alias
    client = DICOMfileClient((tmp_path / 'alias').as_uri(), in_memory=True)
    assert _indexed(client) == sorted(f'study/{ds.SOPInstanceUID}.dcm' for ds in inside)
    ds = inside[1]
    frames = client.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [1]
    )
    assert frames == [frame_bytes(ds, 1)]


@needs_symlinks
def test_link_loops_end(inside_and_outside: tuple) -> None:
    root, _, inside, _ = inside_and_outside
    os.symlink('..', root / 'study' / 'parent')  # a folder's own parent
    os.symlink('.', root / 'itself')
    os.symlink(root, root / 'study' / 'root')
    os.symlink('b', root / 'a')  # a -> b -> a
    os.symlink('a', root / 'b')
    os.symlink('missing', root / 'dangling.dcm')
    (root / 'x').mkdir()
    os.symlink('../y', root / 'x' / 'to-y')  # x/to-y -> y/to-x -> x
    (root / 'y').mkdir()
    os.symlink('../x', root / 'y' / 'to-x')
    result: list = []
    worker = threading.Thread(  # a daemon: a hang fails this test, not the whole run
        target=lambda: result.append(_indexed(DICOMfileClient(root.as_uri(), in_memory=True))),
        daemon=True,
    )
    worker.start()
    worker.join(60)
    assert result == [sorted(f'study/{ds.SOPInstanceUID}.dcm' for ds in inside)]


@needs_symlinks
def test_update_db_keeps_links_out(inside_and_outside: tuple, caplog) -> None:
    root, elsewhere, inside, outside = inside_and_outside
    client = DICOMfileClient(root.as_uri())
    assert len(_sops(client)) == 2
    client.close()
    os.symlink(elsewhere, root / 'added-later')
    replaced = root / 'study' / f'{inside[1].SOPInstanceUID}.dcm'
    replaced.unlink()
    os.symlink(elsewhere / 'study' / f'{outside[1].SOPInstanceUID}.dcm', replaced)
    os.symlink('study', root / 'alias')
    with caplog.at_level(logging.WARNING, logger='dicomweb_client'):
        updated = DICOMfileClient(root.as_uri(), update_db=True)
    assert _sops(updated) == [inside[0].SOPInstanceUID]  # the replaced file is forgotten
    assert _indexed(updated) == [f'study/{inside[0].SOPInstanceUID}.dcm']
    messages = _warnings(caplog)
    assert messages.count(str(root / 'added-later')) == 1
    assert messages.count(str(replaced)) == 1
    updated.close()
    again = DICOMfileClient(root.as_uri(), recreate_db=True)
    assert _indexed(again) == [f'study/{inside[0].SOPInstanceUID}.dcm']


def _retrievals(client: DICOMfileClient, ds: pydicom.Dataset) -> dict:
    uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    bulk = (
        f'{client.base_url}/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}'
        '/bulkdata/7FE00010'
    )
    return {
        'retrieve_instance': lambda: client.retrieve_instance(*uids),
        'retrieve_instance_as_stored': lambda: client.retrieve_instance(
            *uids, media_types=(('application/dicom', '*'),)
        ),
        'retrieve_series': lambda: client.retrieve_series(*uids[:2]),
        'iter_study': lambda: list(client.iter_study(uids[0])),
        'retrieve_instance_frames': lambda: client.retrieve_instance_frames(*uids, [1]),
        'iter_instance_frames': lambda: list(client.iter_instance_frames(*uids, [1])),
        'retrieve_bulkdata': lambda: client.retrieve_bulkdata(bulk),
        'iter_bulkdata': lambda: list(client.iter_bulkdata(bulk)),
        'retrieve_instance_rendered': lambda: client.retrieve_instance_rendered(*uids),
    }


RETRIEVALS = [
    'retrieve_instance',
    'retrieve_instance_as_stored',
    'retrieve_series',
    'iter_study',
    'retrieve_instance_frames',
    'iter_instance_frames',
    'retrieve_bulkdata',
    'iter_bulkdata',
    'retrieve_instance_rendered',
]


@needs_symlinks
@pytest.mark.parametrize('how', ['file', 'folder'])
@pytest.mark.parametrize('method', RETRIEVALS)
def test_an_indexed_file_later_linked_outside_is_not_served(
    inside_and_outside: tuple, method: str, how: str, caplog
) -> None:
    root, elsewhere, inside, outside = inside_and_outside
    ds = inside[0]
    client = DICOMfileClient(root.as_uri())
    _retrievals(client, ds)[method]()  # served while it is a plain file
    if how == 'file':  # the file becomes a link to another patient's same-named file
        target = elsewhere / 'study' / f'{ds.SOPInstanceUID}.dcm'
        write_files([ds], elsewhere / 'study')
        target.write_bytes(to_bytes(outside[0]))
        (root / 'study' / target.name).unlink()
        os.symlink(target, root / 'study' / target.name)
    else:  # its folder becomes a link to a folder outside holding such a file
        fake = elsewhere / 'fake'
        fake.mkdir()
        (fake / f'{ds.SOPInstanceUID}.dcm').write_bytes(to_bytes(outside[0]))
        (root / 'study').rename(root / 'moved')
        os.symlink(fake, root / 'study')
    with (
        caplog.at_level(logging.WARNING, logger='dicomweb_client'),
        pytest.raises(dicomweb_client.HTTPError) as raised,
    ):
        _retrievals(client, ds)[method]()
    _http_error(raised, FileNotFoundError, status=404)
    assert 'outside the archive' in _warnings(caplog)


@needs_symlinks
def test_deleting_an_instance_linked_outside_leaves_the_target(inside_and_outside: tuple) -> None:
    root, elsewhere, inside, outside = inside_and_outside
    client = DICOMfileClient(root.as_uri())
    fake = elsewhere / 'fake'
    fake.mkdir()
    target = fake / f'{inside[0].SOPInstanceUID}.dcm'
    target.write_bytes(to_bytes(outside[0]))
    (root / 'study').rename(root / 'moved')
    os.symlink(fake, root / 'study')
    client.delete_instance(
        inside[0].StudyInstanceUID, inside[0].SeriesInstanceUID, inside[0].SOPInstanceUID
    )
    assert target.read_bytes() == to_bytes(outside[0])  # untouched
    assert _sops(client) == [inside[1].SOPInstanceUID]  # the row is gone all the same


@needs_symlinks
def test_storing_never_writes_through_a_link_outside(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / 'archive', tmp_path / 'elsewhere'
    ds = make_instance(rows=4, columns=4)
    elsewhere.mkdir()
    root.mkdir()
    os.symlink(elsewhere, root / ds.StudyInstanceUID)
    client = DICOMfileClient(root.as_uri())
    with pytest.raises(dicomweb_client.HTTPError):
        client.store_instances([ds])
    assert not list(elsewhere.rglob('*'))


# -- thumbnails -------------------------------------------------------------------------------


def _pdf_instance(**kw) -> pydicom.Dataset:
    """An Encapsulated PDF instance: no pixel data, hence no image for a thumbnail."""
    ds = make_instance(rows=2, columns=2, **kw)
    del ds.PixelData
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.104.1'
    ds.EncapsulatedDocument = b'%PDF-1.4 ' + b'x' * 100
    ds.MIMETypeOfEncapsulatedDocument = 'application/pdf'
    return ds


@pytest.fixture
def thumbnails(tmp_path: Path) -> tuple:
    """A client and the instances of two studies.

    Study one: series 1 holds only a PDF, series 2 a large image (instance number 2) and a
    small one (instance number 1), series 3 a multi-frame image.  Study two holds only a
    PDF.  Series UIDs and file names are random, so only the listing order (series and
    instance numbers) decides which image stands for the study.
    """
    study = generate_uid()
    pdf = _pdf_instance(study_uid=study, series_number=1)
    series = generate_uid()
    large = make_instance(
        rows=300,
        columns=200,
        study_uid=study,
        series_uid=series,
        series_number=2,
        instance_number=2,
        seed=1,
    )
    small = make_instance(
        rows=40,
        columns=60,
        study_uid=study,
        series_uid=series,
        series_number=2,
        instance_number=1,
        seed=2,
    )
    multi = make_instance(
        rows=8, columns=8, frames=3, bits=8, study_uid=study, series_number=3, seed=3
    )
    lonely_pdf = _pdf_instance()
    write_files([pdf, large, small, multi, lonely_pdf], tmp_path)
    client = DICOMfileClient(tmp_path.as_uri(), in_memory=True)
    names = dict(pdf=pdf, large=large, small=small, multi=multi, lonely_pdf=lonely_pdf)
    return client, names


def _ids(ds: pydicom.Dataset) -> tuple:
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def _picture(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_thumbnail_default_size_fits_128_without_enlarging(
    thumbnails: tuple, tmp_path: Path
) -> None:
    client, ds = thumbnails
    tall = _picture(client.retrieve_instance_thumbnail(*_ids(ds['large'])))
    assert (tall.format, tall.size) == ('JPEG', (85, 128))  # 200 x 300 shrunk
    small = _picture(client.retrieve_instance_thumbnail(*_ids(ds['small'])))
    assert small.size == (60, 40)  # never enlarged
    wide = make_instance(rows=100, columns=400)
    edge = make_instance(rows=128, columns=128)
    write_files([wide, edge], tmp_path / 'more')
    more = DICOMfileClient((tmp_path / 'more').as_uri(), in_memory=True)
    assert _picture(more.retrieve_instance_thumbnail(*_ids(wide))).size == (128, 32)
    assert _picture(more.retrieve_instance_thumbnail(*_ids(edge))).size == (128, 128)


def test_thumbnail_is_the_rendered_image_at_thumbnail_size(thumbnails: tuple) -> None:
    client, ds = thumbnails
    png = ('image/png',)
    large = _ids(ds['large'])
    assert client.retrieve_instance_thumbnail(
        *large, media_types=png
    ) == client.retrieve_instance_rendered(*large, media_types=png, params={'viewport': '128,128'})
    small = _ids(ds['small'])
    assert client.retrieve_instance_thumbnail(
        *small, media_types=png
    ) == client.retrieve_instance_rendered(*small, media_types=png)
    windowed = client.retrieve_instance_thumbnail(
        *small, media_types=png, params={'window': '100,50'}
    )
    assert windowed != client.retrieve_instance_thumbnail(*small, media_types=png)


def test_thumbnail_viewport_replaces_the_default_size(thumbnails: tuple) -> None:
    client, ds = thumbnails
    large, small = _ids(ds['large']), _ids(ds['small'])
    assert _picture(
        client.retrieve_instance_thumbnail(*large, params={'viewport': '64,64'})
    ).size == (43, 64)
    assert _picture(
        client.retrieve_instance_thumbnail(*large, params={'viewport': '400,600', 'quality': 50})
    ).size == (400, 600)
    assert _picture(
        client.retrieve_instance_thumbnail(*small, params={'viewport': (120, 120)})
    ).size == (120, 80)  # as asked: enlarged
    assert _picture(client.retrieve_instance_thumbnail(*small, params={'viewport': None})).size == (
        60,
        40,
    )  # None: the default
    assert _picture(
        client.retrieve_study_thumbnail(large[0], params={'viewport': '30,30'})
    ).size == (30, 20)
    assert _picture(
        client.retrieve_series_thumbnail(*large[:2], params={'viewport': '30,30'})
    ).size == (30, 20)
    multi = _ids(ds['multi'])
    assert _picture(
        client.retrieve_instance_frames_thumbnail(*multi, [2], params={'viewport': '4,4'})
    ).size == (4, 4)


@pytest.mark.parametrize(
    'media_types, image_format',
    [
        (None, 'JPEG'),
        (('image/jpeg',), 'JPEG'),
        (('image/png',), 'PNG'),
        (('image/gif',), 'GIF'),
        (('image/*',), 'JPEG'),
        (('*/*',), 'JPEG'),
        (('image/png', 'image/jpeg'), 'PNG'),
        ('image/png', 'PNG'),
    ],
)
def test_thumbnail_media_types(thumbnails: tuple, media_types, image_format: str) -> None:
    client, ds = thumbnails
    uids = _ids(ds['multi'])
    for data in (
        client.retrieve_study_thumbnail(uids[0], media_types=media_types),
        client.retrieve_series_thumbnail(*uids[:2], media_types=media_types),
        client.retrieve_instance_thumbnail(*uids, media_types=media_types),
        client.retrieve_instance_frames_thumbnail(*uids, [1, 3], media_types=media_types),
    ):
        picture = _picture(data)
        assert picture.format == image_format
        assert getattr(picture, 'n_frames', 1) == 1  # one still image


def test_thumbnail_jpeg_2000_when_pillow_writes_it(thumbnails: tuple) -> None:
    if 'image/jp2' not in _writable():
        pytest.skip('this Pillow does not write JPEG 2000')
    client, ds = thumbnails
    data = client.retrieve_instance_thumbnail(*_ids(ds['small']), media_types=('image/jp2',))
    assert _picture(data).format == 'JPEG2000'


def test_study_and_series_thumbnails_show_the_first_listed_image(thumbnails: tuple) -> None:
    client, ds = thumbnails
    png = ('image/png',)
    study = ds['small'].StudyInstanceUID
    listed = []
    for series in client.search_for_series(study):
        series_uid = series['0020000E']['Value'][0]
        listed += [
            (study, series_uid, item['00080018']['Value'][0])
            for item in client.search_for_instances(study, series_uid)
        ]
    images = [uids for uids in listed if uids[2] != ds['pdf'].SOPInstanceUID]
    assert images[0] == _ids(ds['small'])  # series 2 (1 is a PDF), instance 1
    expected = client.retrieve_instance_thumbnail(*images[0], media_types=png)
    assert client.retrieve_study_thumbnail(study, media_types=png) == expected
    assert client.retrieve_series_thumbnail(*images[0][:2], media_types=png) == expected
    multi = _ids(ds['multi'])
    assert client.retrieve_series_thumbnail(
        *multi[:2], media_types=png
    ) == client.retrieve_instance_frames_thumbnail(*multi, [1], media_types=png)


def test_frame_thumbnails_show_the_first_frame_asked_for(thumbnails: tuple) -> None:
    client, ds = thumbnails
    png = ('image/png',)
    uids = _ids(ds['multi'])
    for frames, first in (([2, 3], 2), ([3, 1], 3), ([1], 1), (('2',), 2)):
        data = client.retrieve_instance_frames_thumbnail(*uids, frames, media_types=png)
        assert data == client.retrieve_instance_frames_rendered(*uids, [first], media_types=png)
        assert np.array_equal(
            np.asarray(_picture(data)), _stretched(ds['multi'].pixel_array[first - 1])
        )
    assert client.retrieve_instance_thumbnail(
        *uids, media_types=png
    ) == client.retrieve_instance_frames_thumbnail(*uids, [1], media_types=png)
    gif = client.retrieve_instance_frames_thumbnail(*uids, [1, 2, 3], media_types=('image/gif',))
    assert getattr(_picture(gif), 'n_frames', 1) == 1


def _thumbnail_calls(client: DICOMfileClient, uids: tuple, **kw) -> list:
    return [
        lambda: client.retrieve_study_thumbnail(uids[0], **kw),
        lambda: client.retrieve_series_thumbnail(*uids[:2], **kw),
        lambda: client.retrieve_instance_thumbnail(*uids, **kw),
        lambda: client.retrieve_instance_frames_thumbnail(*uids, [1], **kw),
    ]


def test_thumbnail_errors_for_bad_uids_come_first(thumbnails: tuple) -> None:
    client, ds = thumbnails
    study, series, sop = _ids(ds['small'])
    unknown = generate_uid()
    # an unusable UID is reported before the (also wrong) media type and parameters, and
    # before the unknown study would be looked up; calls from `first` on take that UID
    for uids, name, first in (
        (('../x', series, sop), 'study_instance_uid', 0),
        ((unknown, 'a/b', sop), 'series_instance_uid', 1),
        ((unknown, series, 'a b'), 'sop_instance_uid', 2),
    ):
        calls = _thumbnail_calls(client, uids, media_types=('text/html',), params=[])
        for call in calls[first:]:
            with pytest.raises(OSError, match=name) as raised:
                call()
            _http_error(raised, ValueError)
    with pytest.raises(OSError, match='study_instance_uid') as raised:
        client.retrieve_study_thumbnail(None)
    _http_error(raised, TypeError)


def test_thumbnail_errors_for_what_is_not_there(thumbnails: tuple) -> None:
    client, ds = thumbnails
    study, series, sop = _ids(ds['small'])
    unknown = generate_uid()
    # calls from `first` on name the unknown UID
    for uids, first in (
        ((unknown, series, sop), 0),
        ((study, unknown, sop), 1),
        ((study, series, unknown), 2),
    ):
        for call in _thumbnail_calls(client, uids)[first:]:
            with pytest.raises(FileNotFoundError) as raised:
                call()
            _http_error(raised, dicomweb_client.HTTPError, status=404)
    pdf, lonely = _ids(ds['pdf']), _ids(ds['lonely_pdf'])
    with pytest.raises(OSError, match='holds no images') as raised:
        client.retrieve_study_thumbnail(lonely[0])
    _http_error(raised, ValueError)
    with pytest.raises(OSError, match='holds no images') as raised:
        client.retrieve_series_thumbnail(*pdf[:2])
    _http_error(raised, ValueError)
    with pytest.raises(OSError, match='no pixel data') as raised:
        client.retrieve_instance_thumbnail(*pdf)
    _http_error(raised, ValueError)
    with pytest.raises(OSError, match='no pixel data') as raised:
        client.retrieve_instance_frames_thumbnail(*pdf, [1])
    _http_error(raised, ValueError)


def test_thumbnail_errors_for_frames_and_parameters(thumbnails: tuple) -> None:
    client, ds = thumbnails
    uids = _ids(ds['multi'])
    for frames, error in (
        ([4], ValueError),
        ([1, 4], ValueError),
        ([0], ValueError),
        ([], ValueError),
        ('1', TypeError),
        ([1.5], TypeError),
    ):
        with pytest.raises(error, match='frame_numbers') as raised:
            client.retrieve_instance_frames_thumbnail(*uids, frames)
        _http_error(raised, error)
    for params, error, match in (
        ({'quality': 101}, ValueError, 'quality'),
        ({'viewport': 'big'}, ValueError, 'viewport'),
        ({'viewport': '0,10'}, ValueError, 'viewport'),
        ({'window': 'x'}, ValueError, 'window'),
        ('viewport=64,64', TypeError, 'params'),
    ):
        for call in _thumbnail_calls(client, uids, params=params):
            with pytest.raises(error, match=match) as raised:
                call()
            _http_error(raised, error)


def test_thumbnail_errors_for_media_types(thumbnails: tuple, monkeypatch) -> None:
    client, ds = thumbnails
    uids = _ids(ds['small'])
    for media_types in (('text/html',), ('application/dicom',), ('video/mp4',)):
        for call in _thumbnail_calls(client, uids, media_types=media_types):
            with pytest.raises(ValueError, match='media type') as raised:
                call()
            _http_error(raised, ValueError)
    for call in _thumbnail_calls(
        client, uids, media_types=(('image/jpeg', '1.2.840.10008.1.2.4.50'),)
    ):
        with pytest.raises(TypeError, match='media type alone') as raised:
            call()
        _http_error(raised, TypeError)
    # a media type thumbnails may have but this Pillow cannot write: 406
    monkeypatch.setattr(IMPLEMENTATION, '_pillow_can_write', lambda name: name != 'image/jp2')
    for call in _thumbnail_calls(client, uids, media_types=('image/jp2',)):
        with pytest.raises(ValueError, match='cannot render') as raised:
            call()
        _http_error(raised, dicomweb_client.HTTPError, status=406)
    data = client.retrieve_instance_thumbnail(*uids, media_types=('image/jp2', 'image/png'))
    assert _picture(data).format == 'PNG'


THUMBNAIL_METHODS = [
    'retrieve_study_thumbnail',
    'retrieve_series_thumbnail',
    'retrieve_instance_thumbnail',
    'retrieve_instance_frames_thumbnail',
]


def _parameters(method) -> list:
    return [(p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()]


@pytest.mark.parametrize('name', THUMBNAIL_METHODS)
def test_thumbnail_signatures_are_the_web_clients(name: str) -> None:
    assert _parameters(getattr(DICOMfileClient, name)) == _parameters(
        getattr(dicomweb_client.DICOMwebClient, name)
    )
    assert getattr(DICOMfileClient, name).__doc__


def test_file_client_has_every_method_of_the_protocol_and_of_the_web_clients_wado(
    tmp_path: Path,
) -> None:
    protocol = dicomweb_client.DICOMClient
    declared = [
        name
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith('_')
    ]
    for name in declared:
        wanted = [p[0] for p in _parameters(getattr(protocol, name))]
        offered = [p[0] for p in _parameters(getattr(DICOMfileClient, name))]
        assert offered[: len(wanted)] == wanted, name
    # every way the web client retrieves images is there too, with the same parameters
    imaging = [
        name
        for name in dir(dicomweb_client.DICOMwebClient)
        if name.startswith('retrieve_') and name.endswith(('_thumbnail', '_rendered'))
    ]
    assert set(THUMBNAIL_METHODS) <= set(imaging)
    for name in imaging:
        assert [p[0] for p in _parameters(getattr(DICOMfileClient, name))] == [
            p[0] for p in _parameters(getattr(dicomweb_client.DICOMwebClient, name))
        ], name
    with DICOMfileClient(tmp_path.as_uri()) as client:
        assert isinstance(client, protocol)
