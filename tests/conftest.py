"""Shared pytest fixtures: a recording HTTP server and a throwaway Orthanc.

Fixtures
--------
``recording_server``  a started :class:`RecordingServer` (function scope).
``make_server``       factory ``make_server(**options) -> RecordingServer`` (started,
                      stopped after the test).
``tls_certificate``   ``(certfile, keyfile)`` of a self-signed cert for 127.0.0.1.
``archive_folder``    a folder of 12 instances that a file client indexed and closed.
``orthanc``           session-wide :class:`OrthancServer` (Orthanc + DICOMweb plugin).
``orthanc_clean``     the same server, emptied before the test.

Tests using an Orthanc fixture are marked ``orthanc`` automatically.  Tests marked
``shared_reference`` (they read ``../shared/reference`` beside the checkout) are skipped
where that folder is not there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # pytest.ini puts it there too; this is for runs without it
    sys.path.insert(0, _TESTS)

from helpers import API_SIGNATURES, PROJECT_ROOT, closed_port  # noqa: E402
from recording_server import RecordingServer, self_signed_certificate  # noqa: E402

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

ORTHANC_BINARY = os.environ.get("ORTHANC_BINARY") or shutil.which("Orthanc") or "/usr/sbin/Orthanc"
ORTHANC_PLUGIN = os.environ.get(
    "ORTHANC_DICOMWEB_PLUGIN", "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
)
ORTHANC_START_TIMEOUT = 20.0

# Talk to 127.0.0.1 directly, whatever proxy variables the environment holds.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses an Orthanc fixture with ``orthanc``; skip the tests marked
    ``shared_reference`` when the reference listing is not beside the checkout."""
    no_reference = pytest.mark.skip(
        reason=f"{API_SIGNATURES} is not there (the tests that "
        "compare with the reference API need it)"
    )
    for item in items:
        if {"orthanc", "orthanc_clean"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.orthanc)
        if item.get_closest_marker("shared_reference") and not API_SIGNATURES.is_file():
            item.add_marker(no_reference)


# -- recording server ----------------------------------------------------------------


@pytest.fixture(scope='session')
def _cache_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp('xdg-cache'))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI's main() configures the package logger (handlers on the captured stderr,
    level, propagation); every test gets it back as it was, so caplog keeps working."""
    package = logging.getLogger("dicomweb_client")
    handlers, level, propagate = list(package.handlers), package.level, package.propagate
    yield
    package.handlers[:] = handlers
    package.setLevel(level)
    package.propagate = propagate


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch, _cache_folder: str) -> None:
    """Talk to 127.0.0.1 directly whatever proxy variables the machine has, and send no
    credentials from the user's netrc file; tests that need either set them up.  Indexes
    that file clients keep in the user cache folder go below pytest's temporary folder
    (child processes inherit the setting)."""
    for name in list(os.environ):
        if name.lower().endswith('_proxy'):
            monkeypatch.delenv(name)
    monkeypatch.setenv('NETRC', os.devnull)
    monkeypatch.setenv('XDG_CACHE_HOME', _cache_folder)


@pytest.fixture
def session() -> Iterator[object]:
    """A fresh ``dicomweb_client.Session``, closed after the test."""
    import dicomweb_client

    with dicomweb_client.Session() as opened:
        yield opened


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    """A running RecordingServer with default options (keep-alive, no TLS)."""
    with RecordingServer() as server:
        yield server


@pytest.fixture
def make_server() -> Iterator[Callable[..., RecordingServer]]:
    """Factory for started RecordingServers with custom options; all stopped afterwards."""
    servers: list[RecordingServer] = []

    def factory(**options: object) -> RecordingServer:
        server = RecordingServer(**options).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(certfile, keyfile)`` of a self-signed certificate for 127.0.0.1 (needs openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def archive_folder(tmp_path: Path) -> Path:
    """A folder of 12 instances (3 studies of 2 series of 2), indexed once and closed cleanly."""
    import dicomweb_client
    from dicom_data import make_archive, write_files

    root = tmp_path / "archive"
    write_files(make_archive(3, 2, 2, rows=8, columns=8), root)
    with dicomweb_client.DICOMfileClient(root.as_uri()) as client:
        assert len(client.search_for_instances()) == 12
    return root


# -- Orthanc -----------------------------------------------------------------------------


def _http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> bytes:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with _DIRECT.open(request, timeout=timeout) as response:
        return response.read()


@dataclass
class OrthancServer:
    """A running Orthanc with the DICOMweb plugin.

    ``url`` is the DICOMweb base (``http://127.0.0.1:PORT/dicom-web``),
    ``rest_url`` the Orthanc REST root (``http://127.0.0.1:PORT``).
    """

    url: str
    rest_url: str
    log_path: Path
    storage: Path
    process: subprocess.Popen

    def rest(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """Call Orthanc's own REST API (``path`` starts with ``/``)."""
        return _http(method, self.rest_url + path, body, headers)

    def studies(self) -> list[str]:
        """Orthanc IDs of the stored studies."""
        return json.loads(self.rest("GET", "/studies"))

    def reset(self) -> None:
        """Delete every stored study."""
        for study_id in self.studies():
            self.rest("DELETE", f"/studies/{study_id}")

    def upload(self, items: Iterable[bytes]) -> list[dict]:
        """Store Part 10 files through ``POST /instances`` (independent of DICOMweb)."""
        return [
            json.loads(self.rest("POST", "/instances", data, {"Content-Type": "application/dicom"}))
            for data in items
        ]

    def log(self) -> str:
        """The Orthanc log so far."""
        return self.log_path.read_text(errors="replace")


def _orthanc_config(port: int, storage: Path) -> dict:
    return {
        "Name": "dicomweb-client-tests",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "HttpServerEnabled": True,
        # answers are compressed when the client allows it, as on servers in the field
        "HttpCompressionEnabled": True,
        "Plugins": [ORTHANC_PLUGIN],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": True,
            "WadoRoot": "/wado",
            "Ssl": False,
            "StowMaxInstances": 0,
            "StowMaxSize": 0,
            "QidoCaseSensitive": True,
        },
    }


def _require_orthanc() -> None:
    missing = [p for p in (ORTHANC_BINARY, ORTHANC_PLUGIN) if not Path(p).is_file()]
    if missing:
        message = (
            f"Orthanc is not available (missing: {', '.join(missing)}); "
            "install the Debian packages orthanc and orthanc-dicomweb"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _wait_ready(process: subprocess.Popen, probe_url: str, log_path: Path) -> str | None:
    """Poll until Orthanc answers; return an error text, or ``None`` when ready."""
    deadline = time.monotonic() + ORTHANC_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"Orthanc exited with code {process.returncode}"
        try:
            _http("GET", probe_url, timeout=1.0)
            return None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    return f"Orthanc did not answer {probe_url} within {ORTHANC_START_TIMEOUT:.0f} s"


def _stop(process: subprocess.Popen) -> None:
    """End Orthanc at once.

    A graceful SIGTERM shutdown takes Orthanc 1.10 about 2.5 s (its HTTP server
    drains slowly); the storage is throwaway, so SIGKILL is enough.
    """
    if process.poll() is None:
        process.kill()
    process.wait()


def _launch_orthanc(folder: Path, attempts: int = 3) -> OrthancServer:
    """Start Orthanc on a free port; fail the test with its log if it does not come up.

    A start is retried (on a new port) when Orthanc exits early, which happens if
    another process grabbed the port between probing and binding.
    """
    for attempt in range(1, attempts + 1):
        server, error = _try_launch(folder / f"attempt{attempt}")
        if server is not None:
            return server
        if "exited" not in error:
            break
    pytest.fail(error)


def _try_launch(folder: Path) -> tuple[OrthancServer | None, str]:
    """One start attempt; returns the server, or ``None`` and an error text with the log."""
    storage = folder / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    port = closed_port()
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(_orthanc_config(port, storage), indent=2))
    log_path = folder / "orthanc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [ORTHANC_BINARY, str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # SQLite's scratch files go below pytest's temporary folder, not /var/tmp
            env=dict(os.environ, SQLITE_TMPDIR=str(folder), TMPDIR=str(folder)),
        )
    rest_url = f"http://127.0.0.1:{port}"
    error = _wait_ready(process, rest_url + "/dicom-web/studies", log_path)
    if error is not None:
        _stop(process)
        return None, f"{error}\n--- {log_path} ---\n{log_path.read_text(errors='replace')}"
    return OrthancServer(
        url=rest_url + "/dicom-web",
        rest_url=rest_url,
        log_path=log_path,
        storage=storage,
        process=process,
    ), ""


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A throwaway Orthanc + DICOMweb plugin for the whole session."""
    _require_orthanc()
    server = _launch_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield server
    finally:
        _stop(server.process)


@pytest.fixture
def orthanc_clean(orthanc: OrthancServer) -> OrthancServer:
    """The session Orthanc, emptied before the test."""
    orthanc.reset()
    return orthanc
