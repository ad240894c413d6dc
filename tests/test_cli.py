"""Tests of the ``dicomweb_client`` command line interface (``dicomweb_client_cli.py``).

Most tests call ``main([...])`` in this process against :class:`FakeArchive`, a small
DICOMweb server (QIDO-RS, WADO-RS, STOW-RS) built on the recording server; a few run the
command as a subprocess: every documented example exactly as written (through bash, with a
``dicomweb_client`` wrapper and a fake ``gcloud`` on PATH), ``python -m
dicomweb_client_cli``, an interrupted download that is resumed, and the progress bar under
a pseudo-terminal.  The end of the file repeats the main paths against Orthanc.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import pty
import re
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import urllib.request
import webbrowser
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

import dicom_data
import dicomweb_client
import dicomweb_client_cli
from dicomweb_client_cli import main
from fake_archive import (
    FAKE_JPEG,
    FakeArchive,
    expected_layout,
    json_response,
    split_multipart,
    subset,
    tree,
)
from helpers import child_env, read_pty
from recording_server import (
    RecordedRequest,
    RecordingServer,
    Response,
    multipart_body,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The UIDs of the documentation's examples.
DOC_STUDY = "1.2.826.0.1.3680043.8.1055.1.20111103111148288.98361414.79379639"
DOC_SERIES = "1.2.826.0.1.3680043.8.1055.1.20111103111208937.49685336.24517034"
DOC_INSTANCE = "1.2.826.0.1.3680043.8.1055.1.20111103111208937.40440871.13152534"

HAS_FILE_CLIENT = getattr(dicomweb_client, "DICOMfileClient", None) is not None
needs_file_client = pytest.mark.skipif(
    not HAS_FILE_CLIENT, reason="dicomweb_client.DICOMfileClient is not there yet"
)


def as_pydicom3_prints(text: str) -> str:
    """Data sets as pydicom 3 prints them: pydicom 2 writes tags as ``(0008, 0018)``,
    with lower-case hex digits."""
    return re.sub(
        r"\(([0-9a-fA-F]{4}), ([0-9a-fA-F]{4})\)",
        lambda match: f"({match[1].upper()},{match[2].upper()})",
        text,
    )


# -- fixtures -------------------------------------------------------------------------------


class _QuickRetries(dicomweb_client.DICOMwebClient):
    """The client the CLI builds, with retry waits of milliseconds instead of seconds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_http_retry_params(wait_exponential_multiplier=1)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dicomweb_client, "DICOMwebClient", _QuickRetries)


@pytest.fixture
def archive(recording_server: RecordingServer) -> FakeArchive:
    return FakeArchive(recording_server)


@pytest.fixture
def study(archive: FakeArchive) -> list[Dataset]:
    """Two series of three single-frame instances, plus one 3-frame instance."""
    datasets = dicom_data.make_study(2, 3)
    datasets.append(
        dicom_data.make_instance(
            study_uid=datasets[0].StudyInstanceUID,
            series_uid=datasets[0].SeriesInstanceUID,
            frames=3,
            bits=8,
            instance_number=9,
        )
    )
    return archive.add(datasets)


def run(*args: str) -> int:
    return main([str(arg) for arg in args])


def saved_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


# -- the parser: every option of the established CLI, and usage errors ---------------------


REFERENCE_OPTIONS = [
    (
        [],
        [
            "-v",
            "--verbosity",
            "-u",
            "--user",
            "-p",
            "--password",
            "--ca",
            "--cert",
            "--bearer-token",
            "--token",
            "--url",
            "--chunk-size",
            "--header",
            "--timeout",
            "--retries",
            "--no-progress",
            "{search,retrieve,store}",
        ],
    ),
    (
        ["search", "studies"],
        [
            "--filter",
            "--field",
            "--limit",
            "--offset",
            "--fuzzy",
            "--prettify",
            "--dicomize",
            "--output",
        ],
    ),
    (
        ["search", "series"],
        [
            "--filter",
            "--field",
            "--limit",
            "--offset",
            "--fuzzy",
            "--prettify",
            "--dicomize",
            "--study",
        ],
    ),
    (
        ["search", "instances"],
        [
            "--filter",
            "--field",
            "--limit",
            "--offset",
            "--fuzzy",
            "--prettify",
            "--dicomize",
            "--study",
            "--series",
        ],
    ),
    (["retrieve"], ["studies", "series", "instances", "bulkdata"]),
    (["retrieve", "studies"], ["--study", "{metadata,full}"]),
    (
        ["retrieve", "studies", "--study", "1.2", "metadata"],
        ["--prettify", "--dicomize", "--save", "--output-dir"],
    ),
    (
        ["retrieve", "studies", "--study", "1.2", "full"],
        ["--save", "--output-dir", "--media-type", "--workers"],
    ),
    (["retrieve", "series"], ["--study", "--series", "{metadata,full}"]),
    (
        ["retrieve", "series", "--study", "1", "--series", "2", "metadata"],
        ["--prettify", "--dicomize", "--save", "--output-dir"],
    ),
    (
        ["retrieve", "series", "--study", "1", "--series", "2", "full"],
        ["--save", "--output-dir", "--media-type", "--workers"],
    ),
    (["retrieve", "instances"], ["--study", "--series", "--instance", "{metadata,full,frames}"]),
    (
        ["retrieve", "instances", "--study", "1", "--series", "2", "--instance", "3", "metadata"],
        ["--prettify", "--dicomize", "--save", "--output-dir"],
    ),
    (
        ["retrieve", "instances", "--study", "1", "--series", "2", "--instance", "3", "full"],
        ["--save", "--output-dir", "--media-type"],
    ),
    (
        ["retrieve", "instances", "--study", "1", "--series", "2", "--instance", "3", "frames"],
        ["--save", "--output-dir", "--media-type", "--numbers", "--show"],
    ),
    (["retrieve", "bulkdata"], ["--media-type", "--uri"]),
    (["store"], ["instances"]),
    (["store", "instances"], ["--study", "PATH"]),
]


@pytest.mark.parametrize(
    "words, options",
    REFERENCE_OPTIONS,
    ids=[" ".join(words) or "global" for words, _ in REFERENCE_OPTIONS],
)
def test_help_lists_every_option(
    words: list[str], options: list[str], capsys: pytest.CaptureFixture
) -> None:
    prefix = [] if not words else ["--url", "http://127.0.0.1:1"]
    assert run(*prefix, *words, "--help") == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: dicomweb_client")
    for option in options:
        assert option in text


def test_version(capsys: pytest.CaptureFixture) -> None:
    assert run("--version") == 0
    assert capsys.readouterr().out == f"dicomweb_client {dicomweb_client.__version__}\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "--url"),
        (["--url", "http://127.0.0.1:1"], "required"),
        (["--url", "ftp://127.0.0.1/x", "search", "studies"], "http://"),
        (["--url", "U", "search", "studies", "--limit", "x"], "--limit"),
        (["--url", "U", "search", "studies", "--offset", "-1"], "--offset"),
        (["--url", "U", "search", "studies", "--filter", "PatientID"], "KEY=VALUE"),
        (
            ["--url", "U", "search", "studies", "--filter", "PatientNmae=x"],
            "argument --filter: unknown attribute 'PatientNmae'; did you mean PatientName?",
        ),
        (
            ["--url", "U", "search", "series", "--field", "SeriesDescripton"],
            "argument --field: unknown attribute 'SeriesDescripton'; "
            "did you mean SeriesDescription?",
        ),
        (
            ["--url", "U", "search", "instances", "--filter", "Qx=1"],
            "argument --filter: unknown attribute 'Qx' (give a DICOM keyword",
        ),
        (["--url", "U", "search", "studies", "--prettify", "--dicomize"], "not allowed"),
        (["--url", "U", "search", "studies", "--output", "table", "--prettify"], "table"),
        (["--url", "U", "search", "studies", "--output", "csv"], "invalid choice"),
        (["--url", "U", "--header", "no colon", "search", "studies"], "Name: value"),
        (["--url", "U", "--header", "Bad Name: x", "search", "studies"], "Name: value"),
        (["--url", "U", "--header", ": x", "search", "studies"], "Name: value"),
        (["--url", "U", "--chunk-size", "0", "search", "studies"], "--chunk-size"),
        (
            ["--url", "U", "--bearer-token", "t", "-u", "a", "-p", "b", "search", "studies"],
            "not both",
        ),
        (["--url", "U", "-p", "secret", "search", "studies"], "--password needs --user"),
        (["--url", "U", "-u", "alice", "search", "studies"], "--user needs --password"),
        (["--url", "U", "retrieve", "studies", "metadata"], "--study"),
        (["--url", "U", "retrieve", "studies", "--study", "1", "frames"], "invalid choice"),
        (
            ["--url", "U", "retrieve", "studies", "--study", "1", "full", "--workers", "0"],
            "--workers",
        ),
        (
            [
                "--url",
                "U",
                "retrieve",
                "instances",
                "--study",
                "1",
                "--series",
                "2",
                "--instance",
                "3",
                "frames",
                "--numbers",
                "0",
            ],
            "--numbers",
        ),
        (["--url", "U", "retrieve", "bulkdata"], "--uri"),
        (
            ["--url", "U", "retrieve", "bulkdata", "--uri", "x", "--media-type", "jpeg please"],
            "--media-type 'jpeg please' is not a media type",
        ),
        (
            ["--url", "U", "retrieve", "studies", "--study", "1.2/../x", "metadata"],
            "'1.2/../x' is not a UID",
        ),
        (
            [
                "--url",
                "U",
                "retrieve",
                "series",
                "--study",
                "1.2",
                "--series",
                "1." + "2" * 70,
                "full",
            ],
            "at most 64 characters",
        ),
        (["--url", "U", "store", "instances"], "PATH"),
        (["--url", "U", "delete", "studies"], "invalid choice"),
    ],
)
def test_bad_arguments_give_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    argv = [word.replace("U", "http://127.0.0.1:1") if word == "U" else word for word in argv]
    assert run(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: dicomweb_client")
    assert "dicomweb_client" in err.splitlines()[-1] and "error:" in err
    assert message in err


# -- the documented examples, run as written -----------------------------------------------


DOC_EXAMPLES = {
    "search studies": """
        dicomweb_client --url https://dicomcloud.azurewebsites.net/qidors search studies
    """,
    "study metadata": """
        dicomweb_client --url https://dicomcloud.azurewebsites.net/wadors \\
            retrieve studies \\
            --study 1.2.826.0.1.3680043.8.1055.1.20111103111148288.98361414.79379639 \\
            metadata
    """,
    "study metadata dicomized": """
        dicomweb_client --url https://dicomcloud.azurewebsites.net/wadors \\
            retrieve studies \\
            --study 1.2.826.0.1.3680043.8.1055.1.20111103111148288.98361414.79379639 \\
            metadata \\
            --dicomize
    """,
    "study full": """
        dicomweb_client --url https://dicomcloud.azurewebsites.net/wadors \\
            retrieve studies \\
            --study 1.2.826.0.1.3680043.8.1055.1.20111103111148288.98361414.79379639 \\
            full
    """,
    "frame as jpeg": """
        dicomweb_client --url https://dicomcloud.azurewebsites.net/wadors \\
            retrieve instances \\
            --study 1.2.826.0.1.3680043.8.1055.1.20111103111148288.98361414.79379639 \\
            --series 1.2.826.0.1.3680043.8.1055.1.20111103111208937.49685336.24517034 \\
            --instance 1.2.826.0.1.3680043.8.1055.1.20111103111208937.40440871.13152534 \\
            frames \\
            --numbers 1 \\
            --media-type image/jpeg
    """,
    "store to google": """
        dicomweb_client --url https://healthcare.googleapis.com/v1beta1/projects/MYPROJECT/locations/us-central1/datasets/MYDATASET/dicomStores/MYDICOMSTORE/dicomWeb \\
            --token $(gcloud auth print-access-token) \\
            store instances \\
            dicomfiles/*
    """,  # noqa: E501 - the documentation's URL is this long
}
GCP_PREFIX = (
    "/v1beta1/projects/MYPROJECT/locations/us-central1/datasets/MYDATASET/"
    "dicomStores/MYDICOMSTORE/dicomWeb"
)


@pytest.fixture
def doc_archive(recording_server: RecordingServer) -> FakeArchive:
    archive = FakeArchive(recording_server, ("/qidors", "/wadors", GCP_PREFIX))
    archive.add(
        [
            dicom_data.make_instance(DOC_STUDY, DOC_SERIES, DOC_INSTANCE, frames=2, bits=8),
            dicom_data.make_instance(DOC_STUDY, DOC_SERIES, instance_number=2),
        ]
    )
    return archive


@pytest.fixture
def shell(tmp_path: Path) -> Any:
    """Runs a command line through bash with ``dicomweb_client`` and a fake gcloud on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "dicomweb_client"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dicomweb_client_cli "$@"\n')
    gcloud = bin_dir / "gcloud"
    gcloud.write_text("#!/bin/sh\necho ya29.test-token\n")
    for script in (wrapper, gcloud):
        script.chmod(0o755)
    env = child_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def shell_run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, timeout=60
        )

    return shell_run


@pytest.mark.parametrize("name", list(DOC_EXAMPLES))
def test_documented_example_runs_as_written(
    name: str, doc_archive: FakeArchive, shell: Any, tmp_path: Path
) -> None:
    base = doc_archive.server.url
    command = textwrap.dedent(DOC_EXAMPLES[name]).strip()
    command = command.replace("https://dicomcloud.azurewebsites.net", base)
    command = command.replace("https://healthcare.googleapis.com", base)
    if name == "store to google":
        new = [dicom_data.make_instance(), dicom_data.make_instance()]
        paths = dicom_data.write_files(new, tmp_path / "dicomfiles")
    result = shell(command)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout
    first = doc_archive.datasets[DOC_INSTANCE]
    if name == "search studies":
        assert doc_archive.server.last.path == "/qidors/studies"
        studies = json.loads(out)
        assert [s["0020000D"]["Value"][0] for s in studies] == [DOC_STUDY]
    elif name == "study metadata":
        assert doc_archive.server.last.path == f"/wadors/studies/{DOC_STUDY}/metadata"
        items = json.loads(out)
        assert {item["00080018"]["Value"][0] for item in items} == set(doc_archive.files)
    elif name == "study metadata dicomized":
        text = as_pydicom3_prints(out.decode())
        assert f"(0008,0018) SOP Instance UID                    UI: {DOC_INSTANCE}" in text
        assert text.count("(0020,000D) Study Instance UID") == 2
    elif name == "study full":
        text = out.decode()
        assert doc_archive.server.last.path == f"/wadors/studies/{DOC_STUDY}"
        for uid in doc_archive.files:
            assert f"SOP Instance UID                    UI: {uid}" in text
    elif name == "frame as jpeg":
        request = doc_archive.server.last
        assert request.path.endswith(f"/instances/{DOC_INSTANCE}/frames/1")
        assert "image/jpeg" in request.header("Accept")
        assert out == FAKE_JPEG + b"\x01"
        assert first.NumberOfFrames == 2
    else:
        request = doc_archive.server.last
        assert (request.method, request.path) == ("POST", f"{GCP_PREFIX}/studies")
        assert request.header("Authorization") == "Bearer ya29.test-token"
        assert out.decode().splitlines() == [
            f"stored: dicomfiles/{path.name}" for path in sorted(paths)
        ] + ["stored 2 of 2 files"]


# -- global options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, expected",
    [
        (["-u", "alice", "-p", "s3cret"], "Basic YWxpY2U6czNjcmV0"),
        (["--user", "alice", "--password", "s3cret"], "Basic YWxpY2U6czNjcmV0"),
        (["--bearer-token", "abc.def"], "Bearer abc.def"),
        (["--token", "abc.def"], "Bearer abc.def"),
        ([], None),
    ],
)
def test_authentication_options(
    options: list[str], expected: str | None, archive: FakeArchive, study: list[Dataset]
) -> None:
    assert run("--url", archive.url, *options, "search", "studies") == 0
    assert archive.server.last.header("Authorization") == expected


def test_user_without_password_asks_on_a_terminal(
    archive: FakeArchive, study: list[Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(dicomweb_client_cli.getpass, "getpass", lambda prompt: "typed")
    assert run("--url", archive.url, "-u", "bob", "search", "studies") == 0
    assert archive.server.last.header("Authorization") == "Basic Ym9iOnR5cGVk"


def test_header_option_is_repeatable(archive: FakeArchive, study: list[Dataset]) -> None:
    assert (
        run(
            "--url",
            archive.url,
            "--header",
            "X-Api-Key: k1",
            "--header",
            "X-Tenant:  blue ",
            "--header",
            "Authorization: Custom xyz",
            "search",
            "studies",
        )
        == 0
    )
    request = archive.server.last
    assert request.header("X-Api-Key") == "k1"
    assert request.header("X-Tenant") == "blue"
    assert request.header("Authorization") == "Custom xyz"


def test_chunk_size_and_timeout_reach_the_client(
    archive: FakeArchive, study: list[Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    class Spy(_QuickRetries):
        def __init__(self, url: str, **kwargs: Any) -> None:
            seen.update(kwargs, url=url)
            super().__init__(url, **kwargs)

    monkeypatch.setattr(dicomweb_client, "DICOMwebClient", Spy)
    assert (
        run("--url", archive.url, "--chunk-size", "4096", "--timeout", "7.5", "search", "studies")
        == 0
    )
    assert (seen["url"], seen["chunk_size"], seen["timeout"]) == (archive.url, 4096, 7.5)


def test_chunk_size_applies_to_the_upload(
    archive: FakeArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = dicom_data.write_files([dicom_data.make_instance(rows=64, columns=64)], tmp_path)
    reads: list[int] = []
    real_read = dicomweb_client_cli._StreamedFile.read

    def read(self: Any, size: int = -1) -> bytes:
        reads.append(size)
        return real_read(self, size)

    monkeypatch.setattr(dicomweb_client_cli._StreamedFile, "read", read)
    assert run("--url", archive.url, "--chunk-size", "1000", "store", "instances", *paths) == 0
    size = paths[0].stat().st_size
    assert set(reads) == {1000} and len(reads) == -(-size // 1000) + 1  # the last read: b""


@pytest.mark.parametrize(
    "flags, level",
    [
        ([], 0),
        (["-v"], 1),
        (["-vv"], 2),
        (["-vvv"], 3),
        (["-vvvv"], 4),
        (["-v", "-v"], 2),
        (["--verbosity", "--verbosity", "--verbosity"], 3),
        (["-vvvvvv"], 4),
    ],
)
def test_verbosity_is_counted(
    flags: list[str],
    level: int,
    archive: FakeArchive,
    study: list[Dataset],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    levels: list[int] = []
    real = dicomweb_client.configure_logging
    monkeypatch.setattr(
        dicomweb_client,
        "configure_logging",
        lambda verbosity: levels.append(verbosity) or real(verbosity),
    )
    assert run(*flags, "--url", archive.url, "search", "studies") == 0
    assert levels == [level]


def test_ca_option_trusts_a_self_signed_server(
    make_server: Any, tls_certificate: Any, capsys: pytest.CaptureFixture
) -> None:
    certfile, keyfile = tls_certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certfile), str(keyfile))
    archive = FakeArchive(make_server(ssl_context=context))
    archive.add(dicom_data.make_study(1, 1))
    assert run("--url", archive.url, "search", "studies") == 1
    assert "certificate" in capsys.readouterr().err.lower()
    assert run("--url", archive.url, "--ca", certfile, "search", "studies") == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_cert_option_presents_a_client_certificate(
    make_server: Any, tls_certificate: Any, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    certfile, keyfile = tls_certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certfile), str(keyfile))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(str(certfile))
    archive = FakeArchive(make_server(ssl_context=context))
    archive.add(dicom_data.make_study(1, 1))
    combined = tmp_path / "client.pem"
    combined.write_bytes(certfile.read_bytes() + keyfile.read_bytes())
    assert run("--url", archive.url, "--ca", certfile, "search", "studies") == 1
    capsys.readouterr()
    assert run("--url", archive.url, "--ca", certfile, "--cert", combined, "search", "studies") == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_missing_certificate_file_is_one_clear_error(
    archive: FakeArchive, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run("--url", archive.url, "--ca", tmp_path / "nope.pem", "search", "studies") == 1
    assert capsys.readouterr().err == (
        f"dicomweb_client: error: certificate file {tmp_path / 'nope.pem'} does not exist\n"
    )


# -- search ---------------------------------------------------------------------------------


def test_search_studies_sends_every_query_option(
    archive: FakeArchive, study: list[Dataset], capsys: pytest.CaptureFixture
) -> None:
    assert (
        run(
            "--url",
            archive.url,
            "search",
            "studies",
            "--filter",
            "PatientID=P1",
            "--filter",
            "00080060=CT",
            "--field",
            "PatientAge",
            "--field",
            "00081030",
            "--limit",
            "5",
            "--offset",
            "0",
            "--fuzzy",
        )
        == 0
    )
    query = archive.server.last.query
    query["includefield"].sort()
    assert query == {
        "PatientID": ["P1"],
        "00080060": ["CT"],
        "includefield": ["00081030", "PatientAge"],
        "limit": ["5"],
        "offset": ["0"],
        "fuzzymatching": ["true"],
    }
    results = json.loads(capsys.readouterr().out)
    assert results[0]["0020000D"]["Value"] == [study[0].StudyInstanceUID]


def test_search_repeated_filter_key_is_sent_twice(
    archive: FakeArchive, study: list[Dataset]
) -> None:
    assert (
        run(
            "--url",
            archive.url,
            "search",
            "studies",
            "--filter",
            "Modality=CT",
            "--filter",
            "Modality=MR",
            "--filter",
            "StudyDate=20240101-",
        )
        == 0
    )
    assert archive.server.last.query == {"Modality": ["CT", "MR"], "StudyDate": ["20240101-"]}


@pytest.mark.parametrize(
    "words, path, query",
    [
        (["series"], "/series", {}),
        (["series", "--study", "1.2.3"], "/studies/1.2.3/series", {}),
        (["instances"], "/instances", {}),
        (["instances", "--study", "1.2.3"], "/studies/1.2.3/instances", {}),
        (
            ["instances", "--study", "1.2.3", "--series", "4.5"],
            "/studies/1.2.3/series/4.5/instances",
            {},
        ),
        (["instances", "--series", "4.5"], "/instances", {"SeriesInstanceUID": ["4.5"]}),
    ],
)
def test_search_levels_and_uids(
    words: list[str], path: str, query: dict, archive: FakeArchive
) -> None:
    assert run("--url", archive.url, "search", *words) == 0
    assert (archive.server.last.path, archive.server.last.query) == (path, query)


def test_search_output_formats(
    archive: FakeArchive, study: list[Dataset], capsys: pytest.CaptureFixture
) -> None:
    assert run("--url", archive.url, "search", "series") == 0
    compact = capsys.readouterr().out
    assert compact.count("\n") == 1
    assert run("--url", archive.url, "search", "series", "--prettify") == 0
    pretty = capsys.readouterr().out
    assert json.loads(pretty) == json.loads(compact) and pretty.count("\n") > 20
    assert run("--url", archive.url, "search", "series", "--output", "json") == 0
    assert capsys.readouterr().out == compact
    assert run("--url", archive.url, "search", "series", "--dicomize") == 0
    text = as_pydicom3_prints(capsys.readouterr().out)
    for ds in study[:4:3]:
        assert f"(0020,000E) Series Instance UID                 UI: {ds.SeriesInstanceUID}" in text
    assert "Series 2" in text


def test_search_table(
    archive: FakeArchive,
    study: list[Dataset],
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # the whole table, as when piped
    assert run("--url", archive.url, "search", "studies", "--output", "table") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "PatientName",
        "PatientID",
        "StudyDate",
        "AccessionNumber",
        "Modalities",
        "StudyDescription",
        "Series",
        "Instances",
        "StudyInstanceUID",
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == [
        "Doe^Jane",
        "P1",
        "20240101",
        "ACC0001",
        "CT",
        "Test",
        "study",
        "2",
        "7",
        study[0].StudyInstanceUID,
    ]
    assert lines[3] == "1 study"

    assert (
        run(
            "--url",
            archive.url,
            "search",
            "instances",
            "--study",
            study[0].StudyInstanceUID,
            "--output",
            "table",
            "--field",
            "Rows",
            "--field",
            "00100020",
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "InstanceNumber",
        "Rows",
        "Columns",
        "SOPClass",
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
    ]
    assert len(lines) == 2 + len(study) + 1 and lines[-1] == f"{len(study)} instances"
    assert {tuple(line.split()[-3:]) for line in lines[2:-1]} == {
        (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) for ds in study
    }


def test_search_table_with_no_results(archive: FakeArchive, capsys: pytest.CaptureFixture) -> None:
    assert run("--url", archive.url, "search", "series", "--output", "table") == 0
    assert capsys.readouterr().out == "0 series\n"


# -- search: tables fitted to the terminal --------------------------------------------------


LONG_NAME = "Doe^Jane Alexandra Marie-Louise^^Dr"
LONG_STUDY = "CT thorax abdomen pelvis with contrast, arterial, venous phases"
LONG_SERIES = "Axial 1.25 mm soft tissue, portal venous phase, reformatted"
UNKNOWN_CLASS = "1.2.3.4.5.6.7"
TABLE_STUDY = "2.25.7001"
TABLE_SERIES = ("2.25.7001.1", "2.25.7001.2")
TABLE_WORDS = {
    "studies": [],
    "series": ["--study", TABLE_STUDY],
    "instances": ["--study", TABLE_STUDY],
}
TABLE_KEYS = {
    "studies": ["StudyInstanceUID"],
    "series": ["StudyInstanceUID", "SeriesInstanceUID"],
    "instances": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
}


@pytest.fixture
def described(archive: FakeArchive) -> list[Dataset]:
    """A study with short UIDs and long free text: two series of two instances, the last
    one of a SOP class that has no name."""
    datasets = []
    for number, series in enumerate(TABLE_SERIES, 1):
        for instance in (1, 2):
            unknown = (number, instance) == (2, 2)
            datasets.append(
                dicom_data.make_instance(
                    TABLE_STUDY,
                    series,
                    f"{series}.{instance}",
                    patient_name=LONG_NAME,
                    study_description=LONG_STUDY,
                    series_description=LONG_SERIES,
                    series_number=number,
                    instance_number=instance,
                    sop_class_uid=UNKNOWN_CLASS if unknown else None,
                )
            )
    return archive.add(datasets)


def table_lines(
    archive: FakeArchive,
    level: str,
    columns: int | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    *words: str,
) -> list[str]:
    """The table that ``search LEVEL --output table`` prints with COLUMNS set (or unset)."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    assert (
        run(
            "--url",
            archive.url,
            "search",
            level,
            *TABLE_WORDS.get(level, []),
            "--output",
            "table",
            *words,
        )
        == 0
    )
    return capsys.readouterr().out.splitlines()


def shared_uids(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """The UIDs printed once above a table, by label, and the table (heading to count).

    They are ``Label  UID`` lines, or a label line with its UID indented on the next one,
    and a blank line; a table without them starts with its heading."""
    if "" not in lines:
        return {}, lines
    blank = lines.index("")
    above, shared = lines[:blank], {}
    while above:
        label, *uid = above.pop(0).split()
        if not uid:  # too wide for one line: the UID is on the next one, indented
            assert above[0].startswith("  "), lines
            uid = [above.pop(0).strip()]
        assert len(uid) == 1 and label not in shared, lines
        shared[label] = uid[0]
    return shared, lines[blank + 1 :]


def key_uids(lines: list[str], level: str) -> set[tuple[str, ...]]:
    """The UIDs of each row of a table: those that end the row (the lines between rule
    and count), with those printed above the table."""
    shared, table = shared_uids(lines)
    keys = TABLE_KEYS[level]
    shown = [key for key in keys if key not in shared]
    assert (
        set(shared) <= set(keys) and table[0].split()[len(table[0].split()) - len(shown) :] == shown
    )
    rows = [line.split()[len(line.split()) - len(shown) :] for line in table[2:-1]]
    return {
        tuple(shared[key] if key in shared else row[shown.index(key)] for key in keys)
        for row in rows
    }


def expected_uids(datasets: list[Dataset], level: str) -> set[tuple[str, ...]]:
    return {tuple(str(getattr(ds, key)) for key in TABLE_KEYS[level]) for ds in datasets}


# The columns left at each width by the priorities that docs/cli.md gives.  The series
# and instances tables are of one study: its UID is printed above them (FITTED_ABOVE).
FITTED_HEADINGS = {
    ("studies", 80): [
        "PatientName",
        "PatientID",
        "StudyDate",
        "StudyDescription",
        "Instances",
        "StudyInstanceUID",
    ],  # Instances fits in what is left
    ("studies", 120): [
        "PatientName",
        "PatientID",
        "StudyDate",
        "AccessionNumber",
        "Modalities",
        "StudyDescription",
        "Series",
        "Instances",
        "StudyInstanceUID",
    ],
    ("series", 80): ["Modality", "SeriesNumber", "SeriesDescription", "SeriesInstanceUID"],
    ("series", 120): ["Modality", "SeriesNumber", "SeriesDescription", "SeriesInstanceUID"],
    ("instances", 80): [
        "InstanceNumber",
        "Rows",
        "Columns",
        "SOPClass",
        "SeriesInstanceUID",
        "SOPInstanceUID",
    ],
    ("instances", 120): [
        "InstanceNumber",
        "Rows",
        "Columns",
        "SOPClass",
        "SeriesInstanceUID",
        "SOPInstanceUID",
    ],
}
FITTED_ABOVE = {
    "studies": {},
    "series": {"StudyInstanceUID": TABLE_STUDY},
    "instances": {"StudyInstanceUID": TABLE_STUDY},
}


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("level", ["studies", "series", "instances"])
def test_table_fits_the_width_that_columns_gives(
    level: str,
    columns: int,
    described: list[Dataset],
    archive: FakeArchive,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    lines = table_lines(archive, level, columns, monkeypatch, capsys)
    assert lines and all(len(line) <= columns for line in lines), "\n".join(lines)
    shared, table = shared_uids(lines)
    assert shared == FITTED_ABOVE[level]
    assert table[0].split() == FITTED_HEADINGS[level, columns]
    assert key_uids(lines, level) == expected_uids(described, level)
    text = "\n".join(lines)
    if columns == 80 and level != "instances":  # free text is cut, marked with "..."
        assert "..." in text and "\N{HORIZONTAL ELLIPSIS}" not in text
        assert LONG_STUDY not in text and LONG_SERIES not in text


def test_table_drops_columns_only_after_cutting_free_text(
    described: list[Dataset],
    archive: FakeArchive,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    lines = table_lines(archive, "studies", 60, monkeypatch, capsys)
    assert lines[0].split() == ["PatientName", "StudyDate", "StudyDescription", "StudyInstanceUID"]
    row = lines[2]
    assert row.startswith("Doe^Jane") and "..." in row and len(row) <= 60
    lines = table_lines(archive, "instances", 45, monkeypatch, capsys)
    # InstanceNumber goes; Rows, narrower, fits in the room that is left
    assert shared_uids(lines)[1][0].split() == ["Rows", "SeriesInstanceUID", "SOPInstanceUID"]
    # a --field column is kept longer than the default ones
    lines = table_lines(archive, "instances", 50, monkeypatch, capsys, "--field", "PatientID")
    assert shared_uids(lines)[1][0].split() == [
        "Rows",
        "PatientID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
    ]
    assert all(len(line) <= 50 for line in lines)


@pytest.mark.parametrize("level", ["studies", "series", "instances"])
def test_table_uids_are_never_cut(
    level: str,
    archive: FakeArchive,
    study: list[Dataset],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """pydicom's UIDs are 64 characters long: two of them cannot fit in 80 columns."""
    words = [] if level == "studies" else ["--study", study[0].StudyInstanceUID]
    monkeypatch.setitem(TABLE_WORDS, level, words)
    lines = table_lines(archive, level, 80, monkeypatch, capsys)
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    shared, table = shared_uids(lines)
    uid = study[0].StudyInstanceUID
    assert shared == ({} if level == "studies" else {"StudyInstanceUID": uid})
    if level != "instances":  # with the study's UID above the series, the rows fit
        assert key_uids(lines, level) == expected_uids(study, level)
        return
    # a series UID and a SOP UID side by side are too wide for any table: one block of
    # labelled lines per instance, every UID whole
    blocks = "\n".join(table[:-1]).split("\n\n")
    assert len(blocks) == len(study) and table[-1] == f"{len(study)} instances"
    for dataset in study:
        block = next(block for block in blocks if dataset.SOPInstanceUID in block)
        block_lines = block.splitlines()
        # "SeriesInstanceUID  <64 characters>" is 83 wide (and the SOP line, whose label is
        # aligned with it, too): the UIDs go below their labels
        assert block_lines[-4:] == [
            "SeriesInstanceUID",
            f"  {dataset.SeriesInstanceUID}",
            "SOPInstanceUID",
            f"  {dataset.SOPInstanceUID}",
        ]
        assert block_lines[0] == f"InstanceNumber     {dataset.InstanceNumber}", block


def long_uid(number: int) -> str:
    """A UID of 64 characters, the most there may be (pydicom's are 63 or 64)."""
    return f"1.2.826.0.1.3680043.8.498.9{number:037d}"


@pytest.fixture
def long_uids(archive: FakeArchive) -> list[Dataset]:
    """A study of two series of three instances, all with UIDs of 64 characters."""
    return archive.add(
        [
            dicom_data.make_instance(
                long_uid(1),
                long_uid(10 + series),
                long_uid(100 + 10 * series + instance),
                series_number=series,
                instance_number=instance,
            )
            for series in (1, 2)
            for instance in (1, 2, 3)
        ]
    )


def test_instance_table_of_one_series_prints_its_study_and_series_above_it(
    archive: FakeArchive,
    long_uids: list[Dataset],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Three 64-character UIDs are too wide for 120 columns; the two that every row shares
    are printed once, in full, and the rest fits."""
    study, series = long_uid(1), long_uid(11)
    instances = archive.select(study, series)
    monkeypatch.setitem(TABLE_WORDS, "instances", ["--study", study, "--series", series])
    lines = table_lines(archive, "instances", 120, monkeypatch, capsys)
    assert lines[:3] == [f"StudyInstanceUID   {study}", f"SeriesInstanceUID  {series}", ""]
    assert all(len(line) <= 120 for line in lines), "\n".join(lines)
    heading, rule, *rows, count = lines[3:]
    assert heading.split() == ["InstanceNumber", "Rows", "Columns", "SOPClass", "SOPInstanceUID"]
    assert [row.split()[-1] for row in rows] == [ds.SOPInstanceUID for ds in instances]
    assert count == "3 instances"
    assert key_uids(lines, "instances") == expected_uids(instances, "instances")


def test_series_table_of_one_study_fits_80_columns(
    archive: FakeArchive,
    long_uids: list[Dataset],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """``StudyInstanceUID`` and a 64-character UID make 82 characters: the label is on a
    line of its own, the UID under it."""
    monkeypatch.setitem(TABLE_WORDS, "series", ["--study", long_uid(1)])
    lines = table_lines(archive, "series", 80, monkeypatch, capsys)
    assert lines[:3] == ["StudyInstanceUID", f"  {long_uid(1)}", ""]
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    # the UID leaves room for columns of the series: they are put back
    assert lines[3].split() == ["Modality", "SeriesInstanceUID"]
    assert lines[-1] == "2 series"
    assert key_uids(lines, "series") == expected_uids(long_uids, "series")


def test_table_of_one_row_keeps_its_uid_columns(
    archive: FakeArchive,
    study: list[Dataset],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    first = study[0]
    monkeypatch.setitem(
        TABLE_WORDS,
        "instances",
        ["--study", first.StudyInstanceUID, "--series", first.SeriesInstanceUID],
    )
    lines = table_lines(archive, "instances", 240, monkeypatch, capsys, "--limit", "1")
    assert len(lines) == 4 and lines[-1] == "1 instance"
    assert lines[0].split()[-3:] == TABLE_KEYS["instances"]
    assert lines[2].split()[-3:-1] == [first.StudyInstanceUID, first.SeriesInstanceUID]


def test_table_keeps_a_uid_column_that_differs_between_rows(
    archive: FakeArchive,
    study: list[Dataset],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    other = archive.add(dicom_data.make_study(1, 1, patient_id="P2"))
    lines = table_lines(archive, "studies", 80, monkeypatch, capsys)
    assert lines[0].split()[-1] == "StudyInstanceUID" and lines[-1] == "2 studies"
    assert "" not in lines and all(len(line) <= 80 for line in lines)
    assert key_uids(lines, "studies") == expected_uids(study + other, "studies")
    # series of both studies: the study UID differs, and no series UID is shared
    monkeypatch.setitem(TABLE_WORDS, "series", [])
    lines = table_lines(archive, "series", 200, monkeypatch, capsys)
    assert lines[0].split()[-2:] == TABLE_KEYS["series"] and lines[-1] == "3 series"
    assert key_uids(lines, "series") == expected_uids(study + other, "series")


def test_piped_table_without_columns_is_whole(
    described: list[Dataset], archive: FakeArchive
) -> None:
    command = [
        sys.executable,
        "-m",
        "dicomweb_client_cli",
        "--url",
        archive.url,
        "search",
        "series",
        "--study",
        TABLE_STUDY,
        "--output",
        "table",
    ]
    env = child_env()
    env.pop("COLUMNS", None)
    piped = subprocess.run(command, env=env, capture_output=True, timeout=60, text=True)
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert max(map(len, lines)) > 80 and "..." not in piped.stdout
    assert [line.count(LONG_SERIES) for line in lines[2:-1]] == [1, 1]
    assert key_uids(lines, "series") == expected_uids(described, "series")
    # for programs, every row carries its UIDs: the shared study UID stays a column
    assert lines[0].split()[-2:] == ["StudyInstanceUID", "SeriesInstanceUID"]
    assert [line.split()[-2] for line in lines[2:-1]] == [TABLE_STUDY, TABLE_STUDY]
    narrow = subprocess.run(
        command, env=dict(env, COLUMNS="80"), capture_output=True, timeout=60, text=True
    )
    assert narrow.returncode == 0, narrow.stderr
    assert all(len(line) <= 80 for line in narrow.stdout.splitlines())
    assert LONG_SERIES not in narrow.stdout
    assert narrow.stdout.startswith(f"StudyInstanceUID  {TABLE_STUDY}\n\nModality  ")


def test_table_on_a_terminal_fits_its_window(
    described: list[Dataset], archive: FakeArchive
) -> None:
    import fcntl
    import struct
    import termios

    env = child_env()
    env.pop("COLUMNS", None)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 72, 0, 0))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dicomweb_client_cli",
            "--url",
            archive.url,
            "search",
            "studies",
            "--output",
            "table",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    try:
        shown = read_pty(master, process).decode()
    finally:
        os.close(master)
    assert process.returncode == 0
    lines = shown.splitlines()
    assert lines[-1] == "1 study" and all(len(line) <= 72 for line in lines), shown
    assert TABLE_STUDY in lines[2].split() and "..." in shown


def test_table_names_sop_classes(
    described: list[Dataset],
    archive: FakeArchive,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    lines = table_lines(archive, "instances", None, monkeypatch, capsys)
    classes = {line.split()[-1]: line for line in lines[2:-1]}
    assert len(classes) == 4
    for ds in described:
        row = classes[ds.SOPInstanceUID]
        if ds.SOPClassUID == UNKNOWN_CLASS:
            assert f"  {UNKNOWN_CLASS}  " in row
        else:
            assert "  CT Image Storage  " in row and ds.SOPClassUID not in row
    # two characters too wide (the study UID is above the table): the names are cut, an
    # unknown UID is not
    lines = table_lines(archive, "instances", 80, monkeypatch, capsys)
    table = shared_uids(lines)[1]
    assert table[0].split()[3] == "SOPClass" and max(map(len, table)) == 80
    assert [line.count("CT Image St...") for line in table[2:-1]] == [1, 1, 1, 0]
    assert f"  {UNKNOWN_CLASS}  " in lines[-2]


def test_uid_label_without_the_package_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    label = dicomweb_client_cli._uid_label
    assert label("1.2.840.10008.5.1.4.1.1.2") == "CT Image Storage"
    assert label(UNKNOWN_CLASS) == UNKNOWN_CLASS
    monkeypatch.delattr(dicomweb_client, "_uid_name", raising=False)
    assert label("1.2.840.10008.5.1.4.1.1.7") == "Secondary Capture Image Storage"
    assert label(UNKNOWN_CLASS) == UNKNOWN_CLASS


def test_table_fills_in_uids_the_server_leaves_out(
    recording_server: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    series = TABLE_SERIES[0]
    items = [
        {
            "00080018": {"vr": "UI", "Value": [f"{series}.{n}"]},
            "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
            "00200013": {"vr": "IS", "Value": [n]},
        }
        for n in (1, 2)
    ]
    recording_server.add(
        "GET", f"/studies/{TABLE_STUDY}/series/{series}/instances", json_response(items)
    )
    monkeypatch.delenv("COLUMNS", raising=False)
    assert (
        run(
            "--url",
            recording_server.url,
            "search",
            "instances",
            "--study",
            TABLE_STUDY,
            "--series",
            series,
            "--output",
            "table",
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert key_uids(lines, "instances") == {(TABLE_STUDY, series, f"{series}.{n}") for n in (1, 2)}


# -- retrieve: metadata ---------------------------------------------------------------------


@pytest.mark.parametrize("level", ["studies", "series", "instances"])
def test_retrieve_metadata_prints_dicom_json(
    level: str, archive: FakeArchive, study: list[Dataset], capsys: pytest.CaptureFixture
) -> None:
    first = study[0]
    uids = ["--study", first.StudyInstanceUID]
    if level != "studies":
        uids += ["--series", first.SeriesInstanceUID]
    if level == "instances":
        uids += ["--instance", first.SOPInstanceUID]
    assert run("--url", archive.url, "retrieve", level, *uids, "metadata") == 0
    assert archive.server.last.path.endswith("/metadata")
    printed = json.loads(capsys.readouterr().out)
    expected = {"studies": 7, "series": 4, "instances": 1}[level]
    if level == "instances":
        assert isinstance(printed, dict)
        printed = [printed]
    assert len(printed) == expected
    assert printed[0]["00080018"]["Value"] == [first.SOPInstanceUID]


def test_retrieve_metadata_dicomize_does_not_follow_bulk_data(
    archive: FakeArchive,
    study: list[Dataset],
    capsys: pytest.CaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    first = study[0]
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "instances",
            "--study",
            first.StudyInstanceUID,
            "--series",
            first.SeriesInstanceUID,
            "--instance",
            first.SOPInstanceUID,
            "metadata",
            "--dicomize",
        )
        == 0
    )
    text = as_pydicom3_prints(capsys.readouterr().out)
    assert "(7FE0,0010) Pixel Data                          OW: None" in text
    assert "(0010,0010) Patient's Name                      PN: 'Doe^Jane'" in text
    assert not [w for w in recwarn if "bulk" in str(w.message).lower()]
    assert all("/bulk/" not in r.path for r in archive.server.requests)


def test_retrieve_metadata_save(
    archive: FakeArchive,
    study: list[Dataset],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = study[0]
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "series",
            "--study",
            first.StudyInstanceUID,
            "--series",
            first.SeriesInstanceUID,
            "metadata",
            "--save",
            "--output-dir",
            tmp_path / "meta",
        )
        == 0
    )
    assert capsys.readouterr().out == f"saved 4 files to {tmp_path / 'meta'}\n"
    files = sorted((tmp_path / "meta").iterdir())
    assert {path.name for path in files} == {
        f"{ds.SOPInstanceUID}.json"
        for ds in study
        if ds.SeriesInstanceUID == first.SeriesInstanceUID
    }
    item = json.loads((tmp_path / "meta" / f"{first.SOPInstanceUID}.json").read_text())
    assert item["00080018"]["Value"] == [first.SOPInstanceUID]
    # --output-dir alone implies --save; --prettify indents the files
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            first.StudyInstanceUID,
            "metadata",
            "--prettify",
            "--output-dir",
            tmp_path / "pretty",
        )
        == 0
    )
    assert len(list((tmp_path / "pretty").iterdir())) == 7
    assert (tmp_path / "pretty" / f"{first.SOPInstanceUID}.json").read_text().count("\n") > 20
    # --save alone writes to the current folder
    monkeypatch.chdir(tmp_path)
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "instances",
            "--study",
            first.StudyInstanceUID,
            "--series",
            first.SeriesInstanceUID,
            "--instance",
            first.SOPInstanceUID,
            "metadata",
            "--save",
        )
        == 0
    )
    assert (tmp_path / f"{first.SOPInstanceUID}.json").is_file()


# -- retrieve: full instances ---------------------------------------------------------------


def test_retrieve_instance_full(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    first = study[0]
    uids = [
        "--study",
        first.StudyInstanceUID,
        "--series",
        first.SeriesInstanceUID,
        "--instance",
        first.SOPInstanceUID,
    ]
    assert run("--url", archive.url, "retrieve", "instances", *uids, "full") == 0
    assert (
        f"SOP Instance UID                    UI: {first.SOPInstanceUID}" in capsys.readouterr().out
    )
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "instances",
            *uids,
            "full",
            "--save",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    assert saved_files(tmp_path) == {
        f"{first.SOPInstanceUID}.dcm": archive.files[first.SOPInstanceUID]
    }


@pytest.mark.parametrize(
    "words, accept",
    [
        (["--media-type", "application/dicom"], 'multipart/related; type="application/dicom"'),
        (["--media-type", "application/dicom *"], "transfer-syntax=*"),
        (
            ["--media-type", "application/dicom", "1.2.840.10008.1.2.5"],
            "transfer-syntax=1.2.840.10008.1.2.5",
        ),
    ],
)
def test_retrieve_full_media_type(
    words: list[str], accept: str, archive: FakeArchive, study: list[Dataset]
) -> None:
    first = study[0]
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "series",
            "--study",
            first.StudyInstanceUID,
            "--series",
            first.SeriesInstanceUID,
            "full",
            *words,
        )
        == 0
    )
    assert accept in archive.server.last.header("Accept")


def test_retrieve_series_full_prints_every_instance(
    archive: FakeArchive, study: list[Dataset], capsys: pytest.CaptureFixture
) -> None:
    first = study[0]
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "series",
            "--study",
            first.StudyInstanceUID,
            "--series",
            first.SeriesInstanceUID,
            "full",
        )
        == 0
    )
    text = as_pydicom3_prints(capsys.readouterr().out)
    assert text.count("(0008,0018) SOP Instance UID") == 4


def test_study_download_layout_and_bytes(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uid = study[0].StudyInstanceUID
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            uid,
            "full",
            "--save",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    assert tree(tmp_path) == expected_layout(archive, study)
    assert (
        capsys.readouterr().out == f"7 downloaded, 0 already present, 0 failed: {tmp_path / uid}\n"
    )
    assert len(archive.wado_requests()) == 7


def test_series_download(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    last = study[3]
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "series",
            "--study",
            last.StudyInstanceUID,
            "--series",
            last.SeriesInstanceUID,
            "full",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    assert tree(tmp_path) == expected_layout(archive, study[3:6])


@pytest.mark.parametrize("level", ["instance", "study"])
def test_saved_files_are_the_bytes_the_server_sent(
    level: str, archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    # a preamble of text and padding after the data set: decoding and writing the file
    # again would lose both
    for ds in study:
        original = archive.files[ds.SOPInstanceUID]
        archive.files[ds.SOPInstanceUID] = (
            b"made by a test".ljust(128, b".") + original[128:] + b"\0" * 6
        )
    first = study[0]
    if level == "instance":
        assert (
            run(
                "--url",
                archive.url,
                "retrieve",
                "instances",
                "--study",
                first.StudyInstanceUID,
                "--series",
                first.SeriesInstanceUID,
                "--instance",
                first.SOPInstanceUID,
                "full",
                "--save",
                "--output-dir",
                tmp_path,
            )
            == 0
        )
        assert tree(tmp_path) == {
            f"{first.SOPInstanceUID}.dcm": archive.files[first.SOPInstanceUID]
        }
    else:
        assert (
            run(
                "--url",
                archive.url,
                "retrieve",
                "studies",
                "--study",
                first.StudyInstanceUID,
                "full",
                "--output-dir",
                tmp_path,
            )
            == 0
        )
        assert tree(tmp_path) == expected_layout(archive, study)


def test_an_instance_sent_without_file_header_is_saved_as_a_part10_file(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    first = study[0]
    original = archive.files[first.SOPInstanceUID]
    meta_end = 132 + 12 + int.from_bytes(original[140:144], "little")
    archive.files[first.SOPInstanceUID] = original[meta_end:]  # the data set alone
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "instances",
            "--study",
            first.StudyInstanceUID,
            "--series",
            first.SeriesInstanceUID,
            "--instance",
            first.SOPInstanceUID,
            "full",
            "--save",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    saved = pydicom.dcmread(tmp_path / f"{first.SOPInstanceUID}.dcm")
    assert saved.preamble is not None  # read without force: a Part 10 file
    assert saved.file_meta.TransferSyntaxUID == first.file_meta.TransferSyntaxUID
    assert saved.SOPInstanceUID == first.SOPInstanceUID
    assert saved.PixelData == first.PixelData


def save_bare_instance(archive: FakeArchive, ds: Dataset, folder: Path) -> int:
    """Serve ``ds`` without its file header and save it with the command."""
    original = archive.files[ds.SOPInstanceUID]
    meta_end = 132 + 12 + int.from_bytes(original[140:144], "little")
    archive.files[ds.SOPInstanceUID] = original[meta_end:]
    return run(
        "--url",
        archive.url,
        "retrieve",
        "instances",
        "--study",
        ds.StudyInstanceUID,
        "--series",
        ds.SeriesInstanceUID,
        "--instance",
        ds.SOPInstanceUID,
        "full",
        "--output-dir",
        folder,
    )


def test_a_type_error_of_pydicom_is_reported_not_retried_as_pydicom_2(
    archive: FakeArchive,
    study: list[Dataset],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    calls: list[dict] = []

    def dcmwrite(
        fp: Any, dataset: Dataset, /, *, enforce_file_format: bool = False, **kwargs: Any
    ) -> None:  # pydicom 3's signature, failing on the data
        calls.append({"enforce_file_format": enforce_file_format, **kwargs})
        raise TypeError("this value cannot be written")

    monkeypatch.setattr(pydicom, "dcmwrite", dcmwrite)
    assert save_bare_instance(archive, study[0], tmp_path) == 1
    assert calls == [{"enforce_file_format": True}]  # once, not again as for pydicom 2
    assert (
        capsys.readouterr().err
        == "dicomweb_client: error: TypeError: this value cannot be written\n"
    )
    assert tree(tmp_path) == {}


def test_datasets_are_written_with_the_arguments_of_pydicom_2(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = pydicom.dcmwrite, []

    def dcmwrite(filename: Any, dataset: Dataset, write_like_original: bool = True) -> None:
        calls.append(write_like_original)  # pydicom 2's signature
        real(filename, dataset, enforce_file_format=not write_like_original)

    monkeypatch.setattr(pydicom, "dcmwrite", dcmwrite)
    assert save_bare_instance(archive, study[0], tmp_path) == 0
    assert calls == [False]
    saved = pydicom.dcmread(tmp_path / f"{study[0].SOPInstanceUID}.dcm")
    assert saved.SOPInstanceUID == study[0].SOPInstanceUID


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_saved_files_get_the_mode_the_umask_gives(
    umask: int, mode: int, archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    first = study[0]
    previous = os.umask(umask)
    try:
        assert (
            run(
                "--url",
                archive.url,
                "retrieve",
                "studies",
                "--study",
                first.StudyInstanceUID,
                "full",
                "--output-dir",
                tmp_path / "study",
            )
            == 0
        )
        assert (
            run(
                "--url",
                archive.url,
                "retrieve",
                "studies",
                "--study",
                first.StudyInstanceUID,
                "metadata",
                "--output-dir",
                tmp_path / "meta",
            )
            == 0
        )
    finally:
        assert os.umask(previous) == umask  # and the umask is as it was
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) == 2 * len(study)
    assert {path.stat().st_mode & 0o777 for path in files} == {mode}


def test_download_resumes_after_a_failure(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uid = study[0].StudyInstanceUID
    victim, missing = study[1].SOPInstanceUID, study[4].SOPInstanceUID
    body = multipart_body([archive.files[victim]], "b0undary", "application/dicom")
    archive.break_once[victim] = Response(
        body=body,
        content_type='multipart/related; type="application/dicom"; boundary=b0undary',
        reset_after=len(body) // 2,
    )
    archive.break_once[missing] = Response(
        status=404, body=b"gone for now", content_type="text/plain"
    )
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            uid,
            "full",
            "--output-dir",
            tmp_path,
            "--workers",
            "3",
        )
        == 1
    )
    captured = capsys.readouterr()
    assert captured.out == f"5 downloaded, 0 already present, 2 failed: {tmp_path / uid}\n"
    errors = captured.err.splitlines()
    assert len(errors) == 2
    assert any(
        f"instance {missing}: 404 Not Found from GET " in line and line.endswith(": gone for now")
        for line in errors
    )
    assert any(f"instance {victim}: " in line for line in errors)
    first_run = tree(tmp_path)
    assert len(first_run) == 5 and not any(name.endswith(".part") for name in first_run)

    archive.server.clear()
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            uid,
            "full",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    assert (
        capsys.readouterr().out == f"2 downloaded, 5 already present, 0 failed: {tmp_path / uid}\n"
    )
    assert sorted(r.path.rsplit("/", 1)[1] for r in archive.wado_requests()) == sorted(
        [victim, missing]
    )
    assert tree(tmp_path) == expected_layout(archive, study)


def test_existing_files_are_skipped_and_part_files_replaced(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    first, second = study[0], study[1]
    folder = tmp_path / first.StudyInstanceUID / first.SeriesInstanceUID
    folder.mkdir(parents=True)
    (folder / f"{first.SOPInstanceUID}.dcm").write_bytes(b"kept as it is")
    (folder / f"{second.SOPInstanceUID}.dcm.part").write_bytes(b"half a file")
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            first.StudyInstanceUID,
            "full",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    expected = expected_layout(archive, study)
    expected[f"{first.StudyInstanceUID}/{first.SeriesInstanceUID}/{first.SOPInstanceUID}.dcm"] = (
        b"kept as it is"
    )
    assert tree(tmp_path) == expected
    assert first.SOPInstanceUID not in [r.path.rsplit("/", 1)[1] for r in archive.wado_requests()]


@pytest.mark.parametrize("workers, low, high", [("4", 2, 4), ("1", 1, 1)])
def test_download_in_parallel(
    workers: str, low: int, high: int, archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    archive.delay = 0.15
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            study[0].StudyInstanceUID,
            "full",
            "--output-dir",
            tmp_path,
            "--workers",
            workers,
        )
        == 0
    )
    assert low <= archive.max_in_flight <= high
    assert tree(tmp_path) == expected_layout(archive, study)


def test_many_download_threads_keep_their_connections(archive: FakeArchive, tmp_path: Path) -> None:
    study = archive.add(dicom_data.make_study(2, 16, rows=4, columns=4))
    archive.delay = 0.01
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            study[0].StudyInstanceUID,
            "full",
            "--output-dir",
            tmp_path,
            "--workers",
            "14",
        )
        == 0
    )
    assert len(list(tmp_path.rglob("*.dcm"))) == 32
    # 14 threads, more than a session keeps idle by default, reuse their connections
    assert archive.server.connection_count <= 14 + 1


def test_a_slow_instance_does_not_hold_up_the_other_downloads(
    archive: FakeArchive, tmp_path: Path
) -> None:
    study = archive.add(dicom_data.make_study(1, 12, rows=4, columns=4))
    slow, real = study[0].SOPInstanceUID, archive.instance
    saved_meanwhile: list[int] = []

    def instance(request: RecordedRequest, **uids: str) -> Response:
        if uids["sop"] == slow:  # answers once the others are saved (or after 10 s)
            deadline = time.monotonic() + 10
            while len(list(tmp_path.rglob("*.dcm"))) < 11 and time.monotonic() < deadline:
                time.sleep(0.01)
            saved_meanwhile.append(len(list(tmp_path.rglob("*.dcm"))))
        return real(request, **uids)

    archive.instance = instance  # type: ignore[method-assign]
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            study[0].StudyInstanceUID,
            "full",
            "--output-dir",
            tmp_path,
            "--workers",
            "2",
        )
        == 0
    )
    assert saved_meanwhile == [11]  # the other thread went on past the slow one
    assert len(list(tmp_path.rglob("*.dcm"))) == 12


def first_page(items: list[dict]) -> Callable[[RecordedRequest], Response]:
    """A search answer that has ``items`` at offset 0 (or without offset), then none."""
    return lambda request: json_response(
        [] if int(request.query.get("offset", ["0"])[0]) else items
    )


def test_download_refuses_unsafe_uids_from_the_server(
    recording_server: RecordingServer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recording_server.add(
        "GET", "/studies/1.2/series", first_page([{"0020000E": {"vr": "UI", "Value": ["3.4"]}}])
    )
    recording_server.add(
        "GET",
        "/studies/1.2/series/3.4/instances",
        first_page([{"00080018": {"vr": "UI", "Value": ["../../../escaped"]}}]),
    )
    out = tmp_path / "out"
    assert (
        run(
            "--url",
            recording_server.url,
            "retrieve",
            "studies",
            "--study",
            "1.2",
            "full",
            "--output-dir",
            out,
        )
        == 1
    )
    assert "cannot be a file name: '../../../escaped'" in capsys.readouterr().err
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_download_reports_a_listed_instance_without_uid(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    real = archive.qido_instances

    def without_uid(request: RecordedRequest, **uids: Any) -> Response:
        items = json.loads(real(request, **uids).body)
        if items and items[0]["0020000E"]["Value"] == [study[0].SeriesInstanceUID]:
            items.append({"0020000E": items[0]["0020000E"]})  # no SOP Instance UID
        return json_response(items)

    archive.qido_instances = without_uid  # type: ignore[method-assign]
    uid = study[0].StudyInstanceUID
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            uid,
            "full",
            "--output-dir",
            tmp_path,
        )
        == 1
    )
    captured = capsys.readouterr()
    assert captured.out == f"7 downloaded, 0 already present, 1 failed: {tmp_path / uid}\n"
    assert captured.err.startswith(
        "dicomweb_client: error: a search result lacks attribute 00080018: "
    )
    assert tree(tmp_path) == expected_layout(archive, study)


def test_download_from_a_server_that_ignores_offset_is_an_error(
    recording_server: RecordingServer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # the same answer at every offset: whether it is all cannot be known
    recording_server.add(
        "GET", "/studies/1.2/series", first_page([{"0020000E": {"vr": "UI", "Value": ["3.4"]}}])
    )
    recording_server.add(
        "GET",
        "/studies/1.2/series/3.4/instances",
        json_response([{"00080018": {"vr": "UI", "Value": ["5.6"]}}]),
    )
    assert (
        run(
            "--url",
            recording_server.url,
            "retrieve",
            "studies",
            "--study",
            "1.2",
            "full",
            "--output-dir",
            tmp_path / "out",
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("dicomweb_client: error: the server at ") and err.count("\n") == 1
    assert 'ignore "offset"' in err
    assert not (tmp_path / "out").exists()


def test_download_removes_temporary_files_a_killed_download_left(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    first = study[0]
    folder = tmp_path / first.StudyInstanceUID / first.SeriesInstanceUID
    folder.mkdir(parents=True)
    (folder / f"{dicomweb_client._TEMPORARY_PREFIX}k1ll3d").write_bytes(b"half a file")
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            first.StudyInstanceUID,
            "full",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    assert tree(tmp_path) == expected_layout(archive, study)


def test_download_of_an_unknown_study_is_an_error(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            "7.7.7",
            "full",
            "--output-dir",
            tmp_path / "out",
        )
        == 1
    )
    assert (
        capsys.readouterr().err
        == "dicomweb_client: error: the server listed no instances of the study\n"
    )
    assert not (tmp_path / "out").exists()


def test_download_pages_through_a_capped_server(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    real = archive.qido_instances

    def capped(request: RecordedRequest, **uids: Any) -> Response:
        items = json.loads(real(request, **uids).body)
        return json_response(items[:2])  # at most two results per answer

    archive.qido_instances = capped  # type: ignore[method-assign]
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            study[0].StudyInstanceUID,
            "full",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    assert tree(tmp_path) == expected_layout(archive, study)


def test_download_is_resumed_after_the_process_is_killed(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    uid = study[0].StudyInstanceUID
    archive.delay = 0.2
    command = [
        sys.executable,
        "-m",
        "dicomweb_client_cli",
        "--url",
        archive.url,
        "retrieve",
        "studies",
        "--study",
        uid,
        "full",
        "--output-dir",
        str(tmp_path),
        "--workers",
        "1",
    ]
    process = subprocess.Popen(
        command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while len(list(tmp_path.rglob("*.dcm"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    done = {path.name for path in tmp_path.rglob("*.dcm")}
    assert 2 <= len(done) < len(study)
    # a download cut off in the middle leaves only a .part file behind
    leftover = tmp_path / uid / study[5].SeriesInstanceUID / f"{study[5].SOPInstanceUID}.dcm"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.with_name(leftover.name + ".part").write_bytes(b"\0" * 100)

    archive.delay = 0
    archive.server.clear()
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            uid,
            "full",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    fetched = {r.path.rsplit("/", 1)[1] + ".dcm" for r in archive.wado_requests()}
    assert fetched.isdisjoint(done) and len(fetched | done) == len(study)
    assert tree(tmp_path) == expected_layout(archive, study)


# -- retrieve: frames and bulk data ---------------------------------------------------------


def frame_args(ds: Dataset) -> list[str]:
    return [
        "retrieve",
        "instances",
        "--study",
        ds.StudyInstanceUID,
        "--series",
        ds.SeriesInstanceUID,
        "--instance",
        ds.SOPInstanceUID,
        "frames",
    ]


def test_frames_are_written_to_redirected_stdout(
    archive: FakeArchive, study: list[Dataset], capsysbinary: pytest.CaptureFixture
) -> None:
    multi = study[-1]
    assert run("--url", archive.url, *frame_args(multi), "--numbers", "3", "1") == 0
    assert archive.server.last.path.endswith("/frames/3,1")
    assert capsysbinary.readouterr().out == dicom_data.frame_bytes(
        multi, 3
    ) + dicom_data.frame_bytes(multi, 1)
    assert run("--url", archive.url, *frame_args(multi)) == 0  # --numbers defaults to 1
    assert archive.server.last.path.endswith("/frames/1")


def test_frames_are_described_on_a_terminal(
    archive: FakeArchive,
    study: list[Dataset],
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dicomweb_client_cli, "_stdout_is_terminal", lambda: True)
    assert (
        run(
            "--url",
            archive.url,
            *frame_args(study[-1]),
            "--numbers",
            "2",
            "--media-type",
            "image/jpeg",
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"frame 2: {len(FAKE_JPEG) + 1} bytes (JPEG)"
    assert "redirect standard output" in lines[1]


def test_frames_save(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    multi = study[-1]
    assert (
        run(
            "--url",
            archive.url,
            *frame_args(multi),
            "--numbers",
            "1",
            "3",
            "--save",
            "--output-dir",
            tmp_path,
        )
        == 0
    )
    assert capsys.readouterr().out == f"saved 2 files to {tmp_path}\n"
    assert saved_files(tmp_path) == {
        f"{multi.SOPInstanceUID}_1.dat": dicom_data.frame_bytes(multi, 1),
        f"{multi.SOPInstanceUID}_3.dat": dicom_data.frame_bytes(multi, 3),
    }
    assert (
        run(
            "--url",
            archive.url,
            *frame_args(multi),
            "--numbers",
            "2",
            "--media-type",
            "image/jpeg 1.2.840.10008.1.2.4.50",
            "--output-dir",
            tmp_path / "jpeg",
        )
        == 0
    )
    assert (
        'type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.50'
        in archive.server.last.header("Accept")
    )
    assert saved_files(tmp_path / "jpeg") == {f"{multi.SOPInstanceUID}_2.jpg": FAKE_JPEG + b"\x02"}


def test_frames_show_opens_a_viewer(
    archive: FakeArchive,
    study: list[Dataset],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
) -> None:
    # the viewer's files outlive the command, so they go to pytest's folder here
    monkeypatch.setattr(dicomweb_client_cli.tempfile, "tempdir", str(tmp_path))
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    assert (
        run(
            "--url",
            archive.url,
            *frame_args(study[-1]),
            "--numbers",
            "1",
            "2",
            "--media-type",
            "image/jpeg",
            "--show",
        )
        == 0
    )
    assert len(opened) == 2 and all(url.startswith("file:") for url in opened)
    first = Path(urllib.request.url2pathname(urllib.parse.urlsplit(opened[0]).path))
    assert first.read_bytes() == FAKE_JPEG + b"\x01"
    assert first.suffix == ".jpg"
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    assert run("--url", archive.url, *frame_args(study[-1]), "--show") == 1
    assert "no image viewer" in capsys.readouterr().err


def test_bulkdata(
    archive: FakeArchive, study: list[Dataset], capsysbinary: pytest.CaptureFixture
) -> None:
    first = study[0]
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "bulkdata",
            "--uri",
            f"{archive.url}/bulk/{first.SOPInstanceUID}",
        )
        == 0
    )
    assert capsysbinary.readouterr().out == first.PixelData
    assert (
        run(
            "--url",
            archive.url,
            "retrieve",
            "bulkdata",
            "--uri",
            f"bulk/{first.SOPInstanceUID}",
            "--media-type",
            "application/octet-stream",
        )
        == 0
    )
    assert archive.server.last.path == f"/bulk/{first.SOPInstanceUID}"
    assert 'type="application/octet-stream"' in archive.server.last.header("Accept")
    assert capsysbinary.readouterr().out == first.PixelData


# -- store ----------------------------------------------------------------------------------


def test_store_a_folder(
    archive: FakeArchive, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    datasets = dicom_data.make_study(2, 2)
    paths = dicom_data.write_files(datasets[:2], tmp_path / "in")
    paths += dicom_data.write_files(datasets[2:], tmp_path / "in" / "nested")
    (tmp_path / "in" / "notes.txt").write_text("not DICOM")
    (tmp_path / "in" / ".hidden.dcm").write_bytes(b"skipped")
    assert run("--url", archive.url, "store", "instances", tmp_path / "in") == 0
    request = archive.server.last
    assert (request.method, request.path) == ("POST", "/studies")
    assert request.header("Content-Length") == str(len(request.body))
    parts = split_multipart(request.body, request.header("Content-Type"))
    assert sorted(parts) == sorted(path.read_bytes() for path in paths)
    out = capsys.readouterr().out.splitlines()
    assert sorted(out[:-1]) == sorted(f"stored: {path}" for path in paths)
    assert out[-1] == "stored 4 of 4 files (1 file in folders ignored: not DICOM)"


def test_store_reports_a_missing_file_and_sends_the_others(
    archive: FakeArchive, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    paths = dicom_data.write_files(dicom_data.make_study(1, 2), tmp_path)
    text_file = tmp_path / "readme.txt"
    text_file.write_text("hello")
    assert (
        run(
            "--url",
            archive.url,
            "store",
            "instances",
            paths[0],
            tmp_path / "gone.dcm",
            text_file,
            paths[1],
        )
        == 1
    )
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"stored: {paths[0]}",
        f"stored: {paths[1]}",
        "stored 2 of 4 files",
    ]
    assert captured.err.splitlines() == [
        f"dicomweb_client: error: {tmp_path / 'gone.dcm'}: no such file or folder",
        f"dicomweb_client: error: {text_file}: not a DICOM file (no DICM prefix)",
    ]
    assert (
        len(split_multipart(archive.server.last.body, archive.server.last.header("Content-Type")))
        == 2
    )


@pytest.mark.parametrize("refused, status", [(1, 202), (2, 409)])
def test_store_reports_instances_the_server_refused(
    refused: int, status: int, archive: FakeArchive, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    datasets = dicom_data.make_study(1, 2)
    paths = dicom_data.write_files(datasets, tmp_path)
    archive.refuse = {ds.SOPInstanceUID for ds in datasets[:refused]}
    assert run("--url", archive.url, "store", "instances", *paths) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"dicomweb_client: error: {path}: refused by the server: failure reason 0xC000 "
        "(cannot understand)"
        for path in paths[:refused]
    ]
    assert captured.out.splitlines() == [f"stored: {path}" for path in paths[refused:]] + [
        f"stored {2 - refused} of 2 files"
    ]


def test_store_into_a_study(archive: FakeArchive, tmp_path: Path) -> None:
    ds = dicom_data.make_instance(study_uid="1.2.3")
    assert (
        run(
            "--url",
            archive.url,
            "store",
            "instances",
            "--study",
            "1.2.3",
            *dicom_data.write_files([ds], tmp_path),
        )
        == 0
    )
    assert archive.server.last.path == "/studies/1.2.3"


def test_store_when_the_server_refuses_the_request(
    recording_server: RecordingServer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recording_server.add(
        "POST", "/studies", Response(status=413, body=b"too large", content_type="text/plain")
    )
    paths = dicom_data.write_files(dicom_data.make_study(1, 2), tmp_path)
    assert run("--url", recording_server.url, "store", "instances", *paths) == 1
    captured = capsys.readouterr()
    assert captured.out == "stored 0 of 2 files\n"
    assert captured.err.splitlines() == [
        f"dicomweb_client: error: {path}: the server refused the request: 413 "
        f"{HTTPStatus(413).phrase} from POST {recording_server.url}/studies: too large"
        for path in paths
    ]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_store_streams_files_in_constant_memory(archive: FakeArchive, tmp_path: Path) -> None:
    """A 64 MiB file costs the storing process far less than 64 MiB of memory."""
    small = dicom_data.make_instance()
    big = dicom_data.make_instance()
    big.PixelData = bytes(64 << 20)
    paths = dicom_data.write_files([small, big], tmp_path)
    code = textwrap.dedent("""
        import re, sys
        from dicomweb_client_cli import main
        code = main(sys.argv[1:])
        with open("/proc/self/status") as status:  # peak resident memory of this process
            peak = re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)
        print(int(peak) // 1024, code)
    """)

    def peak_mib(path: Path) -> int:
        result = subprocess.run(
            [sys.executable, "-c", code, "--url", archive.url, "store", "instances", str(path)],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        peak, status = result.stdout.split()[-2:]
        assert status == "0", result.stderr
        return int(peak)

    baseline, streamed = peak_mib(paths[0]), peak_mib(paths[1])
    assert len(archive.server.last.body) > 64 << 20
    assert streamed - baseline < 24


def test_store_keeps_one_file_open_at_a_time(
    archive: FakeArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = dicom_data.write_files(dicom_data.make_study(2, 5), tmp_path)
    open_now, most = [0], [0]
    real_open, real_close = (
        dicomweb_client_cli._StreamedFile.read,
        dicomweb_client_cli._StreamedFile._close,
    )

    def read(self: Any, size: int = -1) -> bytes:
        if self._file is None:
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])
        return real_open(self, size)

    def close(self: Any) -> None:
        if self._file is not None:
            open_now[0] -= 1
        real_close(self)

    monkeypatch.setattr(dicomweb_client_cli._StreamedFile, "read", read)
    monkeypatch.setattr(dicomweb_client_cli._StreamedFile, "_close", close)
    assert run("--url", archive.url, "store", "instances", *paths) == 0
    assert most[0] == 1 and open_now[0] == 0
    assert len(archive.files) == 10


# -- errors ---------------------------------------------------------------------------------


def test_http_error_is_one_line_and_verbose_adds_the_traceback(
    archive: FakeArchive, capsys: pytest.CaptureFixture
) -> None:
    args = ["--url", archive.url, "retrieve", "studies", "--study", "9.9", "metadata"]
    assert run(*args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"dicomweb_client: error: 404 Not Found from GET {archive.url}"
        "/studies/9.9/metadata: no such object\n"
    )
    assert run("-v", *args) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "dicomweb_client.HTTPError" in err
    assert err.splitlines()[-1] == (
        f"dicomweb_client: error: 404 Not Found from GET "
        f"{archive.url}/studies/9.9/metadata: no such object"
    )


def test_server_error_message_is_kept_on_one_line(
    recording_server: RecordingServer, capsys: pytest.CaptureFixture
) -> None:
    recording_server.add(
        "GET",
        "/studies",
        Response(
            status=403, body=b"{\n  \"error\": \"no access\"\n}", content_type="application/json"
        ),
    )
    assert run("--url", recording_server.url, "search", "studies") == 1
    assert capsys.readouterr().err == (
        f"dicomweb_client: error: 403 Forbidden from GET {recording_server.url}/studies: "
        '{ "error": "no access" }\n'
    )


def test_connection_refused(capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    assert run("--url", f"http://127.0.0.1:{port}", "--retries", "0", "search", "studies") == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.startswith("dicomweb_client: error: ") and err.count("\n") == 1
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_server_that_is_down_is_reported_within_seconds_showing_the_retry() -> None:
    """The real command with its default settings: the retry line comes on stderr as the
    wait begins (about a second before the error), and it all ends within seconds."""
    port = _closed_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dicomweb_client_cli",
            "--url",
            f"http://127.0.0.1:{port}",
            "search",
            "studies",
        ],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        retry_line = process.stderr.readline()
        shown = time.monotonic()
        rest = process.stderr.read()
        assert process.wait(timeout=30) == 1
    finally:
        process.kill()
        process.wait()
    ended = time.monotonic()
    assert retry_line == (
        f"dicomweb_client: warning: cannot connect to http://127.0.0.1:"
        f"{port}: [Errno 111] Connection refused; retrying in 1.0 s "
        "(retry 1 of 4)\n"
    )
    assert rest == (
        f"dicomweb_client: error: cannot connect to http://127.0.0.1:{port}: "
        "[Errno 111] Connection refused\n"
    )
    assert ended - shown >= 0.8  # shown before the one-second wait, not after it
    assert ended - started < 10  # interpreter start-up included; the wait is 1 s


def test_a_retry_for_a_busy_server_is_shown(
    recording_server: RecordingServer, capsys: pytest.CaptureFixture
) -> None:
    recording_server.add(
        "GET", "/studies", Response(body=b"[]", content_type="application/dicom+json")
    )
    recording_server.queue(Response(status=503, body=b"busy"))
    assert run("--url", recording_server.url, "search", "studies") == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"dicomweb_client: warning: GET {recording_server.url}/studies "
        "answered 503; retrying in 0.0 s (retry 1 of 4)\n"
    )
    assert logging.getLogger("dicomweb_client.retry").handlers == []  # put back


def test_with_verbosity_a_retry_is_shown_once(
    recording_server: RecordingServer, capsys: pytest.CaptureFixture
) -> None:
    recording_server.add(
        "GET", "/studies", Response(body=b"[]", content_type="application/dicom+json")
    )
    recording_server.queue(Response(status=503, body=b"busy"))
    assert run("-v", "--url", recording_server.url, "search", "studies") == 0
    assert capsys.readouterr().err.count("answered 503; retrying in") == 1


@pytest.mark.parametrize("budget, retries", [("0", 0), ("0.5", 1)])
def test_connect_budget_option(budget: str, retries: int, capsys: pytest.CaptureFixture) -> None:
    port = _closed_port()
    assert (
        run("--url", f"http://127.0.0.1:{port}", "--connect-budget", budget, "search", "studies")
        == 1
    )
    err = capsys.readouterr().err.splitlines()
    assert len(err) == retries + 1 and err[-1].startswith("dicomweb_client: error: ")
    assert all("retrying in" in line for line in err[:-1])


def test_an_unresolvable_host_is_reported_at_once(capsys: pytest.CaptureFixture) -> None:
    started = time.monotonic()
    assert run("--url", "http://nonexistent.invalid/dicom-web", "search", "studies") == 1
    assert time.monotonic() - started < 10  # a lookup here takes milliseconds
    assert capsys.readouterr().err == (
        "dicomweb_client: error: cannot connect to http://nonexistent.invalid:80: the host "
        "name 'nonexistent.invalid' cannot be resolved (Name or service not known)\n"
    )


@pytest.mark.parametrize("budget", ["-1", "nan", "inf", "soon"])
def test_a_bad_connect_budget_is_a_usage_error(budget: str, capsys: pytest.CaptureFixture) -> None:
    assert run("--url", "http://127.0.0.1:1", "--connect-budget", budget, "search", "studies") == 2
    assert "--connect-budget" in capsys.readouterr().err


@pytest.mark.parametrize("retries, status", [("1", 0), ("0", 1)])
def test_retries_option(
    retries: str,
    status: int,
    archive: FakeArchive,
    study: list[Dataset],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict] = []

    class Spy(_QuickRetries):
        def set_http_retry_params(self, **options: Any) -> None:
            calls.append(options)
            super().set_http_retry_params(**{**options, "wait_exponential_multiplier": 1})

    monkeypatch.setattr(dicomweb_client, "DICOMwebClient", Spy)
    archive.server.queue(Response(status=503, body=b"busy"))
    assert run("--url", archive.url, "--retries", retries, "search", "studies") == status
    assert calls[-1] == {"retry": retries != "0", "max_attempts": int(retries) + 1}
    assert len(archive.server.requests) == int(retries) + 1


def test_credentials_in_the_url_are_used_but_never_printed(
    recording_server: RecordingServer, capsys: pytest.CaptureFixture
) -> None:
    recording_server.add("GET", "/studies", Response(status=401, body=b"who are you?"))
    url = recording_server.url.replace("http://", "http://carol:hunter2@")
    assert run("--url", url, "search", "studies") == 1
    assert recording_server.last.header("Authorization") == "Basic Y2Fyb2w6aHVudGVyMg=="
    err = capsys.readouterr().err
    assert "hunter2" not in err and err.count("\n") == 1
    assert "401 Unauthorized from GET http://" in err and err.endswith(": who are you?\n")


def test_interrupted_download_exits_130_without_partial_files(
    archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    archive.first_delays = [0.2, 0.2]  # two instances come, the rest cannot finish
    archive.delay = 5  # before the signal, however busy the machine
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dicomweb_client_cli",
            "--url",
            archive.url,
            "retrieve",
            "studies",
            "--study",
            study[0].StudyInstanceUID,
            "full",
            "--output-dir",
            str(tmp_path),
            "--workers",
            "2",
        ],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background (``.ci/run &``) ignores SIGINT, and so would the
        # child: give it the default, which Python turns into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    while not list(tmp_path.rglob("*.dcm")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130
    assert err.endswith("dicomweb_client: interrupted\n") and "Traceback" not in err
    assert out == ""
    files = [path.name for path in tmp_path.rglob("*") if path.is_file()]
    assert files and not [name for name in files if not name.endswith(".dcm")]


def test_broken_pipe_is_quiet(archive: FakeArchive, study: list[Dataset]) -> None:
    archive.add(dicom_data.make_study(20, 1))
    command = (
        f'"{sys.executable}" -m dicomweb_client_cli --url {archive.url} '
        "search series --prettify | head -n 1"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == "[\n"
    assert result.stderr == ""
    assert result.returncode in (0, 141)


# -- entry points and the progress bar -------------------------------------------------------


def test_python_dash_m_and_the_cli_alias(
    archive: FakeArchive, study: list[Dataset], capsys: pytest.CaptureFixture
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dicomweb_client_cli",
            "--url",
            archive.url,
            "search",
            "studies",
            "--output",
            "table",
        ],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines()[-1] == "1 study"
    from dicomweb_client.cli import main as alias_main

    assert alias_main(["--url", archive.url, "search", "studies", "--output", "table"]) == 0
    assert capsys.readouterr().out == result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "dicomweb_client_cli", "search"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "usage: dicomweb_client" in result.stderr


def test_cli_alias_runs_a_namespace_from_get_parser(
    archive: FakeArchive, study: list[Dataset], capsys: pytest.CaptureFixture
) -> None:
    """As in the established package: ``main(_get_parser().parse_args(...))`` runs the
    command and ends with ``SystemExit`` carrying the exit code."""
    import dicomweb_client.cli as cli

    argv = ["--url", archive.url, "search", "studies", "--output", "table"]
    namespace = cli._get_parser().parse_args(argv)
    with pytest.raises(SystemExit) as exit_:
        cli.main(namespace)
    assert exit_.value.code == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 study"
    namespace = dicomweb_client_cli._get_parser().parse_args(
        ["--url", archive.url + "/nowhere", "search", "studies"]
    )
    with pytest.raises(SystemExit) as exit_:
        dicomweb_client_cli.main(namespace)
    assert exit_.value.code == 1
    assert cli.main(argv) == 0  # a list still returns the code
    with pytest.raises(TypeError):
        cli.main(argparse.Namespace(url=archive.url))


@pytest.mark.parametrize("command", ["retrieve", "store"])
def test_progress_bar_only_on_a_terminal(
    command: str, archive: FakeArchive, study: list[Dataset], tmp_path: Path
) -> None:
    if command == "retrieve":
        words = [
            "retrieve",
            "studies",
            "--study",
            study[0].StudyInstanceUID,
            "full",
            "--output-dir",
            str(tmp_path / "out"),
        ]
        total = "7/7 files"
    else:
        paths = dicom_data.write_files(dicom_data.make_study(1, 3), tmp_path / "in")
        words = ["store", "instances", *map(str, paths)]
        total = "3/3 files"
    argv = [sys.executable, "-m", "dicomweb_client_cli", "--url", archive.url, *words]
    master, slave = pty.openpty()
    process = subprocess.Popen(
        argv, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    try:
        shown = read_pty(master, process).decode()
    finally:
        os.close(master)
    stdout = process.stdout.read().decode()
    process.stdout.close()
    assert process.returncode == 0, shown
    assert "\r" in shown and "100%" in shown and total in shown
    assert f"{command} [" in shown and "#" * 10 in shown
    assert "\r" not in stdout and "%" not in stdout

    if command == "retrieve":
        for path in (tmp_path / "out").rglob("*.dcm"):
            path.unlink()
    piped = subprocess.run(
        argv, env=child_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    assert piped.returncode == 0
    assert piped.stderr == b""
    assert piped.stdout.decode() == stdout
    no_progress = pty.openpty()
    process = subprocess.Popen(
        argv[:3] + ["--no-progress"] + argv[3:],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=no_progress[1],
    )
    os.close(no_progress[1])
    try:
        assert read_pty(no_progress[0], process) == b""
    finally:
        os.close(no_progress[0])


def test_progress_messages_do_not_garble_the_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = dicomweb_client_cli.Progress("retrieve", total_items=2, stream=stream)
    progress.advance(items=1, nbytes=2048)
    progress.message("dicomweb_client: error: something")
    progress.advance(items=1, nbytes=2048)
    progress.close()
    text = stream.getvalue()
    before, _, after = text.partition("dicomweb_client: error: something\n")
    assert after and before.endswith("\r") and set(before.split("\r")[-2]) == {" "}
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("retrieve [") and "100%" in last and "2/2 files" in last
    assert "4.0 KiB" in last
    quiet = io.StringIO()
    silent = dicomweb_client_cli.Progress("x", total_items=1, stream=quiet)
    silent.advance(items=1)
    silent.close()
    assert quiet.getvalue() == ""


# -- file:// URLs -----------------------------------------------------------------------------


class FakeFileClient:
    """Stands in for dicomweb_client.DICOMfileClient to check how the CLI drives it."""

    instances: list[FakeFileClient] = []

    def __init__(self, url: str, update_db: bool = False) -> None:
        self.url, self.update_db = url, update_db
        self.datasets = {ds.SOPInstanceUID: ds for ds in dicom_data.make_study(1, 3)}
        self.calls: list[str] = []
        self.stored: list[Dataset] = []
        FakeFileClient.instances.append(self)

    def search_for_studies(self, **options: Any) -> list[dict]:
        self.calls.append("search_for_studies")
        return [subset(next(iter(self.datasets.values())), ("StudyInstanceUID",))]

    def search_for_series(
        self, study_instance_uid: str | None = None, offset: int | None = None, **options: Any
    ) -> list[dict]:
        self.calls.append("search_for_series")
        items = {
            ds.SeriesInstanceUID: subset(ds, ("SeriesInstanceUID",))
            for ds in self.datasets.values()
        }
        return list(items.values())[offset or 0 :]

    def search_for_instances(
        self,
        study_instance_uid: str | None = None,
        series_instance_uid: str | None = None,
        offset: int | None = None,
        **options: Any,
    ) -> list[dict]:
        self.calls.append("search_for_instances")
        return [
            subset(ds, ("SOPInstanceUID",))
            for ds in self.datasets.values()
            if ds.SeriesInstanceUID == series_instance_uid
        ][offset or 0 :]

    def retrieve_instance(self, study: str, series: str, sop: str) -> Dataset:
        self.calls.append(f"retrieve_instance {threading.current_thread().name}")
        return self.datasets[sop]

    def retrieve_instance_file(self, study: str, series: str, sop: str) -> bytes:
        self.calls.append(f"retrieve_instance_file {threading.current_thread().name}")
        return dicom_data.to_bytes(self.datasets[sop])

    def store_instances(
        self, datasets: list[Dataset], study_instance_uid: str | None = None
    ) -> Dataset:
        assert len(datasets) == 1 and isinstance(datasets[0], Dataset)
        self.stored += datasets
        return Dataset()


@pytest.fixture
def fake_file_client(monkeypatch: pytest.MonkeyPatch) -> type[FakeFileClient]:
    FakeFileClient.instances = []
    monkeypatch.setattr(dicomweb_client, "DICOMfileClient", FakeFileClient, raising=False)
    return FakeFileClient


def test_file_url_drives_the_file_client(
    fake_file_client: type[FakeFileClient], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url = tmp_path.as_uri()
    assert run("--url", url, "search", "studies") == 0
    client = fake_file_client.instances[-1]
    assert (client.url, client.update_db, client.calls) == (url, True, ["search_for_studies"])
    ds = next(iter(client.datasets.values()))
    assert json.loads(capsys.readouterr().out)[0]["0020000D"]["Value"] == [ds.StudyInstanceUID]

    assert (
        run(
            "--url",
            url,
            "retrieve",
            "studies",
            "--study",
            ds.StudyInstanceUID,
            "full",
            "--output-dir",
            tmp_path / "out",
            "--workers",
            "8",
        )
        == 0
    )
    client = fake_file_client.instances[-1]
    threads = {call.split()[1] for call in client.calls if call.startswith("retrieve")}
    assert threads == {threading.current_thread().name}  # no threads for a file client
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 3

    paths = dicom_data.write_files(dicom_data.make_study(1, 2), tmp_path / "in")
    assert run("--url", url, "store", "instances", tmp_path / "in", tmp_path / "nope") == 1
    assert sorted(ds.SOPInstanceUID for ds in fake_file_client.instances[-1].stored) == sorted(
        path.stem for path in paths
    )


def test_file_url_warns_about_network_options(
    fake_file_client: type[FakeFileClient], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert (
        run(
            "--url",
            tmp_path.as_uri(),
            "--bearer-token",
            "t",
            "--header",
            "A: b",
            "--retries",
            "0",
            "search",
            "studies",
        )
        == 0
    )
    assert capsys.readouterr().err == (
        "dicomweb_client: warning: ignored for a file:// URL: --bearer-token, --header, --retries\n"
    )


def test_file_url_errors(
    fake_file_client: type[FakeFileClient],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = (tmp_path / "missing").as_uri()
    assert run("--url", missing, "search", "studies") == 1
    assert capsys.readouterr().err == (
        f"dicomweb_client: error: --url {missing}: the folder "
        f"{tmp_path / 'missing'} does not exist\n"
    )
    assert run("--url", "file://otherhost/data", "search", "studies") == 1
    assert "not a file URL of a local folder" in capsys.readouterr().err
    monkeypatch.delattr(dicomweb_client, "DICOMfileClient")
    assert run("--url", tmp_path.as_uri(), "search", "studies") == 1
    err = capsys.readouterr().err
    assert err.startswith("dicomweb_client: error: --url file://") and err.count("\n") == 1
    assert "DICOMfileClient" in err


@needs_file_client
def test_file_url_with_the_real_file_client(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    datasets = dicom_data.make_study(2, 2)
    store = tmp_path / "store"
    store.mkdir()
    sources = dicom_data.write_files(datasets, tmp_path / "in")
    url = store.as_uri()
    assert run("--url", url, "store", "instances", tmp_path / "in") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "stored 4 of 4 files"
    assert run("--url", url, "search", "studies", "--output", "table") == 0
    assert datasets[0].StudyInstanceUID in capsys.readouterr().out
    assert run("--url", url, "search", "instances", "--study", datasets[0].StudyInstanceUID) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4
    uid = datasets[0].StudyInstanceUID
    assert run("--url", url, "retrieve", "studies", "--study", uid, "metadata") == 0
    assert len(json.loads(capsys.readouterr().out)) == 4
    out = tmp_path / "out"
    assert (
        run("--url", url, "retrieve", "studies", "--study", uid, "full", "--output-dir", out) == 0
    )
    saved = {path.name: pydicom.dcmread(path) for path in out.rglob("*.dcm")}
    assert set(saved) == {path.name for path in sources}
    for ds in datasets:
        assert saved[f"{ds.SOPInstanceUID}.dcm"].PixelData == ds.PixelData
    # the files are copies of the archive's own files, byte for byte
    assert sorted(path.read_bytes() for path in out.rglob("*.dcm")) == sorted(
        path.read_bytes() for path in store.rglob("*.dcm")
    )


@needs_file_client
def test_file_url_download_converts_when_asked(tmp_path: Path) -> None:
    rle = dicom_data.make_instance(rows=8, columns=8, frames=2, compressed=True)
    dicom_data.write_files([rle], tmp_path / "store")
    out = tmp_path / "out"
    assert (
        run(
            "--url",
            (tmp_path / "store").as_uri(),
            "retrieve",
            "instances",
            "--study",
            rle.StudyInstanceUID,
            "--series",
            rle.SeriesInstanceUID,
            "--instance",
            rle.SOPInstanceUID,
            "full",
            "--media-type",
            "application/dicom 1.2.840.10008.1.2.1",
            "--output-dir",
            out,
        )
        == 0
    )
    saved = pydicom.dcmread(out / f"{rle.SOPInstanceUID}.dcm")
    assert saved.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (saved.pixel_array == rle.pixel_array).all()


# -- against Orthanc --------------------------------------------------------------------------


def test_orthanc_store_search_and_download(
    orthanc_clean: Any, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    datasets = dicom_data.make_study(2, 2) + [dicom_data.make_instance(frames=3, bits=8)]
    paths = dicom_data.write_files(datasets, tmp_path / "in")
    url = orthanc_clean.url
    assert run("--url", url, "store", "instances", tmp_path / "in") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "stored 5 of 5 files"

    assert (
        run("--url", url, "search", "studies", "--output", "table", "--filter", "PatientID=P1") == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "2 studies" and "Doe^Jane" in lines[2]

    uid = datasets[0].StudyInstanceUID
    out = tmp_path / "out"
    assert (
        run(
            "--url",
            url,
            "retrieve",
            "studies",
            "--study",
            uid,
            "full",
            "--output-dir",
            out,
            "--workers",
            "3",
        )
        == 0
    )
    assert tree(out) == {
        f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm": path.read_bytes()
        for ds, path in zip(datasets[:4], paths[:4])
    }
    capsys.readouterr()
    assert (
        run("--url", url, "retrieve", "studies", "--study", uid, "full", "--output-dir", out) == 0
    )
    assert capsys.readouterr().out == f"0 downloaded, 4 already present, 0 failed: {out / uid}\n"

    multi = datasets[-1]
    assert (
        run("--url", url, *frame_args(multi), "--numbers", "2", "--output-dir", tmp_path / "frames")
        == 0
    )
    assert (
        tmp_path / "frames" / f"{multi.SOPInstanceUID}_2.dat"
    ).read_bytes() == dicom_data.frame_bytes(multi, 2)


def test_orthanc_metadata_and_errors(orthanc_clean: Any, capsys: pytest.CaptureFixture) -> None:
    ds = dicom_data.make_instance()
    orthanc_clean.upload([dicom_data.to_bytes(ds)])
    url = orthanc_clean.url
    assert (
        run(
            "--url",
            url,
            "retrieve",
            "series",
            "--study",
            ds.StudyInstanceUID,
            "--series",
            ds.SeriesInstanceUID,
            "metadata",
            "--dicomize",
        )
        == 0
    )
    assert f"SOP Instance UID                    UI: {ds.SOPInstanceUID}" in capsys.readouterr().out
    assert (
        run(
            "--url",
            url,
            "retrieve",
            "instances",
            "--study",
            ds.StudyInstanceUID,
            "--series",
            ds.SeriesInstanceUID,
            "--instance",
            "1.2.3",
            "metadata",
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith(f"dicomweb_client: error: 404 Not Found from GET {url}/studies/")
    assert err.count("\n") == 1


# -- waiting for a silent server ---------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers; its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_terminal_is_told_what_the_command_waits_for(silent_server: str) -> None:
    argv = [
        sys.executable,
        "-m",
        "dicomweb_client_cli",
        "--url",
        silent_server,
        "--timeout",
        "2.5",
        "search",
        "studies",
    ]
    master, slave = pty.openpty()
    process = subprocess.Popen(
        argv, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    try:
        shown = read_pty(master, process).decode()
    finally:
        os.close(master)
    assert process.stdout.read() == b""
    process.stdout.close()
    assert process.returncode == 1
    assert f"\rwaiting for an answer from {silent_server} ... 1 s" in shown, shown
    assert f"\rwaiting for an answer from {silent_server} ... 2 s" in shown, shown
    notice, _, error = shown.replace("\r\n", "\n").rpartition("\r")  # erased, then the error
    assert error.startswith("dicomweb_client: error: timed out"), shown
    assert notice.endswith(
        "\r" + " " * len(f"waiting for an answer from {silent_server} ... 2 s")
    ), shown


def test_no_wait_notice_when_stderr_is_no_terminal_or_progress_is_off(silent_server: str) -> None:
    argv = [
        sys.executable,
        "-m",
        "dicomweb_client_cli",
        "--url",
        silent_server,
        "--timeout",
        "1.5",
        "search",
        "studies",
    ]
    piped = subprocess.run(
        argv, env=child_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    assert piped.returncode == 1
    assert piped.stderr.decode().startswith("dicomweb_client: error: timed out")
    master, slave = pty.openpty()
    process = subprocess.Popen(
        argv[:3] + ["--no-progress"] + argv[3:],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    try:
        shown = read_pty(master, process).decode()
    finally:
        os.close(master)
    assert "waiting" not in shown and shown.startswith("dicomweb_client: error: timed out")


def test_the_wait_notice_goes_with_the_first_answer(
    archive: FakeArchive, study: list[Dataset]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    notice = dicomweb_client_cli._WaitNotice("http://example.org", stream)
    notice.DELAY = 0.05
    notice.start()
    time.sleep(0.3)
    assert notice.answered("the response") == "the response"
    drawn = stream.getvalue()
    assert drawn.startswith("\rwaiting for an answer from http://example.org ... 0 s")
    assert drawn.endswith(
        "\r" + " " * len("waiting for an answer from http://example.org ... 0 s") + "\r"
    )
    time.sleep(0.2)
    assert stream.getvalue() == drawn  # nothing more after the answer
