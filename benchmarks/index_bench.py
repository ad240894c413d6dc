"""Benchmark of DICOMfileClient: indexing, re-opening and searching a folder of DICOM files.

Generates an archive (by default 250 studies x 4 series x 5 instances of 64x64 pixels, i.e.
5,000 files) in a temporary folder, then prints how long the client takes to index it,
to re-open the index, and to answer a few searches and retrievals.

usage: python benchmarks/index_bench.py [--studies N] [--series N] [--instances N]
                                        [--size PIXELS] [--archive DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, List

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / 'dev')]

try:
    from dicomweb_client import DICOMfileClient
except ImportError:  # not pasted into the module yet
    from file_client import DICOMfileClient

MODALITIES = ('CT', 'MR', 'US', 'PT')
INDEX_NAME = '.dicomweb_client.sqlite'


def template(size: int) -> Dataset:
    """A CT instance with ``size`` x ``size`` 16-bit pixels, UIDs set per file later."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.2'
    ds.SpecificCharacterSet = 'ISO_IR 100'
    ds.StudyTime = '120000'
    ds.ReferringPhysicianName = 'Ref^Doctor'
    ds.PatientBirthDate = '19700101'
    ds.PatientSex = 'F'
    ds.StudyDescription = 'Benchmark study'
    ds.InstitutionName = 'Benchmark Hospital'
    ds.BodyPartExamined = 'CHEST'
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = (
        np.random.default_rng(0).integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
    )
    return ds


def generate(root: Path, studies: int, series: int, instances: int, size: int) -> int:
    """Write the archive as ``<patient>/<series>/<instance>.dcm``; return the file count."""
    ds = template(size)
    start = datetime.date(2020, 1, 1)
    count = 0
    for study in range(studies):
        ds.StudyInstanceUID = generate_uid()
        ds.PatientID = f'PAT{study:05d}'
        ds.PatientName = f'Patient^Number{study}'
        ds.AccessionNumber = f'ACC{study:06d}'
        ds.StudyID = str(study)
        ds.StudyDate = (start + datetime.timedelta(days=study)).strftime('%Y%m%d')
        for number in range(series):
            ds.SeriesInstanceUID = generate_uid()
            ds.SeriesNumber = number + 1
            ds.Modality = MODALITIES[number % len(MODALITIES)]
            ds.SeriesDescription = f'{ds.Modality} series {number + 1}'
            folder = root / ds.PatientID / f'series{number + 1}'
            folder.mkdir(parents=True, exist_ok=True)
            for instance in range(instances):
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                ds.InstanceNumber = instance + 1
                pydicom.dcmwrite(folder / f'{instance + 1:04d}.dcm', ds, enforce_file_format=True)
                count += 1
    return count


def remove_index(root: Path) -> None:
    for path in root.glob(INDEX_NAME + '*'):
        path.unlink()


def timed(function: Callable[[], Any], repeat: int) -> tuple:
    """Median and best time of ``repeat`` calls (after one warm-up call), and the result."""
    result = function()
    times: List[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--studies', type=int, default=250)
    parser.add_argument('--series', type=int, default=4)
    parser.add_argument('--instances', type=int, default=5)
    parser.add_argument('--size', type=int, default=64, help='rows and columns of images')
    parser.add_argument('--archive', type=Path, help='reuse (or create) this archive folder')
    parser.add_argument('--repeat', type=int, default=20, help='runs per query')
    args = parser.parse_args()

    temporary = None
    if args.archive is None:
        temporary = tempfile.mkdtemp(prefix='dicomweb_client_bench_')
        root = Path(temporary)
    else:
        root = args.archive.resolve()
        root.mkdir(parents=True, exist_ok=True)
    try:
        run(root, args)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def run(root: Path, args: argparse.Namespace) -> None:
    files = sum(1 for _ in root.rglob('*.dcm'))
    if files == 0:
        started = time.perf_counter()
        files = generate(root, args.studies, args.series, args.instances, args.size)
        print(f'generated {files} files in {time.perf_counter() - started:.1f} s ({root})')
    print(f'python {sys.version.split()[0]}, pydicom {pydicom.__version__}, {os.cpu_count()} CPUs')
    url = root.as_uri()

    remove_index(root)
    started = time.perf_counter()
    client = DICOMfileClient(url)
    elapsed = time.perf_counter() - started
    client.close()
    print(f'index from scratch:           {elapsed:7.3f} s  {files / elapsed:8.0f} files/s')

    started = time.perf_counter()
    DICOMfileClient(url, in_memory=True).close()
    elapsed = time.perf_counter() - started
    print(f'index in memory:              {elapsed:7.3f} s  {files / elapsed:8.0f} files/s')

    started = time.perf_counter()
    DICOMfileClient(url, recreate_db=True).close()
    elapsed = time.perf_counter() - started
    print(f'recreate_db=True:             {elapsed:7.3f} s  {files / elapsed:8.0f} files/s')

    for label, options in (
        ('re-open unchanged index:', {}),
        ('re-open with update_db=True:', {'update_db': True}),
    ):
        median, best, _ = timed(lambda options=options: DICOMfileClient(url, **options).close(), 5)
        print(f'{label:30s}{median:7.3f} s  (best {best:.3f} s)')

    client = DICOMfileClient(url)
    some = client.search_for_instances(limit=1)[0]
    study, series, sop = (some[tag]['Value'][0] for tag in ('0020000D', '0020000E', '00080018'))
    queries = [
        ('all studies', lambda: client.search_for_studies()),
        (
            'studies, PatientID',
            lambda: client.search_for_studies(search_filters={'PatientID': 'PAT00042'}),
        ),
        (
            'studies, PatientName wildcard',
            lambda: client.search_for_studies(search_filters={'PatientName': 'patient^number1*'}),
        ),
        (
            'studies, StudyDate range',
            lambda: client.search_for_studies(search_filters={'StudyDate': '20200201-20200331'}),
        ),
        (
            'studies, ModalitiesInStudy',
            lambda: client.search_for_studies(search_filters={'ModalitiesInStudy': 'MR'}),
        ),
        (
            'studies, InstitutionName (JSON)',
            lambda: client.search_for_studies(search_filters={'InstitutionName': 'Benchmark*'}),
        ),
        ('studies, limit 10 offset 100', lambda: client.search_for_studies(limit=10, offset=100)),
        ('all series', lambda: client.search_for_series()),
        ('series, Modality', lambda: client.search_for_series(search_filters={'Modality': 'CT'})),
        ('series of a study', lambda: client.search_for_series(study)),
        ('all instances', lambda: client.search_for_instances()),
        ('instances, limit 100', lambda: client.search_for_instances(limit=100)),
        ('instances of a series', lambda: client.search_for_instances(study, series)),
        (
            'instances, SOPInstanceUID',
            lambda: client.search_for_instances(search_filters={'SOPInstanceUID': sop}),
        ),
        ('study metadata', lambda: client.retrieve_study_metadata(study)),
        ('one frame', lambda: client.retrieve_instance_frames(study, series, sop, [1])),
        ('one instance', lambda: client.retrieve_instance(study, series, sop)),
        ('rendered JPEG', lambda: client.retrieve_instance_rendered(study, series, sop)),
    ]
    print(f'\n{"query":34s}{"results":>8s}{"median ms":>11s}{"best ms":>9s}')
    for label, query in queries:
        median, best, result = timed(query, args.repeat)
        count = len(result) if isinstance(result, list) else 1
        print(f'{label:34s}{count:8d}{median * 1000:11.2f}{best * 1000:9.2f}')
    client.close()


if __name__ == '__main__':
    main()
