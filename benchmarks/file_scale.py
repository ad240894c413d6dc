"""Scale benchmark of DICOMfileClient: index, re-open and search archives of many files.

::

    python benchmarks/file_scale.py                           # 5,000 and 50,000 instances
    python benchmarks/file_scale.py --sizes 500,2000          # quick check
    python benchmarks/file_scale.py --million                 # also 1,000,000 (ours only)
    python benchmarks/file_scale.py --reference-python /path/to/venv/bin/python
    python benchmarks/file_scale.py --workdir /data/bench --keep --json results.json
    python benchmarks/file_scale.py --sizes 20000 --generate-only   # time the generation

For each size an archive of small Part 10 files (8 x 8 16-bit CT/MR/CR/NM images of
1,520 bytes; 20 instances per series, 4 series per study, 2 studies per patient) is
written into ``--workdir`` (default ``$TMPDIR/dicomweb-client-file-scale``).  One template
file is written with pydicom; every other file is a copy of its bytes with fixed-length
UIDs, IDs, names, dates and numbers patched in.  That part runs at about 100,000 files/s,
so creating the files sets the pace: a million take minutes (1,000-5,000 files/s on a
shared 2-core VM), not hours.  A sample of the files is read back with
``pydicom.dcmread`` and checked.  An archive is reused when it is already there (one
folder per size and layout) and removed at the end unless ``--keep``.  A million files
need about 4 GB of disk (4 kB blocks).

Each implementation runs every measurement in a fresh child process of its own python:
this project (``dicomweb_client.py`` from the project root) always, the established
``dicomweb-client`` package up to ``--reference-max`` instances (default 50,000) when a
reference interpreter is found: ``--reference-python``, else the virtualenv of
``benchmarks/run.py`` (``benchmarks/.venv-reference``, made by
``--create-reference-venv``).  The measurements: indexing from scratch, re-opening the
unchanged index with ``update_db=False`` (median of ``--reopens`` processes) and with
``update_db=True``, five searches (median of ``--repeat`` calls after a first one, fewer
once they took ``--query-budget`` seconds), the peak RSS of each process (``ru_maxrss``
of the process itself and, for indexing, of its largest worker process), the index size
per instance (``-wal`` included), and the
``-wal``/``-shm``/``.lock`` files left beside the archive after each process exited.
Timings cover the constructor and ``close()`` only (the established client has no
``close()``: the last reference is dropped and ``gc.collect()`` runs instead), not the
interpreter start.  The page cache is warmed (every file read once) before indexing.

The result is a Markdown table on standard output (progress goes to standard error); the
ratio column is established / ours, so above 1 means ours is faster or smaller.  The exit
status is non-zero when a child process failed or our client gave a wrong answer.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
IMPLS = ('ours', 'established')
INDEX_NAMES = {'ours': '.dicomweb_client.sqlite', 'established': '.dicom-file-client.db'}
RESULT_MARKER = 'FILE_SCALE_RESULT '
GENERATOR_VERSION = 1  # bump when the generated files change, so cached archives are redone

UID_ROOT = '1.2.826.0.1.3680043.8.498.'  # pydicom's root
MODALITIES = ('CT', 'MR', 'CR', 'NM')
SOP_CLASSES = {
    'CT': '1.2.840.10008.5.1.4.1.1.2',
    'MR': '1.2.840.10008.5.1.4.1.1.4',
    'CR': '1.2.840.10008.5.1.4.1.1.1',
    'NM': '1.2.840.10008.5.1.4.1.1.20',
}
STUDY_DESCRIPTIONS = {
    'CT': 'CT CHEST WITH CONTRAST',
    'MR': 'MR BRAIN WITHOUT CONTRAST',
    'CR': 'CR CHEST 2 VIEWS',
    'NM': 'NM BONE SCAN WHOLE BODY',
}
BODY_PARTS = {'CT': 'CHEST', 'MR': 'HEAD', 'CR': 'CHEST', 'NM': 'WHOLEBODY'}
SERIES_KINDS = {
    'CT': ('AXIAL', 'CORONAL', 'SAGITTAL', 'SCOUT'),
    'MR': ('T1 AX', 'T2 AX', 'FLAIR', 'DWI'),
    'CR': ('PA', 'LAT', 'AP', 'OBLIQUE'),
    'NM': ('ANTERIOR', 'POSTERIOR', 'SPECT', 'WHOLE BODY'),
}
LAST_NAMES = (
    'SMITH',
    'MUELLER',
    'GARCIA',
    'ROSSI',
    'NGUYEN',
    'KOWALSKI',
    'SATO',
    'DUBOIS',
    'JOHANSSON',
    'OKAFOR',
    'SILVA',
)
FIRST_NAMES = ('ANNA', 'BEN', 'CHLOE', 'DAVID', 'EMMA', 'FELIX', 'GRACE', 'HUGO', 'IRIS')

# the searches: name -> row label; their arguments come from query_specs()
QUERIES = {
    'all_studies': 'search: all studies',
    'studies_by_patient_id': 'search: studies, PatientID',
    'series_by_description': "search: series, SeriesDescription '*series 2*'",
    'series_by_modality': "search: series, Modality 'M*'",
    'instances_of_series': 'search: instances of one series',
}


# -- the archive layout --------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How the instances of a generated archive are grouped.

    Parameters
    ----------
    size: int
        Number of instances (files).
    per_series: int
        Instances per series (the last series may have fewer).
    per_study: int
        Series per study.
    per_patient: int
        Studies per patient.
    """

    size: int
    per_series: int = 20
    per_study: int = 4
    per_patient: int = 2

    @property
    def n_series(self) -> int:
        """int: Number of series."""
        return math.ceil(self.size / self.per_series)

    @property
    def n_studies(self) -> int:
        """int: Number of studies."""
        return math.ceil(self.n_series / self.per_study)

    @property
    def name(self) -> str:
        """str: Folder name of the archive (and stem of its marker file)."""
        return f'archive-{self.size}-{self.per_series}x{self.per_study}x{self.per_patient}'

    def series_sizes(self, study: int) -> List[int]:
        """Number of instances of each series of a study.

        Parameters
        ----------
        study: int
            Study number (0-based).

        Returns
        -------
        List[int]
            Instances per series, in series order.
        """
        first = study * self.per_study * self.per_series
        sizes = []
        for series in range(self.per_study):
            start = first + series * self.per_series
            count = min(self.per_series, self.size - start)
            if count <= 0:
                break
            sizes.append(count)
        return sizes


def study_modality(study: int) -> str:
    """The modality of all series of a study (scattered, not cyclic)."""
    return MODALITIES[(study * 2654435761 >> 11) % len(MODALITIES)]


def study_uid(study: int) -> str:
    """StudyInstanceUID of a study (fixed length, no leading zeros)."""
    return f'{UID_ROOT}1.{10_000_000 + study}'


def series_uid(study: int, series: int) -> str:
    """SeriesInstanceUID of a series (fixed length)."""
    return f'{UID_ROOT}2.{10_000_000 + study}.{10 + series}'


def sop_uid(study: int, series: int, instance: int) -> str:
    """SOPInstanceUID of an instance (fixed length)."""
    return f'{UID_ROOT}3.{10_000_000 + study}.{10 + series}.{10_000 + instance}'


def patient_id(layout: Layout, study: int) -> str:
    """PatientID of the patient a study belongs to."""
    return f'PAT{study // layout.per_patient:07d}'


def series_description(study: int, series: int) -> str:
    """SeriesDescription (unpadded) of a series, e.g. ``'T2 AX series 2'``."""
    modality = study_modality(study)
    kinds = SERIES_KINDS[modality]
    return f'{kinds[series % len(kinds)]} series {series + 1}'


def _width(values: Any) -> int:
    return max(len(value) for value in values)


def _date(start: Tuple[int, int, int], days: int) -> str:
    import datetime

    return (datetime.date(*start) + datetime.timedelta(days=days)).strftime('%Y%m%d')


def study_values(layout: Layout, study: int) -> Dict[str, str]:
    """The attributes that differ between studies (and patients), as fixed-width strings.

    Parameters
    ----------
    layout: Layout
        The archive layout.
    study: int
        Study number (0-based).

    Returns
    -------
    Dict[str, str]
        Keyword -> value, every value of one keyword the same length for all studies.
    """
    patient = study // layout.per_patient
    modality = study_modality(study)
    date = _date((2012, 1, 1), (study * 7919) % 4700)
    name = f'{LAST_NAMES[patient % len(LAST_NAMES)]}^{FIRST_NAMES[patient % len(FIRST_NAMES)]}'
    name_width = _width(f'{last}^{first}' for last in LAST_NAMES for first in FIRST_NAMES)
    return {
        'StudyInstanceUID': study_uid(study),
        'PatientID': patient_id(layout, study),
        'PatientName': name.ljust(name_width),
        'PatientBirthDate': _date((1930, 1, 1), (patient * 7331) % 25000),
        'PatientSex': 'FM'[patient % 2],
        'AccessionNumber': f'ACC{study:07d}',
        'StudyID': f'S{study:07d}',
        'StudyDate': date,
        'SeriesDate': date,
        'ContentDate': date,
        'StudyTime': f'{7 + study % 11:02d}{study * 13 % 60:02d}{study * 7 % 60:02d}',
        'StudyDescription': STUDY_DESCRIPTIONS[modality].ljust(_width(STUDY_DESCRIPTIONS.values())),
        'Modality': modality,
        'BodyPartExamined': BODY_PARTS[modality].ljust(_width(BODY_PARTS.values())),
        'SOPClassUID': SOP_CLASSES[modality],
        'MediaStorageSOPClassUID': SOP_CLASSES[modality],
    }


def series_values(layout: Layout, study: int, series: int) -> Dict[str, str]:
    """The attributes that differ between the series of a study (fixed-width strings)."""
    widest = max(
        (f'{kind} series {layout.per_study}' for kinds in SERIES_KINDS.values() for kind in kinds),
        key=len,
    )
    return {
        'SeriesInstanceUID': series_uid(study, series),
        'FrameOfReferenceUID': f'{UID_ROOT}4.{10_000_000 + study}.{10 + series}',
        'SeriesNumber': str(series + 1).ljust(len(str(layout.per_study))),
        'SeriesDescription': series_description(study, series).ljust(len(widest)),
    }


def instance_values(layout: Layout, study: int, series: int, instance: int) -> Dict[str, str]:
    """The attributes that differ between the instances of a series (fixed-width strings)."""
    position = f'{-100 + 2.5 * instance:+09.2f}'
    uid = sop_uid(study, series, instance)
    return {
        'SOPInstanceUID': uid,
        'MediaStorageSOPInstanceUID': uid,
        'InstanceNumber': str(instance + 1).ljust(len(str(layout.per_series))),
        'ImagePositionPatient': f'-125.00\\-125.00\\{position}',
        'SliceLocation': position,
    }


# -- the template and the patching ----------------------------------------------------------


def build_template(layout: Layout) -> Tuple[bytes, Dict[str, Tuple[int, int, bytes]]]:
    """Write the first instance with pydicom and find where its variable values are.

    Parameters
    ----------
    layout: Layout
        The archive layout (decides the widths of numbers).

    Returns
    -------
    Tuple[bytes, Dict[str, Tuple[int, int, bytes]]]
        The Part 10 file, and keyword -> (value offset, value length, padding byte) of
        every attribute that is patched per file.
    """
    import io

    import numpy as np
    import pydicom
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    values = {
        **study_values(layout, 0),
        **series_values(layout, 0, 0),
        **instance_values(layout, 0, 0, 0),
    }
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    constant = {
        'SpecificCharacterSet': 'ISO_IR 100',
        'ImageType': ['ORIGINAL', 'PRIMARY', 'AXIAL'],
        'InstanceCreationDate': '20240101',
        'InstanceCreationTime': '120000',
        'ContentTime': '120000',
        'Manufacturer': 'BENCHMARK MEDICAL',
        'InstitutionName': 'BENCHMARK HOSPITAL',
        'ReferringPhysicianName': 'WHO^REFERRED',
        'StationName': 'SCANNER01',
        'ManufacturerModelName': 'SCALE 1000',
        'OperatorsName': 'TECH^ONE',
        'DeviceSerialNumber': '0001',
        'SoftwareVersions': '1.0',
        'ProtocolName': 'BENCHMARK PROTOCOL',
        'SliceThickness': '2.5',
        'KVP': '120',
        'PatientPosition': 'HFS',
        'StudyInstanceUID': values['StudyInstanceUID'],
        'SeriesNumber': '1',
        'AcquisitionNumber': '1',
        'ImageOrientationPatient': ['1', '0', '0', '0', '1', '0'],
        'PositionReferenceIndicator': '',
        'SamplesPerPixel': 1,
        'PhotometricInterpretation': 'MONOCHROME2',
        'Rows': 8,
        'Columns': 8,
        'PixelSpacing': ['0.5', '0.5'],
        'BitsAllocated': 16,
        'BitsStored': 12,
        'HighBit': 11,
        'PixelRepresentation': 0,
        'WindowCenter': '2048',
        'WindowWidth': '4096',
        'RescaleIntercept': '-1024',
        'RescaleSlope': '1',
    }
    for keyword, value in {**constant, **values}.items():
        target = ds.file_meta if keyword.startswith('MediaStorage') else ds
        setattr(target, keyword, value)
    pixels = np.random.default_rng(0).integers(0, 4096, (8, 8), dtype=np.uint16)
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    data = buffer.getvalue()

    slots = {}
    for keyword, value in values.items():
        vr = dictionary_VR(keyword)
        padding = b'\0' if vr == 'UI' else b' '
        raw = value.encode('ascii')
        raw += padding * (len(raw) % 2)
        tag = tag_for_keyword(keyword)
        header = (tag >> 16).to_bytes(2, 'little') + (tag & 0xFFFF).to_bytes(2, 'little')
        header += vr.encode('ascii') + len(raw).to_bytes(2, 'little')
        if data.count(header + raw) != 1:
            raise RuntimeError(f'cannot find {keyword} = {value!r} in the template')
        slots[keyword] = (data.index(header + raw) + len(header), len(raw), padding)
    return data, slots


def patch(
    buffer: bytearray, slots: Dict[str, Tuple[int, int, bytes]], values: Dict[str, str]
) -> None:
    """Write values into a copy of the template, in place.

    Parameters
    ----------
    buffer: bytearray
        A copy of the template bytes.
    slots: Dict[str, Tuple[int, int, bytes]]
        Where each value goes (see :func:`build_template`).
    values: Dict[str, str]
        Keyword -> value; each must pad to exactly the length of its slot.
    """
    for keyword, value in values.items():
        offset, length, padding = slots[keyword]
        raw = value.encode('ascii')
        if len(raw) != length:
            raw += padding
            if len(raw) != length:
                raise ValueError(f'{keyword} {value!r} does not fit {length} bytes')
        buffer[offset : offset + length] = raw


def instance_path(root: str, layout: Layout, study: int, series: int, instance: int) -> str:
    """Where a generated instance is written: patient/study/series/instance.dcm."""
    values = study_values(layout, study)
    return os.path.join(
        root,
        values['PatientID'],
        f'{values["StudyDate"]}_{values["AccessionNumber"]}',
        f'{series + 1:02d}_{values["Modality"]}',
        f'{instance + 1:05d}.dcm',
    )


def generate(root: Path, layout: Layout, progress: Callable[[int], None]) -> int:
    """Write all files of an archive by patching the template.

    Parameters
    ----------
    root: pathlib.Path
        The (empty) archive folder.
    layout: Layout
        What to write.
    progress: Callable[[int], None]
        Called with the number of files written after each study.

    Returns
    -------
    int
        Bytes written.
    """
    template, slots = build_template(layout)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    written = 0
    for study in range(layout.n_studies):
        study_buffer = bytearray(template)
        patch(study_buffer, slots, study_values(layout, study))
        for series, count in enumerate(layout.series_sizes(study)):
            series_buffer = bytearray(study_buffer)
            patch(series_buffer, slots, series_values(layout, study, series))
            folder = os.path.dirname(instance_path(str(root), layout, study, series, 0))
            os.makedirs(folder, exist_ok=True)
            for instance in range(count):
                buffer = bytearray(series_buffer)
                patch(buffer, slots, instance_values(layout, study, series, instance))
                descriptor = os.open(os.path.join(folder, f'{instance + 1:05d}.dcm'), flags, 0o644)
                try:
                    os.write(descriptor, buffer)
                finally:
                    os.close(descriptor)
                written += len(buffer)
        progress(min((study + 1) * layout.per_study * layout.per_series, layout.size))
    return written


def sample_positions(layout: Layout, count: int = 25) -> List[Tuple[int, int, int]]:
    """Some (study, series, instance) positions spread over the archive, first and last."""
    step = max(layout.size // count, 1)
    numbers = sorted(set(range(0, layout.size, step)) | {layout.size - 1})
    per_study = layout.per_study * layout.per_series
    return [
        (n // per_study, n % per_study // layout.per_series, n % layout.per_series) for n in numbers
    ]


def verify(root: Path, layout: Layout) -> int:
    """Read a sample of the files with pydicom and check the patched values.

    Parameters
    ----------
    root: pathlib.Path
        The archive folder.
    layout: Layout
        Its layout.

    Returns
    -------
    int
        Number of files checked.

    Raises
    ------
    RuntimeError
        If a file does not read back as expected.
    """
    import warnings

    import pydicom

    positions = sample_positions(layout)
    for study, series, instance in positions:
        path = instance_path(str(root), layout, study, series, instance)
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # invalid values would warn
            ds = pydicom.dcmread(path)
            expected = {
                **study_values(layout, study),
                **series_values(layout, study, series),
                **instance_values(layout, study, series, instance),
            }
            for keyword, value in expected.items():
                element = (ds.file_meta if keyword.startswith('MediaStorage') else ds)[keyword]
                got = element.value
                got = '\\'.join(str(v) for v in got) if element.VM > 1 else str(got)
                if got.strip() != value.strip():
                    raise RuntimeError(f'{path}: {keyword} is {got!r}, expected {value!r}')
            if ds.pixel_array.shape != (8, 8):
                raise RuntimeError(f'{path}: unexpected pixel data')
    return len(positions)


def prepare_archive(workdir: Path, layout: Layout) -> Dict[str, Any]:
    """Reuse the archive of this layout in ``workdir``, or generate it.

    Parameters
    ----------
    workdir: pathlib.Path
        Folder holding the archives and their marker files.
    layout: Layout
        The archive wanted.

    Returns
    -------
    Dict[str, Any]
        ``root`` (the folder), ``bytes``, ``seconds`` and ``files_per_second`` of the
        generation, ``reused`` and ``verified`` (files read back).
    """
    root = workdir / layout.name
    marker = workdir / f'{layout.name}.json'
    expected = {'generator': GENERATOR_VERSION, 'layout': asdict(layout)}
    info: Optional[Dict[str, Any]] = None
    if root.is_dir() and marker.is_file():
        try:
            info = json.loads(marker.read_text())
        except ValueError:
            info = None
    if info is not None and all(info.get(key) == value for key, value in expected.items()):
        info['reused'] = True
        log(f'{layout.size:,}: reusing {root} (generated in {info["seconds"]:.1f} s)')
    else:
        shutil.rmtree(root, ignore_errors=True)
        marker.unlink(missing_ok=True)
        root.mkdir(parents=True)
        log(
            f'{layout.size:,}: generating {layout.n_studies:,} studies, '
            f'{layout.n_series:,} series in {root} ...'
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        next_report = [time.monotonic() + 10]

        def progress(done: int) -> None:
            if time.monotonic() >= next_report[0]:
                next_report[0] = time.monotonic() + 10
                rate = done / (time.perf_counter() - started)
                log(f'  {done:,} files ({rate:,.0f} files/s)')

        written = generate(root, layout, progress)
        seconds = time.perf_counter() - started
        info = {
            **expected,
            'bytes': written,
            'seconds': seconds,
            'cpu_seconds': time.process_time() - cpu_started,
            'files_per_second': layout.size / seconds,
        }
        marker.write_text(json.dumps(info, indent=1))
        info['reused'] = False
        log(
            f'{layout.size:,}: generated {written / 1e6:,.1f} MB in {seconds:.1f} s '
            f'({layout.size / seconds:,.0f} files/s, {written / layout.size:,.0f} B/file)'
        )
    info['verified'] = verify(root, layout)
    info['root'] = str(root)
    return info


def warm_cache(root: Path) -> float:
    """Read every file of the archive once, so that both implementations find it cached.

    Returns
    -------
    float
        Seconds it took.
    """
    started = time.perf_counter()
    for folder, _, names in os.walk(root):
        for name in names:
            descriptor = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                while os.read(descriptor, 1 << 16):
                    pass
            finally:
                os.close(descriptor)
    return time.perf_counter() - started


# -- index files beside the archive -----------------------------------------------------


def index_files(root: Path, impl: Optional[str] = None) -> List[str]:
    """Names in the archive folder that belong to an index (of one or both implementations).

    Parameters
    ----------
    root: pathlib.Path
        The archive folder.
    impl: Optional[str]
        ``'ours'``, ``'established'`` or None for both.

    Returns
    -------
    List[str]
        Sorted file names: the index and its ``-wal``, ``-shm``, ``.lock``, ... companions.
    """
    prefixes = tuple(INDEX_NAMES.values()) if impl is None else (INDEX_NAMES[impl],)
    return sorted(name for name in os.listdir(root) if name.startswith(prefixes))


def remove_indexes(root: Path) -> None:
    """Delete the index files of both implementations from the archive folder."""
    for name in index_files(root):
        os.unlink(root / name)


def leftovers(root: Path, impl: str) -> List[str]:
    """Suffixes of the index companion files that are there (e.g. ``['-shm', '-wal']``)."""
    name = INDEX_NAMES[impl]
    return [other[len(name) :] for other in index_files(root, impl) if other != name]


def index_size(root: Path, impl: str) -> Optional[int]:
    """Bytes of the index file plus its ``-wal`` file, or None if there is no index."""
    path = root / INDEX_NAMES[impl]
    if not path.exists():
        return None
    wal = root / (INDEX_NAMES[impl] + '-wal')
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


# -- the child process ------------------------------------------------------------------


def rss_mib(who: int) -> float:
    """Peak RSS (``ru_maxrss``) of this process or of its largest waited-for child, MiB."""
    return resource.getrusage(who).ru_maxrss / 1024


def import_client(impl: str) -> Tuple[type, Dict[str, Any]]:
    """Import ``DICOMfileClient`` of one implementation and check which module came.

    Parameters
    ----------
    impl: str
        ``'ours'`` (``dicomweb_client.py`` of the project root) or ``'established'``
        (the package installed for the running interpreter).

    Returns
    -------
    Tuple[type, Dict[str, Any]]
        The class, and the module file and version.
    """
    sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != PROJECT]
    if impl == 'ours':
        sys.path.insert(0, str(PROJECT))
    import dicomweb_client
    from dicomweb_client import DICOMfileClient

    module = Path(dicomweb_client.__file__).resolve()
    inside = module == PROJECT / 'dicomweb_client.py'
    if inside != (impl == 'ours'):
        raise RuntimeError(f'{impl}: imported the wrong dicomweb_client ({module})')
    return DICOMfileClient, {
        'module': str(module),
        'version': getattr(dicomweb_client, '__version__', None),
    }


def close_client(client: Any) -> None:
    """``close()`` the client; the established one has none, so drop it and collect."""
    close = getattr(client, 'close', None)
    if close is not None:
        close()
    else:
        del client
        gc.collect()


def open_and_close(client_class: type, url: str, update_db: bool) -> Dict[str, float]:
    """Time the constructor and the closing of one client.

    Parameters
    ----------
    client_class: type
        ``DICOMfileClient`` of either implementation.
    url: str
        ``file://`` URL of the archive.
    update_db: bool
        Passed to the constructor.

    Returns
    -------
    Dict[str, float]
        ``seconds`` (both), ``open_seconds`` and ``close_seconds``.
    """
    started = time.perf_counter()
    client = client_class(url, update_db=update_db)
    opened = time.perf_counter()
    close_client(client)
    del client
    done = time.perf_counter()
    return {
        'seconds': done - started,
        'open_seconds': opened - started,
        'close_seconds': done - opened,
    }


def run_query(client: Any, name: str, spec: Dict[str, Any]) -> List[Any]:
    """Run one of the searches of :data:`QUERIES` with the arguments in ``spec``."""
    if name in ('all_studies', 'studies_by_patient_id'):
        return client.search_for_studies(search_filters=spec.get('filters'))
    if name in ('series_by_description', 'series_by_modality'):
        return client.search_for_series(search_filters=spec['filters'])
    if name == 'instances_of_series':
        return client.search_for_instances(
            study_instance_uid=spec['study'], series_instance_uid=spec['series']
        )
    raise ValueError(f'unknown query {name!r}')


def child(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One measurement in this (fresh) process; the parent prints nothing of it.

    Parameters
    ----------
    spec: Dict[str, Any]
        ``impl``, ``url``, ``action`` (``'probe'``, ``'open'`` or ``'query'``), and
        ``update_db`` (open) or ``query``, ``args``, ``repeat`` and ``budget`` (query:
        after the first call, ``repeat`` timed calls, fewer, but at least one, once the
        calls took ``budget`` seconds).

    Returns
    -------
    Dict[str, Any]
        The measurement, the module, and the peak RSS of the process (``rss_mib``), of
        its largest child process (``children_rss_mib``) and after the imports
        (``baseline_rss_mib``).
    """
    client_class, result = import_client(spec['impl'])
    result['baseline_rss_mib'] = rss_mib(resource.RUSAGE_SELF)
    if spec['action'] == 'open':
        result.update(open_and_close(client_class, spec['url'], spec['update_db']))
    elif spec['action'] == 'query':
        client = client_class(spec['url'])
        first = time.perf_counter()
        answer = run_query(client, spec['query'], spec['args'])
        result['first_seconds'] = time.perf_counter() - first
        times: List[float] = []
        while not times or (
            len(times) < spec['repeat'] and result['first_seconds'] + sum(times) < spec['budget']
        ):
            started = time.perf_counter()
            answer = run_query(client, spec['query'], spec['args'])
            times.append(time.perf_counter() - started)
        result.update(seconds=statistics.median(times), times=times, count=len(answer))
        del answer
        close_client(client)
        del client
    result['rss_mib'] = rss_mib(resource.RUSAGE_SELF)
    result['children_rss_mib'] = rss_mib(resource.RUSAGE_CHILDREN)
    return result


def child_main(argument: str) -> int:
    """Entry point of a child process: print one marked JSON line."""
    try:
        result = child(json.loads(argument))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which shows it
        traceback.print_exc()
        result = {'error': f'{type(error).__name__}: {error}'}
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0 if 'error' not in result else 1


# -- the parent: running children --------------------------------------------------------


def log(message: str) -> None:
    """Progress to standard error."""
    print(message, file=sys.stderr, flush=True)


def child_env(cache_prefix: Path) -> Dict[str, str]:
    """Environment of the children: no PYTHONPATH; bytecode cached outside the project.

    Compiling ``dicomweb_client.py`` (or any module whose bytecode is not cached) in every
    child would add a second and tens of MiB to its peak RSS, so the children write their
    bytecode into ``cache_prefix`` (``PYTHONPYCACHEPREFIX``, which the first child fills),
    not beside the sources.
    """
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    env['PYTHONPYCACHEPREFIX'] = str(cache_prefix)
    return env


class Runner:
    """Starts child processes of each implementation and checks what they leave behind.

    Parameters
    ----------
    pythons: Dict[str, str]
        Implementation -> interpreter.
    workdir: pathlib.Path
        Holds the bytecode cache of the children.
    timeout: float
        Seconds a child may take.
    """

    def __init__(self, pythons: Dict[str, str], workdir: Path, timeout: float) -> None:
        self.pythons = pythons
        self.env = child_env(workdir / 'pycache')
        self.timeout = timeout

    def run(self, impl: str, root: Path, spec: Dict[str, Any]) -> Dict[str, Any]:
        """Run one child; add ``leftovers`` (index companions there after it exited).

        Parameters
        ----------
        impl: str
            Which implementation.
        root: pathlib.Path
            The archive folder.
        spec: Dict[str, Any]
            What the child does (see :func:`child`); ``impl`` and ``url`` are added.

        Returns
        -------
        Dict[str, Any]
            The child's JSON answer, or one with ``error``.
        """
        spec = {**spec, 'impl': impl, 'url': root.as_uri()}
        command = [self.pythons[impl], str(Path(__file__).resolve()), '--child', json.dumps(spec)]
        try:
            done = subprocess.run(
                command,
                cwd=str(root.parent),
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            return {'error': f'timed out after {self.timeout:.0f} s'}
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
        if not lines:
            tail = ' | '.join(done.stderr.strip().splitlines()[-3:])
            return {'error': f'exit status {done.returncode}: {tail}'}
        result = json.loads(lines[-1][len(RESULT_MARKER) :])
        if 'error' in result:
            log(done.stderr.strip())
        result['leftovers'] = leftovers(root, impl)
        return result


def query_specs(layout: Layout) -> Dict[str, Dict[str, Any]]:
    """Arguments and expected result counts of the searches for an archive.

    Parameters
    ----------
    layout: Layout
        The archive.

    Returns
    -------
    Dict[str, Dict[str, Any]]
        Query name -> its ``args``, the ``expected`` number of results and, for a
        filtered search, the number there would be without the filter (``unfiltered``).
    """
    studies = range(layout.n_studies)
    series = [
        (study, number) for study in studies for number in range(len(layout.series_sizes(study)))
    ]
    middle = layout.n_studies // 2
    patient = patient_id(layout, middle)
    return {
        'all_studies': {'args': {}, 'expected': layout.n_studies},
        'studies_by_patient_id': {
            'args': {'filters': {'PatientID': patient}},
            'unfiltered': layout.n_studies,
            'expected': sum(patient_id(layout, s) == patient for s in studies),
        },
        'series_by_description': {
            'args': {'filters': {'SeriesDescription': '*series 2*'}},
            'unfiltered': len(series),
            'expected': sum(fnmatchcase(series_description(*key), '*series 2*') for key in series),
        },
        'series_by_modality': {
            'args': {'filters': {'Modality': 'M*'}},
            'unfiltered': len(series),
            'expected': sum(study_modality(study) == 'MR' for study, _ in series),
        },
        'instances_of_series': {
            'args': {'study': study_uid(middle), 'series': series_uid(middle, 0)},
            'expected': layout.series_sizes(middle)[0],
        },
    }


def measure(
    runner: Runner, impl: str, root: Path, layout: Layout, args: argparse.Namespace
) -> Dict[str, Any]:
    """All measurements of one implementation on one archive.

    Parameters
    ----------
    runner: Runner
        Starts the child processes.
    impl: str
        Which implementation.
    root: pathlib.Path
        The archive folder (its index files are removed first).
    layout: Layout
        The archive layout (for the searches and their expected counts).
    args: argparse.Namespace
        ``reopens``, ``update_reopens``, ``repeat``, ``query_budget``, ``warm``.

    Returns
    -------
    Dict[str, Any]
        ``index``, ``reopen``, ``update`` and ``queries`` (child answers; the repeated
        ones with ``runs`` and medians), ``index_bytes`` and ``problems``.
    """
    remove_indexes(root)
    result: Dict[str, Any] = {'problems': []}
    if args.warm:
        log(f'  warming the page cache: {warm_cache(root):.1f} s')
    log(f'  {impl}: indexing {layout.size:,} files ...')
    result['index'] = runner.run(impl, root, {'action': 'open', 'update_db': False})
    result['index_bytes'] = index_size(root, impl)
    if result['index_bytes'] is None:
        result['problems'].append(f'no index file {INDEX_NAMES[impl]} beside the archive')
    for key, update_db, count in (
        ('reopen', False, args.reopens),
        ('update', True, args.update_reopens),
    ):
        log(f'  {impl}: {count} x re-open, update_db={update_db} ...')
        runs = [
            runner.run(impl, root, {'action': 'open', 'update_db': update_db}) for _ in range(count)
        ]
        result[key] = combine(runs)
    result['queries'] = {}
    for name, query in query_specs(layout).items():
        log(f'  {impl}: {QUERIES[name]} ...')
        answer = runner.run(
            impl,
            root,
            {
                'action': 'query',
                'query': name,
                'args': query['args'],
                'repeat': args.repeat,
                'budget': args.query_budget,
            },
        )
        answer['expected'] = query['expected']
        if 'error' not in answer and answer['count'] != query['expected']:
            answer['wrong'] = True
            ignored = answer['count'] == query.get('unfiltered')
            result['problems'].append(
                f'{QUERIES[name]}: {answer["count"]:,} results, expected '
                f'{query["expected"]:,}' + (' (the filter was ignored)' if ignored else '')
            )
        result['queries'][name] = answer
    for step in ('index', 'reopen', 'update', *result['queries'].values()):
        answer = result[step] if isinstance(step, str) else step
        if 'error' in answer:
            result['problems'].append(f'error: {answer["error"]}')
    remove_indexes(root)
    return result


def combine(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Several processes of the same measurement: median time, peak RSS, all leftovers."""
    good = [run for run in runs if 'error' not in run]
    if not good:
        return runs[0]
    return {
        'seconds': statistics.median(run['seconds'] for run in good),
        'times': [run['seconds'] for run in good],
        'rss_mib': max(run['rss_mib'] for run in good),
        'baseline_rss_mib': max(run['baseline_rss_mib'] for run in good),
        'leftovers': sorted({s for run in runs for s in run.get('leftovers', [])}),
        'runs': runs,
    }


# -- the table ----------------------------------------------------------------------------


def fmt_seconds(value: Optional[float]) -> str:
    """Seconds with a unit that keeps three significant digits or so."""
    if value is None:
        return '—'
    if value < 1e-3:
        return f'{value * 1e6:.0f} µs'
    if value < 1:
        return f'{value * 1e3:.3g} ms'
    return f'{value:.2f} s'


def row_values(result: Dict[str, Any], size: int) -> Dict[str, Tuple[Optional[float], str]]:
    """The table rows of one implementation and size: label -> (number, cell text).

    Parameters
    ----------
    result: Dict[str, Any]
        What :func:`measure` returned.
    size: int
        Instances in the archive.

    Returns
    -------
    Dict[str, Tuple[Optional[float], str]]
        The number is what the ratio is computed from (lower is better), None if none.
    """

    def seconds(answer: Dict[str, Any]) -> Tuple[Optional[float], str]:
        if 'error' in answer:
            return None, 'error'
        text = fmt_seconds(answer['seconds'])
        if answer.get('wrong'):
            text += f' (wrong: {answer["count"]:,})'
        return answer['seconds'], text

    def mib(answer: Dict[str, Any], key: str = 'rss_mib') -> Tuple[Optional[float], str]:
        if 'error' in answer or key not in answer:
            return None, '—'
        if not answer[key]:
            return None, 'no workers'  # RUSAGE_CHILDREN of a process that started none
        return answer[key], f'{answer[key]:,.0f} MiB'

    index, reopen, update = result['index'], result['reopen'], result['update']
    rows = {
        'index from scratch': seconds(index),
        'index: files/s': (None, '—')
        if 'error' in index
        else (index['seconds'] / size, f'{size / index["seconds"]:,.0f}'),
        'index: peak RSS, process': mib(index),
        'index: peak RSS, largest worker': mib(index, 'children_rss_mib'),
        'index: bytes per instance (with -wal)': (
            None if result['index_bytes'] is None else result['index_bytes'] / size,
            '—' if result['index_bytes'] is None else f'{result["index_bytes"] / size:,.0f}',
        ),
        're-open, update_db=False (median)': seconds(reopen),
        're-open: peak RSS': mib(reopen),
        're-open, update_db=True': seconds(update),
        're-open update_db=True: peak RSS': mib(update),
        'RSS after imports (baseline)': mib(reopen, 'baseline_rss_mib'),
    }
    for name, answer in result['queries'].items():
        rows[f'{QUERIES[name]} (median)'] = seconds(answer)
    rows['search: peak RSS (max)'] = max(
        (mib(answer) for answer in result['queries'].values()),
        key=lambda pair: -1 if pair[0] is None else pair[0],
    )
    steps = [('index', index), ('re-open', reopen), ('update', update)]
    steps += [('search', answer) for answer in result['queries'].values()]
    left: Dict[str, List[str]] = {}
    for step, answer in steps:
        for suffix in answer.get('leftovers', []):
            left.setdefault(suffix, [])
            if step not in left[suffix]:
                left[suffix].append(step)
    rows['files left beside the archive after exit'] = (
        None,
        ', '.join(f'{suffix} ({"/".join(steps)})' for suffix, steps in sorted(left.items()))
        or 'none',
    )
    return rows


def table(results: Dict[int, Dict[str, Dict[str, Any]]]) -> str:
    """The Markdown table: rows = measurements, columns = ours / established / ratio per size.

    Parameters
    ----------
    results: Dict[int, Dict[str, Dict[str, Any]]]
        Size -> implementation -> what :func:`measure` returned.

    Returns
    -------
    str
        The table.
    """
    sizes = sorted(results)
    rows: Dict[str, List[str]] = {}
    header = ['measurement']
    for size in sizes:
        header += [f'ours {size:,}', f'established {size:,}', 'ratio']
        cells = {
            impl: row_values(results[size][impl], size) for impl in IMPLS if impl in results[size]
        }
        for label in cells['ours']:
            ours = cells['ours'][label]
            other = cells.get('established', {}).get(label, (None, 'skipped'))
            ratio = '—'
            if ours[0] and other[0] is not None and not other[1].endswith(')'):
                ratio = f'{other[0] / ours[0]:.2f}x'
            rows.setdefault(label, []).extend([ours[1], other[1], ratio])
    lines = ['| ' + ' | '.join(header) + ' |', '|---|' + '---:|' * (len(header) - 1)]
    lines += ['| ' + ' | '.join([label, *cells]) + ' |' for label, cells in rows.items()]
    return '\n'.join(lines)


# -- main -------------------------------------------------------------------------------


def find_reference_python(args: argparse.Namespace) -> Optional[str]:
    """The established package's interpreter: ``--reference-python`` or run.py's venv.

    Parameters
    ----------
    args: argparse.Namespace
        ``reference_python``, ``create_reference_venv`` and ``no_reference``.

    Returns
    -------
    Optional[str]
        The interpreter, or None to measure only ours.
    """
    if args.no_reference:
        return None
    if args.reference_python:
        return args.reference_python
    sys.path.insert(0, str(PROJECT))
    from benchmarks import run as bench_run  # its venv path and how it is made

    python = bench_run.REFERENCE_VENV / 'bin' / 'python'
    if args.create_reference_venv and not python.exists():
        bench_run.create_reference_venv()
    return str(python) if python.exists() else None


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--sizes', default='5000,50000', help='comma-separated instance counts (default 5000,50000)'
    )
    parser.add_argument('--million', action='store_true', help='also 1,000,000 instances')
    parser.add_argument(
        '--workdir',
        type=Path,
        default=Path(tempfile.gettempdir()) / 'dicomweb-client-file-scale',
        help='where the archives are generated (default: %(default)s)',
    )
    parser.add_argument(
        '--keep', action='store_true', help='keep the generated archives for the next run'
    )
    parser.add_argument('--per-series', type=int, default=20, help='instances per series')
    parser.add_argument('--per-study', type=int, default=4, help='series per study')
    parser.add_argument('--per-patient', type=int, default=2, help='studies per patient')
    parser.add_argument(
        '--reopens',
        type=int,
        default=5,
        help='processes re-opening with update_db=False (median; default 5)',
    )
    parser.add_argument(
        '--update-reopens',
        type=int,
        default=1,
        help='processes re-opening with update_db=True (median; default 1)',
    )
    parser.add_argument(
        '--repeat',
        type=int,
        default=5,
        help='timed calls of each search after the first (median; default 5)',
    )
    parser.add_argument(
        '--query-budget',
        type=float,
        default=10,
        metavar='SECONDS',
        help='fewer timed calls of a search once its calls took this long '
        '(at least one after the first; default 10)',
    )
    parser.add_argument(
        '--reference-python',
        help='python that has dicomweb-client installed (default: '
        'benchmarks/.venv-reference/bin/python if there)',
    )
    parser.add_argument(
        '--create-reference-venv',
        action='store_true',
        help='create benchmarks/.venv-reference as benchmarks/run.py does',
    )
    parser.add_argument('--no-reference', action='store_true', help='measure only ours')
    parser.add_argument(
        '--reference-max',
        type=int,
        default=50_000,
        help='largest archive the established client indexes (default 50000)',
    )
    parser.add_argument(
        '--generate-only',
        action='store_true',
        help='only generate (or reuse) and check the archives (with --keep '
        'to time the generation, or to prepare them for later runs)',
    )
    parser.add_argument(
        '--no-warm',
        dest='warm',
        action='store_false',
        help='do not read the archive once before indexing',
    )
    parser.add_argument(
        '--timeout',
        type=float,
        default=7200,
        help='seconds a child process may take (default 7200)',
    )
    parser.add_argument('--json', type=Path, metavar='FILE', help='also write the results')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None:
        try:
            args.size_list = sorted(
                {int(s.replace('_', '')) for s in args.sizes.split(',') if s.strip()}
                | ({1_000_000} if args.million else set())
            )
        except ValueError:
            parser.error(f'--sizes must be comma-separated integers, not {args.sizes!r}')
        if not args.size_list or min(args.size_list) < 1:
            parser.error('--sizes must be positive')
        if not 1 <= args.per_series < 90_000 or not 1 <= args.per_study < 90:
            parser.error('--per-series must be below 90000 and --per-study below 90')
        if args.per_patient < 1 or min(args.reopens, args.update_reopens, args.repeat) < 1:
            parser.error('--per-patient, --reopens, --update-reopens, --repeat must be >= 1')
    return args


def environment(pythons: Dict[str, str], runner: Runner, root: Path) -> Dict[str, Any]:
    """Versions of Python, pydicom and both clients (one probe child each)."""
    import pydicom

    info: Dict[str, Any] = {
        'python': platform.python_version(),
        'pydicom': pydicom.__version__,
        'cpus': os.cpu_count(),
        'load': os.getloadavg(),
    }
    for impl in pythons:
        probe = runner.run(impl, root, {'action': 'probe'})  # also fills the bytecode cache
        if 'error' in probe:
            raise RuntimeError(f'{impl}: {probe["error"]}')
        info[impl] = {
            'python': pythons[impl],
            'module': probe['module'],
            'version': probe['version'],
        }
    return info


def main(argv: Optional[List[str]] = None) -> int:
    """Generate the archives, measure, print the table; the exit status says if all went well."""
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child)
    pythons = {'ours': sys.executable}
    reference = find_reference_python(args)
    if reference:
        pythons['established'] = reference
    else:
        log('no reference interpreter: measuring only ours (see --reference-python)')
    workdir = args.workdir.resolve()
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    runner = Runner(pythons, workdir, args.timeout)
    results: Dict[int, Dict[str, Dict[str, Any]]] = {}
    archives: Dict[int, Dict[str, Any]] = {}
    try:
        info = environment(pythons, runner, workdir)
        log(
            f'ours: {info["ours"]["module"]}; established: '
            f'{info.get("established", {}).get("version", "not measured")}'
        )
        for size in args.size_list:
            layout = Layout(size, args.per_series, args.per_study, args.per_patient)
            archive = prepare_archive(workdir, layout)
            archives[size] = archive
            root = Path(archive['root'])
            results[size] = {}
            for impl in () if args.generate_only else pythons:
                if impl == 'established' and size > args.reference_max:
                    log(f'  established: skipped at {size:,} (> --reference-max)')
                    continue
                results[size][impl] = measure(runner, impl, root, layout, args)
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
                (workdir / f'{layout.name}.json').unlink(missing_ok=True)
    finally:
        shutil.rmtree(workdir / 'pycache', ignore_errors=True)
        if not args.keep and created:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        report(
            info, archives, {} if args.generate_only else results, args.repeat, args.query_budget
        )
    )
    if args.json:
        settings = {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
            if key != 'child'
        }
        args.json.write_text(
            json.dumps(
                {
                    'settings': settings,
                    'environment': info,
                    'archives': archives,
                    'results': results,
                },
                indent=1,
            )
        )
    failed = any(
        problem.startswith('error')
        for sizes in results.values()
        for result in sizes.values()
        for problem in result['problems']
    )
    wrong = any(
        result['problems']
        for sizes in results.values()
        for impl, result in sizes.items()
        if impl == 'ours'
    )
    return 1 if failed or wrong else 0


def report(
    info: Dict[str, Any],
    archives: Dict[int, Dict[str, Any]],
    results: Dict[int, Dict[str, Dict[str, Any]]],
    repeat: int,
    budget: float,
) -> str:
    """The Markdown report: environment, archives, the table and the problems seen.

    Parameters
    ----------
    info: Dict[str, Any]
        What :func:`environment` returned.
    archives: Dict[int, Dict[str, Any]]
        Size -> what :func:`prepare_archive` returned.
    results: Dict[int, Dict[str, Dict[str, Any]]]
        Size -> implementation -> what :func:`measure` returned; empty: no table.
    repeat: int
        ``--repeat``, for the note under the table.
    budget: float
        ``--query-budget``, for the note under the table.

    Returns
    -------
    str
        Markdown text.
    """
    lines = [
        f'Python {info["python"]}, pydicom {info["pydicom"]}, {info["cpus"]} CPUs, '
        f'load {info["load"][0]:.2f}; ours: `{info["ours"]["module"]}`; established: '
        + (
            f'dicomweb-client {info["established"]["version"]}'
            if 'established' in info
            else 'not measured'
        ),
        '',
    ]
    for size, archive in sorted(archives.items()):
        layout = Layout(size, **{k: v for k, v in archive['layout'].items() if k != 'size'})
        lines.append(
            f'- {size:,} instances: {layout.n_studies:,} studies, {layout.n_series:,} series, '
            f'{archive["bytes"] / 1e6:,.1f} MB ({archive["bytes"] / size:,.0f} B/file); '
            f'generated in {archive["seconds"]:.1f} s ({archive["files_per_second"]:,.0f} '
            f'files/s, {archive.get("cpu_seconds", math.nan):.1f} s CPU)'
            f'{" earlier, reused" if archive["reused"] else ""}; '
            f'{archive["verified"]} files checked with pydicom'
        )
    if not results:
        return '\n'.join(lines)
    lines += [
        '',
        table(results),
        '',
        'Times: constructor + close() in a fresh process (re-opens: median of the '
        'processes; searches: median of the calls after the first, up to '
        f'{repeat} of them or {budget:g} s). Peak RSS: '
        'ru_maxrss of the process (RUSAGE_SELF); "largest worker": RUSAGE_CHILDREN, '
        'the largest worker process of the indexing. Ratio: established / ours.',
    ]
    problems = [
        f'- {size:,} {impl}: {problem}'
        for size, sizes in sorted(results.items())
        for impl, result in sizes.items()
        for problem in result['problems']
    ]
    if problems:
        lines += ['', 'Problems:', *problems]
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
