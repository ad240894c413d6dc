"""Hostile answers that try to exhaust memory or to be taken for something else.

What is attacked here, and what must hold:

* a decompression bomb (1.3 MB of gzip that inflates to 1.25 GiB) as a JSON search,
  as metadata, and inside a streamed multipart answer: refused with
  ``BodyTooLargeError`` naming the limit, with memory near 16 MiB, not 1.25 GiB;
* an endless chunked metadata answer whose every read is on time: refused at
  ``max_body_size``, with memory near that limit;
* an answer that announces a body larger than the limit: refused before it is read;
* interim ``1xx`` answers (100, 102, 103, several in a row, with header fields) before
  the final one: skipped, so the final answer is what the search returns.

The memory-hungry cases run in a child interpreter whose address space is capped with
``RLIMIT_AS`` (1.5 GiB), so a regression fails the child, never the machine; the child
reports its peak resident size (``ru_maxrss``).  The bomb is built from one compressed
block of zeros repeated, so neither the test nor its server holds the inflated body.
Everything runs over real sockets on 127.0.0.1; nothing in the library is mocked.
"""

from __future__ import annotations

import functools
import gzip
import json
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recording_server import RecordingServer, Response

import dicomweb_client as dwc

STUDY = "1.2.826.0.1.3680043.8.498.11"
SERIES = "1.2.826.0.1.3680043.8.498.22"
SOP = "1.2.826.0.1.3680043.8.498.33"
PREFIX = "/dicom-web"
JSON_TYPE = "application/dicom+json"
MIB = 1 << 20
BOMB_SIZE = 1280 * MIB  # 1.25 GiB of zeros
ADDRESS_SPACE = 3 << 29  # 1.5 GiB for the child interpreter
GOOD_JSON = json.dumps([{"0020000D": {"vr": "UI", "Value": [STUDY]}}]).encode()

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="RLIMIT_AS and ru_maxrss in bytes/KiB: Linux"
)


def client_for(server_url: str, **options: Any) -> dwc.DICOMwebClient:
    options.setdefault("timeout", 10)
    return dwc.DICOMwebClient(server_url + PREFIX, **options)


# -- the bomb: gzip of zeros, built from one repeated block -----------------------------


@functools.lru_cache(maxsize=None)
def gzip_of_zeros(prefix: bytes, megabytes: int, suffix: bytes) -> tuple[bytes, ...]:
    """The gzip pieces of ``prefix``, ``megabytes`` MiB of zeros and ``suffix``.

    Each MiB of zeros is compressed after a full flush, which resets the compressor, so
    every such block compresses to the same bytes: one is computed, then repeated.  The
    result is a valid gzip member (CRC and size included) of about 1 KiB per MiB.
    """
    zeros = bytes(MIB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = deflate.compress(prefix) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert block == again, "the compressor did not repeat itself"
    tail = deflate.compress(suffix) + deflate.flush()
    crc = zlib.crc32(prefix)
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + megabytes * MIB + len(suffix)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return (header + head, *(block,) * megabytes, tail + trailer)


def test_the_bomb_is_valid_gzip_of_what_it_claims() -> None:
    pieces = gzip_of_zeros(b"[", 3, b"]")
    assert gzip.decompress(b"".join(pieces)) == b"[" + bytes(3 * MIB) + b"]"
    bomb = gzip_of_zeros(b"", BOMB_SIZE // MIB, b"")
    compressed = sum(map(len, bomb))
    assert 1_200_000 < compressed < 1_400_000  # the 1.3 MB of the issue
    assert BOMB_SIZE / compressed > 1000


# -- the child interpreter that takes the blows -------------------------------------------

CHILD = textwrap.dedent("""
    import json, resource, sys
    folder, task = sys.argv[1], json.loads(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (task['address_space'],) * 2)
    sys.path.insert(0, folder)
    import dicomweb_client as dwc
    client = dwc.DICOMwebClient(task['url'], timeout=30)
    for name, value in task['settings'].items():
        setattr(client, name, value)
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    outcome = {'rss_before': rss()}
    try:
        outcome['items'] = 0
        for _ in getattr(client, task['call'])(*task['args']):  # one part at a time
            outcome['items'] += 1
    except BaseException as error:  # MemoryError included
        outcome.update(error=type(error).__name__, message=str(error),
                       classes=[klass.__name__ for klass in type(error).__mro__],
                       setting=getattr(error, 'setting', None))
    outcome['rss_peak'] = rss()
    print(json.dumps(outcome))
""")


def in_child(url: str, call: str, *args: Any, **settings: Any) -> dict:
    """Run ``DICOMwebClient(url).call(*args)`` in a child interpreter with at most
    1.5 GiB of address space; return what happened and its peak memory."""
    task = {
        "url": url + PREFIX,
        "call": call,
        "args": list(args),
        "settings": settings,
        "address_space": ADDRESS_SPACE,
    }
    folder = str(Path(dwc.__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, folder, json.dumps(task)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    outcome["rss_growth"] = outcome["rss_peak"] - outcome["rss_before"]
    print(
        f"{call}{settings}: peak {outcome['rss_peak'] / MIB:.0f} MiB, grew by "
        f"{outcome['rss_growth'] / MIB:.0f} MiB: {outcome.get('error')}: "
        f"{outcome.get('message', '')[:300]}"
    )
    return outcome


def assert_refused(outcome: dict, setting: str, most_growth: int) -> None:
    assert outcome.get("error") == "BodyTooLargeError", outcome
    assert "RequestException" in outcome["classes"]
    assert "TransportError" not in outcome["classes"]
    assert outcome["setting"] == setting
    assert f"set {setting} on the client or session" in outcome["message"]
    assert outcome["rss_growth"] < most_growth, outcome


def bomb_answer(
    chunked: bool, content_type: str = JSON_TYPE, prefix: bytes = b"", suffix: bytes = b""
) -> Response:
    """The bomb in 1 KiB chunks, or else whole: all 1.3 MB of it at once in the socket."""
    pieces = gzip_of_zeros(prefix, BOMB_SIZE // MIB, suffix)
    return Response(
        body=list(pieces) if chunked else b"".join(pieces),
        chunked=chunked,
        content_type=content_type,
        headers={"Content-Encoding": "gzip"},
    )


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize(
    "call, path, args",
    [
        ("search_for_studies", f"{PREFIX}/studies", ()),
        (
            "retrieve_series_metadata",
            f"{PREFIX}/studies/{STUDY}/series/{SERIES}/metadata",
            (STUDY, SERIES),
        ),
    ],
    ids=["search", "metadata"],
)
def test_gzip_bomb_is_refused_with_memory_bounded(
    recording_server: RecordingServer, call: str, path: str, args: tuple, chunked: bool
) -> None:
    recording_server.add("GET", path, bomb_answer(chunked))
    outcome = in_child(recording_server.url, call, *args)
    assert_refused(outcome, "max_decoding_ratio", most_growth=64 * MIB)
    assert "inflates more than 200 times" in outcome["message"]
    assert "Accept-Encoding" not in outcome["message"]
    assert "gzip" in (recording_server.last.header("Accept-Encoding") or "")


def test_gzip_bomb_without_limits_exhausts_the_child(recording_server: RecordingServer) -> None:
    # the control: with both limits off the same answer needs more than 1.5 GiB
    recording_server.add("GET", f"{PREFIX}/studies", bomb_answer(chunked=True))
    outcome = in_child(
        recording_server.url, "search_for_studies", max_body_size=None, max_decoding_ratio=None
    )
    assert "MemoryError" in (outcome.get("error", "") + outcome.get("message", "")), outcome


def test_gzip_bomb_past_the_size_limit_is_refused_too(recording_server: RecordingServer) -> None:
    # without the ratio limit, max_body_size counts the decoded bytes
    recording_server.add("GET", f"{PREFIX}/studies", bomb_answer(chunked=True))
    outcome = in_child(
        recording_server.url, "search_for_studies", max_body_size=128 * MIB, max_decoding_ratio=None
    )
    assert_refused(outcome, "max_body_size", most_growth=192 * MIB)
    assert f"larger than {128 * MIB} bytes" in outcome["message"]


FRAMES_TYPE = 'multipart/related; type="application/octet-stream"; boundary=BB'
PART_HEAD = b"--BB\r\nContent-Type: application/octet-stream\r\n\r\n"
FRAMES_PATH = f"{PREFIX}/studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/1,2"


@pytest.mark.parametrize(
    "settings, setting, most_growth",
    [
        ({}, "max_decoding_ratio", 64 * MIB),
        ({"max_decoding_ratio": None, "max_body_size": 128 * MIB}, "max_body_size", 400 * MIB),
    ],
    ids=["ratio", "part-size"],
)
def test_gzip_bomb_in_a_streamed_multipart_answer_is_bounded_per_part(
    recording_server: RecordingServer, settings: dict, setting: str, most_growth: int
) -> None:
    recording_server.add(
        "GET",
        FRAMES_PATH,
        bomb_answer(
            True, FRAMES_TYPE, PART_HEAD + b"small part\r\n" + PART_HEAD, b"\r\n--BB--\r\n"
        ),
    )
    outcome = in_child(
        recording_server.url, "iter_instance_frames", STUDY, SERIES, SOP, [1, 2], **settings
    )
    assert_refused(outcome, setting, most_growth)
    assert outcome["items"] == 1  # the small part came through, the bomb did not


# -- the endless body ------------------------------------------------------------------------


class EndlessServer:
    """Answers each request with ``head`` and then chunk after chunk of ``filler``, each
    sent at once, until the client closes the connection."""

    def __init__(self, head: bytes, filler: bytes = b" " * 65536, first: bytes = b"") -> None:
        self.head, self.filler, self.first = head, filler, first
        self.sent = self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        piece = b"%x\r\n%s\r\n" % (len(self.filler), self.filler)
        with conn:
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(65536)
                    if not data:
                        return
                    request += data
                conn.sendall(self.head + b"Transfer-Encoding: chunked\r\n\r\n")
                if self.first:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(self.first), self.first))
                while not self._stop.is_set():
                    conn.sendall(piece)
                    self.sent += len(self.filler)
            except OSError:  # the client closed the connection: done
                return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def endless() -> Iterator[Any]:
    servers: list[EndlessServer] = []

    def factory(head: bytes, **options: Any) -> EndlessServer:
        servers.append(EndlessServer(head, **options))
        return servers[-1]

    yield factory
    for server in servers:
        server.close()


JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\n"


def test_endless_chunked_metadata_answer_is_refused_at_the_size_limit(endless) -> None:
    server = endless(JSON_HEAD, first=b"[")
    outcome = in_child(
        server.url, "retrieve_series_metadata", STUDY, SERIES, max_body_size=256 * MIB
    )
    assert_refused(outcome, "max_body_size", most_growth=320 * MIB)
    assert f"larger than {256 * MIB} bytes" in outcome["message"]
    # read up to the limit (the server sent at least that much), and no further
    assert 256 * MIB <= server.sent < 1 << 30


def test_endless_chunked_part_of_a_streamed_answer_is_refused(endless) -> None:
    server = endless(
        b"HTTP/1.1 200 OK\r\nContent-Type: " + FRAMES_TYPE.encode() + b"\r\n", first=PART_HEAD
    )
    client = client_for(server.url)
    client.max_body_size = 8 * MIB
    with pytest.raises(dwc.BodyTooLargeError, match="a part of its multipart body") as caught:
        sum(1 for _ in client.iter_instance_frames(STUDY, SERIES, SOP, [1]))
    assert caught.value.limit == 8 * MIB and caught.value.setting == "max_body_size"
    assert server.sent < 64 * MIB


def test_an_announced_body_past_the_limit_is_not_read(recording_server: RecordingServer) -> None:
    # the default limit (4 GiB) applies: a 5 GiB Content-Length is refused at once
    recording_server.add(
        "GET",
        f"{PREFIX}/studies",
        Response(raw=JSON_HEAD + b"Content-Length: %d\r\n\r\n[" % (5 << 30)),
    )
    client = client_for(recording_server.url)
    assert client.max_body_size == dwc.DEFAULT_MAX_BODY_SIZE == 4 << 30
    with pytest.raises(dwc.BodyTooLargeError, match=f"announces a body of {5 << 30} bytes"):
        client.search_for_studies()


def test_a_compressed_body_is_limited_by_its_decoded_size(
    recording_server: RecordingServer,
) -> None:
    recording_server.add(
        "GET",
        f"{PREFIX}/studies",
        Response(
            body=gzip.compress(b"[" + b" " * (3 * MIB) + b"]"),
            content_type=JSON_TYPE,
            headers={"Content-Encoding": "gzip"},
        ),
    )
    client = client_for(recording_server.url)
    assert client.search_for_studies() == []  # small enough for the ratio to wait
    client.max_body_size = 2 * MIB
    with pytest.raises(dwc.BodyTooLargeError, match=f"larger than {2 * MIB} bytes"):
        client.search_for_studies()


def test_limits_follow_the_session_unless_set_on_the_client(
    recording_server: RecordingServer,
) -> None:
    recording_server.add(
        "GET", f"{PREFIX}/studies", Response(body=GOOD_JSON, content_type=JSON_TYPE, chunked=True)
    )
    session = dwc.Session()
    assert (session.max_body_size, session.max_decoding_ratio) == (4 << 30, 200)
    session.max_body_size = 10
    first, second = (client_for(recording_server.url, session=session) for _ in "12")
    assert first.max_body_size == 10
    with pytest.raises(dwc.BodyTooLargeError):
        first.search_for_studies()
    second.max_body_size = None  # this client only
    assert second.search_for_studies()[0]["0020000D"]["Value"] == [STUDY]
    assert first.max_body_size == session.max_body_size == 10
    with pytest.raises(dwc.BodyTooLargeError):  # the session's own requests too
        session.get(recording_server.url + f"{PREFIX}/studies")
    for bad in (0, -1, "1", True):
        with pytest.raises(ValueError, match="max_body_size"):
            second.max_body_size = bad


def test_the_error_is_a_requests_one_when_requests_is_loaded(
    recording_server: RecordingServer,
) -> None:
    requests = pytest.importorskip("requests")
    recording_server.add(
        "GET", f"{PREFIX}/studies", Response(body=GOOD_JSON, content_type=JSON_TYPE, chunked=True)
    )
    client = client_for(recording_server.url)
    client.max_body_size = 10
    with pytest.raises(requests.exceptions.RequestException) as caught:
        client.search_for_studies()
    assert isinstance(caught.value, dwc.BodyTooLargeError)
    assert not isinstance(caught.value, (dwc.TransportError, requests.ConnectionError))


def test_the_connection_is_dropped_after_a_refused_body(endless) -> None:
    server = endless(JSON_HEAD)
    client = client_for(server.url)
    client.max_body_size = MIB
    for _ in range(2):  # the second request needs a new connection, and gets one
        with pytest.raises(dwc.BodyTooLargeError):
            client.search_for_studies()
    assert server.connections == 2


# -- interim 1xx answers ---------------------------------------------------------------------

FINAL = JSON_HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(GOOD_JSON), GOOD_JSON)
INTERIM = {
    "103": b"HTTP/1.1 103 Early Hints\r\nLink: </studies>; rel=preload\r\n\r\n",
    "100+102+103": (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\nX-Progress: 10%\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n"
        b"Link: </b>; rel=preload\r\n\r\n"
    ),
    "103x3 HTTP/1.0": b"HTTP/1.0 103 Early Hints\r\nLink: </a>\r\n\r\n" * 3,
    "199 no reason": b"HTTP/1.1 199\r\n\r\n",
}


@pytest.mark.parametrize("interim", sorted(INTERIM))
@pytest.mark.parametrize("split", [False, True], ids=["one-write", "apart"])
def test_interim_answers_before_the_final_one_are_skipped(
    recording_server: RecordingServer, interim: str, split: bool
) -> None:
    if split:  # the interim answer first, the final one a moment later
        server = SplitServer([INTERIM[interim], FINAL])
        try:
            found = client_for(server.url).search_for_studies()
        finally:
            server.close()
    else:
        recording_server.add("GET", f"{PREFIX}/studies", Response(raw=INTERIM[interim] + FINAL))
        found = client_for(recording_server.url).search_for_studies()
    assert found == json.loads(GOOD_JSON)
    assert found[0]["0020000D"]["Value"] == [STUDY]


def test_endless_interim_answers_raise(recording_server: RecordingServer) -> None:
    recording_server.add("GET", f"{PREFIX}/studies", Response(raw=INTERIM["103"] * 101 + FINAL))
    with pytest.raises(dwc.TransportError, match="interim"):
        client_for(recording_server.url).search_for_studies()


def test_the_session_skips_interim_answers(recording_server: RecordingServer) -> None:
    recording_server.add("GET", "/x", Response(body=b"ok"))
    session = dwc.Session()
    url = recording_server.url + "/x"
    assert session.get(url).content == b"ok"
    recording_server.queue(
        Response(raw=INTERIM["100+102+103"] + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
    )
    answer = session.get(url)
    assert (answer.status_code, answer.content) == (200, b"final")
    assert answer.headers.get("Link") is None  # the hints' fields are not the answer's


class SplitServer:
    """Writes ``pieces`` to the first connection, 0.1 s apart, then closes it."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            for piece in self._pieces:
                conn.sendall(piece)
                threading.Event().wait(0.1)

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=5)
