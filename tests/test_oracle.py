"""The differential oracle: the same scripted calls through this module and through the
established ``dicomweb-client`` 0.61.2, compared call by call.

The established package is installed once into a virtualenv kept in pytest's temporary
folder root (``<tmp>/pytest-of-<user>/oracle-venv-0.61.2``; set ``DICOMWEB_ORACLE_PYTHON``
to use another interpreter that has it; set ``DICOMWEB_ORACLE_DUMP`` to a file name to get every
outcome in one JSON file).  Under ``CI`` a failure to install it fails the tests;
elsewhere it skips them.

Each implementation runs every scenario of ``oracle_scenarios.py`` in its own process
(``oracle_runner.py``), against the recording server of ``oracle_server.py``, against a
real Orthanc, and against a folder of files.  Per call the test compares

* the requests sent: method, path, query, ``Accept``, ``Content-Type``, credentials and
  the body (multipart bodies part by part, DICOM parts by their content),
* the result, normalized (datasets by their elements, bytes by length and digest), and
* the exception: which catalogued classes (built-in, requests', retrying's, pydicom's)
  it is an instance of, and the HTTP status it carries.  Ours must be an instance of
  every class theirs is, so that each ``except`` clause written for the established
  package still catches it; it may be an instance of more (our ``HTTPError`` raised after
  the last retry is also a ``retrying.RetryError``, for instance).
* what the CLI prints (parsed as JSON when it is JSON).

Where this module differs on purpose, :data:`DELIBERATE` says so and why; the test then
asserts that the difference is really there (and only there), so the table cannot go
stale silently.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import fnmatch
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest

from helpers import PROJECT_ROOT, TESTS_DIR, env_without_pythonpath, kept_folder
from oracle_scenarios import Scenario, all_scenarios
from oracle_server import OracleServer, make_instances
from dicom_data import pydicom_test_files, write_part10

REFERENCE_REQUIREMENT = "dicomweb-client==0.61.2"
RUN_TIMEOUT = 600

SCENARIOS = all_scenarios()


ASPECTS = ("requests", "result", "error", "stdout")


@dataclass(frozen=True)
class Deliberate:
    """A difference kept on purpose: which aspects differ, and why we keep ours."""

    aspects: tuple[str, ...]  # some of ASPECTS
    reason: str
    erase: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Removes the difference from one side's aspects; then nothing else may differ."""


def _without_port(aspects: dict[str, Any]) -> dict[str, Any]:
    """Orthanc builds its URLs from the Host header: drop the port from them."""
    text = re.sub(r"http://127\.0\.0\.1:\d+/", "http://127.0.0.1/", json.dumps(aspects))
    return json.loads(text)


def _without_bearer_none(aspects: dict[str, Any]) -> dict[str, Any]:
    """The established CLI sends ``Authorization: Bearer None`` without a token."""
    for sent in aspects["requests"] or ():
        if sent["authorization"] == "Bearer None":
            sent["authorization"] = None
    return aspects


# Attributes only one of the two file clients puts in search results: SpecificCharacterSet,
# AccessionNumber (PS3.18 requires it at study level), TimezoneOffsetFromUTC,
# SeriesDescription and RetrieveURL (ours), and Samples per Pixel, Photometric
# Interpretation, Planar Configuration, Bits Stored and Pixel Representation (theirs, in
# unscoped instance searches only).
_FILE_RESULT_EXTRAS = frozenset(
    {
        "00080005",
        "00080050",
        "00080201",
        "0008103E",
        "00081190",
        "00280002",
        "00280004",
        "00280006",
        "00280101",
        "00280103",
    }
)


def _file_search_common(aspects: dict[str, Any]) -> dict[str, Any]:
    """File client search results without the attributes only one client returns, in
    UID order (ours sorts by date and UIDs, theirs returns files in index order)."""
    result = aspects["result"]
    if result and "list" in result:
        rows = [
            {k: v for k, v in row.items() if k not in _FILE_RESULT_EXTRAS} for row in result["list"]
        ]
        result["list"] = sorted(
            rows,
            key=lambda row: json.dumps(
                [row.get(tag) for tag in ("0020000D", "0020000E", "00080018")]
            ),
        )
    return aspects


def _in_any_order(aspects: dict[str, Any]) -> dict[str, Any]:
    """A list result compared as a set (the two file clients list files in another
    order), search results also without the attributes only one client returns."""
    result = aspects["result"]
    if result and "list" in result:
        _file_search_common(aspects)
        result["list"] = sorted(result["list"], key=lambda row: json.dumps(row, sort_keys=True))
    return aspects


_VALIDATION = ("requests", "result", "error")
_REJECTS_INVALID_UID = Deliberate(
    _VALIDATION,
    (
        "an invalid UID is rejected with ValueError before it becomes part of a URL (the "
        "established package sends it to the server)"
    ),
)
_CHECKS_ANSWER = (
    "an answer that does not hold what was asked for (truncated, more or fewer "
    "frames or instances than requested, no metadata) raises ValueError "
    "instead of being returned in part or failing with an internal error"
)


#: Scenario id patterns (fnmatch) whose difference from the established package is kept.
DELIBERATE: dict[str, Deliberate] = {
    # -- what is sent ------------------------------------------------------------------
    "search_for_*-filter_wildcard": Deliberate(
        ("requests",),
        (
            "QIDO wildcards * and ? are sent as they are; percent-encoded (as the established "
            "package sends them) Orthanc and others match them literally and find nothing"
        ),
    ),
    "search_for_*-filter_question": Deliberate(
        ("requests",), ("QIDO wildcards * and ? are sent as they are (see filter_wildcard)")
    ),
    "search_for_*-bool_true_filter": Deliberate(
        ("requests",),
        (
            "booleans in query parameters are sent as true/false, as HTTP APIs spell them; "
            "the established package sends Python's True/False"
        ),
    ),
    "search_for_*-filter_unknown": Deliberate(
        _VALIDATION,
        (
            "a search filter on an attribute pydicom's dictionary does not know (a misspelt "
            "keyword, say) is refused with ValueError: PS3.18 8.3.4 allows keywords and tags "
            "only, and servers such as Orthanc ignore unknown keys and return everything"
        ),
    ),
    "search_for_instances-series_without_study": Deliberate(
        ("requests",),
        (
            "a series UID given without a study UID is sent as a SeriesInstanceUID filter; "
            "the established package drops it silently and searches all instances"
        ),
    ),
    "*-dicom_two": Deliberate(
        _VALIDATION,
        (
            "several transfer syntaxes of application/dicom may be asked for at once (PS3.18 "
            "8.7.3); the established package refuses a second one"
        ),
    ),
    "retrieve_instance-additional": Deliberate(
        ("requests",),
        ("retrieve_instance asks for Explicit VR Little Endian by default (see default)"),
    ),
    "retrieve_instance-answer-*": Deliberate(
        ("requests",),
        ("retrieve_instance asks for Explicit VR Little Endian by default (see default)"),
    ),
    "retrieve_instance_frames-answer-multipart_inline_boundary": Deliberate(
        ("requests", "result"),
        (
            "a multipart answer without a boundary parameter whose body starts with a "
            "delimiter line is split at that boundary; the established package returns "
            "the whole body, delimiters included, as one frame"
        ),
    ),
    "retrieve_instance_frames-answer-bare_octet": Deliberate(
        _VALIDATION,
        ("a single frame sent as bare application/octet-stream is returned as the frame"),
    ),
    "retrieve_instance-default": Deliberate(
        ("requests",),
        (
            "retrieve_instance asks for Explicit VR Little Endian, the default its "
            "documentation and PS3.18 give; the established code asks for transfer-syntax=*"
        ),
    ),
    "retrieve_instance_frames-numbers-empty": Deliberate(
        _VALIDATION,
        ("an empty frame list is refused with ValueError instead of requesting .../frames/"),
    ),
    "retrieve_instance_frames-numbers-0": Deliberate(
        _VALIDATION, ("frame numbers start at 1 (PS3.18 10.4.1.1.3); 0 is refused before sending")
    ),
    "retrieve_instance_frames-numbers--1": Deliberate(
        _VALIDATION, ("frame numbers start at 1 (PS3.18 10.4.1.1.3); negative ones are refused")
    ),
    "retrieve_instance_frames-answer-truncated": Deliberate(_VALIDATION, _CHECKS_ANSWER),
    "retrieve_instance_frames-answer-two_parts": Deliberate(_VALIDATION, _CHECKS_ANSWER),
    "retrieve_instance_frames-answer-204": Deliberate(_VALIDATION, _CHECKS_ANSWER),
    "retrieve_instance_frames-answer-*": Deliberate(
        ("requests",), ("frames are asked for as application/octet-stream by default (see default)")
    ),
    "retrieve_instance_frames-numbers-[19]": Deliberate(
        ("requests",), ("frames are asked for as application/octet-stream by default (see default)")
    ),
    "*instance_frames-default*": Deliberate(
        ("requests",),
        (
            "frames are asked for as application/octet-stream by default: the established "
            "package's type=\"*/*\" is refused by Orthanc with 400"
        ),
    ),
    "*instance_frames-additional*": Deliberate(
        ("requests",), ("default frame media type application/octet-stream (see frames default)")
    ),
    "*_bulkdata-[pra]*": Deliberate(
        ("requests",),
        (
            "bulk data is asked for as application/octet-stream by default, the media type "
            "PS3.18 gives for bulk data, instead of type=\"*/*\""
        ),
    ),
    "retrieve_*_rendered-default": Deliberate(
        ("requests",),
        (
            "rendered resources are asked for as image/jpeg, the default PS3.18 8.7.4 gives; "
            "the established package sends no Accept (*/*)"
        ),
    ),
    "retrieve_*_rendered-params*": Deliberate(
        ("requests",), ("rendered resources are asked for as image/jpeg by default (see default)")
    ),
    "retrieve_*_rendered-two*": Deliberate(
        ("requests",),
        (
            "the media types given are asked for; the established package replaces several "
            "image types with */*"
        ),
    ),
    "retrieve_instance_rendered-answer-multipart": Deliberate(
        ("requests",), ("rendered resources are asked for as image/jpeg by default (see default)")
    ),
    "client-*_prefix-slash": Deliberate(
        ("requests",),
        ("URL prefixes are joined with one slash; the established package sends //slash/..."),
    ),
    "client-trailing_slash": Deliberate(
        ("requests",), ("a trailing slash of the base URL is dropped, so paths have no //")
    ),
    "client-stow_prefix-[wsn]*": Deliberate(
        ("requests",), ("STOW-RS asks for application/dicom+json (see store_instances)")
    ),
    "client-lookup_keyword_unknown": Deliberate(
        ("result", "error"),
        (
            "an unknown tag raises KeyError as both packages document; the established "
            "package's check never fires (pydicom answers '') and it returns ''"
        ),
    ),
    "store_instances-*": Deliberate(
        ("requests",),
        (
            "STOW-RS asks for application/dicom+json, the answer it parses; the established "
            "package sends requests' Accept: */*, so a server defaulting to XML breaks it"
        ),
    ),
    "cli-retrieve_frames": Deliberate(
        ("requests", "stdout"),
        (
            "frames go to stdout as the bytes they are (and are asked for as "
            "application/octet-stream); the established CLI prints the repr of a bytearray"
        ),
    ),
    "cli-bad_url": Deliberate(
        ("error",),
        (
            "an invalid --url is a usage error, exit status 2 as argparse gives; the "
            "established CLI exits with 1"
        ),
    ),
    "cli-*": Deliberate(
        (),
        ("the established CLI sends 'Authorization: Bearer None' when no token is given"),
        erase=_without_bearer_none,
    ),
    "orthanc-search_*": Deliberate(
        ("result",),
        (
            "the Host header carries the port (RFC 9110 7.2); without it Orthanc builds "
            "RetrieveURLs that point to port 80"
        ),
        erase=_without_port,
    ),
    "orthanc-store_again": Deliberate(
        ("result",),
        ("the Host header carries the port, so Orthanc's RetrieveURLs are usable"),
        erase=_without_port,
    ),
    "orthanc-retrieve_frames": Deliberate(
        ("result", "error"),
        (
            "frames default to application/octet-stream, which Orthanc serves; the established "
            "package's type=\"*/*\" gets 400 from it"
        ),
    ),
    # -- the file client -------------------------------------------------------------------
    "file-search_for_*-filter_unknown": Deliberate(
        ("result", "error"),
        (
            "the file client refuses a filter on an attribute it does not know (ValueError); "
            "the established one ignores the filter and returns everything"
        ),
    ),
    **{
        f"file-search_for_instances-{scope}limit_offset": Deliberate(
            ("result",),
            (
                "file client results are ordered by date and UIDs, so a page holds other "
                "instances than the established client's index order"
            ),
        )
        for scope in ("", "study-")
    },
    "file-search_for_*": Deliberate(
        (),
        (
            "file client results carry the attributes PS3.18 10.6.3.3 lists for the level "
            "(AccessionNumber, RetrieveURL and, when known, SpecificCharacterSet and "
            "SeriesDescription) but not the image pixel description attributes the "
            "established client adds to unscoped instance results"
        ),
        erase=_file_search_common,
    ),
    "file-search_for_*-fields_*": Deliberate(
        ("result",),
        (
            "the file client answers includefield with the attributes asked for, and all it "
            "knows for fields=['all'] (StudyDescription, for one)"
        ),
    ),
    "file-store_existing": Deliberate(
        ("result",), ("the file client's store answer carries the RetrieveURLs of what it stored")
    ),
    "pydicom_files-*": Deliberate(
        (), ("file client results in another order (see file-search_for_*)"), erase=_in_any_order
    ),
    "pydicom_files-metadata": Deliberate(
        ("result",),
        (
            "file client metadata describes Pixel Data and other large binary values with a "
            "BulkDataURI, as a server does"
        ),
    ),
    "pydicom_files-instances": Deliberate(
        ("result",),
        (
            "retrieve_instance delivers Explicit VR Little Endian by default, so the RLE "
            "files come decoded; the established file client returns them as stored"
        ),
    ),
    "pydicom_files-instances_as_stored": Deliberate(
        ("result",),
        (
            "MR_small.dcm and MR_small_RLE.dcm hold the same SOP Instance UID: the file "
            "client keeps the first file by name (and warns), the established one the last"
        ),
    ),
    "pydicom_files-frames_octet": Deliberate(
        ("result", "error"),
        (
            "frames of an RLE Lossless file asked for as application/octet-stream with any "
            "transfer syntax are sent as stored; the established file client fails with 500"
        ),
    ),
    "file-retrieve_*_metadata": Deliberate(
        ("result",),
        ("file client metadata describes Pixel Data with a BulkDataURI, as a server does"),
    ),
    "file-retrieve_instance_unknown": Deliberate(
        ("error",),
        (
            "a missing instance is a 404 FileNotFoundError (the established file client says "
            "500); the error has no response object"
        ),
    ),
    "file-metadata_unknown": Deliberate(
        ("error",),
        ("a missing instance is a 404 FileNotFoundError (see retrieve_instance_unknown)"),
    ),
    "file-rendered_jpeg": Deliberate(
        ("result", "error"),
        (
            "a 16-bit image is windowed to 8 bits before it is rendered as JPEG; the "
            "established file client fails with 500 (Pillow cannot write 16-bit JPEG)"
        ),
    ),
    "file-retrieve_instance_invalid": Deliberate(
        ("error",),
        ("a missing instance is a 404 FileNotFoundError (see retrieve_instance_unknown)"),
    ),
    "file-frames_out_of_range": Deliberate(
        ("error",),
        (
            "frame numbers beyond the instance's frames raise ValueError (and OSError), "
            "not an HTTPError, as a wrong argument"
        ),
    ),
    "file-frames_rendered_syntax": Deliberate(
        ("result", "error"),
        (
            "rendered frames with a transfer syntax raise TypeError as the web clients of both "
            "packages do; the established file client ignores the transfer syntax"
        ),
    ),
    # -- what is checked before sending -------------------------------------------------
    "retrieve_study-invalid_uid": _REJECTS_INVALID_UID,
    "delete_*-invalid": _REJECTS_INVALID_UID,
    "store_instances-study_invalid": _REJECTS_INVALID_UID,
    "retrieve_instance_frames_rendered-mp4": Deliberate(
        _VALIDATION, ("a rendered frame is an image (PS3.18 8.7.4); a video media type is refused")
    ),
    "client-url_with_query": Deliberate(
        _VALIDATION,
        (
            "a base URL with a query string is refused: the established package appends the "
            "resource path to the query (/?key=1/studies)"
        ),
    ),
    **{
        f"uri-query_in_base-{view}": Deliberate(
            ("result", "error"),
            ("a base URL with a query string is refused (see client-url_with_query)"),
        )
        for view in (
            "str",
            "repr",
            "hash",
            "hash_of_parts",
            "eq",
            "type",
            "parts",
            "parent",
            "base_uri",
            "from_string",
        )
    },
    # -- what is accepted beyond the established package -----------------------------------
    "*-string_not_tuple": Deliberate(
        _VALIDATION,
        (
            "a single media type given as a string is taken as a one-element tuple; the "
            "established package iterates over its characters and fails"
        ),
    ),
    "store_instances-path_not_dataset": Deliberate(
        _VALIDATION,
        ("store_instances also takes paths of Part 10 files (sent as they are on disk)"),
    ),
    "retrieve_bulkdata-answer-octet": Deliberate(
        _VALIDATION, ("a single-part application/octet-stream answer is returned as the one part")
    ),
    "retrieve_study-answer-empty": Deliberate(
        ("result", "error"), ("a multipart answer with no parts is an empty list of instances")
    ),
    "uri-letters_uid_permissive-study_uri": Deliberate(
        ("result", "error"), ("URIs derived from a permissive URI stay permissive")
    ),
    # -- what is checked in answers --------------------------------------------------------
    "search-get_remaining-offset_ignored": Deliberate(
        _VALIDATION,
        (
            "a server that ignores offset and sends the same page again is reported with "
            "ValueError; the established package loops until memory runs out"
        ),
    ),
}


# -- the reference interpreter ------------------------------------------------------------


def _reference_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An interpreter with the established package, installing it once if needed."""
    configured = os.environ.get("DICOMWEB_ORACLE_PYTHON")
    if configured:
        return Path(configured)
    cache_dir = kept_folder(tmp_path_factory, "oracle-venv-0.61.2")
    python = cache_dir / "bin" / "python"
    marker = cache_dir / "installed.txt"
    if python.exists() and marker.exists() and marker.read_text() == REFERENCE_REQUIREMENT:
        return python
    shutil.rmtree(cache_dir, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "venv", str(cache_dir)], check=True, capture_output=True, timeout=300
    )
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            REFERENCE_REQUIREMENT,
        ],
        check=True,
        capture_output=True,
        timeout=600,
        env=env_without_pythonpath(),
    )
    marker.write_text(REFERENCE_REQUIREMENT)
    return python


@pytest.fixture(scope="session")
def reference_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The established package's interpreter (skip, or fail under CI, without it).

    The virtualenv lives beside pytest's numbered temporary folders (which pytest
    prunes), so it is made once per machine and never inside the checkout (see
    ``helpers.kept_folder``).
    """
    try:
        return _reference_python(tmp_path_factory)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        message = (
            f"cannot install {REFERENCE_REQUIREMENT} for the oracle: {error}\n"
            f"{detail.decode(errors='replace')[-2000:]}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


# -- running both implementations ------------------------------------------------------------


@dataclass
class Outcomes:
    """What each implementation did for every scenario."""

    results: dict[str, dict[str, Any]]
    requests: dict[str, dict[str, list[dict]]]
    skipped: set[str]


def _target_url(
    scenario: Scenario,
    impl: str,
    server: OracleServer,
    folders: dict[str, Path],
    orthanc_url: str | None,
) -> str:
    if scenario.target == "orthanc":
        return orthanc_url or ""
    if scenario.target == "files":
        return (folders[impl] / "archive").as_uri()
    if scenario.target == "pydicom_files":
        return (folders[impl] / "pydicom").as_uri()
    return server.url(impl, scenario.id)


def _job(
    impl: str,
    scenarios: list[Scenario],
    server: OracleServer,
    folders: dict[str, Path],
    orthanc_url: str | None,
) -> Path:
    job = {
        "scenarios": [
            {
                "id": s.id,
                "call": s.call,
                "setup": s.setup,
                "capture_stdout": s.capture_stdout,
                "url": _target_url(s, impl, server, folders, orthanc_url),
                "data": str(folders["data"]),
            }
            for s in scenarios
        ]
    }
    path = folders[impl] / "job.json"
    path.write_text(json.dumps(job))
    return path


def _start(python: Path, job: Path, impl: str, log: Path) -> subprocess.Popen:
    command = [str(python), str(TESTS_DIR / "oracle_runner.py"), str(job)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["NETRC"] = os.devnull
    env["PYTHONHASHSEED"] = "0"  # hashes of equal tuples of strings agree across processes
    if impl == "ours":
        command += ["--project-root", str(PROJECT_ROOT)]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        cwd=str(log.parent),
        env=env,
        text=True,
    )


def _collect(process: subprocess.Popen, log: Path) -> dict[str, dict]:
    try:
        stdout, _ = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, _ = process.communicate()
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    if process.returncode != 0:
        pytest.fail(
            f"oracle runner failed ({process.returncode}):\n"
            f"{log.read_text(errors='replace')[-4000:]}"
        )
    return {row["id"]: row["outcome"] for row in rows}


def _prepare_folders(base: Path) -> dict[str, Path]:
    folders = {name: base / name for name in ("data", "ours", "theirs")}
    for folder in folders.values():
        folder.mkdir()
    for number, ds in enumerate(make_instances(), start=1):
        write_part10(folders["data"] / f"{number}.dcm", ds)
    for impl in ("ours", "theirs"):
        shutil.copytree(folders["data"], folders[impl] / "archive")
        (folders[impl] / "pydicom").mkdir()
        for path in pydicom_test_files():
            shutil.copy2(path, folders[impl] / "pydicom" / path.name)
    return folders


def _orthanc_url(request: pytest.FixtureRequest, folders: dict[str, Path]) -> str | None:
    """Orthanc's DICOMweb URL, loaded with the fake service's instances (None: absent)."""
    try:
        orthanc = request.getfixturevalue("orthanc")
    except pytest.skip.Exception:
        return None
    orthanc.reset()
    orthanc.upload(path.read_bytes() for path in sorted(folders["data"].glob("*.dcm")))
    return orthanc.url


@pytest.fixture(scope="session")
def outcomes(
    request: pytest.FixtureRequest, reference_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcomes]:
    """Run every scenario through both implementations (both processes at once)."""
    folders = _prepare_folders(tmp_path_factory.mktemp("oracle"))
    orthanc_url = _orthanc_url(request, folders)
    skipped = {s.id for s in SCENARIOS if s.target == "orthanc" and orthanc_url is None}
    scenarios = [s for s in SCENARIOS if s.id not in skipped]
    with OracleServer() as server:
        for scenario in scenarios:
            server.expect(scenario.id, scenario.answers)
        pythons = {"ours": Path(sys.executable), "theirs": reference_python}
        processes = {
            impl: _start(
                python,
                _job(impl, scenarios, server, folders, orthanc_url),
                impl,
                folders[impl] / "stderr.txt",
            )
            for impl, python in pythons.items()
        }
        results = {impl: _collect(p, folders[impl] / "stderr.txt") for impl, p in processes.items()}
        requests = {
            impl: {
                s.id: [describe_request(r) for r in server.sent(impl, s.id)]
                for s in scenarios
                if s.target == "server"
            }
            for impl in pythons
        }
    if orthanc_url is not None:
        request.getfixturevalue("orthanc").reset()
    dump = os.environ.get("DICOMWEB_ORACLE_DUMP")
    if dump:  # for looking at every outcome at once while closing differences
        Path(dump).write_text(json.dumps({"results": results, "requests": requests}))
    yield Outcomes(results, requests, skipped)


# -- describing what was sent -----------------------------------------------------------------


def _split_header_list(value: str) -> list[str]:
    """Split a header value on commas outside quoted strings."""
    items, current, quoted = [], "", False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def normalize_media_type(value: str | None, drop: tuple[str, ...] = ("boundary",)) -> Any:
    """A media type (or Accept list) as ``[type, {parameter: value}]`` items."""
    if value is None:
        return None
    described = []
    for item in _split_header_list(value):
        message = email.message.Message()
        message["content-type"] = item
        params = {k.lower(): v for k, v in message.get_params()[1:] if k.lower() not in drop}
        described.append([message.get_content_type(), params])
    return described


def _describe_part10(payload: bytes) -> Any:
    try:
        ds = pydicom.dcmread(io.BytesIO(payload), force=True)
        meta = ds.file_meta.to_json_dict() if hasattr(ds, "file_meta") else None
        return {"dataset": ds.to_json_dict(bulk_data_threshold=1 << 30), "meta": meta}
    except Exception as error:  # noqa: BLE001 - an unreadable part is described as such
        return {"unreadable": type(error).__name__, "sha256": _sha(payload)}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def describe_body(content_type: str | None, body: bytes) -> Any:
    """The body: multipart part by part (DICOM parts by content), JSON parsed, else digest."""
    if not body:
        return None
    media = (content_type or "").lower()
    if media.startswith("multipart/"):
        raw = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        parts = []
        for part in message.iter_parts():
            payload = part.get_payload(decode=True) or b""
            part_type = part.get("Content-Type")
            described = (
                _describe_part10(payload)
                if "application/dicom" in (part_type or "")
                else {"bytes": len(payload), "sha256": _sha(payload)}
            )
            parts.append({"content_type": normalize_media_type(part_type), "payload": described})
        return {"parts": parts}
    if "json" in media:
        try:
            return {"json": json.loads(body)}
        except ValueError:
            pass
    return {"bytes": len(body), "sha256": _sha(body)}


def describe_request(recorded: Any) -> dict[str, Any]:
    """What matters of one request on the wire."""
    query = urllib.parse.parse_qs(recorded.raw_query, keep_blank_values=True)
    if "includefield" in query:  # the established package takes them from a set
        query["includefield"] = sorted(query["includefield"])
    return {
        "method": recorded.method,
        "path": urllib.parse.unquote(recorded.path),
        "query": {key: query[key] for key in sorted(query)},
        # other percent-encodings are equivalent; these two change what a server matches
        "escaped_wildcards": bool(re.search("%2A|%3F", recorded.raw_query, re.I)),
        "accept": normalize_media_type(recorded.header("Accept")),
        "content_type": normalize_media_type(recorded.header("Content-Type")),
        "range": recorded.header("Range"),
        "authorization": recorded.header("Authorization"),
        "x_key": recorded.header("X-Key"),
        "body": describe_body(recorded.header("Content-Type"), recorded.body),
    }


# -- comparing ----------------------------------------------------------------------------------


def _printed(stdout: str | None) -> Any:
    """What the CLI printed: parsed when it is JSON (key order does not matter)."""
    if not stdout or not isinstance(stdout, str):
        return stdout
    try:
        return {"json": json.loads(stdout)}
    except ValueError:
        return stdout


def compared_aspects(outcome: dict[str, Any], sent: list[dict] | None) -> dict[str, Any]:
    """The aspects of one implementation's behaviour that must agree."""
    aspects: dict[str, Any] = {"requests": sent}
    if "error" in outcome:
        error = outcome["error"]
        aspects["error"] = {key: error.get(key) for key in ("raises", "status", "exit_code")}
        aspects["result"] = None
    else:
        aspects["error"] = None
        aspects["result"] = outcome["result"]
    aspects["stdout"] = _printed(outcome.get("stdout"))
    return aspects


def differing(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The aspects that differ; an error differs unless ours catches like theirs."""
    found = []
    for aspect in ASPECTS:
        mine, other = ours[aspect], theirs[aspect]
        if aspect == "error" and mine is not None and other is not None:
            same = (
                set(mine["raises"]) >= set(other["raises"])
                and other["status"] in (None, mine["status"])
                and mine["exit_code"] == other["exit_code"]
            )
            if not same:
                found.append(aspect)
        elif mine != other:
            found.append(aspect)
    return found


def deliberate_for(scenario_id: str) -> Deliberate | None:
    """The most specific (longest) DELIBERATE pattern matching a scenario id, if any."""
    patterns = [p for p in DELIBERATE if fnmatch.fnmatchcase(scenario_id, p)]
    return DELIBERATE[max(patterns, key=len)] if patterns else None


def _explain(
    scenario: Scenario, ours: dict, theirs: dict, outcome_ours: dict, outcome_theirs: dict
) -> str:
    lines = [f"scenario {scenario.id}: {scenario.call}"]
    for aspect in differing(ours, theirs):
        lines.append(
            f"  {aspect} differs:\n    ours:   {json.dumps(ours[aspect])[:3000]}"
            f"\n    theirs: {json.dumps(theirs[aspect])[:3000]}"
        )
    for name, outcome in (("ours", outcome_ours), ("theirs", outcome_theirs)):
        if "error" in outcome:
            lines.append(
                f"  {name} raised {outcome['error']['type']}: {outcome['error']['message']}"
            )
    return "\n".join(lines)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_same_behaviour(scenario: Scenario, outcomes: Outcomes) -> None:
    """Both implementations send the same requests, return the same, raise alike."""
    if scenario.id in outcomes.skipped:
        pytest.skip("Orthanc is not available")
    outcome_ours = outcomes.results["ours"][scenario.id]
    outcome_theirs = outcomes.results["theirs"][scenario.id]
    ours = compared_aspects(outcome_ours, outcomes.requests["ours"].get(scenario.id))
    theirs = compared_aspects(outcome_theirs, outcomes.requests["theirs"].get(scenario.id))
    explanation = _explain(scenario, ours, theirs, outcome_ours, outcome_theirs)
    found = differing(ours, theirs)
    deliberate = deliberate_for(scenario.id)
    if deliberate is None:
        assert not found, explanation
        return
    if deliberate.erase is None:
        assert found, (
            f"listed as a deliberate difference ({deliberate.reason}), but both "
            f"agree: remove it from DELIBERATE\n{explanation}"
        )
    else:
        found = differing(deliberate.erase(ours), deliberate.erase(theirs))
        deliberate = Deliberate((), deliberate.reason)
    unexplained = set(found) - set(deliberate.aspects)
    assert not unexplained, (
        f"differs beyond the deliberate {', '.join(deliberate.aspects)}:\n{explanation}"
    )


def test_every_deliberate_entry_matches_a_scenario() -> None:
    """Each DELIBERATE pattern names at least one scenario and gives a reason."""
    for pattern, entry in DELIBERATE.items():
        assert any(fnmatch.fnmatchcase(s.id, pattern) for s in SCENARIOS), pattern
        assert set(entry.aspects) <= set(ASPECTS), pattern
        assert entry.aspects or entry.erase, pattern
        assert len(entry.reason) > 20, pattern
