"""Adversarial tests: hostile or broken servers, hostile input, damaged archives.

What is attacked here, and what must hold:

* multipart answers (Hypothesis): well-formed bodies, cut into random pieces on a real
  socket, come back exactly; malformed ones raise ``MultipartError`` (or
  ``TransportError``), never a partial or wrong list, and never hang; the same holds
  for bodies compressed with gzip or deflate, which must raise when cut short;
* faulty servers: broken chunked transfer coding, missing or wrong ``Content-Type``,
  lying ``Content-Length``, 204 answers, ``Retry-After``, connection resets after a
  DELETE or STOW was sent (never silently repeated);
* credentials: not forwarded to another host or over plain HTTP, never logged, not even
  at the highest verbosity; bulk data URIs on another origin get none unless that origin
  is named in ``credential_origins``;
* one ``DICOMwebClient`` shared by 16 threads;
* the file archive: damaged index files, readonly mode, a store killed half way,
  UIDs that try to leave the archive folder;
* bad arguments are refused with an error naming the argument before anything is sent.

The fuzz budget comes from ``hypothesis_profiles.py``: ``ci`` (default, 200 examples
per property) or ``long`` (5000) via ``HYPOTHESIS_PROFILE=long``.

Everything runs on 127.0.0.1; nothing in the library is mocked except where a test needs
a process to stop at an exact point (the killed store).
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import hashlib
import json
import logging
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis_profiles import FUZZ
from concurrency import run_in_threads
from recording_server import RecordedRequest, RecordingServer, Response, multipart_response

import dicomweb_client as dwc
from dicom_data import make_archive, make_instance
from helpers import TESTS_DIR, basic, basic_credentials, closed_port, run_python

STUDY = "1.2.826.0.1.3680043.8.498.11"
SERIES = "1.2.826.0.1.3680043.8.498.22"
SOP = "1.2.826.0.1.3680043.8.498.33"
PREFIX = "/dicom-web"
FRAMES_TYPE = "application/octet-stream"
INDEX_NAME = ".dicomweb_client.sqlite"


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[RecordingServer]:
    """One server for all examples of a property (a fresh one per example costs too much)."""
    with RecordingServer() as server:
        yield server


def client_for(server_url: str, **options: Any) -> dwc.DICOMwebClient:
    """A client with a short timeout (nothing may hang) and millisecond retry waits."""
    options.setdefault("timeout", 5)
    client = dwc.DICOMwebClient(server_url + PREFIX, **options)
    client.set_http_retry_params(wait_exponential_multiplier=1)
    return client


# =========================================================================================
# Multipart fuzzing over a real socket
# =========================================================================================

#: RFC 2046 boundary characters (space is allowed, but not as the last one)
BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
#: the subset that may stand unquoted in a Content-Type parameter (RFC 2045 token)
TOKEN_BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'+_-."

MALFORMED_HEADER_BLOCKS = [
    b"Content-Type application/octet-stream\r\n",  # no colon
    b" folded: a continuation line first\r\n",
    b"\tContent-Type: a/b\r\n",
    b": no name\r\n",
    b"Bad Name: value\r\n",
    b"Content-Type: a/b\r\nnot a header line\r\n",
]


def _without(data: bytes, needle: bytes) -> bytes:
    """``data`` with every occurrence of ``needle`` removed (repeatedly: removal may join)."""
    while needle in data:
        data = data.replace(needle, b"")
    return data


@st.composite
def multipart_cases(draw: Callable) -> dict:
    """A well-formed multipart/related body of frames with everything a server may vary."""
    quoted = draw(st.booleans())
    alphabet = BCHARS + " " if quoted else TOKEN_BCHARS
    boundary = draw(
        st.text(alphabet, min_size=1, max_size=70).filter(lambda text: not text.endswith(" "))
    )
    bnd = boundary.encode("ascii")
    delimiter = b"\r\n--" + bnd
    tricky = [
        b"\r\n",
        b"\r",
        b"\n",
        b"--",
        b"-",
        b"--" + bnd,
        b"\r\n-" + bnd,
        bnd + b"--",
        b"\r\n--" + bnd[:-1],
        b"\r\n\r\n",
        b"\n--" + bnd,
        b"\r--" + bnd,
        b"\x00",
        b"--" + bnd + b"--\r\n",
    ]
    fragment = st.one_of(st.binary(max_size=48), st.sampled_from(tricky))
    payload = (
        st.lists(fragment, max_size=6).map(b"".join).map(lambda data: _without(data, delimiter))
    )
    header_block = st.sampled_from(
        [
            b"",
            b"Content-Type: application/octet-stream\r\n",
            b"content-type: application/octet-stream\r\nContent-Length: {length}\r\n",
            b"Content-Type: application/octet-stream\r\nX-Note: a " + bnd + b" b\r\n",
        ]
    )
    padding = st.sampled_from([b"", b"", b" ", b"\t", b" \t  "])
    parts = draw(st.lists(st.tuples(header_block, payload, padding), min_size=1, max_size=4))
    preamble = draw(
        st.one_of(
            st.just(b""),
            st.binary(min_size=1, max_size=40),
            st.sampled_from([b"\r\n", b"preamble text", b"--", b"\r\n\r\n"]),
        )
    )
    assume(delimiter not in b"\r\n" + preamble)
    epilogue = draw(
        st.one_of(
            st.just(b""),
            st.just(b"\r\n"),
            st.binary(max_size=40).map(lambda data: b"\r\n" + data),
            st.just(b"\r\n--" + bnd + b"\r\nnot a part"),
        )
    )
    value = f'"{boundary}"' if quoted else boundary
    params = [f"boundary={value}", f'type="{FRAMES_TYPE}"']
    if draw(st.booleans()):
        params.reverse()
    if draw(st.booleans()):
        params.append('start="<frame-1@example>"')
    media = draw(st.sampled_from(["multipart/related", "Multipart/Related"]))
    separator = draw(st.sampled_from(["; ", ";", " ; "]))
    body = bytearray(preamble + (b"\r\n" if preamble else b""))
    part_starts = []
    for headers, data, pad in parts:
        part_starts.append(len(body))
        headers = headers.replace(b"{length}", b"%d" % len(data))  # a true length
        body += b"--" + bnd + pad + b"\r\n" + headers + b"\r\n" + data + b"\r\n"
    close_start = len(body)
    body += b"--" + bnd + b"--"
    close_end = len(body)
    body += epilogue
    return {
        "boundary": boundary,
        "content_type": separator.join([media, *params]),
        "body": bytes(body),
        "payloads": [data for _, data, _ in parts],
        "part_starts": part_starts,
        "close_start": close_start,
        "close_end": close_end,
    }


def split(body: bytes, sizes: list[int]) -> list[bytes]:
    """Cut ``body`` into pieces of the given sizes, used in turn."""
    pieces, offset, index = [], 0, 0
    while offset < len(body):
        size = sizes[index % len(sizes)]
        pieces.append(body[offset : offset + size])
        offset += size
        index += 1
    return pieces


def fetch_frames(
    server: RecordingServer, count: int, streaming: bool, chunk_size: int
) -> list[bytes]:
    client = client_for(server.url, chunk_size=chunk_size)
    frames = list(range(1, count + 1))
    if streaming:
        return list(client.iter_instance_frames(STUDY, SERIES, SOP, frames))
    return client.retrieve_instance_frames(STUDY, SERIES, SOP, frames)


SIZES = st.lists(st.integers(1, 97), min_size=1, max_size=8)
CHUNK_SIZES = st.sampled_from([1, 5, 1024, 1 << 20])


@FUZZ
@given(
    case=multipart_cases(),
    sizes=SIZES,
    chunked=st.booleans(),
    streaming=st.booleans(),
    chunk_size=CHUNK_SIZES,
)
def test_fuzz_well_formed_multipart_round_trips(
    fuzz_server: RecordingServer,
    case: dict,
    sizes: list[int],
    chunked: bool,
    streaming: bool,
    chunk_size: int,
) -> None:
    fuzz_server.queue(
        Response(
            body=split(case["body"], sizes), chunked=chunked, content_type=case["content_type"]
        )
    )
    frames = fetch_frames(fuzz_server, len(case["payloads"]), streaming, chunk_size)
    assert frames == case["payloads"]
    assert fuzz_server.pending == 0


CODINGS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": lambda data: zlib.compress(data)[2:-4],
}


@FUZZ
@given(
    case=multipart_cases(),
    coding=st.sampled_from(sorted(CODINGS)),
    sizes=SIZES,
    chunked=st.booleans(),
    streaming=st.booleans(),
    chunk_size=CHUNK_SIZES,
    data=st.data(),
)
def test_fuzz_compressed_multipart_round_trips_and_cut_short_raises(
    fuzz_server: RecordingServer,
    case: dict,
    coding: str,
    sizes: list[int],
    chunked: bool,
    streaming: bool,
    chunk_size: int,
    data: st.DataObject,
) -> None:
    body = CODINGS[coding](case["body"])
    headers = {"Content-Encoding": coding.split("-")[0]}
    fuzz_server.queue(
        Response(
            body=split(body, sizes),
            chunked=chunked,
            headers=headers,
            content_type=case["content_type"],
        )
    )
    frames = fetch_frames(fuzz_server, len(case["payloads"]), streaming, chunk_size)
    assert frames == case["payloads"]
    # the same body cut anywhere: the end of the compressed data is missing, so it raises
    cut = body[: data.draw(st.integers(0, len(body) - 1), label="cut")]
    fuzz_server.queue(
        Response(
            body=split(cut, sizes),
            chunked=chunked,
            headers=headers,
            content_type=case["content_type"],
        )
    )
    with pytest.raises((dwc.ContentDecodingError, dwc.MultipartError)):
        fetch_frames(fuzz_server, len(case["payloads"]), streaming, chunk_size)
    assert fuzz_server.pending == 0


MUTATIONS = [
    "truncate",
    "no-closing-delimiter",
    "garbage-after-boundary",
    "garbage-headers",
    "wrong-boundary",
    "one-frame-more-asked",
    "one-frame-less-asked",
    "content-length-short",
    "content-length-long",
]


@FUZZ
@given(case=multipart_cases(), sizes=SIZES, streaming=st.booleans(), chunk_size=CHUNK_SIZES)
def test_fuzz_multipart_without_boundary_parameter(
    fuzz_server: RecordingServer, case: dict, sizes: list[int], streaming: bool, chunk_size: int
) -> None:
    """A body that starts with its delimiter line is split at that boundary; any other
    body (here: one with a preamble) is the one part."""
    fuzz_server.queue(
        Response(
            body=split(case["body"], sizes), content_type=f'multipart/related; type="{FRAMES_TYPE}"'
        )
    )
    if case["part_starts"][0] == 0:
        frames = fetch_frames(fuzz_server, len(case["payloads"]), streaming, chunk_size)
        assert frames == case["payloads"]
    else:
        assert fetch_frames(fuzz_server, 1, streaming, chunk_size) == [case["body"]]
    assert fuzz_server.pending == 0


@FUZZ
@given(
    case=multipart_cases(),
    mutation=st.sampled_from(MUTATIONS),
    data=st.data(),
    sizes=SIZES,
    streaming=st.booleans(),
    chunk_size=CHUNK_SIZES,
)
def test_fuzz_malformed_multipart_raises(
    fuzz_server: RecordingServer,
    case: dict,
    mutation: str,
    data: st.DataObject,
    sizes: list[int],
    streaming: bool,
    chunk_size: int,
) -> None:
    body, content_type = case["body"], case["content_type"]
    count = len(case["payloads"])
    headers: dict[str, str] = {}
    close = False
    if mutation == "truncate":
        body = body[: data.draw(st.integers(0, case["close_end"] - 1), label="cut")]
    elif mutation == "no-closing-delimiter":
        body = body[: case["close_start"]]
    elif mutation == "garbage-after-boundary":
        start = data.draw(st.sampled_from(case["part_starts"]), label="part")
        at = start + 2 + len(case["boundary"])
        garbage = data.draw(st.sampled_from([b"x", b"garbage", b"\x00\x01", b"Zz--"]))
        body = body[:at] + garbage + body[at:]
    elif mutation == "garbage-headers":
        start = data.draw(st.sampled_from(case["part_starts"]), label="part")
        line_end = body.index(b"\r\n", start) + 2
        block = data.draw(st.sampled_from(MALFORMED_HEADER_BLOCKS), label="headers")
        body = body[:line_end] + block + body[line_end:]
    elif mutation == "wrong-boundary":
        wrong = "wrong-" + "9" * 12
        assume(not case["boundary"].startswith(wrong))
        content_type = f'multipart/related; type="{FRAMES_TYPE}"; boundary={wrong}'
    elif mutation == "one-frame-more-asked":
        count += 1
    elif mutation == "one-frame-less-asked":
        assume(count > 1)
        count -= 1
    elif mutation == "content-length-short":
        cut = data.draw(st.integers(0, case["close_end"] - 1), label="announced")
        headers["Content-Length"] = str(cut)  # the rest stays on the kept-alive connection
    elif mutation == "content-length-long":
        headers["Content-Length"] = str(len(body) + data.draw(st.integers(1, 500)))
        close = True
    fuzz_server.queue(
        Response(body=split(body, sizes), content_type=content_type, headers=headers, close=close)
    )
    with pytest.raises((dwc.MultipartError, dwc.TransportError)) as caught:
        fetch_frames(fuzz_server, count, streaming, chunk_size)
    assert str(caught.value)
    # the next exchange is not confused by what the broken one left behind
    fuzz_server.queue(multipart_response([b"after"], FRAMES_TYPE))
    assert fetch_frames(fuzz_server, 1, False, 1 << 20) == [b"after"]


# =========================================================================================
# Faulty servers
# =========================================================================================

FRAMES_PATH = f"{PREFIX}/studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/1,2"
MULTIPART_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: multipart/related; "
    b'type="application/octet-stream"; boundary=BB\r\n'
)
JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\n"
GOOD_FRAMES = b"--BB\r\n\r\nframe-1\r\n--BB\r\n\r\nframe-2\r\n--BB--\r\n"
GOOD_JSON = json.dumps([{"0020000D": {"vr": "UI", "Value": [STUDY]}}]).encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def broken_chunked(body: bytes, how: str) -> bytes:
    """A chunked transfer of ``body`` damaged in one way (the server closes afterwards)."""
    first, rest = body[:10], body[10:]
    if how == "bad-size-line":
        return b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    if how == "no-last-chunk":
        return chunk(first) + chunk(rest)
    if how == "short-chunk":
        return chunk(first) + b"%x\r\n" % (len(rest) + 50) + rest
    if how == "huge-size":
        return chunk(first) + b"ffffffffffff\r\n" + rest
    if how == "no-crlf-after-data":
        return b"%x\r\n%s" % (len(first), first) + chunk(rest) + b"0\r\n\r\n"
    if how == "negative-size":
        return b"-5\r\n" + body + b"\r\n0\r\n\r\n"
    raise AssertionError(how)


CHUNKED_ERRORS = [
    "bad-size-line",
    "no-last-chunk",
    "short-chunk",
    "huge-size",
    "no-crlf-after-data",
    "negative-size",
]


@pytest.mark.parametrize("how", CHUNKED_ERRORS)
def test_broken_chunked_frames_answer_raises(recording_server: RecordingServer, how: str) -> None:
    raw = MULTIPART_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + broken_chunked(GOOD_FRAMES, how)
    recording_server.add("GET", FRAMES_PATH, Response(raw=raw))
    client = client_for(recording_server.url)
    for call in (client.retrieve_instance_frames, client.iter_instance_frames):
        with pytest.raises((dwc.TransportError, dwc.MultipartError)):
            list(call(STUDY, SERIES, SOP, [1, 2]))


@pytest.mark.parametrize("how", CHUNKED_ERRORS)
def test_broken_chunked_search_answer_raises(recording_server: RecordingServer, how: str) -> None:
    raw = JSON_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + broken_chunked(GOOD_JSON, how)
    recording_server.add("GET", f"{PREFIX}/studies", Response(raw=raw))
    with pytest.raises(dwc.TransportError):  # a transport error, not a JSON parse error
        client_for(recording_server.url).search_for_studies()


def test_intact_chunked_answers_for_comparison(recording_server: RecordingServer) -> None:
    recording_server.add(
        "GET",
        FRAMES_PATH,
        Response(
            raw=MULTIPART_HEAD
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + b"".join(chunk(GOOD_FRAMES[i : i + 3]) for i in range(0, len(GOOD_FRAMES), 3))
            + b"0\r\n\r\n"
        ),
    )
    assert client_for(recording_server.url).retrieve_instance_frames(
        STUDY, SERIES, SOP, [1, 2]
    ) == [b"frame-1", b"frame-2"]


@pytest.mark.parametrize(
    "content_type",
    [
        None,  # no Content-Type at all
        "text/html",
        "application/json",
        'multipart/related; boundary=""',  # empty boundary
        "multipart/related; boundary=" + "x" * 71,  # longer than RFC 2046 allows
        'multipart/related; boundary="ends with space "',
        "multipart/related; boundary=OTHER",  # not the boundary of the body
    ],
    ids=repr,
)
def test_multipart_answer_with_missing_or_wrong_content_type(
    recording_server: RecordingServer, content_type: str | None
) -> None:
    recording_server.add("GET", FRAMES_PATH, Response(body=GOOD_FRAMES, content_type=content_type))
    with pytest.raises(dwc.MultipartError):
        client_for(recording_server.url).retrieve_instance_frames(STUDY, SERIES, SOP, [1, 2])


def test_content_length_shorter_than_the_body_leaves_no_trace(
    recording_server: RecordingServer,
) -> None:
    """The excess is a complete forged answer; it must never be taken for the next one."""
    forged = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: 2\r\n\r\n[]"
    )
    body = GOOD_FRAMES + forged
    recording_server.add(
        "GET",
        FRAMES_PATH,
        Response(
            body=body,
            headers={"Content-Length": str(len(GOOD_FRAMES))},
            content_type='multipart/related; type="application/octet-stream"; boundary=BB',
        ),
    )
    recording_server.add(
        "GET", f"{PREFIX}/studies", Response(body=GOOD_JSON, content_type="application/dicom+json")
    )
    client = client_for(recording_server.url)
    assert client.retrieve_instance_frames(STUDY, SERIES, SOP, [1, 2]) == [b"frame-1", b"frame-2"]
    time.sleep(0.05)  # let the excess arrive before the connection is reused
    for _ in range(3):
        assert client.search_for_studies() == json.loads(GOOD_JSON)


@pytest.mark.parametrize(
    "method, args",
    [
        ("retrieve_instance_frames", (STUDY, SERIES, SOP, [1])),
        ("iter_instance_frames", (STUDY, SERIES, SOP, [1])),
        ("retrieve_instance", (STUDY, SERIES, SOP)),
        ("retrieve_instance_metadata", (STUDY, SERIES, SOP)),
    ],
)
def test_204_where_one_object_is_expected_raises(
    recording_server: RecordingServer, method: str, args: tuple
) -> None:
    recording_server.add(None, None, Response(status=204))
    with pytest.raises(ValueError):
        result = getattr(client_for(recording_server.url), method)(*args)
        if not isinstance(result, (dict, bytes)) and hasattr(result, "__iter__"):
            list(result)


@pytest.mark.parametrize(
    "method, args",
    [
        ("search_for_studies", ()),
        ("search_for_series", (STUDY,)),
        ("search_for_instances", (STUDY, SERIES)),
        ("retrieve_study", (STUDY,)),
        ("retrieve_series", (STUDY, SERIES)),
        ("retrieve_study_metadata", (STUDY,)),
    ],
)
def test_204_where_a_list_is_expected_is_empty(
    recording_server: RecordingServer, method: str, args: tuple
) -> None:
    recording_server.add(None, None, Response(status=204))
    assert list(getattr(client_for(recording_server.url), method)(*args)) == []


def test_429_and_503_with_retry_after_in_seconds_and_as_a_date(
    recording_server: RecordingServer,
) -> None:
    recording_server.add(
        "GET", f"{PREFIX}/studies", Response(body=GOOD_JSON, content_type="application/dicom+json")
    )
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    soon = email.utils.formatdate(time.time() + 1, usegmt=True)
    recording_server.queue(
        Response(status=429, headers={"Retry-After": "0"}),
        Response(status=503, headers={"Retry-After": past}),
        Response(status=503, headers={"Retry-After": soon}),
    )
    client = client_for(recording_server.url)
    started = time.monotonic()
    assert client.search_for_studies() == json.loads(GOOD_JSON)
    assert time.monotonic() - started < 4
    assert len(recording_server.requests) == 4


def test_retry_after_beyond_the_budget_fails_at_once(recording_server: RecordingServer) -> None:
    recording_server.add("GET", None, Response(status=503, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(dwc.HTTPError) as caught:
        client_for(recording_server.url).search_for_studies()
    assert caught.value.status_code == 503
    assert time.monotonic() - started < 2
    assert len(recording_server.requests) == 1


def test_stalling_server_times_out_with_a_clear_error(recording_server: RecordingServer) -> None:
    recording_server.add(
        "GET",
        FRAMES_PATH,
        Response(
            body=[GOOD_FRAMES[:12], GOOD_FRAMES[12:]],
            piece_delay=3,
            content_type='multipart/related; type="application/octet-stream"; boundary=BB',
        ),
    )
    client = client_for(recording_server.url, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(dwc.Timeout) as caught:
        client.retrieve_instance_frames(STUDY, SERIES, SOP, [1, 2])
    assert time.monotonic() - started < 2.5
    assert "127.0.0.1" in str(caught.value) or "timed out" in str(caught.value)


# -- requests that may have taken effect are not repeated ---------------------------------


class ResettingServer:
    """Answers the first ``answered`` requests with 200, then resets (RST) every later
    connection right after reading a whole request, body included."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.requests: list[tuple[str, int]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _read_request(self, conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes] | None:
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return None
            buffer += data
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }
        if fields.get("transfer-encoding", "").lower() == "chunked":
            while not rest.endswith(b"0\r\n\r\n"):
                data = conn.recv(65536)
                if not data:
                    return None
                rest += data
            body, rest = rest, b""
        else:
            length = int(fields.get("content-length", "0"))
            while len(rest) < length:
                data = conn.recv(65536)
                if not data:
                    return None
                rest += data
            body, rest = rest[:length], rest[length:]
        self.requests.append((lines[0].split()[0], len(body)))
        return body, rest

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        buffer = b""
        with conn:
            while True:
                try:
                    got = self._read_request(conn, buffer)
                except OSError:
                    return
                if got is None:
                    return
                _, buffer = got
                if len(self.requests) <= self.answered:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json"
                        b"\r\nContent-Length: 2\r\n\r\n[]"
                    )
                    continue
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def resetting() -> Iterator[Callable[[int], ResettingServer]]:
    servers: list[ResettingServer] = []

    def factory(answered: int) -> ResettingServer:
        servers.append(ResettingServer(answered))
        return servers[-1]

    yield factory
    for server in servers:
        server.close()


def _store(client: dwc.DICOMwebClient) -> None:
    client.store_instances([b"\x00" * 128 + b"DICM" + b"\x00" * 400])


def _delete(client: dwc.DICOMwebClient) -> None:
    client.delete_study(STUDY)


@pytest.mark.parametrize(
    "action, method", [(_store, "POST"), (_delete, "DELETE")], ids=["STOW", "DELETE"]
)
def test_reset_after_the_request_was_sent_on_a_new_connection(
    resetting, action, method: str
) -> None:
    server = resetting(0)
    client = client_for(server.url)
    with pytest.raises(dwc.TransportError):
        action(client)
    assert [m for m, _ in server.requests] == [method]


def _reset_on_pooled_connection(server: ResettingServer, action) -> list[str]:
    client = client_for(server.url)
    assert client.search_for_studies() == []  # leaves a kept-alive connection in the pool
    with contextlib.suppress(dwc.TransportError, dwc.HTTPError):
        action(client)
    time.sleep(0.1)
    return [m for m, _ in server.requests]


def test_stow_reset_on_a_kept_alive_connection_is_not_repeated(resetting) -> None:
    server = resetting(1)
    assert _reset_on_pooled_connection(server, _store) == ["GET", "POST"]
    assert server.requests[1][1] > 500  # the whole body had been sent


def test_delete_reset_on_a_kept_alive_connection_is_not_repeated(resetting) -> None:
    server = resetting(1)
    assert _reset_on_pooled_connection(server, _delete) == ["GET", "DELETE"]


def test_get_reset_on_a_kept_alive_connection_is_repeated_once(resetting) -> None:
    """For comparison: a GET may be repeated, once, on a new connection."""
    server = resetting(1)
    client = client_for(server.url)
    assert client.search_for_studies() == []
    with pytest.raises(dwc.TransportError):
        client.search_for_studies()
    assert [m for m, _ in server.requests] == ["GET", "GET", "GET"]


def test_stow_answered_503_after_the_body_was_read_is_resent_whole(
    recording_server: RecordingServer,
) -> None:
    """A 503 says the request was not acted on, so a replayable STOW body is sent again."""
    recording_server.add(
        "POST", None, Response(status=200, body=b"{}", content_type="application/dicom+json")
    )
    recording_server.queue(Response(status=503, headers={"Retry-After": "0"}))
    _store(client_for(recording_server.url))
    bodies = [r.body for r in recording_server.requests]
    assert len(bodies) == 2 and bodies[0] == bodies[1] and len(bodies[0]) > 500


# =========================================================================================
# Credentials
# =========================================================================================


def _redirect_to(location: str) -> Response:
    return Response(status=302, headers={"Location": location}, body=b"moved")


def test_cookie_and_authorization_dropped_on_redirect_to_another_host(make_server) -> None:
    first, second = make_server(), make_server()
    first.add(
        "GET", None, lambda request: _redirect_to(f"http://localhost:{second.port}{request.target}")
    )
    second.add("GET", None, Response(body=b"[]", content_type="application/dicom+json"))
    client = client_for(
        first.url,
        headers={
            "Cookie": "sid=cookie-secret-1",
            "Authorization": "Bearer token-secret-1",
            "X-Trace": "kept",
        },
    )
    assert client.search_for_studies() == []
    assert first.last.header("Cookie") == "sid=cookie-secret-1"
    assert first.last.header("Authorization") == "Bearer token-secret-1"
    landed = second.last
    assert landed.header("Cookie") is None
    assert landed.header("Authorization") is None
    assert landed.header("X-Trace") is None  # any field set on the session may be secret
    assert landed.header("User-Agent") == first.last.header("User-Agent")


def test_cookie_and_authorization_dropped_on_https_to_http_redirect(
    make_server, tls_certificate
) -> None:
    certfile, keyfile = tls_certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    secure = make_server(ssl_context=context)
    plain = make_server()
    secure.add("GET", None, lambda request: _redirect_to(plain.url + request.target))
    plain.add("GET", None, Response(body=b"[]", content_type="application/dicom+json"))
    session = dwc.add_certs_to_session(
        dwc.create_session_from_user_pass("alice", "pw-secret-2"), ca_bundle=str(certfile)
    )
    client = client_for(secure.url, session=session, headers={"Cookie": "sid=cookie-secret-2"})
    assert client.search_for_studies() == []
    assert secure.last.header("Cookie") == "sid=cookie-secret-2"
    assert secure.last.header("Authorization") == basic("alice", "pw-secret-2")
    assert plain.last.header("Cookie") is None
    assert plain.last.header("Authorization") is None


# -- credentials are scoped to the client's origin: bulk data URIs on other servers -------

METADATA_PATH = f"{PREFIX}/studies/{STUDY}/series/{SERIES}/instances/{SOP}/metadata"
SCOPED_SECRETS = {
    "Authorization": "Bearer Scoped-Secret-tok7",
    "Cookie": "sid=Scoped-Secret-val8",
    "X-Api-Key": "Scoped-Secret-key9",
}


def _metadata_pointing_to(bulk_url: str) -> Response:
    item = {
        "00080018": {"vr": "UI", "Value": [SOP]},
        "7FE00010": {"vr": "OB", "BulkDataURI": bulk_url},
    }
    return Response(body=json.dumps([item]).encode(), content_type="application/dicom+json")


def _bulk_answer() -> Response:
    return multipart_response([b"pixels"], "application/octet-stream")


def _fetch_bulkdata(client: dwc.DICOMwebClient) -> list[bytes]:
    """What a viewer does: read the metadata, then fetch the bulk data it points at."""
    metadata = client.retrieve_instance_metadata(STUDY, SERIES, SOP)
    return client.retrieve_bulkdata(metadata["7FE00010"]["BulkDataURI"])


def _sent(request: RecordedRequest) -> str:
    """Everything a server saw of a request but its body: target, query and fields."""
    return f"{request.target}\n{request.headers}"


def _with_header_secrets(url: str) -> dwc.DICOMwebClient:
    return client_for(url, headers=dict(SCOPED_SECRETS))


def _with_session_secrets(url: str) -> dwc.DICOMwebClient:
    session = dwc.create_session_from_user_pass("alice", "Scoped-Secret-pw10")
    session.headers["X-Api-Key"] = "Scoped-Secret-key9"
    session.params = {"key": "Scoped-Secret-param11"}
    return client_for(url, session=session)


def _with_requests_session_secrets(url: str) -> dwc.DICOMwebClient:
    requests = pytest.importorskip("requests")
    session = requests.Session()
    session.auth = ("alice", "Scoped-Secret-pw10")
    session.headers["X-Api-Key"] = "Scoped-Secret-key9"
    session.params = {"key": "Scoped-Secret-param11"}
    return client_for(url, session=session)


CREDENTIAL_SOURCES = {
    "client headers": _with_header_secrets,
    "session auth, header and params": _with_session_secrets,
    "requests.Session": _with_requests_session_secrets,
}
ALL_SCOPED_SECRETS = [
    *SCOPED_SECRETS.values(),
    "Scoped-Secret-param11",
    basic_credentials("alice", "Scoped-Secret-pw10"),
]


def _secrets_in(text: str) -> list[str]:
    return [secret for secret in ALL_SCOPED_SECRETS if secret in text]


@pytest.mark.parametrize("source", sorted(CREDENTIAL_SOURCES))
@pytest.mark.parametrize("other_host", [False, True], ids=["other port", "other host"])
def test_bulkdata_uri_on_another_origin_gets_no_credentials(
    make_server, source: str, other_host: bool
) -> None:
    home, elsewhere = make_server(), make_server()
    bulk_url = (
        f"http://localhost:{home.port}/bulk/7FE00010"
        if other_host
        else f"{elsewhere.url}/bulk/7FE00010"
    )
    bulk_server = home if other_host else elsewhere
    home.add("GET", METADATA_PATH, _metadata_pointing_to(bulk_url))
    bulk_server.add("GET", "/bulk/7FE00010", _bulk_answer())
    client = CREDENTIAL_SOURCES[source](home.url)
    assert _fetch_bulkdata(client) == [b"pixels"]
    metadata_request, bulk_request = home.requests[0], bulk_server.requests[-1]
    assert metadata_request.path == METADATA_PATH and bulk_request.path == "/bulk/7FE00010"
    assert _secrets_in(_sent(metadata_request))  # the client's own server has them
    assert _secrets_in(_sent(bulk_request)) == []
    assert bulk_request.header("User-Agent")  # what is not a credential still goes


def test_relative_bulkdata_uri_gets_the_credentials(make_server) -> None:
    home = make_server()
    home.add("GET", METADATA_PATH, _metadata_pointing_to("bulk/7FE00010"))
    home.add("GET", f"{PREFIX}/bulk/7FE00010", _bulk_answer())
    assert _fetch_bulkdata(_with_session_secrets(home.url)) == [b"pixels"]
    assert set(_secrets_in(_sent(home.last))) == set(ALL_SCOPED_SECRETS) - {
        SCOPED_SECRETS["Authorization"],
        SCOPED_SECRETS["Cookie"],
    }


@pytest.mark.parametrize("opt_in", ["client keyword", "session attribute", "everywhere"])
def test_credential_origins_opt_in_sends_credentials_to_the_bulkdata_server(
    make_server, opt_in: str
) -> None:
    home, elsewhere = make_server(), make_server()
    home.add("GET", METADATA_PATH, _metadata_pointing_to(elsewhere.url + "/bulk/7FE00010"))
    elsewhere.add("GET", "/bulk/7FE00010", _bulk_answer())
    session = dwc.create_session_from_auth(dwc.BearerAuth("Scoped-Secret-tok7"))
    options: dict[str, Any] = {"session": session, "headers": {"X-Api-Key": "Scoped-Secret-key9"}}
    if opt_in == "client keyword":
        options["credential_origins"] = [f"http://127.0.0.1:{elsewhere.port}"]
    elif opt_in == "session attribute":
        session.credential_origins.add(elsewhere.url + "/any/path")  # the path is ignored
    else:
        options["credential_origins"] = ["*"]
    assert _fetch_bulkdata(client_for(home.url, **options)) == [b"pixels"]
    assert elsewhere.last.header("Authorization") == "Bearer Scoped-Secret-tok7"
    assert elsewhere.last.header("X-Api-Key") == "Scoped-Secret-key9"


def test_a_second_client_for_the_other_server_sharing_the_session_sends_them(make_server) -> None:
    home, elsewhere = make_server(), make_server()
    home.add("GET", METADATA_PATH, _metadata_pointing_to(elsewhere.url + "/bulk/7FE00010"))
    elsewhere.add("GET", None, _bulk_answer())
    session = dwc.create_session_from_user_pass("alice", "Scoped-Secret-pw10")
    first = client_for(home.url, session=session)
    second = client_for(elsewhere.url, session=session)
    assert _fetch_bulkdata(first) == [b"pixels"]
    assert elsewhere.last.header("Authorization") is None
    assert second.retrieve_bulkdata(elsewhere.url + "/bulk/7FE00010") == [b"pixels"]
    assert elsewhere.last.header("Authorization") == basic("alice", "Scoped-Secret-pw10")


def test_redirects_drop_credentials_even_to_a_trusted_origin(make_server) -> None:
    home, elsewhere, third = make_server(), make_server(), make_server()
    home.add("GET", None, lambda request: _redirect_to(elsewhere.url + request.target))
    elsewhere.add("GET", None, Response(body=b"[]", content_type="application/dicom+json"))
    elsewhere.add("GET", "/bulk/7FE00010", _redirect_to(third.url + "/bulk/7FE00010"))
    third.add("GET", None, _bulk_answer())
    client = client_for(home.url, headers=dict(SCOPED_SECRETS), credential_origins=[elsewhere.url])
    assert client.search_for_studies() == []  # home -> elsewhere: a redirect
    assert _secrets_in(_sent(home.last)) and _secrets_in(_sent(elsewhere.last)) == []
    assert client.retrieve_bulkdata(elsewhere.url + "/bulk/7FE00010") == [b"pixels"]
    assert _secrets_in(_sent(elsewhere.last))  # trusted, asked for directly
    assert _secrets_in(_sent(third.last)) == []  # elsewhere -> third: a redirect


@pytest.mark.parametrize(
    "origins, error",
    [
        ("https://one.example", TypeError),
        (["one.example"], ValueError),
        (["ftp://one.example"], ValueError),
    ],
)
def test_bad_credential_origins_are_refused(origins: Any, error: type) -> None:
    with pytest.raises(error, match="credential_origins"):
        dwc.DICOMwebClient("http://127.0.0.1:1", credential_origins=origins)


SECRETS = [
    "Basic-Secret-pw1",
    "Bearer-Secret-tok2",
    "Url-Secret-pw3",
    "Header-Secret-tok4",
    "Cookie-Secret-val5",
    "Proxy-Secret-pw6",
]


def _secret_forms() -> list[str]:
    forms = list(SECRETS)
    forms += [
        basic_credentials("alice", "Basic-Secret-pw1"),
        basic_credentials("bob", "Url-Secret-pw3"),
        basic_credentials("px", "Proxy-Secret-pw6"),
    ]
    return forms


@pytest.fixture
def loudest_logging() -> Iterator[logging.Logger]:
    package_logger = logging.getLogger("dicomweb_client")
    level, handlers = package_logger.level, list(package_logger.handlers)
    logger = dwc.configure_logging(4)
    try:
        yield logger
    finally:
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
        logger.setLevel(level)


def test_highest_verbosity_logs_no_credentials(
    make_server, loudest_logging, capsys, caplog
) -> None:
    caplog.set_level(1, logger="dicomweb_client")
    loudest_logging.handlers[-1].setStream(sys.stderr)  # the stream capsys captures
    server = make_server()
    other = make_server()
    server.add(
        "GET", f"{PREFIX}/studies", Response(body=b"[]", content_type="application/dicom+json")
    )
    server.add("GET", f"{PREFIX}/moved/studies", _redirect_to(f"{PREFIX}/studies"))
    server.add(
        "GET",
        f"{PREFIX}/away/studies",
        _redirect_to(f"http://localhost:{other.port}{PREFIX}/studies"),
    )
    other.add("GET", None, Response(body=b"[]", content_type="application/dicom+json"))
    server.add("GET", f"{PREFIX}/denied/studies", Response(status=401, body=b"who?"))
    port = server.port
    errors: list[str] = []

    def exercise(client: dwc.DICOMwebClient) -> None:
        server.queue(Response(status=503, headers={"Retry-After": "0"}))
        client.search_for_studies()
        for prefix in ("moved", "away", "denied"):
            routed = dwc.DICOMwebClient(
                client.base_url + "/" + prefix, session=client._session, timeout=5
            )
            routed.set_http_retry_params(wait_exponential_multiplier=1)
            try:
                routed.search_for_studies()
            except dwc.HTTPError as error:
                errors.append(str(error))

    exercise(
        client_for(
            server.url, session=dwc.create_session_from_user_pass("alice", "Basic-Secret-pw1")
        )
    )
    exercise(
        client_for(
            server.url, session=dwc.create_session_from_auth(dwc.BearerAuth("Bearer-Secret-tok2"))
        )
    )
    exercise(client_for(f"http://bob:Url-Secret-pw3@127.0.0.1:{port}"))
    exercise(
        client_for(
            server.url,
            headers={
                "Authorization": "Bearer Header-Secret-tok4",
                "Cookie": "sid=Cookie-Secret-val5",
            },
        )
    )
    for url, proxies in (
        (f"http://bob:Url-Secret-pw3@127.0.0.1:{closed_port()}", None),
        (server.url, {"http": f"http://px:Proxy-Secret-pw6@127.0.0.1:{closed_port()}"}),
    ):
        unreachable = client_for(url, proxies=proxies)
        unreachable.set_http_retry_params(max_attempts=2, wait_exponential_multiplier=1)
        with pytest.raises(dwc.TransportError) as caught:
            unreachable.search_for_studies()
        errors.append(str(caught.value))

    logged = capsys.readouterr().err
    assert "DEBUG" in logged and "retry" in logged  # the loudest level was really on
    everything = "\n".join(
        [logged, caplog.text, *errors, *(str(record.args) for record in caplog.records)]
    )
    for secret in _secret_forms():
        assert secret not in everything, secret
    assert server.errors == []


# =========================================================================================
# One client, 16 threads
# =========================================================================================


def _threaded_handler(request: RecordedRequest) -> Response:
    if request.path == f"{PREFIX}/studies":
        token = request.query["PatientID"][0]
        return Response(
            body=json.dumps([{"00100020": {"vr": "LO", "Value": [token]}}]).encode(),
            content_type="application/dicom+json",
        )
    parts = request.path.split("/")
    sop, frames = parts[-3], parts[-1].split(",")
    payloads = [f"{sop}|{frame}|".encode() * (200 + int(frame) * 37) for frame in frames]
    return Response(
        body=[piece for part in _framed(payloads, f"b-{sop}") for piece in part],
        content_type=f'multipart/related; type="{FRAMES_TYPE}"; boundary=b-{sop}',
    )


def _framed(payloads: list[bytes], boundary: str) -> list[list[bytes]]:
    """Each part as two pieces, so answers of different threads interleave on the wire."""
    out = []
    for payload in payloads:
        head = b"--" + boundary.encode() + b"\r\n\r\n"
        out.append([head + payload[:100], payload[100:] + b"\r\n"])
    out.append([b"--" + boundary.encode() + b"--\r\n"])
    return out


def test_one_client_shared_by_16_threads(recording_server: RecordingServer) -> None:
    recording_server.add("GET", None, _threaded_handler)
    client = client_for(recording_server.url)
    failures: list[str] = []
    calls = 12

    def worker(number: int) -> None:
        try:
            for index in range(calls):
                token = f"T{number}-{index}"
                if (number + index) % 2:
                    found = client.search_for_studies(search_filters={"PatientID": token})
                    if found != [{"00100020": {"vr": "LO", "Value": [token]}}]:
                        failures.append(f"QIDO {token}: {found!r}"[:200])
                else:
                    sop = f"1.2.3.{number}.{index}"
                    wanted = [1 + index % 3, 2 + index % 5]
                    frames = client.retrieve_instance_frames(STUDY, SERIES, sop, wanted)
                    expected = [f"{sop}|{f}|".encode() * (200 + f * 37) for f in wanted]
                    if frames != expected:
                        failures.append(f"WADO {sop}: wrong frames")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(repr(error))

    run_in_threads(worker, 16, timeout=60)
    assert failures == []
    assert len(recording_server.requests) == 16 * calls
    assert recording_server.errors == []


# =========================================================================================
# The file archive
# =========================================================================================


def _snapshot(root: Path, include_index: bool = True) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and (include_index or not path.name.startswith(INDEX_NAME))
    }


def _damage_pages(index: Path, keep_first_page: bool) -> None:
    data = bytearray(index.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    start = page if keep_first_page else 0
    for offset in range(start, len(data), page):
        data[offset + 8 : offset + 200] = b"\xa5" * 192
    index.write_bytes(bytes(data))


def test_index_with_a_damaged_header_is_rebuilt(archive_folder: Path, caplog) -> None:
    index = archive_folder / INDEX_NAME
    data = bytearray(index.read_bytes())
    data[0:16] = b"not sqlite at al"
    index.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="dicomweb_client"):
        client = dwc.DICOMfileClient(archive_folder.as_uri())
    assert "damaged index" in caplog.text
    assert len(client.search_for_instances()) == 12


def test_index_with_damaged_data_pages_is_rebuilt_when_checked(archive_folder: Path) -> None:
    """After a clean close the index is trusted as it is (damage surfaces as an error);
    ``update_db`` checks the whole file and rebuilds it."""
    _damage_pages(archive_folder / INDEX_NAME, keep_first_page=True)
    client = dwc.DICOMfileClient(archive_folder.as_uri(), update_db=True)
    assert len(client.search_for_instances()) == 12
    assert len(client.search_for_studies()) == 3


def test_index_with_damaged_data_pages_is_rebuilt_after_a_killed_writer(
    archive_folder: Path, caplog
) -> None:
    run_python(
        f"import os, dicomweb_client as dwc\n"  # exits without closing
        f"client = dwc.DICOMfileClient({archive_folder.as_uri()!r}, update_db=True)\n"
        f"os._exit(0)",
        check=True,
    )
    _damage_pages(archive_folder / INDEX_NAME, keep_first_page=True)
    with caplog.at_level(logging.INFO, logger="dicomweb_client"):
        client = dwc.DICOMfileClient(archive_folder.as_uri())
    assert "a writer did not close it" in caplog.text and "damaged index" in caplog.text
    assert len(client.search_for_instances()) == 12
    assert len(client.search_for_studies()) == 3


def test_index_with_damaged_data_pages_is_never_trusted_silently(archive_folder: Path) -> None:
    """Whatever happens, a damaged index gives the right answer or an error."""
    with dwc.DICOMfileClient(archive_folder.as_uri(), in_memory=True) as truth:
        expected = [
            truth.search_for_studies(),
            truth.search_for_series(),
            truth.search_for_instances(),
        ]
    _damage_pages(archive_folder / INDEX_NAME, keep_first_page=True)
    try:
        client = dwc.DICOMfileClient(archive_folder.as_uri())
        got = [
            client.search_for_studies(),
            client.search_for_series(),
            client.search_for_instances(),
        ]
    except sqlite3.DatabaseError:
        return
    key = json.dumps
    assert [sorted(map(key, answer)) for answer in got] == [
        sorted(map(key, answer)) for answer in expected
    ]


def test_readonly_cannot_be_made_to_write(
    archive_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = _snapshot(archive_folder)
    ds = make_archive(1, 1, 1, rows=8, columns=8)[0]
    client = dwc.DICOMfileClient(archive_folder.as_uri(), readonly=True)
    stored = client.search_for_instances()[0]
    study = stored["0020000D"]["Value"][0]
    series = stored["0020000E"]["Value"][0]
    sop = stored["00080018"]["Value"][0]
    attempts = [
        lambda: client.store_instances([ds]),
        lambda: client.store_instances([ds], study_instance_uid=ds.StudyInstanceUID),
        lambda: client.store_instances([make_instance(rows=2, columns=2)]),
        lambda: client.delete_study(study),
        lambda: client.delete_series(study, series),
        lambda: client.delete_instance(study, series, sop),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionError):
            attempt()
    with pytest.raises(sqlite3.OperationalError):
        client._index.connection.execute("DELETE FROM instances")
    assert len(client.search_for_instances()) == 12
    client.close()
    after = _snapshot(archive_folder)
    # the DICOM files and the index database itself are unchanged ...
    assert {name: digest for name, digest in after.items() if name in before} == before
    # ... but see test_readonly_adds_no_files_to_the_archive for SQLite's side files


def test_readonly_adds_no_files_to_the_archive(archive_folder: Path) -> None:
    before = _snapshot(archive_folder)
    client = dwc.DICOMfileClient(archive_folder.as_uri(), readonly=True)
    assert len(client.search_for_instances()) == 12
    client.close()
    assert _snapshot(archive_folder) == before


@pytest.mark.parametrize("flags", [{"update_db": True}, {"recreate_db": True}], ids=str)
def test_readonly_with_index_flags_leaves_the_dicom_files_alone(
    archive_folder: Path, flags: dict
) -> None:
    before = _snapshot(archive_folder, include_index=False)
    (archive_folder / "extra.dcm").write_bytes(b"not really DICOM")
    before["extra.dcm"] = hashlib.sha256(b"not really DICOM").hexdigest()
    client = dwc.DICOMfileClient(archive_folder.as_uri(), readonly=True, **flags)
    with pytest.raises(PermissionError):
        client.delete_study(client.search_for_studies()[0]["0020000D"]["Value"][0])
    client.close()
    assert _snapshot(archive_folder, include_index=False) == before


def test_readonly_with_recreate_db_leaves_the_index_beside_the_archive_alone(
    archive_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index = archive_folder / INDEX_NAME
    before = hashlib.sha256(index.read_bytes()).hexdigest()
    client = dwc.DICOMfileClient(archive_folder.as_uri(), readonly=True, recreate_db=True)
    assert len(client.search_for_instances()) == 12
    client.close()
    assert hashlib.sha256(index.read_bytes()).hexdigest() == before


_KILLED_STORE = textwrap.dedent("""
    import os, sys, time
    sys.path[:0] = {paths!r}
    import dicomweb_client as implementation
    from dicom_data import make_instance
    real_fsync = os.fsync
    def stalled_fsync(fd):
        real_fsync(fd)
        print('written', flush=True)
        time.sleep(60)
    implementation.os.fsync = stalled_fsync
    ds = make_instance(rows=64, columns=64)
    print(ds.SOPInstanceUID, flush=True)
    implementation.DICOMfileClient({url!r}).store_instances([ds])
""")


def test_store_killed_half_way_leaves_no_visible_file(archive_folder: Path) -> None:
    script = _KILLED_STORE.format(
        paths=[str(TESTS_DIR.parent), str(TESTS_DIR)], url=archive_folder.as_uri()
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        sop = process.stdout.readline().strip()
        assert process.stdout.readline().strip() == "written"  # the data is on disk ...
    finally:
        process.send_signal(signal.SIGKILL)  # ... but not yet renamed into place
        process.wait()
        process.stdout.close()
    assert sop and not list(archive_folder.rglob(f"{sop}.dcm"))
    with dwc.DICOMfileClient(archive_folder.as_uri(), update_db=True) as client:
        assert len(client.search_for_instances()) == 12
        found = client.search_for_instances(search_filters={"SOPInstanceUID": sop})
        assert found == []


TRAVERSAL_UIDS = [
    "..",
    "../..",
    "../../etc",
    "1.2/../../x",
    "/etc/passwd",
    "1.2\\..\\3",
    "1.2.3\x00",
    "~",
    "1.2.3/",
]


@pytest.mark.parametrize("uid", TRAVERSAL_UIDS, ids=repr)
def test_file_client_refuses_uids_that_leave_the_archive(archive_folder: Path, uid: str) -> None:
    before = _snapshot(archive_folder, include_index=False)
    client = dwc.DICOMfileClient(archive_folder.as_uri())
    stored = client.search_for_instances()[0]
    study = stored["0020000D"]["Value"][0]
    series = stored["0020000E"]["Value"][0]
    calls = {
        "retrieve_study": (lambda: client.retrieve_study(uid), "study_instance_uid"),
        "retrieve_series": (lambda: client.retrieve_series(study, uid), "series_instance_uid"),
        "retrieve_instance": (
            lambda: client.retrieve_instance(study, series, uid),
            "sop_instance_uid",
        ),
        "delete_study": (lambda: client.delete_study(uid), "study_instance_uid"),
        "delete_instance": (lambda: client.delete_instance(study, series, uid), "sop_instance_uid"),
    }
    for name, (call, argument) in calls.items():
        # refused as a UID, or (the file client looks UIDs up in its index, never on the
        # file system) simply not found
        with pytest.raises((ValueError, dwc.HTTPError)) as caught:
            call()
        if isinstance(caught.value, dwc.HTTPError):
            assert caught.value.status_code == 404, name
        else:
            assert argument in str(caught.value), name
    client.close()
    assert _snapshot(archive_folder, include_index=False) == before  # the DICOM files are untouched


# =========================================================================================
# Bad input: refused before anything is sent, naming the argument
# =========================================================================================

BAD_INPUT = [
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, [0]), {}, ValueError, "frame_numbers"),
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, [2, -1]), {}, ValueError, "frame_numbers"),
    ("iter_instance_frames", (STUDY, SERIES, SOP, []), {}, ValueError, "frame_numbers"),
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, [1.0]), {}, TypeError, "frame_numbers"),
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, "1"), {}, TypeError, "frame_numbers"),
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, [True]), {}, TypeError, "frame_numbers"),
    ("retrieve_study", ("1.2.x",), {}, ValueError, "study_instance_uid"),
    ("retrieve_series", (STUDY, "../.."), {}, ValueError, "series_instance_uid"),
    ("retrieve_instance", (STUDY, SERIES, "1" * 65), {}, ValueError, "sop_instance_uid"),
    ("retrieve_instance", (STUDY, SERIES, 123), {}, TypeError, "sop_instance_uid"),
    ("delete_study", ("1.2.3?x=1",), {}, ValueError, "study_instance_uid"),
    (
        "search_for_studies",
        (),
        {"search_filters": {"NotAKeyword": "x"}},
        ValueError,
        "search_filters",
    ),
    ("search_for_series", (), {"search_filters": {"PatientId": "x"}}, ValueError, "search_filters"),
    ("search_for_instances", (), {"fields": ["NoSuchAttribute"]}, ValueError, "fields"),
    ("search_for_studies", (), {"limit": -1}, ValueError, "limit"),
    ("search_for_studies", (), {"offset": -1}, ValueError, "offset"),
    (
        "retrieve_instance_frames",
        (STUDY, SERIES, SOP, [1]),
        {"media_types": ("application/pdf",)},
        ValueError,
        "media type",
    ),
    (
        "retrieve_instance",
        (STUDY, SERIES, SOP),
        {"media_types": ("image/png",)},
        ValueError,
        "media type",
    ),
    (
        "retrieve_instance_frames",
        (STUDY, SERIES, SOP, [1]),
        {"media_types": 5},
        TypeError,
        "media_types",
    ),
    (
        "retrieve_instance_frames",
        (STUDY, SERIES, SOP, [1]),
        {"media_types": ("nonsense",)},
        ValueError,
        "media_types",
    ),
    ("store_instances", (pytest.importorskip("pydicom").Dataset(),), {}, TypeError, "datasets"),
    ("store_instances", ([42],), {}, TypeError, "int"),
]


@pytest.mark.parametrize(
    "method, args, kwargs, error, named",
    BAD_INPUT,
    ids=[f"{m}-{n}-{i}" for i, (m, _, _, _, n) in enumerate(BAD_INPUT)],
)
def test_bad_input_is_refused_before_sending(
    recording_server: RecordingServer,
    method: str,
    args: tuple,
    kwargs: dict,
    error: type,
    named: str,
) -> None:
    client = client_for(recording_server.url)
    with pytest.raises(error) as caught:
        result = getattr(client, method)(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    assert named in str(caught.value)
    assert recording_server.requests == []
