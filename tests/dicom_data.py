"""Synthetic DICOM test data built with pydicom and numpy.

Everything is deterministic apart from the UIDs (which are freshly generated
unless passed in): pixel values come from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset

try:
    from pydicom.encaps import generate_frames
except ImportError:  # pydicom 2 (the newest release for Python 3.9)
    from pydicom.encaps import generate_pixel_data_frame

    def generate_frames(buffer: bytes, *, number_of_frames: int):  # type: ignore[misc]
        return generate_pixel_data_frame(buffer, number_of_frames)


from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

import dicomweb_client

__all__ = [
    "PYDICOM_TEST_FILES",
    "frame_bytes",
    "from_bytes",
    "make_archive",
    "make_instance",
    "make_pixels",
    "make_study",
    "pydicom_test_files",
    "to_bytes",
    "write_files",
]

#: Files shipped inside the pydicom wheel (no download needed).
PYDICOM_TEST_FILES = ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm")

_SINGLE_FRAME_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage}


def make_pixels(
    rows: int,
    columns: int,
    frames: int = 1,
    bits: int = 16,
    samples_per_pixel: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Deterministic pseudo-random pixels shaped as pydicom returns them.

    Shape is ``(rows, columns)`` or ``(frames, rows, columns)``, with a trailing
    axis of 3 for RGB; dtype ``uint8`` or ``uint16`` depending on ``bits``.
    """
    shape: tuple[int, ...] = (rows, columns)
    if frames > 1:
        shape = (frames, *shape)
    if samples_per_pixel > 1:
        shape = (*shape, samples_per_pixel)
    dtype = np.uint8 if bits == 8 else np.uint16
    high = 1 << bits
    return np.random.default_rng(seed).integers(0, high, size=shape, dtype=dtype)


def _sop_class(modality: str, frames: int, bits: int, samples_per_pixel: int) -> str:
    if samples_per_pixel == 3:
        return (
            MultiFrameTrueColorSecondaryCaptureImageStorage
            if frames > 1
            else (SecondaryCaptureImageStorage)
        )
    if frames > 1:
        if bits == 8:
            return MultiFrameGrayscaleByteSecondaryCaptureImageStorage
        return MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    if bits == 8:
        return SecondaryCaptureImageStorage
    return _SINGLE_FRAME_CLASSES.get(modality, SecondaryCaptureImageStorage)


def _set_patient_and_study(
    ds: Dataset,
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    study_date: str,
    accession_number: str,
    study_description: str,
    study_id: str,
) -> None:
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = study_date
    ds.StudyTime = "120000"
    ds.AccessionNumber = accession_number
    ds.ReferringPhysicianName = "Ref^Doctor"
    ds.StudyID = study_id
    ds.StudyDescription = study_description


def _set_pixels(
    ds: Dataset, arr: np.ndarray, *, frames: int, bits: int, samples_per_pixel: int
) -> None:
    ds.Rows, ds.Columns = arr.shape[-3:-1] if samples_per_pixel > 1 else arr.shape[-2:]
    ds.SamplesPerPixel = samples_per_pixel
    ds.PhotometricInterpretation = "RGB" if samples_per_pixel == 3 else "MONOCHROME2"
    if samples_per_pixel > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00181063  # Frame Time
        ds.FrameTime = 100.0
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OW" if bits > 8 else "OB"


def make_instance(
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    rows: int = 16,
    columns: int = 16,
    frames: int = 1,
    bits: int = 16,
    samples_per_pixel: int = 1,
    seed: int = 0,
    patient_id: str = "P1",
    patient_name: str = "Doe^Jane",
    modality: str = "CT",
    study_date: str = "20240101",
    series_description: str = "Test series",
    accession_number: str = "ACC0001",
    instance_number: int = 1,
    compressed: bool = False,
    *,
    series_number: int = 1,
    study_description: str = "Test study",
    study_id: str = "1",
    sop_class_uid: str | None = None,
) -> Dataset:
    """Return a complete Part 10 ready instance with real pixel data.

    ``frames > 1`` gives a multi-frame Secondary Capture instance,
    ``samples_per_pixel=3`` an 8-bit RGB image (``bits`` is forced to 8) and
    ``compressed=True`` RLE Lossless; otherwise Explicit VR Little Endian.
    Single-frame 16-bit grayscale CT/MR use the CT/MR Image Storage classes,
    everything else a Secondary Capture class.
    """
    if samples_per_pixel not in (1, 3):
        raise ValueError("samples_per_pixel must be 1 or 3")
    if samples_per_pixel == 3:
        bits = 8
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    sop_uid = sop_uid or generate_uid()
    sop_class = sop_class_uid or _sop_class(modality, frames, bits, samples_per_pixel)

    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    _set_patient_and_study(
        ds,
        patient_id=patient_id,
        patient_name=patient_name,
        study_uid=study_uid or generate_uid(),
        study_date=study_date,
        accession_number=accession_number,
        study_description=study_description,
        study_id=study_id,
    )
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.InstanceNumber = instance_number
    ds.ContentDate = study_date
    ds.ContentTime = "120000"
    ds.ConversionType = "WSD"

    arr = make_pixels(rows, columns, frames, bits, samples_per_pixel, seed)
    _set_pixels(ds, arr, frames=frames, bits=bits, samples_per_pixel=samples_per_pixel)
    if compressed:
        ds.compress(RLELossless, arr, generate_instance_uid=False)
    return ds


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def make_study(n_series: int = 2, n_instances: int = 3, **kw: Any) -> list[Dataset]:
    """Return ``n_series * n_instances`` instances of one study.

    Keyword arguments go to :func:`make_instance` (``study_uid`` is shared and
    generated when missing; ``seed`` is the base seed, incremented per instance).
    Series are numbered 1..n and described ``"Series <n>"`` unless
    ``series_description`` is given.
    """
    kw = dict(kw)
    study_uid = kw.pop("study_uid", None) or generate_uid()
    seed = kw.pop("seed", 0)
    description = kw.pop("series_description", None)
    datasets = []
    for s in range(n_series):
        series_uid = generate_uid()
        for i in range(n_instances):
            datasets.append(
                make_instance(
                    study_uid=study_uid,
                    series_uid=series_uid,
                    seed=seed + s * n_instances + i,
                    series_description=description or f"Series {s + 1}",
                    series_number=s + 1,
                    instance_number=i + 1,
                    **kw,
                )
            )
    return datasets


def make_archive(
    n_studies: int = 2, n_series: int = 2, n_instances: int = 2, **kw: Any
) -> list[Dataset]:
    """Return instances of ``n_studies`` studies of distinct patients.

    Study ``k`` (0-based) gets patient ID ``P<k+1>``, name ``Doe^Patient<k+1>``,
    accession ``ACC<k+1:04d>``, study ID ``k+1`` and study date 2024-01-01 plus
    ``k`` days, unless those are fixed through keyword arguments (which also go
    to :func:`make_instance`).
    """
    start = datetime.date(2024, 1, 1)
    seed = kw.pop("seed", 0)
    datasets: list[Dataset] = []
    for k in range(n_studies):
        per_study = {
            "patient_id": f"P{k + 1}",
            "patient_name": f"Doe^Patient{k + 1}",
            "accession_number": f"ACC{k + 1:04d}",
            "study_id": str(k + 1),
            "study_date": (start + datetime.timedelta(days=k)).strftime("%Y%m%d"),
        }
        per_study.update(kw)
        datasets += make_study(
            n_series, n_instances, seed=seed + k * n_series * n_instances, **per_study
        )
    return datasets


def write_part10(target: Any, ds: Dataset) -> None:
    """Write ``ds`` as a DICOM Part 10 file to a path or binary file object."""
    dicomweb_client._dcmwrite(target, ds, enforce_file_format=True)  # pydicom 3 and 2


def to_bytes(ds: Dataset) -> bytes:
    """Encode ``ds`` as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    write_part10(buffer, ds)
    return buffer.getvalue()


def from_bytes(data: bytes) -> Dataset:
    """Decode a DICOM Part 10 file."""
    return pydicom.dcmread(io.BytesIO(data))


def write_files(datasets: Iterable[Dataset], folder: Path | str) -> list[Path]:
    """Write each dataset to ``folder/<SOPInstanceUID>.dcm``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        write_part10(path, ds)
        paths.append(path)
    return paths


def frame_bytes(ds: Dataset, number: int) -> bytes:
    """Return the stored bytes of frame ``number`` (1-based, as in DICOMweb).

    Native pixel data is sliced; encapsulated pixel data yields the frame's
    fragment(s) as stored (e.g. the RLE-compressed frame).
    """
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if not 1 <= number <= frames:
        raise IndexError(f"frame {number} outside 1..{frames}")
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        for index, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=frames)):
            if index == number - 1:
                return frame
        raise IndexError(f"frame {number} not found")
    size = ds.Rows * ds.Columns * ds.SamplesPerPixel * (ds.BitsAllocated // 8)
    return bytes(ds.PixelData[(number - 1) * size : number * size])


def pydicom_test_files(names: Sequence[str] = PYDICOM_TEST_FILES) -> list[Path]:
    """Paths of DICOM files bundled with pydicom (never downloads anything)."""
    paths = []
    for name in names:
        found = get_testdata_file(name, download=False)
        if found is None:
            raise FileNotFoundError(f"{name} is not bundled with pydicom {pydicom.__version__}")
        paths.append(Path(str(found)))
    return paths
