"""End-to-end tests of ``DICOMwebClient`` against a real Orthanc + DICOMweb plugin.

A module fixture empties Orthanc and stores, through ``store_instances``, a generated
archive (two studies of two series each, plus a study of special pixel formats) and a
few of pydicom's bundled files.  Every test then compares what the client gets back
with the datasets it sent.

What Orthanc 1.10 + DICOMweb plugin 1.7 does, as observed, and what is therefore not
tested here:

- RLE Lossless instances: WADO-RS without a transfer syntax returns them decompressed
  as Explicit VR Little Endian; ``('application/dicom', '*')`` (or the RLE UID) returns
  the stored RLE bytes.  Frames come decompressed with the default
  ``application/octet-stream`` and as the stored RLE fragment with
  ``transfer-syntax=*`` or ``image/dicom-rle``.  Metadata of an encapsulated instance
  has no Pixel Data element at all (no ``BulkDataURI``), so there is no bulk data test
  for it.
- Frames as ``image/jpeg`` without a transfer syntax come back as JPEG Lossless SV1
  (1.2.840.10008.1.2.4.70, an SOF3 stream); Pillow cannot decode those, so they are
  only checked for JPEG markers.  Baseline (1.2.840.10008.1.2.4.50) is available for
  8-bit images and is decoded and compared; for 16-bit images Orthanc answers 500.
- Orthanc does not percent-decode query values: ``PatientID=%501`` does not match
  ``P1``.  Values with characters that must be percent-encoded in a URL (space, ``^``)
  can never match, so no test searches for them (e.g. ``PatientName=Doe^Jane``).
- No thumbnails (404), no XML metadata, no DELETE through DICOMweb (405; this module
  deletes through Orthanc's REST API), Range requests on bulk data are ignored.
"""

from __future__ import annotations

import io
import json
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

import dicom_data
import dicomweb_client
from dicomweb_client import DICOMwebClient, HTTPError, create_session

STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"
STUDY_DESCRIPTION = "00081030"
NUMBER_OF_FRAMES = "00280008"
PIXEL_DATA = "7FE00010"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

# MR_small_RLE.dcm shares its SOP Instance UID with MR_small.dcm, so only one of them
# can live on the server; MR_small.dcm is the uncompressed one.
PYDICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle.dcm")

IDLE_LONGER_THAN_KEEP_ALIVE = 1.5  # Orthanc drops idle connections after 1 s


# -- the archive ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyPlan:
    patient_id: str
    patient_name: str
    study_date: str
    accession_number: str
    study_description: str
    study_id: str
    modality: str
    series: tuple[tuple[str, int], ...]  # (series description, number of instances)


STUDY_PLANS = (
    StudyPlan(
        "PAT-A001",
        "Alpha^Anna",
        "20240101",
        "ACC1001",
        "Head study",
        "101",
        "CT",
        (("AXIAL_HEAD", 3), ("CORONAL_HEAD", 2)),
    ),
    StudyPlan(
        "PAT-B002",
        "Bravo^Boris",
        "20240102",
        "ACC2002",
        "Knee study",
        "102",
        "MR",
        (("SAG_KNEE", 2), ("AX_KNEE", 3)),
    ),
)
EXTRAS_PLAN = StudyPlan(
    "PAT-C003", "Charlie^Carl", "20230615", "EXT3003", "Pixel formats", "103", "OT", ()
)


@dataclass
class Archive:
    """What the module fixture stored, for comparisons."""

    studies: list[list[Dataset]]  # the two plain studies, in STUDY_PLANS order
    multiframe: Dataset  # 5 frames, 32 x 32, 16 bit
    rgb: Dataset  # 8 bit RGB
    rle: Dataset  # RLE Lossless, 16 bit
    bytes8: Dataset  # 3 frames, 8 bit grayscale
    pydicom_files: dict[str, Dataset]  # name -> dataset as read from pydicom's data
    pydicom_paths: list[Path]
    report: Dataset = field(default_factory=Dataset)

    @property
    def generated(self) -> list[Dataset]:
        plain = [ds for study in self.studies for ds in study]
        return plain + [self.multiframe, self.rgb, self.rle, self.bytes8]

    @property
    def everything(self) -> list[Dataset]:
        return self.generated + list(self.pydicom_files.values())

    def by_sop_uid(self) -> dict[str, Dataset]:
        return {ds.SOPInstanceUID: ds for ds in self.everything}

    def study_uids(self, keep: Callable[[Dataset], bool] = lambda ds: True) -> list[str]:
        return sorted({ds.StudyInstanceUID for ds in self.everything if keep(ds)})

    def series_uids(self, keep: Callable[[Dataset], bool] = lambda ds: True) -> list[str]:
        return sorted({ds.SeriesInstanceUID for ds in self.everything if keep(ds)})

    def sop_uids(self, keep: Callable[[Dataset], bool] = lambda ds: True) -> list[str]:
        return sorted(ds.SOPInstanceUID for ds in self.everything if keep(ds))


def _plan_fields(plan: StudyPlan) -> dict[str, Any]:
    return {
        "patient_id": plan.patient_id,
        "patient_name": plan.patient_name,
        "study_date": plan.study_date,
        "accession_number": plan.accession_number,
        "study_description": plan.study_description,
        "study_id": plan.study_id,
        "modality": plan.modality,
    }


def _build_study(plan: StudyPlan, seed: int) -> list[Dataset]:
    study_uid = generate_uid()
    datasets = []
    for series_number, (description, count) in enumerate(plan.series, start=1):
        series_uid = generate_uid()
        for instance_number in range(1, count + 1):
            seed += 1
            datasets.append(
                dicom_data.make_instance(
                    study_uid=study_uid,
                    series_uid=series_uid,
                    seed=seed,
                    series_description=description,
                    series_number=series_number,
                    instance_number=instance_number,
                    **_plan_fields(plan),
                )
            )
    return datasets


def _build_archive() -> Archive:
    studies = [_build_study(plan, seed=100 * k) for k, plan in enumerate(STUDY_PLANS)]
    extras = _plan_fields(EXTRAS_PLAN)
    study_uid = generate_uid()

    def extra(series_number: int, description: str, seed: int, **kw: Any) -> Dataset:
        return dicom_data.make_instance(
            study_uid=study_uid,
            seed=seed,
            series_description=description,
            series_number=series_number,
            **extras,
            **kw,
        )

    paths = dicom_data.pydicom_test_files(PYDICOM_FILES)
    return Archive(
        studies=studies,
        multiframe=extra(1, "MULTIFRAME", 901, frames=5, rows=32, columns=32, bits=16),
        rgb=extra(2, "COLOR", 902, samples_per_pixel=3),
        rle=extra(3, "RLE", 903, compressed=True),
        bytes8=extra(4, "BYTES8", 904, frames=3, bits=8),
        pydicom_files={path.name: pydicom.dcmread(path) for path in paths},
        pydicom_paths=paths,
    )


# -- helpers ----------------------------------------------------------------------------


def make_client(orthanc: Any) -> DICOMwebClient:
    """A client for the test Orthanc that ignores proxy settings of the environment."""
    session = create_session()
    session.trust_env = False
    return DICOMwebClient(orthanc.url, session=session)


def first(item: dict, tag: str) -> Any:
    """First value of an attribute of a DICOM JSON object."""
    return item[tag]["Value"][0]


def uids(items: list[dict], tag: str) -> list[str]:
    return sorted(first(item, tag) for item in items)


def ids(ds: Dataset) -> tuple[str, str, str]:
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def delete_study(orthanc: Any, study_uid: str) -> None:
    """Delete a study through Orthanc's REST API (DICOMweb has no DELETE there)."""
    found = json.loads(orthanc.rest("POST", "/tools/lookup", study_uid.encode()))
    for item in found:
        if item.get("Type") == "Study":
            orthanc.rest("DELETE", f"/studies/{item['ID']}")


def referenced_uids(report: Dataset) -> list[str]:
    return sorted(item.ReferencedSOPInstanceUID for item in report.get("ReferencedSOPSequence", []))


def assert_same_pixels(received: Dataset, original: Dataset) -> None:
    """Uncompressed originals must come back byte for byte."""
    assert received.SOPInstanceUID == original.SOPInstanceUID
    assert received.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert bytes(received.PixelData) == bytes(original.PixelData)


def extra_study(prefix: str, n_series: int = 1, n_instances: int = 2) -> list[Dataset]:
    """A small study for the tests that store more data (removed by ``scratch``)."""
    return dicom_data.make_study(
        n_series,
        n_instances,
        patient_id=f"{prefix}-{generate_uid()[-6:]}",
        patient_name="Scratch^Test",
        study_date="20200202",
        accession_number="SCRATCH",
        seed=500,
    )


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored_archive(orthanc: Any) -> Iterator[Archive]:
    """Orthanc holding exactly the archive, stored with ``store_instances``."""
    orthanc.reset()
    data = _build_archive()
    data.report = make_client(orthanc).store_instances(data.generated + data.pydicom_paths)
    yield data
    orthanc.reset()


@pytest.fixture(scope="module")
def orthanc_client(orthanc: Any, stored_archive: Archive) -> DICOMwebClient:
    return make_client(orthanc)


@pytest.fixture
def scratch(orthanc: Any, stored_archive: Archive) -> Iterator[list[str]]:
    """Study UIDs a test stored on top of the archive; deleted afterwards."""
    stored: list[str] = []
    yield stored
    for study_uid in stored:
        delete_study(orthanc, study_uid)


@pytest.fixture
def requests_module() -> Iterator[types.ModuleType]:
    """``requests``, imported for one test only (other tests see the process without it)."""
    before = {name for name in sys.modules if name.split(".")[0] == "requests"}
    requests = pytest.importorskip("requests")
    yield requests
    for name in [name for name in sys.modules if name.split(".")[0] == "requests"]:
        if name not in before:
            del sys.modules[name]


# -- STOW-RS ----------------------------------------------------------------------------


def test_store_report_references_every_instance(stored_archive: Archive) -> None:
    report = stored_archive.report
    assert referenced_uids(report) == stored_archive.sop_uids()
    assert not report.get("FailedSOPSequence")


def test_store_from_file_paths(
    orthanc_client: DICOMwebClient, scratch: list[str], tmp_path: Path
) -> None:
    datasets = extra_study("PATHS")
    scratch.append(datasets[0].StudyInstanceUID)
    paths = dicom_data.write_files(datasets, tmp_path)
    report = orthanc_client.store_instances([paths[0], str(paths[1])])  # Path and str
    assert referenced_uids(report) == sorted(ds.SOPInstanceUID for ds in datasets)
    assert not report.get("FailedSOPSequence")
    for original in datasets:
        assert_same_pixels(orthanc_client.retrieve_instance(*ids(original)), original)


def test_store_from_open_binary_files(
    orthanc_client: DICOMwebClient, scratch: list[str], tmp_path: Path
) -> None:
    datasets = extra_study("FILEOBJ", n_instances=3)
    scratch.append(datasets[0].StudyInstanceUID)
    paths = dicom_data.write_files(datasets, tmp_path)
    handles = [path.open("rb") for path in paths]
    try:
        report = orthanc_client.store_instances(handles)
    finally:
        for handle in handles:
            handle.close()
    assert referenced_uids(report) == sorted(ds.SOPInstanceUID for ds in datasets)
    assert not report.get("FailedSOPSequence")
    retrieved = orthanc_client.retrieve_series(
        datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID
    )
    originals = {ds.SOPInstanceUID: ds for ds in datasets}
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(originals)
    for ds in retrieved:
        assert_same_pixels(ds, originals[ds.SOPInstanceUID])


def test_store_study_scoped(orthanc_client: DICOMwebClient, scratch: list[str]) -> None:
    datasets = extra_study("SCOPED", n_series=2, n_instances=1)
    study_uid = datasets[0].StudyInstanceUID
    scratch.append(study_uid)
    report = orthanc_client.store_instances(datasets, study_instance_uid=study_uid)
    assert referenced_uids(report) == sorted(ds.SOPInstanceUID for ds in datasets)
    assert not report.get("FailedSOPSequence")
    assert uids(orthanc_client.search_for_series(study_uid), SERIES_UID) == sorted(
        ds.SeriesInstanceUID for ds in datasets
    )


def test_store_study_scoped_refuses_instance_of_other_study(
    orthanc_client: DICOMwebClient, scratch: list[str]
) -> None:
    foreign = dicom_data.make_instance(patient_id="FOREIGN")
    target = generate_uid()
    scratch.extend([foreign.StudyInstanceUID, target])
    with pytest.raises(HTTPError) as info:
        orthanc_client.store_instances([foreign], study_instance_uid=target)
    # Orthanc answers 409 with a report whose FailedSOPSequence names the instance
    assert info.value.status_code == 409
    assert "00081198" in str(info.value)
    assert foreign.SOPInstanceUID in str(info.value)


# -- QIDO-RS ----------------------------------------------------------------------------


def test_search_counts(orthanc_client: DICOMwebClient, stored_archive: Archive) -> None:
    assert uids(orthanc_client.search_for_studies(), STUDY_UID) == stored_archive.study_uids()
    assert uids(orthanc_client.search_for_series(), SERIES_UID) == stored_archive.series_uids()
    assert uids(orthanc_client.search_for_instances(), SOP_UID) == stored_archive.sop_uids()


@pytest.mark.parametrize("key", ["PatientID", "00100020"])
def test_search_studies_by_patient_id(
    orthanc_client: DICOMwebClient, stored_archive: Archive, key: str
) -> None:
    found = orthanc_client.search_for_studies(search_filters={key: "PAT-B002"})
    assert uids(found, STUDY_UID) == [stored_archive.studies[1][0].StudyInstanceUID]
    assert first(found[0], "00100020") == "PAT-B002"


@pytest.mark.parametrize(
    "level, filters, keep",
    [
        (
            "studies",
            {"AccessionNumber": "ACC2002"},
            lambda ds: ds.get("AccessionNumber") == "ACC2002",
        ),
        ("studies", {"ModalitiesInStudy": "CT"}, lambda ds: ds.Modality == "CT"),
        ("series", {"Modality": "MR"}, lambda ds: ds.Modality == "MR"),
        (
            "series",
            {"SeriesDescription": "SAG_KNEE"},
            lambda ds: ds.get("SeriesDescription") == "SAG_KNEE",
        ),
        ("series", {"0008103E": "COLOR"}, lambda ds: ds.get("SeriesDescription") == "COLOR"),
        (
            "instances",
            {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.4"},
            lambda ds: ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4",
        ),
    ],
    ids=[
        "accession",
        "modalities-in-study",
        "modality",
        "series-description",
        "series-description-tag",
        "sop-class",
    ],
)
def test_search_exact_match(
    orthanc_client: DICOMwebClient,
    stored_archive: Archive,
    level: str,
    filters: dict,
    keep: Callable[[Dataset], bool],
) -> None:
    search, tag, expected = {
        "studies": (orthanc_client.search_for_studies, STUDY_UID, stored_archive.study_uids),
        "series": (orthanc_client.search_for_series, SERIES_UID, stored_archive.series_uids),
        "instances": (orthanc_client.search_for_instances, SOP_UID, stored_archive.sop_uids),
    }[level]
    assert expected(keep)  # the filter selects something
    assert uids(search(search_filters=filters), tag) == expected(keep)


def _name(ds: Dataset) -> str:
    return str(ds.get("PatientName", ""))


@pytest.mark.parametrize(
    "level, filters, keep",
    [
        ("studies", {"PatientName": "Alpha*"}, lambda ds: _name(ds).startswith("Alpha")),
        ("studies", {"PatientName": "Br?vo?Boris"}, lambda ds: _name(ds) == "Bravo^Boris"),
        (
            "studies",
            {"AccessionNumber": "ACC*"},
            lambda ds: ds.get("AccessionNumber", "").startswith("ACC"),
        ),
        (
            "studies",
            {"AccessionNumber": "ACC?00?"},
            lambda ds: ds.get("AccessionNumber") in ("ACC1001", "ACC2002"),
        ),
        (
            "series",
            {"SeriesDescription": "*_KNEE"},
            lambda ds: ds.get("SeriesDescription", "").endswith("_KNEE"),
        ),
        (
            "series",
            {"SeriesDescription": "AX?AL_HEAD"},
            lambda ds: ds.get("SeriesDescription") == "AXIAL_HEAD",
        ),
    ],
    ids=[
        "name-star",
        "name-question",
        "accession-star",
        "accession-question",
        "description-star",
        "description-question",
    ],
)
def test_search_wildcards(
    orthanc_client: DICOMwebClient,
    stored_archive: Archive,
    level: str,
    filters: dict,
    keep: Callable[[Dataset], bool],
) -> None:
    if level == "studies":
        found = uids(orthanc_client.search_for_studies(search_filters=filters), STUDY_UID)
        assert found == stored_archive.study_uids(keep)
    else:
        found = uids(orthanc_client.search_for_series(search_filters=filters), SERIES_UID)
        assert found == stored_archive.series_uids(keep)


@pytest.mark.parametrize(
    "date_range, low, high",
    [
        ("20240101-20240102", "20240101", "20240102"),
        ("20240102", "20240102", "20240102"),
        ("20240102-", "20240102", "99991231"),
        ("-20231231", "00000000", "20231231"),
    ],
)
def test_search_study_date_range(
    orthanc_client: DICOMwebClient, stored_archive: Archive, date_range: str, low: str, high: str
) -> None:
    found = orthanc_client.search_for_studies(search_filters={"StudyDate": date_range})
    expected = stored_archive.study_uids(lambda ds: low <= ds.StudyDate <= high)
    assert expected
    assert uids(found, STUDY_UID) == expected


def test_search_limit_and_offset(orthanc_client: DICOMwebClient, stored_archive: Archive) -> None:
    everything = [first(item, STUDY_UID) for item in orthanc_client.search_for_studies()]
    assert len(everything) == len(stored_archive.study_uids()) >= 4

    def page(**kw: int) -> list[str]:
        return [first(item, STUDY_UID) for item in orthanc_client.search_for_studies(**kw)]

    assert page(limit=2) == everything[:2]
    assert page(limit=2, offset=1) == everything[1:3]
    assert page(offset=3) == everything[3:]
    assert page(offset=len(everything)) == []
    instances = orthanc_client.search_for_instances(limit=4, offset=2)
    assert len(instances) == 4


def test_search_fields_include_attribute(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    plain = {first(item, STUDY_UID): item for item in orthanc_client.search_for_studies()}
    study_uid = stored_archive.studies[0][0].StudyInstanceUID
    assert STUDY_DESCRIPTION not in plain[study_uid]  # not a default attribute
    expected = {ds.StudyInstanceUID: ds.StudyDescription for ds in stored_archive.generated}
    for fields in (["StudyDescription"], ["00081030"]):
        found = orthanc_client.search_for_studies(fields=fields)
        described = {
            first(item, STUDY_UID): first(item, STUDY_DESCRIPTION)
            for item in found
            if item.get(STUDY_DESCRIPTION, {}).get("Value")
        }
        assert {uid: described.get(uid) for uid in expected} == expected
    frames = orthanc_client.search_for_instances(
        stored_archive.multiframe.StudyInstanceUID,
        stored_archive.multiframe.SeriesInstanceUID,
        fields=["NumberOfFrames"],
    )
    assert [int(first(item, NUMBER_OF_FRAMES)) for item in frames] == [5]


def test_search_get_remaining(orthanc_client: DICOMwebClient, stored_archive: Archive) -> None:
    found = orthanc_client.search_for_instances(get_remaining=True)
    assert uids(found, SOP_UID) == stored_archive.sop_uids()
    # pages of one result each: the client has to keep asking until a page is empty
    paged = orthanc_client.search_for_instances(get_remaining=True, additional_params={"limit": 1})
    assert uids(paged, SOP_UID) == stored_archive.sop_uids()
    paged_studies = orthanc_client.search_for_studies(
        get_remaining=True, additional_params={"limit": 1}
    )
    assert uids(paged_studies, STUDY_UID) == stored_archive.study_uids()
    everything = [first(item, STUDY_UID) for item in orthanc_client.search_for_studies()]
    rest = orthanc_client.search_for_studies(get_remaining=True, offset=2)
    assert [first(item, STUDY_UID) for item in rest] == everything[2:]


def test_search_series_of_one_study(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    for study in stored_archive.studies:
        study_uid = study[0].StudyInstanceUID
        found = orthanc_client.search_for_series(study_uid)
        assert uids(found, SERIES_UID) == stored_archive.series_uids(
            lambda ds, uid=study_uid: ds.StudyInstanceUID == uid
        )
        assert {first(item, STUDY_UID) for item in found} == {study_uid}


def test_search_instances_of_one_study(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    study_uid = stored_archive.multiframe.StudyInstanceUID
    found = orthanc_client.search_for_instances(study_uid)
    assert uids(found, SOP_UID) == stored_archive.sop_uids(
        lambda ds: ds.StudyInstanceUID == study_uid
    )


def test_search_instances_of_one_series(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    ds = stored_archive.studies[1][-1]  # a series of three instances
    expected = stored_archive.sop_uids(
        lambda other: other.SeriesInstanceUID == ds.SeriesInstanceUID
    )
    assert len(expected) == 3
    within_study = orthanc_client.search_for_instances(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert uids(within_study, SOP_UID) == expected
    series_only = orthanc_client.search_for_instances(series_instance_uid=ds.SeriesInstanceUID)
    assert uids(series_only, SOP_UID) == expected


# -- WADO-RS: instances -----------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["retrieve", "iter"])
def test_retrieve_study(
    orthanc_client: DICOMwebClient, stored_archive: Archive, streamed: bool
) -> None:
    for study in stored_archive.studies:
        study_uid = study[0].StudyInstanceUID
        if streamed:
            iterator = orthanc_client.iter_study(study_uid)
            assert not isinstance(iterator, list)
            received = list(iterator)
        else:
            received = orthanc_client.retrieve_study(study_uid)
        originals = {ds.SOPInstanceUID: ds for ds in study}
        assert sorted(ds.SOPInstanceUID for ds in received) == sorted(originals)
        for ds in received:
            assert_same_pixels(ds, originals[ds.SOPInstanceUID])
            assert ds.PatientID == originals[ds.SOPInstanceUID].PatientID


@pytest.mark.parametrize("streamed", [False, True], ids=["retrieve", "iter"])
def test_retrieve_series(
    orthanc_client: DICOMwebClient, stored_archive: Archive, streamed: bool
) -> None:
    study = stored_archive.studies[0]
    series_uid = study[0].SeriesInstanceUID
    originals = {ds.SOPInstanceUID: ds for ds in study if ds.SeriesInstanceUID == series_uid}
    method = orthanc_client.iter_series if streamed else orthanc_client.retrieve_series
    received = list(method(study[0].StudyInstanceUID, series_uid))
    assert sorted(ds.SOPInstanceUID for ds in received) == sorted(originals)
    for ds in received:
        assert_same_pixels(ds, originals[ds.SOPInstanceUID])


def test_iter_and_retrieve_give_the_same(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    study_uid = stored_archive.multiframe.StudyInstanceUID
    listed = orthanc_client.retrieve_study(study_uid)
    streamed = list(orthanc_client.iter_study(study_uid))
    assert [ds.SOPInstanceUID for ds in listed] == [ds.SOPInstanceUID for ds in streamed]
    assert [bytes(ds.PixelData) for ds in listed] == [bytes(ds.PixelData) for ds in streamed]


@pytest.mark.parametrize("which", ["multiframe", "rgb", "bytes8", "CT_small.dcm", "MR_small.dcm"])
def test_retrieve_instance(
    orthanc_client: DICOMwebClient, stored_archive: Archive, which: str
) -> None:
    original = stored_archive.pydicom_files.get(which) or getattr(stored_archive, which)
    received = orthanc_client.retrieve_instance(*ids(original))
    assert_same_pixels(received, original)
    assert received.Rows == original.Rows and received.Columns == original.Columns


def test_retrieve_rle_instance_default_is_decompressed(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    original = stored_archive.rle
    received = orthanc_client.retrieve_instance(*ids(original))
    # Orthanc transcodes to Explicit VR Little Endian when no transfer syntax is asked for
    assert received.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(received.pixel_array, original.pixel_array)
    assert bytes(received.PixelData) == original.pixel_array.tobytes()


@pytest.mark.parametrize("transfer_syntax", ["*", RLELossless])
def test_retrieve_rle_instance_as_stored(
    orthanc_client: DICOMwebClient, stored_archive: Archive, transfer_syntax: str
) -> None:
    original = stored_archive.rle
    received = orthanc_client.retrieve_instance(
        *ids(original), media_types=(("application/dicom", transfer_syntax),)
    )
    assert received.file_meta.TransferSyntaxUID == RLELossless
    assert bytes(received.PixelData) == bytes(original.PixelData)  # the encapsulated bytes
    assert np.array_equal(received.pixel_array, original.pixel_array)


def test_retrieve_rle_instance_of_series(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    original = stored_archive.rle
    received = orthanc_client.retrieve_series(
        original.StudyInstanceUID,
        original.SeriesInstanceUID,
        media_types=(("application/dicom", "*"),),
    )
    assert [ds.SOPInstanceUID for ds in received] == [original.SOPInstanceUID]
    assert bytes(received[0].PixelData) == bytes(original.PixelData)


def test_retrieve_pydicom_rle_file(orthanc_client: DICOMwebClient, stored_archive: Archive) -> None:
    original = stored_archive.pydicom_files["SC_rgb_rle.dcm"]
    received = orthanc_client.retrieve_instance(*ids(original))
    assert received.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(received.pixel_array, original.pixel_array)
    as_stored = orthanc_client.retrieve_instance(
        *ids(original), media_types=(("application/dicom", "*"),)
    )
    assert bytes(as_stored.PixelData) == bytes(original.PixelData)


# -- WADO-RS: metadata and bulk data ----------------------------------------------------


def check_metadata(item: dict, original: Dataset) -> None:
    assert first(item, STUDY_UID) == original.StudyInstanceUID
    assert first(item, SERIES_UID) == original.SeriesInstanceUID
    assert first(item, SOP_UID) == original.SOPInstanceUID
    assert item[PIXEL_DATA]["BulkDataURI"]
    assert "Value" not in item[PIXEL_DATA] and "InlineBinary" not in item[PIXEL_DATA]


@pytest.mark.parametrize("which", ["plain", "multiframe", "rgb", "bytes8", "CT_small.dcm"])
def test_instance_metadata_and_bulkdata(
    orthanc_client: DICOMwebClient, stored_archive: Archive, which: str
) -> None:
    original = (
        stored_archive.studies[0][0]
        if which == "plain"
        else stored_archive.pydicom_files.get(which) or getattr(stored_archive, which)
    )
    item = orthanc_client.retrieve_instance_metadata(*ids(original))
    assert isinstance(item, dict)
    check_metadata(item, original)
    uri = item[PIXEL_DATA]["BulkDataURI"]
    assert orthanc_client.retrieve_bulkdata(uri) == [bytes(original.PixelData)]
    assert b"".join(orthanc_client.iter_bulkdata(uri)) == bytes(original.PixelData)


def test_rle_instance_metadata(orthanc_client: DICOMwebClient, stored_archive: Archive) -> None:
    original = stored_archive.rle
    item = orthanc_client.retrieve_instance_metadata(*ids(original))
    assert first(item, STUDY_UID) == original.StudyInstanceUID
    assert first(item, SOP_UID) == original.SOPInstanceUID
    assert first(item, "00280010") == original.Rows  # Rows
    # Orthanc leaves encapsulated Pixel Data out of the metadata (no BulkDataURI)


def test_series_metadata(orthanc_client: DICOMwebClient, stored_archive: Archive) -> None:
    study = stored_archive.studies[1]
    series_uid = study[-1].SeriesInstanceUID
    originals = {ds.SOPInstanceUID: ds for ds in study if ds.SeriesInstanceUID == series_uid}
    items = orthanc_client.retrieve_series_metadata(study[0].StudyInstanceUID, series_uid)
    assert isinstance(items, list)
    assert uids(items, SOP_UID) == sorted(originals)
    for item in items:
        original = originals[first(item, SOP_UID)]
        check_metadata(item, original)
        assert orthanc_client.retrieve_bulkdata(item[PIXEL_DATA]["BulkDataURI"]) == [
            bytes(original.PixelData)
        ]


def test_study_metadata(orthanc_client: DICOMwebClient, stored_archive: Archive) -> None:
    study = stored_archive.studies[0]
    originals = {ds.SOPInstanceUID: ds for ds in study}
    items = orthanc_client.retrieve_study_metadata(study[0].StudyInstanceUID)
    assert uids(items, SOP_UID) == sorted(originals)
    assert uids(items, SERIES_UID) == sorted(ds.SeriesInstanceUID for ds in study)
    for item in items:
        check_metadata(item, originals[first(item, SOP_UID)])


# -- compressed answers -----------------------------------------------------------------


def encodings_seen(client: DICOMwebClient) -> list[str | None]:
    """Register a callback on ``client`` that lists each answer's Content-Encoding."""
    seen: list[str | None] = []

    def record(response: Any) -> None:
        seen.append(response.headers.get("Content-Encoding"))

    client._callback = record
    return seen


def test_json_answers_come_compressed_and_match_uncompressed_ones(
    orthanc: Any, stored_archive: Archive
) -> None:
    compressed, plain = make_client(orthanc), make_client(orthanc)
    plain._session.headers["Accept-Encoding"] = "identity"
    seen, seen_plain = encodings_seen(compressed), encodings_seen(plain)
    study_uid = stored_archive.studies[0][0].StudyInstanceUID
    for client in (compressed, plain):
        client.results = [
            client.search_for_studies(fields=["all"]),  # type: ignore[attr-defined]
            client.search_for_instances(study_uid),
            client.retrieve_study_metadata(study_uid),
        ]
    assert compressed.results == plain.results  # type: ignore[attr-defined]
    assert seen == ["gzip"] * 3 and seen_plain == [None] * 3


def test_instances_and_frames_compressed_on_request(orthanc: Any, stored_archive: Archive) -> None:
    # Orthanc 1.10 compresses a multipart answer of one instance when asked, not the
    # ones it streams (several instances) and not frames; those must come back right too
    client = make_client(orthanc)
    client._session.headers["Accept-Encoding"] = "gzip"
    client.set_chunk_size(4096)  # many pieces of compressed input per part
    seen = encodings_seen(client)
    original = stored_archive.multiframe
    assert_same_pixels(client.retrieve_instance(*ids(original)), original)
    numbers = [5, 1, 3]
    assert client.retrieve_instance_frames(*ids(original), frame_numbers=numbers) == [
        dicom_data.frame_bytes(original, number) for number in numbers
    ]
    assert seen[0] == "gzip"


# -- WADO-RS: frames --------------------------------------------------------------------


@pytest.mark.parametrize("numbers", [[1], [2, 4], [5, 1]], ids=str)
@pytest.mark.parametrize("streamed", [False, True], ids=["retrieve", "iter"])
def test_frames_of_multiframe_instance(
    orthanc_client: DICOMwebClient, stored_archive: Archive, numbers: list[int], streamed: bool
) -> None:
    original = stored_archive.multiframe
    method = (
        orthanc_client.iter_instance_frames if streamed else orthanc_client.retrieve_instance_frames
    )
    frames = list(method(*ids(original), frame_numbers=numbers))
    assert frames == [dicom_data.frame_bytes(original, number) for number in numbers]
    assert all(len(frame) == 32 * 32 * 2 for frame in frames)


@pytest.mark.parametrize("streamed", [False, True], ids=["retrieve", "iter"])
def test_large_frames_come_back_byte_for_byte(
    orthanc_client: DICOMwebClient, scratch: list[str], streamed: bool
) -> None:
    # 512 KiB frames: a frame list kept in memory takes its own allocation path
    original = dicom_data.make_instance(
        generate_uid(), frames=4, rows=512, columns=512, bits=16, seed=77
    )
    scratch.append(original.StudyInstanceUID)
    orthanc_client.store_instances([original])
    method = (
        orthanc_client.iter_instance_frames if streamed else orthanc_client.retrieve_instance_frames
    )
    frames = list(method(*ids(original), frame_numbers=[4, 1, 3]))
    assert frames == [dicom_data.frame_bytes(original, number) for number in (4, 1, 3)]
    assert all(type(frame) is bytes and len(frame) == 512 * 512 * 2 for frame in frames)


def test_frames_of_rle_instance(orthanc_client: DICOMwebClient, stored_archive: Archive) -> None:
    original = stored_archive.rle
    decoded = orthanc_client.retrieve_instance_frames(*ids(original), [1])
    assert decoded == [original.pixel_array.tobytes()]
    for media_types in ((("application/octet-stream", "*"),), ("image/dicom-rle",)):
        as_stored = orthanc_client.retrieve_instance_frames(
            *ids(original), [1], media_types=media_types
        )
        assert as_stored == [dicom_data.frame_bytes(original, 1)], media_types


@pytest.mark.parametrize("which, numbers", [("bytes8", [1, 3]), ("rgb", [1])])
def test_frames_as_jpeg(
    orthanc_client: DICOMwebClient, stored_archive: Archive, which: str, numbers: list[int]
) -> None:
    original = getattr(stored_archive, which)
    frames = orthanc_client.retrieve_instance_frames(
        *ids(original), numbers, media_types=("image/jpeg",)
    )
    assert len(frames) == len(numbers)
    for frame in frames:
        assert frame.startswith(JPEG_START) and frame.rstrip(b"\x00").endswith(JPEG_END)
    assert len(set(frames)) == len(frames)  # different frames, different images


@pytest.mark.parametrize(
    "which, numbers, tolerance",
    [
        ("bytes8", [2, 1], 12),
        # chroma subsampling makes baseline JPEG of random RGB noise far off: shape only
        ("rgb", [1], None),
    ],
)
def test_frames_as_baseline_jpeg(
    orthanc_client: DICOMwebClient,
    stored_archive: Archive,
    which: str,
    numbers: list[int],
    tolerance: int | None,
) -> None:
    image_module = pytest.importorskip("PIL.Image")
    original = getattr(stored_archive, which)
    frames = orthanc_client.retrieve_instance_frames(
        *ids(original), numbers, media_types=(("image/jpeg", JPEG_BASELINE),)
    )
    pixels = original.pixel_array
    if int(original.get("NumberOfFrames", 1)) == 1:
        pixels = pixels[np.newaxis]
    for frame, number in zip(frames, numbers):
        decoded = np.asarray(image_module.open(io.BytesIO(frame)))
        expected = pixels[number - 1]
        assert decoded.shape == expected.shape
        if tolerance is not None:  # lossy, but close
            assert np.abs(decoded.astype(int) - expected.astype(int)).mean() < tolerance


# -- WADO-RS: rendered ------------------------------------------------------------------


MAGIC = {"image/png": PNG_SIGNATURE, "image/jpeg": JPEG_START}


@pytest.mark.parametrize("media_type", ["image/png", "image/jpeg"])
@pytest.mark.parametrize("level", ["instance", "series", "frame"])
def test_rendered(
    orthanc_client: DICOMwebClient, stored_archive: Archive, level: str, media_type: str
) -> None:
    original = stored_archive.multiframe
    study_uid, series_uid, sop_uid = ids(original)
    if level == "instance":
        image = orthanc_client.retrieve_instance_rendered(
            study_uid, series_uid, sop_uid, media_types=(media_type,)
        )
    elif level == "series":
        image = orthanc_client.retrieve_series_rendered(
            study_uid, series_uid, media_types=(media_type,)
        )
    else:
        image = orthanc_client.retrieve_instance_frames_rendered(
            study_uid, series_uid, sop_uid, [3], media_types=(media_type,)
        )
    assert image.startswith(MAGIC[media_type])
    image_module = pytest.importorskip("PIL.Image")
    assert image_module.open(io.BytesIO(image)).size == (original.Columns, original.Rows)


def test_rendered_default_is_jpeg_and_frames_differ(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    original = stored_archive.rgb
    assert orthanc_client.retrieve_instance_rendered(*ids(original)).startswith(JPEG_START)
    multiframe = stored_archive.multiframe
    second, fourth = (
        orthanc_client.retrieve_instance_frames_rendered(
            *ids(multiframe), [number], media_types=("image/png",)
        )
        for number in (2, 4)
    )
    assert second.startswith(PNG_SIGNATURE) and fourth.startswith(PNG_SIGNATURE)
    assert second != fourth


def test_rendered_quality_parameter(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    original = stored_archive.bytes8
    low, high = (
        orthanc_client.retrieve_instance_rendered(
            *ids(original), media_types=("image/jpeg",), params={"quality": quality}
        )
        for quality in (10, 95)
    )
    assert low.startswith(JPEG_START) and high.startswith(JPEG_START)
    assert len(low) < len(high)


@pytest.mark.parametrize("level", ["instance", "series", "frame"])
def test_rendered_viewport_parameter(
    orthanc_client: DICOMwebClient, stored_archive: Archive, level: str
) -> None:
    image_module = pytest.importorskip("PIL.Image")
    study_uid, series_uid, sop_uid = ids(stored_archive.multiframe)
    params = {"viewport": "8,8"}
    if level == "instance":
        image = orthanc_client.retrieve_instance_rendered(
            study_uid, series_uid, sop_uid, media_types=("image/png",), params=params
        )
    elif level == "series":
        image = orthanc_client.retrieve_series_rendered(
            study_uid, series_uid, media_types=("image/png",), params=params
        )
    else:
        image = orthanc_client.retrieve_instance_frames_rendered(
            study_uid, series_uid, sop_uid, [2], media_types=("image/png",), params=params
        )
    assert image_module.open(io.BytesIO(image)).size == (8, 8)


# -- keep-alive -------------------------------------------------------------------------


def test_search_after_server_closed_idle_connection(orthanc: Any, stored_archive: Archive) -> None:
    client = make_client(orthanc)
    before = uids(client.search_for_studies(), STUDY_UID)
    time.sleep(IDLE_LONGER_THAN_KEEP_ALIVE)
    after = uids(client.search_for_studies(), STUDY_UID)
    assert before == after == stored_archive.study_uids()


def test_store_after_server_closed_idle_connection(
    orthanc: Any, stored_archive: Archive, scratch: list[str]
) -> None:
    client = make_client(orthanc)
    assert client.search_for_studies(limit=1)  # leaves a pooled connection behind
    datasets = extra_study("IDLE")
    scratch.append(datasets[0].StudyInstanceUID)
    time.sleep(IDLE_LONGER_THAN_KEEP_ALIVE)
    report = client.store_instances(datasets)
    assert referenced_uids(report) == sorted(ds.SOPInstanceUID for ds in datasets)
    found = client.search_for_instances(datasets[0].StudyInstanceUID)
    assert uids(found, SOP_UID) == sorted(ds.SOPInstanceUID for ds in datasets)


# -- errors -----------------------------------------------------------------------------


def test_missing_study_raises_404_with_server_message(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    missing = generate_uid()
    with pytest.raises(HTTPError) as info:
        orthanc_client.retrieve_study(missing)
    error = info.value
    assert error.status_code == 404
    assert error.method == "GET"
    assert missing in error.url
    assert "404" in str(error)
    assert "Accessing an inexistent study" in str(error)  # Orthanc's own words
    assert error.response is not None and error.response.status_code == 404


def test_a_client_given_the_server_root_is_told_where_dicomweb_may_be(
    orthanc: Any, stored_archive: Archive
) -> None:
    session = create_session()
    session.trust_env = False
    client = DICOMwebClient(orthanc.rest_url, session=session)  # not .../dicom-web
    # Orthanc's own REST API answers /studies with a JSON list of its study IDs
    with pytest.raises(ValueError, match="not a DICOM JSON array") as info:
        client.search_for_studies()
    assert f"no DICOMweb search service answers at {orthanc.rest_url};" in str(info.value)
    assert "serves DICOMweb under /dicom-web" in str(info.value)


def test_missing_instance_metadata_raises_404(
    orthanc_client: DICOMwebClient, stored_archive: Archive
) -> None:
    ds = stored_archive.studies[0][0]
    with pytest.raises(HTTPError) as info:
        orthanc_client.retrieve_instance_metadata(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, generate_uid()
        )
    assert info.value.status_code == 404
    assert "inexistent instance" in str(info.value)


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_delete_is_refused_by_orthanc(
    orthanc_client: DICOMwebClient, stored_archive: Archive, level: str
) -> None:
    ds = stored_archive.studies[1][0]
    arguments = {"study": ids(ds)[:1], "series": ids(ds)[:2], "instance": ids(ds)}[level]
    with pytest.raises(HTTPError) as info:
        getattr(orthanc_client, f"delete_{level}")(*arguments)
    error = info.value
    assert error.status_code == 405
    assert error.method == "DELETE"
    assert error.url.endswith(arguments[-1])
    text = str(error)
    assert "405" in text and "Method Not Allowed" in text and "DELETE" in text
    # nothing was deleted
    assert orthanc_client.search_for_instances(ds.StudyInstanceUID, ds.SeriesInstanceUID)


def test_requests_http_error_catches_404(
    orthanc_client: DICOMwebClient, stored_archive: Archive, requests_module: types.ModuleType
) -> None:
    missing = generate_uid()
    with pytest.raises(requests_module.exceptions.HTTPError) as info:
        orthanc_client.retrieve_study(missing)
    assert isinstance(info.value, HTTPError)
    assert info.value.status_code == 404
    assert info.value.response.status_code == 404
    try:
        orthanc_client.retrieve_study_metadata(missing)
    except requests_module.exceptions.RequestException as error:  # the base class too
        assert "404" in str(error)
    else:
        pytest.fail("no error for a missing study")


def test_server_error_is_not_retried_by_default(
    orthanc_client: DICOMwebClient, stored_archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    fake_time = types.SimpleNamespace(sleep=waits.append, monotonic=time.monotonic, time=time.time)
    monkeypatch.setattr(dicomweb_client, "time", fake_time)
    # Orthanc cannot make baseline JPEG out of 16-bit frames and answers 500
    with pytest.raises(HTTPError) as info:
        orthanc_client.retrieve_instance_frames(
            *ids(stored_archive.multiframe), [1], media_types=(("image/jpeg", JPEG_BASELINE),)
        )
    assert info.value.status_code == 500
    assert waits == []
