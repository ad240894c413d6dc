"""The recipes of ``docs/cohort.md``, run as the page writes them.

The Dask recipe starts a ``LocalCluster`` of two worker processes, so the client reaches
them pickled, and downloads a cohort in three shares from :class:`FakeArchive` (over
loopback) to pytest's temporary folder.  The archive answers 401 to any request without
the recipe's Basic credentials, so the download only works if the credentials survive the
pickling.  The test checks that every instance arrives exactly once and byte for byte, that
the totals add up, and that running the recipe again fetches nothing.

Dask is not a dependency of the library.  The ``test`` extra installs it; without it the
Dask test is skipped, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydicom.dataset import Dataset

import dicom_data
import dicomweb_client
from fake_archive import FakeArchive, expected_layout, tree
from helpers import PROJECT_ROOT, basic, child_env
from recording_server import RecordedRequest, RecordingServer, Response

PAGE = "docs/cohort.md"
#: the server the page's examples name; the tests put the archive's URL in its place
PAGE_URL = '"https://pacs.example.org/dicom-web"'
#: the credentials of the Dask recipe
CREDENTIALS = basic("user", "secret")

#: fixed UIDs, so that which share each item falls in is the same on every run (each of
#: the three shares has some of the manifest)
ROOT = "1.2.826.0.1.3680043.10.7"


def page_block(text: str) -> tuple[int, str]:
    """The one ```python block of the page that holds ``text``: (its first line, code)."""
    lines = (PROJECT_ROOT / PAGE).read_text(encoding="utf-8").splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() == "```python":
            end = lines.index("```", number + 1)
            blocks.append((number + 2, "\n".join(lines[number + 1 : end]) + "\n"))
    found = [block for block in blocks if text in block[1]]
    assert len(found) == 1, f"{PAGE}: {len(found)} Python blocks hold {text!r}"
    return found[0]


def run_block(text: str, url: str) -> dict[str, Any]:
    """Run the page's block that holds ``text`` as a script (``__name__`` is
    ``"__main__"``) with ``url`` for the page's server; its namespace."""
    first, code = page_block(text)
    assert code.count(PAGE_URL) == 1, f"{PAGE}: the example names {PAGE_URL} once"
    code = code.replace(PAGE_URL, repr(url))
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile("\n" * (first - 1) + code, PAGE, "exec"), namespace)
    return namespace


def instance(study: int, series: int, number: int) -> Dataset:
    return dicom_data.make_instance(
        study_uid=f"{ROOT}.{study}",
        series_uid=f"{ROOT}.{study}.{series}",
        sop_uid=f"{ROOT}.{study}.{series}.{number}",
        rows=4,
        columns=4,
        seed=study * 100 + series * 10 + number,
        instance_number=number,
        series_number=series,
    )


@pytest.fixture
def archive(recording_server: RecordingServer) -> FakeArchive:
    """Four studies; the manifest asks for some of them."""
    archive = FakeArchive(recording_server)
    archive.add([instance(1, s, n) for s in (1, 2) for n in (1, 2)])
    archive.add([instance(2, s, n) for s in (1, 2) for n in (1, 2)])
    archive.add([instance(3, 1, n) for n in (1, 2, 3)])
    archive.add([instance(4, 1, n) for n in (1, 2)])
    return archive


def manifest(folder: Path) -> list[Dataset]:
    """Write ``cohort.txt`` in ``folder``: two studies, a series and two instances one by
    one, in the page's format; the instances it names."""
    lines = [
        "# the cohort",
        f"{ROOT}.1",
        f"{ROOT}.2/{ROOT}.2.1",
        f"{ROOT}.3 {ROOT}.3.1 {ROOT}.3.1.1",
        f"{ROOT}.3,{ROOT}.3.1,{ROOT}.3.1.2",
        f"{ROOT}.4",
    ]
    (folder / "cohort.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return [
        *(instance(1, s, n) for s in (1, 2) for n in (1, 2)),
        *(instance(2, 1, n) for n in (1, 2)),
        *(instance(3, 1, n) for n in (1, 2)),
        *(instance(4, 1, n) for n in (1, 2)),
    ]


def require_credentials(archive: FakeArchive) -> None:
    """Make the archive answer 401 to a request without the recipe's credentials."""

    def guarded(request: RecordedRequest) -> Response:
        if request.header("Authorization") != CREDENTIALS:
            return Response(
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="archive"'},
                body=b"credentials needed",
                content_type="text/plain",
            )
        return archive.handle(request)

    archive.server.add(None, None, guarded)  # the route added last wins


@pytest.fixture
def distributed() -> ModuleType:
    """The ``distributed`` package; skips without it, or fails under CI."""
    try:
        import distributed
    except ImportError as error:
        message = (
            f"Dask distributed is not installed ({error}); "
            "pip install 'dask[distributed]' (the test extra has it)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return distributed


@pytest.fixture
def dask_workdir(
    distributed: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Run in ``tmp_path/work``: the worker processes import this checkout's module and
    keep their scratch files below ``tmp_path`` too."""
    import dask

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with dask.config.set({"temporary-directory": str(tmp_path / "dask")}):
        yield work


def wado_sops(archive: FakeArchive) -> list[str]:
    return [request.path.rsplit("/", 1)[1] for request in archive.wado_requests()]


def test_the_dask_recipe_fetches_each_instance_once_with_the_pickled_credentials(
    archive: FakeArchive, dask_workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    require_credentials(archive)
    wanted = manifest(dask_workdir)
    layout = expected_layout(archive, wanted)

    # worker processes, so that the client reaches them pickled
    assert "processes=True" in page_block("LocalCluster")[1]
    namespace = run_block("LocalCluster", archive.url)

    totals = namespace["totals"]
    assert [type(t) for t in totals] == [dicomweb_client.CohortTotals] * 3
    assert tree(dask_workdir / "cohort") == layout
    # one request for each instance of the manifest: no share fetched another's
    assert sorted(wado_sops(archive)) == sorted(ds.SOPInstanceUID for ds in wanted)
    assert all(t.downloaded for t in totals)  # each share had some of the cohort
    assert sum(t.items for t in totals) == sum(t.items_ok for t in totals) == 5
    assert sum(t.downloaded for t in totals) == len(wanted) == 10
    assert sum(t.nbytes for t in totals) == sum(len(data) for data in layout.values())
    assert sum(t.present + t.failed + t.items_failed for t in totals) == 0
    assert capsys.readouterr().out == "10 files downloaded, 0 already present, 0 failed\n"
    # the credentials went along with each request, from the pickled clients
    assert archive.server.requests
    assert {request.header("Authorization") for request in archive.server.requests} == {CREDENTIALS}
    assert not archive.server.errors

    # run again: every file is there already, nothing is fetched
    archive.server.clear()
    namespace = run_block("LocalCluster", archive.url)
    assert wado_sops(archive) == []
    assert sum(t.present for t in namespace["totals"]) == 10
    assert capsys.readouterr().out == "0 files downloaded, 10 already present, 0 failed\n"
    assert tree(dask_workdir / "cohort") == layout


def test_the_report_recipe_writes_one_line_per_item(
    archive: FakeArchive,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    wanted = manifest(tmp_path)
    run_block("as_report()", archive.url)
    assert tree(tmp_path / "cohort") == expected_layout(archive, wanted)
    assert capsys.readouterr().out == (
        "5 items ok, 0 failed; 10 files downloaded, 0 already present, 0 failed\n"
    )
    lines = (tmp_path / "report.jsonl").read_text(encoding="utf-8").splitlines()
    assert [(line["item"], line["files"], line["status"]) for line in map(json.loads, lines)] == [
        (f"{ROOT}.1", 4, "ok"),
        (f"{ROOT}.2/{ROOT}.2.1", 2, "ok"),
        (f"{ROOT}.3/{ROOT}.3.1/{ROOT}.3.1.1", 1, "ok"),
        (f"{ROOT}.3/{ROOT}.3.1/{ROOT}.3.1.2", 1, "ok"),
        (f"{ROOT}.4", 2, "ok"),
    ]
