"""Tests of cohort downloads: :func:`dicomweb_client.read_manifest` and
``dicomweb_client retrieve --manifest``.

The downloads run against :class:`FakeArchive` (the small DICOMweb server of
``test_cli.py``, over real sockets) and against a ``file://`` folder archive; the pipe
``search series | retrieve --manifest -`` runs as two processes.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

import dicom_data
import dicomweb_client
from dicomweb_client import CohortItem, read_manifest
import dicomweb_client_cli
from dicomweb_client_cli import main
from recording_server import RecordingServer, Response
from fake_archive import FakeArchive, expected_layout, tree
from helpers import child_env, cli_command, read_pty

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run(*args: object) -> int:
    return main([str(arg) for arg in args])


def items(lines: list[str]) -> list[str]:
    return [str(item) for item in read_manifest(lines)]


def search_json(*datasets: Dataset) -> dict:
    """A series search result as the CLI's ``search series`` prints one (DICOM JSON)."""
    ds = datasets[0]
    return {
        "00080060": {"vr": "CS", "Value": [ds.Modality]},
        "0020000D": {"vr": "UI", "Value": [ds.StudyInstanceUID]},
        "0020000E": {"vr": "UI", "Value": [ds.SeriesInstanceUID]},
        "00201209": {"vr": "IS", "Value": [len(datasets)]},
    }


# -- read_manifest ----------------------------------------------------------------------------


def test_uid_lines_with_any_separator_comments_and_blank_lines() -> None:
    lines = [
        "# a cohort\n",
        "1.2.3\n",
        "\n",
        "   \n",
        "1.2.3/4.5\n",
        "1.2.3, 4.5 ,6.7\n",
        "  1.2.3\t4.5  6.8   # trailing comment\n",
        "1.2.4 / 4.6\n",
    ]
    assert items(lines) == ["1.2.3", "1.2.3/4.5", "1.2.3/4.5/6.7", "1.2.3/4.5/6.8", "1.2.4/4.6"]


def test_lines_may_be_bytes_with_a_byte_order_mark() -> None:
    got = list(read_manifest(io.BytesIO(b"\xef\xbb\xbf1.2.3/4.5\r\n1.2.9\r\n")))
    assert got == [CohortItem("1.2.3", "4.5"), CohortItem("1.2.9")]


def test_csv_with_a_header_in_any_order_and_extra_columns() -> None:
    lines = [
        "# exported from a spreadsheet",
        "PatientID,SOPInstanceUID,seriesinstanceuid, StudyInstanceUID ,Note",
        'P1,6.7,4.5,1.2.3,"a, quoted note"',
        "P1,,4.5,1.2.3,series",
        "P2,,,1.2.9,study",
        "",
        "P3,,,1.2.10",  # a short row: the missing cells are empty
    ]
    assert items(lines) == ["1.2.3/4.5/6.7", "1.2.3/4.5", "1.2.9", "1.2.10"]


def test_csv_with_only_some_columns() -> None:
    assert items(["StudyInstanceUID", "1.2.3", "1.2.4"]) == ["1.2.3", "1.2.4"]
    assert items(["SeriesInstanceUID,StudyInstanceUID", "4.5,1.2.3", ",1.2.4"]) == [
        "1.2.3/4.5",
        "1.2.4",
    ]


def test_dicom_json_array_on_one_line_and_one_object_per_line() -> None:
    a = dicom_data.make_study(1, 2)
    b = dicom_data.make_study(1, 1)
    array = json.dumps([search_json(*a), search_json(*b)])
    expected = [f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}" for ds in (a[0], b[0])]
    assert items([array + "\n"]) == expected
    assert items([json.dumps(search_json(*a)), json.dumps(search_json(*b))]) == expected
    instance = {
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "0020000E": {"vr": "UI", "Value": ["4.5"]},
        "00080018": {"vr": "UI", "Value": ["6.7"]},
    }
    study = {"0020000D": {"vr": "UI", "Value": ["1.2.3"]}, "0020000E": {"vr": "UI"}}
    assert items([json.dumps(instance), json.dumps(study), "[]"]) == ["1.2.3/4.5/6.7", "1.2.3"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["1.2.3", "", "1.2.x"], "line 3: StudyInstanceUID '1.2.x' is not a valid DICOM UID"),
        (["1.2.3/4..5"], "line 1: SeriesInstanceUID '4..5' is not a valid DICOM UID"),
        (["# c", "1/2/3/4"], "line 2: 4 UIDs where a study, series and instance UID"),
        (["1.2.3", "1.2.3/4.5/" + "9" * 65], "line 2: SOPInstanceUID '999"),
        (["Note,SeriesInstanceUID", "a,1.2"], "line 1: the CSV header names no StudyInstanceUID"),
        (
            ["StudyInstanceUID,SOPInstanceUID", "1.2,3.4"],
            "line 1: the CSV header names a SOPInstanceUID column but no SeriesInstanceUID",
        ),
        (["StudyInstanceUID,SeriesInstanceUID", "1.2,3.4", ",3.5"], "line 3: no Study Instance"),
        (['[{"0020000D": {"vr": "UI", "Value": ["1.2"]}}]', "{"], "line 2: not JSON"),
        (['{"0020000E": {"vr": "UI", "Value": ["1.2"]}}'], "line 1: no Study Instance UID"),
        (['[{"0020000D": {"vr": "UI", "Value": [12]}}]'], "line 1: StudyInstanceUID 12 is not"),
        (["[1, 2]"], "line 1: a DICOM JSON object was expected"),
        (
            ['{"0020000D": {"Value": ["1.2"]}, "00080018": {"Value": ["1.3"]}}'],
            "line 1: an instance without its Series Instance UID",
        ),
    ],
)
def test_errors_name_the_line(lines: list[str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        list(read_manifest(lines))
    assert str(caught.value).startswith(message), str(caught.value)


def test_permissive_accepts_uids_that_stay_one_path_segment() -> None:
    assert [str(item) for item in read_manifest(["ABC/de-f"], permissive=True)] == ["ABC/de-f"]
    with pytest.raises(ValueError, match="line 1: "):
        list(read_manifest(["ABC/de-f"]))


@pytest.mark.parametrize("header", [[], ["StudyInstanceUID,SeriesInstanceUID"]])
def test_lines_are_read_as_the_items_are_asked_for(header: list[str]) -> None:
    read: list[int] = []

    def endless() -> Iterator[str]:
        yield from header
        number = 0
        while True:
            number += 1
            read.append(number)
            yield f"1.2.{number},4.{number}"

    parsed = read_manifest(endless())
    assert next(parsed) == CohortItem("1.2.1", "4.1")
    assert next(parsed) == CohortItem("1.2.2", "4.2")
    assert read == [1, 2]


def test_cohort_item() -> None:
    item = CohortItem("1.2", "3.4", "5.6")
    assert (str(item), item.level) == ("1.2/3.4/5.6", "instance")
    assert (CohortItem("1.2").level, CohortItem("1.2", "3.4").level) == ("study", "series")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.study = "9"  # type: ignore[misc]
    with pytest.raises(ValueError, match="Series Instance UID"):
        CohortItem("1.2", sop="5.6")
    assert {"CohortItem", "read_manifest"} <= set(dicomweb_client.__all__)


# -- retrieve --manifest ---------------------------------------------------------------------


@pytest.fixture
def archive(recording_server: RecordingServer) -> FakeArchive:
    return FakeArchive(recording_server)


@pytest.fixture
def cohort(archive: FakeArchive) -> list[list[Dataset]]:
    """Three studies: two series of three instances, one of two, one of two."""
    studies = [
        dicom_data.make_study(2, 3),
        dicom_data.make_study(1, 2),
        dicom_data.make_study(1, 2),
    ]
    for datasets in studies:
        archive.add(datasets)
    return studies


def write_manifest(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def cohort_manifest(tmp_path: Path, cohort: list[list[Dataset]]) -> Path:
    """A study, a series (as CSV would not: as UID lines) and two instances one by one."""
    a, b, c = cohort
    return write_manifest(
        tmp_path / "cohort.txt",
        [
            "# the cohort",
            a[0].StudyInstanceUID,
            f"{b[0].StudyInstanceUID}/{b[0].SeriesInstanceUID}",
            f"{c[0].StudyInstanceUID} {c[0].SeriesInstanceUID} {c[0].SOPInstanceUID}",
            f"{c[1].StudyInstanceUID},{c[1].SeriesInstanceUID},{c[1].SOPInstanceUID}",
        ],
    )


def report_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_manifest_download_gets_every_instance_once_byte_for_byte(
    archive: FakeArchive,
    cohort: list[list[Dataset]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    manifest = cohort_manifest(tmp_path, cohort)
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    url = archive.url
    args = ("--url", url, "retrieve", "--manifest", manifest, "--output-dir", out)
    assert run(*args, "--workers", "3", "--report", report) == 0
    everything = [ds for datasets in cohort for ds in datasets]
    assert tree(out) == expected_layout(archive, everything)
    fetched = [request.path for request in archive.wado_requests()]
    assert len(fetched) == len(set(fetched)) == len(everything) == 10
    assert capsys.readouterr().out == (
        f"4 items: 4 ok, 0 failed; 10 files downloaded, 0 already present, 0 failed: {out}\n"
    )
    lines = report_lines(report)
    assert [line["item"] for line in lines] == [str(item) for item in read_manifest(open(manifest))]
    assert [(line["files"], line["status"], line["error"]) for line in lines] == [
        (6, "ok", None),
        (2, "ok", None),
        (1, "ok", None),
        (1, "ok", None),
    ]
    assert sum(line["bytes"] for line in lines) == sum(len(data) for data in tree(out).values())

    # again: nothing is fetched, and the report says the files are there
    archive.server.requests.clear()
    assert run(*args, "--report", report) == 0
    assert archive.wado_requests() == []
    assert capsys.readouterr().out == (
        f"4 items: 4 ok, 0 failed; 0 files downloaded, 10 already present, 0 failed: {out}\n"
    )
    assert [
        (line["files"], line["downloaded"], line["present"]) for line in report_lines(report)
    ] == [
        (6, 0, 6),
        (2, 0, 2),
        (1, 0, 1),
        (1, 0, 1),
    ]
    assert tree(out) == expected_layout(archive, everything)


def test_a_failing_item_exits_1_with_a_failed_report_line_while_the_others_land(
    archive: FakeArchive,
    cohort: list[list[Dataset]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    a, b, c = cohort
    broken = a[4]  # in the second series of the first study
    archive.break_once[broken.SOPInstanceUID] = Response(status=500, body=b"disk on fire")
    manifest = write_manifest(
        tmp_path / "m.csv",
        [
            "StudyInstanceUID,SeriesInstanceUID,SOPInstanceUID",
            f"{a[0].StudyInstanceUID},,",
            "1.2.3.4.5,,",  # a study the server does not know
            f"{c[0].StudyInstanceUID},{c[0].SeriesInstanceUID},1.2.3.99",  # no such instance
            f"{b[0].StudyInstanceUID},{b[0].SeriesInstanceUID},",
        ],
    )
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    args = ("--url", archive.url, "retrieve", "--manifest", manifest, "--output-dir", out)
    assert run(*args, "--report", report) == 1
    captured = capsys.readouterr()
    assert captured.out == (
        f"4 items: 1 ok, 3 failed; 7 files downloaded, 0 already present, 2 failed: {out}\n"
    )
    assert f"error: instance {broken.SOPInstanceUID}: 500 " in captured.err
    assert "error: 1.2.3.4.5: the server listed no instances of the study" in captured.err
    lines = report_lines(report)
    assert [(line["status"], line["files"]) for line in lines] == [
        ("failed", 5),
        ("failed", 0),
        ("failed", 0),
        ("ok", 2),
    ]
    assert lines[0]["error"].startswith(f"instance {broken.SOPInstanceUID}: 500 ")
    assert lines[1]["error"] == "the server listed no instances of the study"
    assert lines[2]["error"].startswith("instance 1.2.3.99: 404 ")
    landed = [ds for ds in a + b if ds is not broken]
    assert tree(out) == expected_layout(archive, landed)

    # the next run fetches only what failed (the broken instance is served now)
    archive.server.requests.clear()
    assert run(*args) == 1  # the unknown study and instance still fail
    assert sorted(request.path.rsplit("/", 1)[1] for request in archive.wado_requests()) == sorted(
        [broken.SOPInstanceUID, "1.2.3.99"]
    )
    assert tree(out) == expected_layout(archive, a + b)


def shard_archive(archive: FakeArchive) -> list[Dataset]:
    """Fixed UIDs, so that which shard each series falls in is the same on every run."""
    datasets = []
    for study in range(1, 4):
        for series in range(1, 4):
            for number in range(1, 3):
                datasets.append(
                    dicom_data.make_instance(
                        study_uid=f"1.2.826.0.1.3680043.10.1.{study}",
                        series_uid=f"1.2.826.0.1.3680043.10.1.{study}.{series}",
                        sop_uid=f"1.2.826.0.1.3680043.10.1.{study}.{series}.{number}",
                        rows=4,
                        columns=4,
                        instance_number=number,
                    )
                )
    return archive.add(datasets)


def test_shards_cover_the_manifest_exactly_once_and_never_split_a_series(
    archive: FakeArchive, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    datasets = shard_archive(archive)
    by_series: dict[tuple[str, str], list[Dataset]] = {}
    for ds in datasets:
        by_series.setdefault((ds.StudyInstanceUID, ds.SeriesInstanceUID), []).append(ds)
    series = list(by_series.values())
    lines = [f"{s[0].StudyInstanceUID}/{s[0].SeriesInstanceUID}" for s in series[:6]]
    # and the instances of two series as items of their own
    lines += [
        f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}" for ds in series[6]
    ]
    lines += [
        f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}" for ds in series[7]
    ]
    manifest = write_manifest(tmp_path / "m.txt", lines)
    kept: list[list[str]] = []
    trees = []
    for k in (1, 2):
        out, report = tmp_path / f"out{k}", tmp_path / f"report{k}.jsonl"
        assert (
            run(
                "--url",
                archive.url,
                "retrieve",
                "--manifest",
                manifest,
                "--output-dir",
                out,
                "--report",
                report,
                "--shard",
                f"{k}/2",
            )
            == 0
        )
        assert f" (shard {k}/2): " in capsys.readouterr().out
        kept.append([line["item"] for line in report_lines(report)])
        trees.append(tree(out))
    assert all(kept)  # each shard has some of it (fixed UIDs: always the same shares)
    assert sorted(kept[0] + kept[1]) == sorted(lines)
    # the documented rule: CRC-32 of "<study>/<series>" modulo N
    for k, shard in enumerate(kept):
        for item in shard:
            key = "/".join(item.split("/")[:2])
            assert zlib.crc32(key.encode()) % 2 == k
    # no series has files in both shards, and together they are the whole manifest
    folders = [{path.rsplit("/", 1)[0] for path in files} for files in trees]
    assert not folders[0] & folders[1]
    assert {**trees[0], **trees[1]} == expected_layout(
        archive, [ds for s in series[:8] for ds in s]
    )


def test_a_study_item_is_sharded_by_its_study() -> None:
    study = CohortItem("1.2.3")
    assert study.shard(5) == zlib.crc32(b"1.2.3") % 5
    assert CohortItem("1.2.3", "4.5", "6").shard(7) == CohortItem("1.2.3", "4.5").shard(7)


def test_a_manifest_with_an_error_downloads_nothing(
    archive: FakeArchive,
    cohort: list[list[Dataset]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    a = cohort[0]
    manifest = write_manifest(tmp_path / "m.txt", [a[0].StudyInstanceUID, "", "not-a-uid"])
    report = tmp_path / "report.jsonl"
    args = ("--url", archive.url, "retrieve", "--manifest", manifest, "--output-dir", tmp_path)
    assert run(*args, "--report", report) == 1
    assert capsys.readouterr().err == (
        f"dicomweb_client: error: {manifest}: line 3: StudyInstanceUID 'not-a-uid' is not a "
        "valid DICOM UID (digits separated by dots, at most 64 characters); permissive mode "
        "(permissive=True, or permissive_uid=True for the client) accepts non-conformant UIDs\n"
    )
    assert archive.server.requests == []
    assert not report.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retrieve"], "retrieve needs an information entity"),
        (["retrieve", "--manifest", "m"], "--manifest needs --output-dir"),
        (["retrieve", "--shard", "1/2", "studies", "--study", "1.2", "full"], "--shard before"),
        (
            [
                "retrieve",
                "--manifest",
                "m",
                "--output-dir",
                "d",
                "studies",
                "--study",
                "1.2",
                "full",
            ],
            "give either --manifest or an information entity",
        ),
        (["retrieve", "--manifest", "m", "--output-dir", "d", "--shard", "3/2"], "'3/2' is not a"),
        (["retrieve", "--manifest", "m", "--output-dir", "d", "--shard", "0/2"], "'0/2' is not a"),
    ],
)
def test_argument_errors(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert run("--url", "http://127.0.0.1:9", *args) == 2
    assert message in capsys.readouterr().err


def test_manifest_from_standard_input(
    archive: FakeArchive,
    cohort: list[list[Dataset]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    b = cohort[1]
    text = json.dumps([search_json(*b)]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    out = tmp_path / "out"
    assert run("--url", archive.url, "retrieve", "--manifest", "-", "--output-dir", out) == 0
    assert tree(out) == expected_layout(archive, b)
    assert capsys.readouterr().out.startswith("1 item: 1 ok, 0 failed; 2 files downloaded")


def test_search_series_piped_into_retrieve_manifest(archive_folder: Path, tmp_path: Path) -> None:
    """The shell pipeline, in two processes, from a file:// archive."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    command = [sys.executable, "-m", "dicomweb_client_cli", "--url", archive_folder.as_uri()]
    out = tmp_path / "out"
    search = subprocess.Popen([*command, "search", "series"], stdout=subprocess.PIPE, env=env)
    retrieve = subprocess.run(
        [*command, "retrieve", "--manifest", "-", "--output-dir", out],
        stdin=search.stdout,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert search.stdout is not None
    search.stdout.close()
    assert search.wait(timeout=60) == 0
    assert retrieve.returncode == 0, retrieve.stderr
    assert retrieve.stdout == (
        f"6 items: 6 ok, 0 failed; 12 files downloaded, 0 already present, 0 failed: {out}\n"
    )
    archived = sorted(path.read_bytes() for path in archive_folder.rglob("*.dcm"))
    saved = list(out.rglob("*.dcm"))
    assert sorted(path.read_bytes() for path in saved) == archived
    assert len({path.parent for path in saved}) == 6  # <study>/<series>/ folders


# -- download_cohort: one queue of instances for every item ----------------------------------


def instance_lines(datasets: list[Dataset]) -> list[str]:
    return [f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}" for ds in datasets]


def test_the_instances_of_every_item_share_the_workers(
    archive: FakeArchive, tmp_path: Path
) -> None:
    """A manifest of one instance a line is fetched ``workers`` at a time, and the items
    are handed on in the manifest's order although the first one is the slowest."""
    datasets = archive.add(dicom_data.make_study(2, 6, rows=4, columns=4))
    archive.delay = 0.05
    archive.first_delays = [0.4]
    out = tmp_path / "out"
    results: list[dicomweb_client.CohortItemResult] = []
    client = dicomweb_client.DICOMwebClient(archive.url)
    totals = dicomweb_client.download_cohort(
        client, read_manifest(instance_lines(datasets)), out, workers=4, on_item=results.append
    )
    assert archive.max_in_flight == 4
    assert [str(result.item) for result in results] == instance_lines(datasets)
    assert all(result.status == "ok" and result.files == 1 for result in results)
    assert (totals.items, totals.items_ok, totals.downloaded, totals.failed) == (12, 12, 12, 0)
    assert totals.nbytes == sum(len(archive.files[ds.SOPInstanceUID]) for ds in datasets)
    assert tree(out) == expected_layout(archive, datasets)


def test_the_manifest_is_read_only_as_far_as_the_workers_need(
    archive: FakeArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays bounded whatever the manifest's length: items are taken from it only
    while no instance waits for a worker, and at most MAX_WAITING_RESULTS finished items
    wait for a slow one before them."""
    datasets = archive.add(dicom_data.make_study(1, 40, rows=4, columns=4))
    archive.first_delays = [0.3]  # the head of the manifest holds the others up
    monkeypatch.setattr(dicomweb_client._CohortRun, "MAX_WAITING_RESULTS", 5)
    taken = 0

    def lines() -> Iterator[str]:
        nonlocal taken
        for line in instance_lines(datasets):
            taken += 1
            yield line

    ahead: list[int] = []
    reported = 0

    def on_item(result: dicomweb_client.CohortItemResult) -> None:
        nonlocal reported
        reported += 1
        ahead.append(taken - reported)

    client = dicomweb_client.DICOMwebClient(archive.url)
    totals = dicomweb_client.download_cohort(
        client, read_manifest(lines()), tmp_path / "out", workers=2, on_item=on_item
    )
    assert totals.downloaded == reported == 40
    assert max(ahead) <= 5


def test_a_file_archive_as_the_source(archive_folder: Path, tmp_path: Path) -> None:
    with dicomweb_client.DICOMfileClient(archive_folder.as_uri()) as client:
        series = client.search_for_series()
        manifest = [
            f"{item['0020000D']['Value'][0]}/{item['0020000E']['Value'][0]}" for item in series
        ] + ["1.2.3.4.5"]
        errors: list[str] = []
        totals = dicomweb_client.download_cohort(
            client,
            read_manifest(manifest),
            tmp_path / "out",
            workers=4,
            on_error=lambda message, error: errors.append(message),
        )
    assert (totals.items_ok, totals.items_failed, totals.downloaded) == (6, 1, 12)
    assert errors == ["1.2.3.4.5: the archive holds no instances of the study"]
    archived = sorted(path.read_bytes() for path in archive_folder.rglob("*.dcm"))
    assert sorted(path.read_bytes() for path in (tmp_path / "out").rglob("*.dcm")) == archived


def test_failures_are_logged_when_no_one_listens(
    archive: FakeArchive, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = dicomweb_client.DICOMwebClient(archive.url)
    with caplog.at_level("WARNING", logger="dicomweb_client"):
        totals = dicomweb_client.download_cohort(client, [CohortItem("1.2.3")], tmp_path / "out")
    assert totals.items_failed == 1
    assert "1.2.3: the server listed no instances of the study" in caplog.text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 0}, "workers must be a positive integer"),
        ({"workers": True}, "workers must be a positive integer"),
        ({"shard": (0, 2)}, "1 <= K <= N"),
        ({"shard": (3, 2)}, "1 <= K <= N"),
        ({"shard": "1/2"}, "shard must be"),
    ],
)
def test_download_cohort_argument_errors(options: dict, message: str, tmp_path: Path) -> None:
    client = dicomweb_client.DICOMwebClient("http://127.0.0.1:9")
    with pytest.raises(ValueError, match=re.escape(message)):
        dicomweb_client.download_cohort(client, [], tmp_path, **options)


def test_an_unsafe_uid_of_an_item_fails_that_item_only(
    archive: FakeArchive, tmp_path: Path
) -> None:
    datasets = archive.add(dicom_data.make_study(1, 1))
    client = dicomweb_client.DICOMwebClient(archive.url)
    results: list[dicomweb_client.CohortItemResult] = []
    dicomweb_client.download_cohort(
        client,
        [CohortItem("..", "x"), *read_manifest(instance_lines(datasets))],
        tmp_path / "out",
        on_item=results.append,
        on_error=lambda message, error: None,
    )
    assert [result.status for result in results] == ["failed", "ok"]
    assert results[0].error == "UID '..' cannot name a folder or file"
    assert archive.server.requests[0].path.endswith(datasets[0].SOPInstanceUID)


def test_the_cohort_progress_line() -> None:
    stream = io.StringIO()
    progress = dicomweb_client_cli._CohortProgress(enabled=True, stream=stream)
    totals = dicomweb_client.CohortTotals(
        items=3,
        items_total=10,
        items_listed=3,
        items_ok=2,
        listed=30,
        downloaded=19,
        failed=1,
        nbytes=2_000_000,
        elapsed=2.0,
    )
    progress.show(totals)
    line = stream.getvalue()
    assert line.startswith("\rcohort 2/10 items")  # 80 columns: no room for a bar
    assert len(line) <= 80
    for part in ("2/10 items", "20/30 files", "/s", "1 failed", "ETA 0:08"):
        assert part in line
    assert totals.eta == pytest.approx(80 / 9.5)
    progress.close()
    assert stream.getvalue().endswith("\n")


def test_a_terminal_shows_one_progress_line_for_the_cohort(
    archive: FakeArchive, cohort: list[list[Dataset]], tmp_path: Path
) -> None:
    manifest = cohort_manifest(tmp_path, cohort)
    command = cli_command(
        "--url", archive.url, "retrieve", "--manifest", manifest, "--output-dir", tmp_path / "out"
    )
    master, slave = pty.openpty()
    child = subprocess.Popen(
        command, env=child_env(COLUMNS="150"), stdout=subprocess.DEVNULL, stderr=slave
    )
    os.close(slave)
    try:
        err = read_pty(master, child)
    finally:
        os.close(master)
    assert child.returncode == 0
    final = err.decode().replace("\r\n", "\n").split("\r")[-1]
    assert "cohort [" in final and "4/4 items" in final and "10/10 files" in final
    assert b"ETA" not in err.split(b"\r")[-1]  # nothing is left to wait for at the end


def test_media_type_goes_with_a_manifest(
    archive: FakeArchive, cohort: list[list[Dataset]], tmp_path: Path
) -> None:
    a = cohort[0]
    manifest = write_manifest(tmp_path / "m.txt", instance_lines(a[:1]))
    media_type = "application/dicom 1.2.840.10008.1.2.1"
    args = ("--url", archive.url, "retrieve", "--manifest", manifest, "--output-dir", tmp_path)
    assert run(*args, "--media-type", media_type) == 0
    accept = archive.wado_requests()[0].header("Accept")
    assert 'type="application/dicom"' in accept
    assert "transfer-syntax=1.2.840.10008.1.2.1" in accept


def test_media_type_before_an_entity_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    argv = ["--url", "http://127.0.0.1:9", "retrieve", "--media-type", "application/dicom"]
    assert run(*argv, "--workers", "2", "studies", "--study", "1.2", "full") == 2
    assert (
        "--workers, --media-type before the information entity only go with --manifest"
        in capsys.readouterr().err
    )


# -- stopped at any moment ----------------------------------------------------------------------


def dcm_files(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.dcm"))


def test_killed_again_and_again_a_rerun_leaves_every_instance_once_byte_for_byte(
    archive: FakeArchive, tmp_path: Path
) -> None:
    """kill -9 in the middle of a download, four times; the next run completes it: every
    instance on disk once, byte for byte, nothing else in the folder, and nothing that
    was on disk fetched again."""
    studies = [archive.add(dicom_data.make_study(2, 20, rows=32, columns=32)) for _ in range(2)]
    everything = [ds for study in studies for ds in study]
    archive.delay = 0.01
    a, b = studies
    manifest = write_manifest(
        tmp_path / "cohort.txt",
        [a[0].StudyInstanceUID, f"{b[0].StudyInstanceUID}/{b[0].SeriesInstanceUID}"]
        + instance_lines(b[20:]),
    )
    out = tmp_path / "out"
    command = cli_command(
        "--url", archive.url, "retrieve", "--manifest", manifest, "--output-dir", out
    ) + ["--workers", "4"]
    on_disk = []
    for kill_after in (10, 20, 30, 40):
        child = subprocess.Popen(
            command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while out.exists() is False or dcm_files(out) < kill_after:
            assert child.poll() is None, "the download ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        on_disk.append(dcm_files(out))
    assert on_disk == sorted(on_disk) and on_disk[-1] < len(everything)
    present = {path.stem for path in out.rglob("*.dcm")}
    archive.server.requests.clear()
    final = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert f"{len(everything) - len(present)} files downloaded, {len(present)} already" in (
        final.stdout
    )
    fetched = [request.path.rsplit("/", 1)[1] for request in archive.wado_requests()]
    assert len(fetched) == len(set(fetched)) == len(everything) - len(present)
    assert not present & set(fetched)
    assert tree(out) == expected_layout(archive, everything)  # no temporary or other file


def test_the_cohort_benchmark_runs_and_checks_what_it_downloads(tmp_path: Path) -> None:
    """``benchmarks/cohort.py --quick``: every run's files are checked by the script
    itself, which exits non-zero on any problem (the figures are for benchmarks/)."""
    result = subprocess.run(
        [sys.executable, "benchmarks/cohort.py", "--quick", "--cases", "instances,series"],
        cwd=PROJECT_ROOT,
        env=child_env(TMPDIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| instance per line | 8 |" in result.stdout
    assert "| series per line | 8 |" in result.stdout
    assert "- none" in result.stdout
