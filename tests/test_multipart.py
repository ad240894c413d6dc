"""Tests of the streaming multipart/related reader and writer of ``dicomweb_client``.

The reader (``MultipartReader``) is fed from small in-memory ``read1`` sources so that
every way a body can be split into pieces can be tried; the writer (``MultipartBody``)
is checked for its Content-Type, its announced length, replayability and a round trip
through the reader.
"""

from __future__ import annotations

import io
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from email.message import Message
from pathlib import Path
from unittest import mock

import pydicom
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dicom_data
import dicomweb_client
from dicomweb_client import DICOMwebClient, MultipartBody, MultipartError, MultipartReader
from recording_server import RecordingServer, Response, multipart_body

BOUNDARY = "Xb0und-ary_42"
B = BOUNDARY.encode("ascii")
DELIMITER = b"\r\n--" + B

# -- helpers -----------------------------------------------------------------------------


def piece_source(pieces: Sequence[bytes]) -> Callable[[int], bytes]:
    """A ``read1`` that hands out the pieces one by one (never more than asked for)."""
    pending = [bytes(piece) for piece in pieces if piece]

    def read1(size: int) -> bytes:
        assert size > 0, "the reader must ask for at least one byte"
        if not pending:
            return b""
        head = pending[0]
        if len(head) > size:
            pending[0] = head[size:]
            return head[:size]
        pending.pop(0)
        return head

    return read1


def sized_source(data: bytes, sizes: Sequence[int]) -> Callable[[int], bytes]:
    """A ``read1`` returning pieces whose sizes cycle through ``sizes``."""
    pieces, position, index = [], 0, 0
    while position < len(data):
        step = sizes[index % len(sizes)]
        pieces.append(data[position : position + step])
        position += step
        index += 1
    return piece_source(pieces)


def header_items(headers: Message) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in headers.items()]


def read_parts(
    read1: Callable[[int], bytes],
    boundary: bytes = B,
    chunk_size: int = 1 << 16,
    parts_kept: bool = False,
) -> list[tuple[list[tuple[str, str]], bytes]]:
    """All parts as (header items, body), read to the end."""
    reader = MultipartReader(read1, boundary, chunk_size, parts_kept=parts_kept)
    return [(header_items(headers), body) for headers, body in reader]


def read_bytes(data: bytes, boundary: bytes = B) -> list[tuple[list[tuple[str, str]], bytes]]:
    return read_parts(piece_source([data]), boundary)


def bodies(parts: list[tuple[list[tuple[str, str]], bytes]]) -> list[bytes]:
    return [body for _, body in parts]


def expected_headers(content_type: str | None) -> list[tuple[str, str]]:
    return [] if content_type is None else [("content-type", content_type)]


# Payloads that look a lot like delimiters but are not ``CRLF--boundary``.
TRICKY_PAYLOADS = [
    b"--" + B,  # boundary without the CRLF in front
    b"--" + B + b"--",  # a close delimiter without CRLF
    b"x--" + B + b"\r\n",  # boundary line in the middle of a line
    b"--" + B + b"XYZ and more",  # the boundary followed by other characters
    b"\r\n--" + B[:-1],  # CRLF and a boundary missing its last char
    b"\r\n--" + B[:-1] + b"\r\n",
    b"\r\n--" + B[:3],
    b"\r\n-" + B,  # a single dash
    b"\n--" + B,  # LF only
    b"\r--" + B,  # CR only
    b"\r\n\r\n--" + B[:5] + b"\r\n--",
    B + b"\r\n",  # the bare boundary word
    b"\r\npayload between line breaks\r\n",  # CR/LF at start and end
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\n",
    b"-",
    b"--",
    b"\r\n--",  # ends where a delimiter would start
    b"ends with a delimiter prefix\r\n--" + B[:4],
    b"ends with CR\r",
    bytes(range(256)),
]


# -- well-formed bodies ------------------------------------------------------------------


def test_simple_body_round_trips_exactly() -> None:
    payloads = [b"first part", b"\x00\x01\x02\xff" * 50, b"third"]
    data = multipart_body(payloads, BOUNDARY, "application/octet-stream")
    parts = read_bytes(data)
    assert bodies(parts) == payloads
    assert [headers for headers, _ in parts] == [[("content-type", "application/octet-stream")]] * 3


def test_headers_are_email_messages_with_all_fields() -> None:
    data = multipart_body(
        [(b"abc", "image/jpeg", {"Content-Location": "/frames/1", "X-Extra": "yes"})], BOUNDARY
    )
    [(headers, body)] = list(MultipartReader(piece_source([data]), B))
    assert isinstance(headers, Message)
    assert headers.get_content_type() == "image/jpeg"
    assert headers["content-location"] == "/frames/1"
    assert headers["X-EXTRA"] == "yes"
    assert body == b"abc"


@pytest.mark.parametrize("payload", TRICKY_PAYLOADS, ids=repr)
def test_boundary_like_payload_round_trips(payload: bytes) -> None:
    assert DELIMITER not in payload
    data = multipart_body([b"before", payload, b"after"], BOUNDARY)
    assert bodies(read_bytes(data)) == [b"before", payload, b"after"]


# After an empty header block a payload starting with "--boundary" would form the
# delimiter with the blank line's CRLF, so those are left out here.
@pytest.mark.parametrize(
    "payload", [p for p in TRICKY_PAYLOADS if not p.startswith(b"--" + B)], ids=repr
)
def test_boundary_like_payload_alone_without_headers(payload: bytes) -> None:
    data = multipart_body([(payload, None)], BOUNDARY)
    assert read_bytes(data) == [([], payload)]


def test_all_tricky_payloads_in_one_body() -> None:
    data = multipart_body(TRICKY_PAYLOADS, BOUNDARY, "application/dicom")
    assert bodies(read_bytes(data)) == TRICKY_PAYLOADS


def test_empty_payloads() -> None:
    data = multipart_body([b"", b"", (b"", None), b""], BOUNDARY)
    parts = read_bytes(data)
    assert bodies(parts) == [b"", b"", b"", b""]
    assert parts[2][0] == []


def test_single_empty_part_written_by_hand() -> None:
    data = b"--" + B + b"\r\nContent-Type: text/plain\r\n\r\n\r\n--" + B + b"--\r\n"
    assert read_bytes(data) == [([("content-type", "text/plain")], b"")]


def test_part_without_headers() -> None:
    data = b"--" + B + b"\r\n\r\nno headers here\r\n--" + B + b"--\r\n"
    parts = list(MultipartReader(piece_source([data]), B))
    assert len(parts) == 1
    headers, body = parts[0]
    assert isinstance(headers, Message)
    assert list(headers.items()) == []
    assert body == b"no headers here"


def test_mixed_parts_with_and_without_headers() -> None:
    spec = [(b"one", None), (b"two", "image/png"), (b"", None), (b"\r\n", "text/plain")]
    data = multipart_body(spec, BOUNDARY)
    assert read_bytes(data) == [(expected_headers(t), p) for p, t in spec]


def test_body_without_parts() -> None:
    assert read_bytes(b"--" + B + b"--\r\n") == []
    assert read_bytes(b"--" + B + b"--") == []


def test_body_starts_directly_with_the_boundary() -> None:
    data = multipart_body([b"a", b"b"], BOUNDARY)
    assert data.startswith(b"--" + B + b"\r\n")
    assert bodies(read_bytes(data)) == [b"a", b"b"]


def test_preamble_and_epilogue_are_ignored() -> None:
    core = multipart_body([b"payload 1", b"payload 2"], BOUNDARY)
    preamble = (
        b"This is the preamble. It mentions --" + B + b" inline and\r\n"
        b"has several lines, one of them \r\n-" + B + b"\r\n"
    )
    epilogue = b"epilogue\r\n--" + B + b"\r\nnot a part\r\n--" + B + b"--\r\n"
    parts = read_bytes(preamble + core + epilogue)
    assert bodies(parts) == [b"payload 1", b"payload 2"]


def test_preamble_of_just_a_line_break() -> None:
    data = b"\r\n" + multipart_body([b"x"], BOUNDARY)
    assert bodies(read_bytes(data)) == [b"x"]


@pytest.mark.parametrize("padding", [b" ", b"\t", b"  \t \t", b" " * 200])
def test_transport_padding_after_boundaries(padding: bytes) -> None:
    data = (
        b"--" + B + padding + b"\r\nContent-Type: a/b\r\n\r\nfirst"
        b"\r\n--" + B + padding + b"\r\n\r\nsecond"
        b"\r\n--" + B + b"--" + padding + b"\r\n"
    )
    assert read_bytes(data) == [([("content-type", "a/b")], b"first"), ([], b"second")]


def test_large_payload_spanning_many_reads() -> None:
    rng = random.Random(7)
    big = bytes(rng.getrandbits(8) for _ in range(300_000))
    assert DELIMITER not in big
    data = multipart_body([big, b"tail"], BOUNDARY)
    parts = read_parts(sized_source(data, [4093, 1, 65536, 17]), chunk_size=4096)
    assert bodies(parts) == [big, b"tail"]


def test_reader_streams_parts_before_the_body_ends() -> None:
    """The first part is yielded before the source is read past the second delimiter."""
    data = multipart_body([b"first", b"second" * 1000], BOUNDARY)
    consumed = []
    source = sized_source(data, [16])

    def read1(size: int) -> bytes:
        chunk = source(size)
        consumed.append(len(chunk))
        return chunk

    iterator = iter(MultipartReader(read1, B, 1024))
    _, body = next(iterator)
    assert body == b"first"
    assert sum(consumed) < len(data) // 2
    assert [b for _, b in iterator] == [b"second" * 1000]


# -- splitting the source ---------------------------------------------------------------

SMALL_BODY = (
    b"preamble\r\n"
    + multipart_body(
        [
            (b"\r\n--" + B[:4], "a/b"),
            (b"", None),
            (b"--" + B + b"!", "c/d", {"X-Y": "z"}),
            (b"\r\nend\r", None),
        ],
        BOUNDARY,
    )
    + b"epilogue"
)


def test_one_byte_at_a_time_matches_whole_body() -> None:
    whole = read_bytes(SMALL_BODY)
    assert len(whole) == 4
    assert read_parts(sized_source(SMALL_BODY, [1])) == whole


def test_every_split_point_gives_the_same_parts() -> None:
    whole = read_bytes(SMALL_BODY)
    for split in range(len(SMALL_BODY) + 1):
        pieces = [SMALL_BODY[:split], SMALL_BODY[split:]]
        assert read_parts(piece_source(pieces)) == whole, f"split at {split}"


def test_every_pair_of_split_points_gives_the_same_parts() -> None:
    data = multipart_body([(b"\r\n-" + B, None), (b"--" + B[:2], "x/y")], BOUNDARY)
    whole = read_bytes(data)
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            pieces = [data[:first], data[first:second], data[second:]]
            assert read_parts(piece_source(pieces)) == whole, (first, second)


@pytest.mark.parametrize("sizes", [[2], [3], [5, 1], [7, 11, 13], [64]])
def test_fixed_read_sizes_give_the_same_parts(sizes: list[int]) -> None:
    assert read_parts(sized_source(SMALL_BODY, sizes)) == read_bytes(SMALL_BODY)


# -- parts the caller keeps: their own, mapped-in memory ---------------------------------


@pytest.fixture
def kept_copy_for_every_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let even tiny parts take the kept-part copy, so small bodies exercise it."""
    monkeypatch.setattr(dicomweb_client, "_KEPT_COPY_MIN", 0)


@pytest.mark.usefixtures("kept_copy_for_every_part")
def test_parts_kept_every_split_point_gives_the_same_parts() -> None:
    whole = read_bytes(SMALL_BODY)
    for split in range(len(SMALL_BODY) + 1):
        pieces = [SMALL_BODY[:split], SMALL_BODY[split:]]
        parts = read_parts(piece_source(pieces), parts_kept=True)
        assert parts == whole, f"split at {split}"
        assert all(type(body) is bytes for _, body in parts)


@pytest.mark.usefixtures("kept_copy_for_every_part")
@pytest.mark.parametrize("sizes", [[1], [3], [7, 11, 13], [64]])
def test_parts_kept_fixed_read_sizes_give_the_same_parts(sizes: list[int]) -> None:
    assert read_parts(sized_source(SMALL_BODY, sizes), parts_kept=True) == read_bytes(SMALL_BODY)


def test_parts_kept_large_payloads_across_reads() -> None:
    rng = random.Random(11)
    big = bytes(rng.getrandbits(8) for _ in range(300_000))
    lines = b"\r\n--" + B[:-1] + b"\r\n" * 70_000  # delimiter-like bytes throughout
    data = multipart_body([big, lines, b"", big[: 1 << 18]], BOUNDARY)
    for sizes in ([4093, 1, 65536, 17], [1 << 20], [262_144]):
        parts = read_parts(sized_source(data, sizes), chunk_size=1 << 16, parts_kept=True)
        assert bodies(parts) == [big, lines, b"", big[: 1 << 18]], sizes


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 8191, 1 << 18, (1 << 20) + 3])
def test_kept_copy_is_an_exact_bytes_copy(size: int) -> None:
    original = bytes(random.Random(size).getrandbits(8) for _ in range(size))
    source = bytearray(original)
    with memoryview(source) as view:
        copy = dicomweb_client._kept_copy(view)
    assert type(copy) is bytes and copy == original
    source[:] = bytes(size)  # the copy does not share the source's memory
    assert copy == original


def test_kept_copy_of_a_view_into_a_larger_buffer() -> None:
    buffer = bytearray(b"a" * 5000 + b"b" * 70_000 + b"c" * 5000)
    with memoryview(buffer) as view, view[5000:75_000] as middle:
        assert dicomweb_client._kept_copy(middle) == b"b" * 70_000
    buffer.extend(b"d")  # every view was released


def test_page_populator_leaves_the_buffer_free_and_intact() -> None:
    buffer = bytearray(b"z" * (1 << 16))
    with memoryview(buffer) as view:
        dicomweb_client._PagePopulator()(view)
    buffer.extend(b"!")  # no export of the buffer is left behind
    assert buffer == b"z" * (1 << 16) + b"!"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise is used on Linux")
def test_page_populator_stops_asking_a_kernel_that_refuses() -> None:
    class Refused(dicomweb_client._PagePopulator):
        _MADV_POPULATE_WRITE = 10_000  # no such advice: the kernel answers EINVAL

    populator = Refused()
    buffer = bytearray(1 << 16)
    with memoryview(buffer) as view:
        populator(view)
        assert populator._enabled is False
        populator(view)  # and later calls do nothing
    assert buffer == bytes(1 << 16)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    parts=st.lists(st.binary(max_size=64), max_size=5),
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8),
)
def test_property_parts_kept_round_trip(kept_copy_for_every_part, parts, sizes) -> None:
    for payload in parts:
        assume(_unambiguous(payload, DELIMITER))
    data = multipart_body(parts, BOUNDARY)
    assert bodies(read_parts(sized_source(data, sizes), parts_kept=True)) == parts


# -- truncated and malformed bodies ------------------------------------------------------


def _closing_end(data: bytes) -> int:
    """Offset just after the closing delimiter ``--boundary--``."""
    index = data.rindex(b"--" + B + b"--")
    return index + len(B) + 4


@pytest.mark.parametrize("read_size", [None, 1, 3])
def test_truncated_bodies_raise(read_size: int | None) -> None:
    data = multipart_body(
        [(b"alpha", "a/b", {"X-Long-Header": "v" * 30}), (b"", None), (b"\r\n", "c/d")], BOUNDARY
    )
    end = _closing_end(data)
    assert read_bytes(data[:end]) == read_bytes(data)  # complete without the final CRLF
    for cut in range(end):
        truncated = data[:cut]
        source = (
            piece_source([truncated]) if read_size is None else sized_source(truncated, [read_size])
        )
        with pytest.raises(MultipartError):
            list(MultipartReader(source, B))


def test_truncated_body_with_preamble_raises() -> None:
    data = b"preamble\r\n" + multipart_body([b"abc"], BOUNDARY)
    for cut in range(_closing_end(data)):
        with pytest.raises(MultipartError):
            list(MultipartReader(piece_source([data[:cut]]), B))


def test_truncation_error_comes_after_complete_parts() -> None:
    data = multipart_body([b"complete", b"incomplete"], BOUNDARY)
    cut = data.index(b"incomplete") + 4
    iterator = iter(MultipartReader(piece_source([data[:cut]]), B))
    assert next(iterator)[1] == b"complete"
    with pytest.raises(MultipartError, match="truncated"):
        next(iterator)


def test_missing_boundary_raises() -> None:
    with pytest.raises(MultipartError):
        list(MultipartReader(piece_source([b"no boundary anywhere\r\n"]), B))
    other = multipart_body([b"x"], "another-boundary")
    with pytest.raises(MultipartError):
        list(MultipartReader(piece_source([other]), B))


@pytest.mark.parametrize("garbage", [b"garbage", b"X", b"-", b"- ", b" x", b"\tjunk\t"])
def test_garbage_after_first_boundary_raises(garbage: bytes) -> None:
    data = b"--" + B + garbage + b"\r\n\r\nbody\r\n--" + B + b"--\r\n"
    with pytest.raises(MultipartError):
        list(MultipartReader(piece_source([data]), B))


def test_garbage_after_a_later_boundary_raises() -> None:
    data = b"--" + B + b"\r\n\r\nfirst\r\n--" + B + b"oops\r\n\r\nsecond\r\n--" + B + b"--\r\n"
    iterator = iter(MultipartReader(piece_source([data]), B))
    assert next(iterator)[1] == b"first"
    with pytest.raises(MultipartError):
        next(iterator)


def test_endless_padding_raises() -> None:
    data = b"--" + B + b" " * 5000
    with pytest.raises(MultipartError):
        list(MultipartReader(sized_source(data, [100]), B))


@pytest.mark.parametrize(
    "header_block",
    [
        b"Content-Type application/dicom\r\n",  # no colon
        b" continued: first line is a continuation\r\n",
        b"\tContent-Type: a/b\r\n",
        b": no name\r\n",
        b"Bad Name: value\r\n",
        b"Content-Type: a/b\r\nnot a header line\r\n",
    ],
    ids=repr,
)
def test_malformed_part_headers_raise(header_block: bytes) -> None:
    data = b"--" + B + b"\r\n" + header_block + b"\r\nbody\r\n--" + B + b"--\r\n"
    with pytest.raises(MultipartError):
        list(MultipartReader(piece_source([data]), B))


def test_headers_without_blank_line_raise() -> None:
    data = b"--" + B + b"\r\nContent-Type: a/b\r\nbody\r\n--" + B + b"--\r\n"
    with pytest.raises(MultipartError):
        list(MultipartReader(piece_source([data]), B))


def test_oversized_part_headers_raise() -> None:
    data = b"--" + B + b"\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\nbody\r\n--" + B + b"--\r\n"
    with pytest.raises(MultipartError):
        list(MultipartReader(sized_source(data, [8192]), B))


# -- property test of the reader ---------------------------------------------------------

FRAGMENTS = [
    b"\r\n",
    b"\r",
    b"\n",
    b"-",
    b"--",
    b"\r\n--",
    b"--" + B,
    b"--" + B + b"--",
    b"\r\n-" + B,
    b"\r\n--" + B[:-1],
    B,
    b" ",
    b"\t",
] + [b"\r\n--" + B[:k] for k in range(1, len(B))]

payload_strategy = st.lists(
    st.one_of(st.binary(max_size=24), st.sampled_from(FRAGMENTS)), max_size=8
).map(b"".join)

content_type_strategy = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/dicom",
            "application/octet-stream",
            "image/jpeg",
            'text/plain; charset="utf-8"',
        ]
    ),
)


def _unambiguous(payload: bytes, delimiter: bytes) -> bool:
    """Whether the payload can be encoded: the delimiter may not occur in CRLF+payload."""
    return delimiter not in b"\r\n" + payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.tuples(payload_strategy, content_type_strategy), max_size=6),
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8),
)
def test_property_random_payloads_round_trip(parts, sizes) -> None:
    for payload, _ in parts:
        assume(_unambiguous(payload, DELIMITER))
    data = multipart_body(parts, BOUNDARY)
    result = read_parts(sized_source(data, sizes))
    assert result == [(expected_headers(ctype), payload) for payload, ctype in parts]


FIXED_HEX = "0123456789abcdef0123456789abcdef"
WRITER_DELIMITER = b"\r\n--" + FIXED_HEX.encode()
WRITER_FRAGMENTS = [
    b"\r\n",
    b"\r",
    b"\n",
    b"--",
    b"--" + FIXED_HEX.encode(),
    FIXED_HEX.encode(),
] + [b"\r\n--" + FIXED_HEX.encode()[:k] for k in range(1, len(FIXED_HEX), 3)]


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(
        st.lists(
            st.one_of(st.binary(max_size=24), st.sampled_from(WRITER_FRAGMENTS)), max_size=6
        ).map(b"".join),
        max_size=6,
    ),
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8),
)
def test_property_writer_output_round_trips(payloads, sizes) -> None:
    for payload in payloads:
        assume(_unambiguous(payload, WRITER_DELIMITER))
    # A known boundary lets the payloads carry fragments of it.
    with mock.patch.object(dicomweb_client, "_new_boundary", return_value=FIXED_HEX):
        body = MultipartBody(payloads, "application/octet-stream")
    assert body.boundary == FIXED_HEX
    data = b"".join(body())
    assert body.length == len(data)
    result = read_parts(sized_source(data, sizes), FIXED_HEX.encode())
    assert result == [([("content-type", "application/octet-stream")], p) for p in payloads]


# -- the writer ----------------------------------------------------------------------------


def _content_type_of(body: MultipartBody) -> Message:
    message = Message()
    message["Content-Type"] = body.content_type
    return message


def test_writer_content_type_names_type_and_boundary() -> None:
    body = MultipartBody([b"abc"], "application/dicom")
    header = _content_type_of(body)
    assert header.get_content_type() == "multipart/related"
    assert header.get_param("type") == "application/dicom"
    boundary = header.get_param("boundary")
    assert boundary == body.boundary
    assert 1 <= len(boundary) <= 70
    assert 'type="application/dicom"' in body.content_type
    data = b"".join(body())
    assert data.startswith(b"--" + boundary.encode() + b"\r\n")
    assert data.endswith(b"--" + boundary.encode() + b"--\r\n")


def test_writer_boundaries_differ_between_bodies() -> None:
    assert MultipartBody([b"a"], "a/b").boundary != MultipartBody([b"a"], "a/b").boundary


@pytest.fixture
def part_files(tmp_path: Path) -> list[Path]:
    paths = []
    for index, content in enumerate([b"file one", b"", b"\r\n--x\r\n" * 100]):
        path = tmp_path / f"part{index}.bin"
        path.write_bytes(content)
        paths.append(path)
    return paths


def _round_trip(body: MultipartBody, sizes: Sequence[int] = (5,)) -> list[bytes]:
    data = b"".join(body())
    parts = list(MultipartReader(sized_source(data, list(sizes)), body.boundary.encode()))
    for headers, _ in parts:
        assert headers.get_content_type() == body.media_type
    return [payload for _, payload in parts]


def test_writer_length_of_bytes_parts() -> None:
    payloads = [b"one", b"", bytearray(b"two"), memoryview(b"three")]
    body = MultipartBody(payloads, "application/octet-stream")
    data = b"".join(body())
    assert body.length == len(data)
    assert _round_trip(body) == [b"one", b"", b"two", b"three"]


def test_writer_length_of_file_paths(part_files: list[Path]) -> None:
    for parts in (part_files, [str(path) for path in part_files]):
        body = MultipartBody(parts, "application/dicom", chunk_size=7)
        data = b"".join(body())
        assert body.length == len(data)
        assert _round_trip(body) == [path.read_bytes() for path in part_files]


def test_writer_length_of_file_objects(part_files: list[Path]) -> None:
    contents = [path.read_bytes() for path in part_files]
    files = [io.BytesIO(content) for content in contents]
    body = MultipartBody(files, "application/dicom", chunk_size=3)
    data = b"".join(body())
    assert body.length == len(data)
    assert _round_trip(body) == contents


def test_writer_file_object_sends_from_its_position() -> None:
    fileobj = io.BytesIO(b"0123456789")
    fileobj.seek(4)
    body = MultipartBody([fileobj], "application/octet-stream")
    assert body.length == len(b"".join(body()))
    assert _round_trip(body) == [b"456789"]
    assert _round_trip(body) == [b"456789"]


def test_writer_reads_files_in_chunks(part_files: list[Path]) -> None:
    body = MultipartBody([part_files[2]], "application/dicom", chunk_size=64)
    chunks = list(body())
    content_chunks = chunks[1:-2]  # part header, ..., CRLF, closing delimiter
    assert b"".join(content_chunks) == part_files[2].read_bytes()
    assert max(len(chunk) for chunk in content_chunks) <= 64


def test_writer_length_unknown_with_a_dataset(part_files: list[Path]) -> None:
    ds = dicom_data.make_instance()
    body = MultipartBody([b"raw", ds, part_files[0]], "application/dicom")
    assert body.length is None
    payloads = _round_trip(body)
    assert payloads[0] == b"raw"
    assert payloads[2] == part_files[0].read_bytes()
    decoded = pydicom.dcmread(io.BytesIO(payloads[1]))
    assert decoded.SOPInstanceUID == ds.SOPInstanceUID
    assert decoded.PixelData == ds.PixelData


def test_writer_is_replayable(part_files: list[Path]) -> None:
    ds = dicom_data.make_instance(rows=4, columns=4)
    fileobj = io.BytesIO(b"file object content")
    parts = [b"bytes", part_files[2], str(part_files[0]), fileobj, ds]
    body = MultipartBody(parts, "application/dicom", chunk_size=10)
    first = b"".join(body())
    second = b"".join(body())
    assert first == second
    # a half-consumed iteration does not disturb the next one
    partial = body()
    for _ in range(3):
        next(partial)
    assert b"".join(body()) == first


def test_writer_without_parts() -> None:
    body = MultipartBody([], "application/dicom")
    data = b"".join(body())
    assert body.length == len(data)
    assert list(MultipartReader(piece_source([data]), body.boundary.encode())) == []


def test_writer_rejects_unsupported_parts() -> None:
    with pytest.raises(TypeError):
        MultipartBody([12345], "application/dicom")


def test_writer_rejects_unseekable_file_objects() -> None:
    class Unseekable(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:
            return 0

        def seekable(self) -> bool:
            return False

        def tell(self) -> int:
            raise OSError("not seekable")

    with pytest.raises(TypeError):
        MultipartBody([Unseekable()], "application/dicom")


def test_writer_round_trips_datasets_of_a_study() -> None:
    datasets = dicom_data.make_study(n_series=2, n_instances=2, rows=8, columns=8)
    body = MultipartBody(datasets, "application/dicom", chunk_size=1000)
    payloads = _round_trip(body, sizes=(977, 1, 4096))
    decoded = [pydicom.dcmread(io.BytesIO(payload)) for payload in payloads]
    assert [ds.SOPInstanceUID for ds in decoded] == [ds.SOPInstanceUID for ds in datasets]
    assert payloads == [dicom_data.to_bytes(ds) for ds in datasets]


# -- declared part lengths, over real sockets --------------------------------------------
#
# A part may say how long it is (Content-Length); the delimiter still decides where it
# ends (RFC 2046 forbids it inside a payload), and a declared length that disagrees with
# the bytes before the next delimiter is an error, never a silently wrong part.

STUDY = "1.2.826.0.1.3680043.8.498.511"
SERIES = "1.2.826.0.1.3680043.8.498.512"
SOP = "1.2.826.0.1.3680043.8.498.513"
OCTETS = "application/octet-stream"
RAW_PAYLOADS = [b"first frame", b"second \r\n--" + B[:4] + b" frame"]


def _instance_payloads() -> list[bytes]:
    return [
        dicom_data.to_bytes(
            dicom_data.make_instance(
                STUDY, SERIES, f"{SOP}.{number}", rows=4, columns=4, seed=number
            )
        )
        for number in (1, 2)
    ]


# method -> (call(client, base url), part media type, number of parts)
RETRIEVALS: dict[str, tuple[Callable[[DICOMwebClient, str], Iterable[object]], str, int]] = {
    "retrieve_instance_frames": (
        lambda client, url: client.retrieve_instance_frames(STUDY, SERIES, SOP, [1, 2]),
        OCTETS,
        2,
    ),
    "iter_instance_frames": (
        lambda client, url: client.iter_instance_frames(STUDY, SERIES, SOP, [1, 2]),
        OCTETS,
        2,
    ),
    "retrieve_bulkdata": (lambda client, url: client.retrieve_bulkdata(url + "/bulk/7"), OCTETS, 2),
    "iter_bulkdata": (lambda client, url: client.iter_bulkdata(url + "/bulk/7"), OCTETS, 2),
    "retrieve_instance": (
        lambda client, url: [client.retrieve_instance(STUDY, SERIES, SOP)],
        "application/dicom",
        1,
    ),
    "retrieve_series": (
        lambda client, url: client.retrieve_series(STUDY, SERIES),
        "application/dicom",
        2,
    ),
    "iter_series": (lambda client, url: client.iter_series(STUDY, SERIES), "application/dicom", 2),
    "iter_study": (lambda client, url: client.iter_study(STUDY), "application/dicom", 2),
}
STREAMING = [name for name in RETRIEVALS if name.startswith("iter_")]


@pytest.fixture(scope="module")
def length_server() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture
def lserver(length_server: RecordingServer) -> Iterator[RecordingServer]:
    length_server.reset()
    yield length_server
    length_server.reset()


def _payloads(method: str) -> list[bytes]:
    _, part_type, count = RETRIEVALS[method]
    return (RAW_PAYLOADS if part_type == OCTETS else _instance_payloads())[:count]


def _serve(
    server: RecordingServer, method: str, declared: Sequence[str | list[str] | None]
) -> list[bytes]:
    """Answer every GET with the method's payloads, part i declaring ``declared[i]``
    (a list: the field given that many times; ``None``: no Content-Length)."""
    _, part_type, _ = RETRIEVALS[method]
    payloads = _payloads(method)
    raw = bytearray()
    for payload, value in zip(payloads, declared):
        values = [] if value is None else [value] if isinstance(value, str) else value
        fields = b"".join(b"Content-Length: " + item.encode("latin-1") + b"\r\n" for item in values)
        raw += (
            b"--"
            + B
            + b"\r\nContent-Type: "
            + part_type.encode()
            + b"\r\n"
            + fields
            + b"\r\n"
            + payload
            + b"\r\n"
        )
    raw += b"--" + B + b"--\r\n"
    server.add(
        "GET",
        None,
        Response(
            body=[bytes(raw[: len(raw) // 2]), bytes(raw[len(raw) // 2 :])],
            content_type=f'multipart/related; type="{part_type}"; boundary={BOUNDARY}',
        ),
    )
    return payloads


def _retrieve(server: RecordingServer, method: str) -> list[bytes]:
    call = RETRIEVALS[method][0]
    with DICOMwebClient(server.url) as client:
        got = list(call(client, server.url))
    return [
        dicom_data.to_bytes(item) if isinstance(item, pydicom.Dataset) else item for item in got
    ]


def _same(got: list[bytes], payloads: list[bytes]) -> bool:
    if got == payloads:
        return True
    return [dicom_data.from_bytes(item).SOPInstanceUID for item in got] == [
        dicom_data.from_bytes(item).SOPInstanceUID for item in payloads
    ]


@pytest.mark.parametrize("method", RETRIEVALS)
def test_correct_content_lengths_pass(lserver: RecordingServer, method: str) -> None:
    payloads = _serve(lserver, method, [str(len(p)) for p in _payloads(method)])
    assert _same(_retrieve(lserver, method), payloads)


@pytest.mark.parametrize("method", RETRIEVALS)
def test_lengths_with_spaces_repeats_and_missing_fields_pass(
    lserver: RecordingServer, method: str
) -> None:
    sizes = [len(p) for p in _payloads(method)]
    declared: list[str | list[str] | None] = [[f" {sizes[0]} ", str(sizes[0])]]
    declared += [None] * (len(sizes) - 1)
    payloads = _serve(lserver, method, declared)
    assert _same(_retrieve(lserver, method), payloads)


@pytest.mark.parametrize("lying", ["first", "last"])
@pytest.mark.parametrize("offset", [-1, +1, -5, +1000], ids=lambda o: f"{o:+d}")
@pytest.mark.parametrize("method", RETRIEVALS)
def test_wrong_content_length_raises(
    lserver: RecordingServer, method: str, offset: int, lying: str
) -> None:
    sizes = [len(p) for p in _payloads(method)]
    number = 1 if lying == "first" else len(sizes)
    declared = [str(size) for size in sizes]
    declared[number - 1] = str(sizes[number - 1] + offset)
    _serve(lserver, method, declared)
    with pytest.raises(
        MultipartError,
        match=(
            rf"part {number} declares Content-Length {sizes[number - 1] + offset} "
            rf"but holds {sizes[number - 1]} bytes"
        ),
    ):
        _retrieve(lserver, method)


@pytest.mark.parametrize(
    "value", ["abc", "", "-1", "+5", "5.0", "0x10", "1e3", "5 5", "5, 5", "\xb2", "\u00bd"]
)
@pytest.mark.parametrize("method", RETRIEVALS)
def test_non_numeric_content_length_raises(
    lserver: RecordingServer, method: str, value: str
) -> None:
    sizes = [len(p) for p in _payloads(method)]
    _serve(lserver, method, [str(size) for size in sizes[:-1]] + [value])
    with pytest.raises(MultipartError, match=rf"part {len(sizes)} declares Content-Length"):
        _retrieve(lserver, method)


@pytest.mark.parametrize("method", RETRIEVALS)
def test_disagreeing_repeated_content_lengths_raise(lserver: RecordingServer, method: str) -> None:
    size = len(_payloads(method)[0])
    _serve(lserver, method, [[str(size), str(size + 1)], None])
    with pytest.raises(MultipartError, match="part 1 declares Content-Length"):
        _retrieve(lserver, method)


@pytest.mark.parametrize("method", STREAMING)
def test_streaming_yields_good_parts_before_the_lying_one(
    lserver: RecordingServer, method: str
) -> None:
    payloads = _payloads(method)
    _serve(lserver, method, [str(len(payloads[0])), str(len(payloads[1]) - 1)])
    with DICOMwebClient(lserver.url) as client:
        parts = iter(RETRIEVALS[method][0](client, lserver.url))
        first = next(parts)
        if isinstance(first, pydicom.Dataset):
            first = dicom_data.to_bytes(first)
        assert _same([first], payloads[:1])
        with pytest.raises(MultipartError, match="part 2 declares"):
            next(parts)


@pytest.mark.parametrize("payload", TRICKY_PAYLOADS, ids=repr)
@pytest.mark.parametrize("method", ["retrieve_bulkdata", "iter_instance_frames"])
def test_boundary_like_payload_with_its_length_passes(
    lserver: RecordingServer, method: str, payload: bytes
) -> None:
    # bytes that look like a delimiter but are not one stay in the payload
    body = multipart_body(
        [
            (b"x", OCTETS, {"Content-Length": "1"}),
            (payload, OCTETS, {"Content-Length": str(len(payload))}),
        ],
        BOUNDARY,
    )
    lserver.add(
        "GET",
        None,
        Response(
            body=body, content_type=f'multipart/related; type="{OCTETS}"; boundary={BOUNDARY}'
        ),
    )
    assert _retrieve(lserver, method) == [b"x", payload]


def test_delimiter_inside_a_declared_length_is_not_stepped_over(lserver: RecordingServer) -> None:
    # the delimiter is authoritative: a payload holding it ends there, and the length
    # it declared for the whole payload then no longer fits
    payload = b"head" + DELIMITER + b"\r\ntail"
    body = multipart_body([(payload, OCTETS, {"Content-Length": str(len(payload))})], BOUNDARY)
    lserver.add(
        "GET",
        None,
        Response(
            body=body, content_type=f'multipart/related; type="{OCTETS}"; boundary={BOUNDARY}'
        ),
    )
    with pytest.raises(
        MultipartError, match=(rf"part 1 declares Content-Length {len(payload)} but holds 4 bytes")
    ):
        _retrieve(lserver, "retrieve_bulkdata")


def test_reader_checks_lengths_at_every_split_point() -> None:
    data = multipart_body(
        [(b"abc", OCTETS, {"Content-Length": "3"}), (b"de", OCTETS, {"Content-Length": "3"})],
        BOUNDARY,
    )
    for split in range(1, len(data)):
        reader = iter(MultipartReader(piece_source([data[:split], data[split:]]), B))
        assert next(reader)[1] == b"abc"
        with pytest.raises(
            MultipartError, match="part 2 declares Content-Length 3 but holds 2 bytes"
        ):
            next(reader)
