"""Tests of ``DICOMwebClient`` against the recording server.

Every public method is called and the request it sends is checked exactly: method, path,
query, Accept and Content-Type.  Bad arguments must be refused before anything is sent,
and server failures must surface as the documented exceptions.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import io
import json
import logging
import multiprocessing
import pickle
import random
import time
from collections.abc import Iterator
from email.message import Message
from http import HTTPStatus
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

import dicom_data
from concurrency import search_in_this_process
import dicomweb_client
from dicomweb_client import DICOMwebClient, HTTPError, MultipartError
from recording_server import (
    RecordedRequest,
    RecordingServer,
    Response,
    multipart_body,
    multipart_response,
)

STUDY = "1.2.826.0.1.3680043.8.498.101"
SERIES = "1.2.826.0.1.3680043.8.498.202"
SOP = "1.2.826.0.1.3680043.8.498.303"
PREFIX = "/dicom-web"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"

DICOM_JSON = "application/dicom+json"
JSON_ACCEPT = "application/dicom+json, application/json"  # searches and JSON metadata
ACCEPT_DICOM = 'multipart/related; type="application/dicom"'
ACCEPT_OCTETS = 'multipart/related; type="application/octet-stream"'

STUDY_PATH = f"/studies/{STUDY}"
SERIES_PATH = f"{STUDY_PATH}/series/{SERIES}"
INSTANCE_PATH = f"{SERIES_PATH}/instances/{SOP}"

# -- helpers -----------------------------------------------------------------------------


def make_client(server: RecordingServer, path: str = PREFIX, **options: Any) -> DICOMwebClient:
    """A client for the server whose retries wait only milliseconds."""
    client = DICOMwebClient(server.url + path, **options)
    client.set_http_retry_params(wait_exponential_multiplier=1)
    return client


def json_response(value: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        status=status,
        body=json.dumps(value).encode(),
        content_type=DICOM_JSON,
        headers=headers or {},
    )


def uid_item(uid: str, tag: str = "0020000D") -> dict:
    return {tag: {"vr": "UI", "Value": [uid]}}


def check_request(
    request: RecordedRequest,
    method: str,
    path: str,
    query: dict[str, list[str]] | None = None,
    accept: str | None = None,
    content_type: str | None = None,
) -> None:
    """Assert the essentials of a recorded request."""
    assert request.method == method
    assert request.path == path
    assert request.query == (query or {})
    if accept is not None:
        assert request.header("Accept") == accept
    if content_type is None:
        assert request.header("Content-Type") is None
    else:
        assert request.header("Content-Type") == content_type


def split_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart body written by the client (independent of the library's reader)."""
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    assert isinstance(boundary, str) and boundary
    segments = (b"\r\n" + body).split(b"\r\n--" + boundary.encode())
    assert segments[0] == b"", "no preamble expected"
    assert segments[-1] in (b"--", b"--\r\n"), "closing delimiter expected at the end"
    parts = []
    for segment in segments[1:-1]:
        assert segment.startswith(b"\r\n")
        segment = segment[2:]
        if segment.startswith(b"\r\n"):
            parts.append(({}, segment[2:]))
            continue
        head, separator, payload = segment.partition(b"\r\n\r\n")
        assert separator
        fields = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        parts.append((fields, payload))
    return parts


def stored_datasets(request: RecordedRequest) -> list[Dataset]:
    parts = split_multipart(request.body, request.header("Content-Type") or "")
    for fields, _ in parts:
        assert fields.get("content-type") == "application/dicom"
    return [pydicom.dcmread(io.BytesIO(payload)) for _, payload in parts]


def exhaust(result: Any) -> Any:
    """Consume an iterator so that lazy methods do their work."""
    if isinstance(result, Iterator):
        return list(result)
    return result


def universal_handler(request: RecordedRequest) -> Response:
    """Answers every kind of DICOMweb request plausibly (for cross-cutting tests)."""
    accept = request.header("Accept") or ""
    if request.method == "DELETE":
        return Response(status=204)
    if request.method == "POST":
        return json_response({})
    if accept.startswith(ACCEPT_DICOM):
        return multipart_response(
            [dicom_data.to_bytes(dicom_data.make_instance(STUDY, SERIES, SOP, rows=2, columns=2))]
        )
    if accept.startswith("multipart/related"):
        return multipart_response([b"frame"], "application/octet-stream")
    if accept == JSON_ACCEPT:
        return json_response([uid_item(STUDY)])
    return Response(body=b"\xff\xd8 jpeg \xff\xd9", content_type="image/jpeg")


def every_method_call(client: DICOMwebClient, server: RecordingServer) -> list[Any]:
    """Call each public request method once; return the results."""
    ds = dicom_data.make_instance(STUDY, SERIES, SOP, rows=2, columns=2)
    return [
        client.search_for_studies(),
        client.search_for_series(STUDY),
        client.search_for_instances(STUDY, SERIES),
        client.retrieve_study(STUDY),
        list(client.iter_study(STUDY)),
        client.retrieve_series(STUDY, SERIES),
        list(client.iter_series(STUDY, SERIES)),
        client.retrieve_instance(STUDY, SERIES, SOP),
        client.retrieve_study_metadata(STUDY),
        client.retrieve_series_metadata(STUDY, SERIES),
        client.retrieve_instance_metadata(STUDY, SERIES, SOP),
        client.retrieve_instance_frames(STUDY, SERIES, SOP, [1]),
        list(client.iter_instance_frames(STUDY, SERIES, SOP, [1])),
        client.retrieve_bulkdata(server.url + "/bulk/1"),
        list(client.iter_bulkdata(server.url + "/bulk/1")),
        client.retrieve_instance_rendered(STUDY, SERIES, SOP),
        client.retrieve_series_rendered(STUDY, SERIES),
        client.retrieve_instance_frames_rendered(STUDY, SERIES, SOP, [1]),
        client.retrieve_study_thumbnail(STUDY),
        client.retrieve_series_thumbnail(STUDY, SERIES),
        client.retrieve_instance_thumbnail(STUDY, SERIES, SOP),
        client.retrieve_instance_frames_thumbnail(STUDY, SERIES, SOP, [1]),
        client.store_instances([ds]),
        client.delete_study(STUDY),
        client.delete_series(STUDY, SERIES),
        client.delete_instance(STUDY, SERIES, SOP),
    ]


EVERY_METHOD_COUNT = 26


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RecordingServer]:
    """One server for the whole module: stopping a server takes ~50 ms, and there are
    hundreds of tests here."""
    with RecordingServer() as server:
        yield server


@pytest.fixture
def server(shared_server: RecordingServer) -> Iterator[RecordingServer]:
    """The shared server with no routes, queued answers or recorded requests."""
    shared_server.reset()
    yield shared_server
    shared_server.reset()


# -- QIDO-RS -----------------------------------------------------------------------------

SEARCH_CASES = [
    ("search_for_studies", {}, "/studies", {}),
    ("search_for_series", {}, "/series", {}),
    ("search_for_series", {"study_instance_uid": STUDY}, f"{STUDY_PATH}/series", {}),
    ("search_for_instances", {}, "/instances", {}),
    ("search_for_instances", {"study_instance_uid": STUDY}, f"{STUDY_PATH}/instances", {}),
    (
        "search_for_instances",
        {"study_instance_uid": STUDY, "series_instance_uid": SERIES},
        f"{SERIES_PATH}/instances",
        {},
    ),
    (
        "search_for_instances",
        {"series_instance_uid": SERIES},
        "/instances",
        {"SeriesInstanceUID": [SERIES]},
    ),
]


@pytest.mark.parametrize("method, kwargs, path, query", SEARCH_CASES)
def test_search_request(
    server: RecordingServer, method: str, kwargs: dict, path: str, query: dict
) -> None:
    results = [uid_item(STUDY), uid_item("1.2.3")]
    server.add("GET", PREFIX + path, json_response(results))
    client = make_client(server)
    assert getattr(client, method)(**kwargs) == results
    assert len(server.requests) == 1
    check_request(server.last, "GET", PREFIX + path, query, accept=JSON_ACCEPT)


@pytest.mark.parametrize(
    "method", ["search_for_studies", "search_for_series", "search_for_instances"]
)
def test_search_query_parameters(server: RecordingServer, method: str) -> None:
    server.add("GET", None, json_response([]))
    client = make_client(server)
    getattr(client, method)(
        fuzzymatching=True,
        limit=10,
        offset=20,
        fields=["PatientName", "00100030"],
        search_filters={
            "PatientID": "P1*",
            "00080020": "20240101-20241231",
            "PatientName": "Doe^J?ne",
        },
        additional_params={"custom": "yes"},
    )
    query = dict(server.last.query)
    assert sorted(query.pop("includefield")) == ["00100030", "PatientName"]
    assert query == {
        "fuzzymatching": ["true"],
        "limit": ["10"],
        "offset": ["20"],
        "PatientID": ["P1*"],
        "00080020": ["20240101-20241231"],
        "PatientName": ["Doe^J?ne"],
        "custom": ["yes"],
    }
    assert server.last.header("Accept") == JSON_ACCEPT


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]
)
def test_search_answer_in_any_json_encoding(server: RecordingServer, encoding: str) -> None:
    studies = [{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "M\u00fcller^J\u00f6rg"}]}}]
    body = json.dumps(studies, ensure_ascii=False).encode(encoding)
    server.add("GET", None, Response(body=body, content_type=DICOM_JSON))
    assert make_client(server).search_for_studies() == studies


def test_search_filter_by_keyword_and_by_tag(server: RecordingServer) -> None:
    server.add("GET", None, json_response([]))
    client = make_client(server)
    client.search_for_studies(search_filters={"PatientID": "ABC123"})
    client.search_for_studies(search_filters={"00100020": "ABC123"})
    assert [r.query for r in server.requests] == [
        {"PatientID": ["ABC123"]},
        {"00100020": ["ABC123"]},
    ]


def test_search_fuzzymatching_false_and_single_field(server: RecordingServer) -> None:
    server.add("GET", None, json_response([]))
    make_client(server).search_for_series(STUDY, fuzzymatching=False, fields=["Modality"])
    assert server.last.query == {"fuzzymatching": ["false"], "includefield": ["Modality"]}


def test_search_instances_series_filter_is_combined_with_other_filters(
    server: RecordingServer,
) -> None:
    server.add("GET", None, json_response([]))
    make_client(server).search_for_instances(
        series_instance_uid=SERIES, search_filters={"Modality": "CT"}
    )
    check_request(
        server.last,
        "GET",
        PREFIX + "/instances",
        {"Modality": ["CT"], "SeriesInstanceUID": [SERIES]},
        accept=JSON_ACCEPT,
    )


def test_search_without_content_returns_empty_list(server: RecordingServer) -> None:
    server.queue(Response(status=204), Response(status=200, body=b"", content_type=DICOM_JSON))
    client = make_client(server)
    assert client.search_for_studies() == []
    assert client.search_for_studies() == []


ITEMS = [uid_item(f"1.2.3.{number}") for number in range(5)]


def paging_handler(items: list[dict], page_size: int, warn: bool) -> Any:
    """Serves at most ``page_size`` items per request, honouring offset and limit."""

    def handle(request: RecordedRequest) -> Response:
        offset = int(request.query.get("offset", ["0"])[0])
        limit = int(request.query.get("limit", [str(len(items))])[0])
        page = items[offset : offset + min(limit, page_size)]
        headers = {}
        if warn and offset + len(page) < len(items):
            headers["Warning"] = "299 127.0.0.1: There are additional results to request"
        return json_response(page, headers=headers)

    return handle


@pytest.mark.parametrize("warn", [False, True], ids=["no-warning", "warning"])
@pytest.mark.parametrize(
    "method", ["search_for_studies", "search_for_series", "search_for_instances"]
)
def test_get_remaining_pages_through_results(
    server: RecordingServer, method: str, warn: bool
) -> None:
    server.add("GET", None, paging_handler(ITEMS, 2, warn))
    results = getattr(make_client(server), method)(get_remaining=True)
    assert results == ITEMS
    offsets = [r.query.get("offset") for r in server.requests]
    assert offsets == [["0"], ["2"], ["4"], ["5"]]  # offset 0 is sent too, as there
    assert all("limit" not in r.query for r in server.requests)


@pytest.mark.parametrize("warn", [False, True], ids=["no-warning", "warning"])
def test_get_remaining_with_limit(server: RecordingServer, warn: bool) -> None:
    """With get_remaining, a limit is the size of each page, as in the established
    package: every result arrives, in pages of at most ``limit``."""
    server.add("GET", None, paging_handler(ITEMS, 2, warn))
    results = make_client(server).search_for_studies(limit=3, get_remaining=True)
    assert results == ITEMS
    assert [(r.query.get("offset"), r.query.get("limit")) for r in server.requests] == [
        (["0"], ["3"]),
        (["2"], ["3"]),
        (["4"], ["3"]),
        (["5"], ["3"]),
    ]


def test_get_remaining_with_offset(server: RecordingServer) -> None:
    server.add("GET", None, paging_handler(ITEMS, 2, False))
    results = make_client(server).search_for_studies(offset=1, get_remaining=True)
    assert results == ITEMS[1:]
    assert [r.query.get("offset") for r in server.requests] == [["1"], ["3"], ["5"]]


def test_without_get_remaining_only_one_page(server: RecordingServer) -> None:
    server.add("GET", None, paging_handler(ITEMS, 2, True))
    assert make_client(server).search_for_studies() == ITEMS[:2]
    assert len(server.requests) == 1


# -- WADO-RS: instances ------------------------------------------------------------------


@pytest.fixture
def instances() -> list[Dataset]:
    return dicom_data.make_study(1, 3, study_uid=STUDY, rows=4, columns=4)


RETRIEVE_CASES = [
    ("retrieve_study", (STUDY,), STUDY_PATH),
    ("iter_study", (STUDY,), STUDY_PATH),
    ("retrieve_series", (STUDY, SERIES), SERIES_PATH),
    ("iter_series", (STUDY, SERIES), SERIES_PATH),
]


@pytest.mark.parametrize("method, args, path", RETRIEVE_CASES)
def test_retrieve_instances(
    server: RecordingServer, instances: list[Dataset], method: str, args: tuple, path: str
) -> None:
    server.add(
        "GET", PREFIX + path, multipart_response([dicom_data.to_bytes(ds) for ds in instances])
    )
    result = getattr(make_client(server), method)(*args)
    if method.startswith("iter_"):
        assert isinstance(result, Iterator)
    datasets = list(result)
    check_request(server.last, "GET", PREFIX + path, accept=ACCEPT_DICOM)
    assert [ds.SOPInstanceUID for ds in datasets] == [ds.SOPInstanceUID for ds in instances]
    assert all(isinstance(ds, Dataset) for ds in datasets)
    assert [ds.PixelData for ds in datasets] == [ds.PixelData for ds in instances]


def test_retrieve_instance(server: RecordingServer, instances: list[Dataset]) -> None:
    server.add(
        "GET", PREFIX + INSTANCE_PATH, multipart_response([dicom_data.to_bytes(instances[0])])
    )
    ds = make_client(server).retrieve_instance(STUDY, SERIES, SOP)
    check_request(server.last, "GET", PREFIX + INSTANCE_PATH, accept=ACCEPT_DICOM)
    assert isinstance(ds, Dataset)
    assert ds.SOPInstanceUID == instances[0].SOPInstanceUID


def test_retrieve_instance_with_two_parts_raises(
    server: RecordingServer, instances: list[Dataset]
) -> None:
    server.add("GET", None, multipart_response([dicom_data.to_bytes(ds) for ds in instances[:2]]))
    with pytest.raises(MultipartError):
        make_client(server).retrieve_instance(STUDY, SERIES, SOP)


@pytest.mark.parametrize(
    "media_types, accept",
    [
        ((("application/dicom", "*"),), ACCEPT_DICOM + "; transfer-syntax=*"),
        (
            (("application/dicom", "1.2.840.10008.1.2.1"),),
            ACCEPT_DICOM + "; transfer-syntax=1.2.840.10008.1.2.1",
        ),
        (
            (("application/dicom", "1.2.840.10008.1.2.4.90"), ("application/dicom", "*")),
            ACCEPT_DICOM
            + "; transfer-syntax=1.2.840.10008.1.2.4.90, "
            + ACCEPT_DICOM
            + "; transfer-syntax=*",
        ),
        (("application/dicom",), ACCEPT_DICOM),
    ],
)
def test_retrieve_study_media_types(
    server: RecordingServer, instances: list[Dataset], media_types: tuple, accept: str
) -> None:
    server.add("GET", None, multipart_response([dicom_data.to_bytes(instances[0])]))
    make_client(server).retrieve_study(STUDY, media_types=media_types)
    check_request(server.last, "GET", PREFIX + STUDY_PATH, accept=accept)


def test_retrieve_study_additional_params(
    server: RecordingServer, instances: list[Dataset]
) -> None:
    server.add("GET", None, multipart_response([dicom_data.to_bytes(instances[0])]))
    make_client(server).retrieve_study(STUDY, additional_params={"charset": "utf-8"})
    check_request(
        server.last, "GET", PREFIX + STUDY_PATH, {"charset": ["utf-8"]}, accept=ACCEPT_DICOM
    )


def test_retrieve_study_with_no_content_is_empty(server: RecordingServer) -> None:
    server.add("GET", None, Response(status=204))
    assert make_client(server).retrieve_study(STUDY) == []


def test_iter_study_streams_with_a_small_chunk_size(
    server: RecordingServer, instances: list[Dataset]
) -> None:
    payloads = [dicom_data.to_bytes(ds) for ds in instances]
    response = multipart_response(payloads, chunked=True)
    body = response.payload()
    response.body = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    server.add("GET", None, response)
    client = make_client(server, chunk_size=1)
    uids = [ds.SOPInstanceUID for ds in client.iter_study(STUDY)]
    assert uids == [ds.SOPInstanceUID for ds in instances]


# -- WADO-RS: metadata -------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, args, path",
    [
        ("retrieve_study_metadata", (STUDY,), STUDY_PATH + "/metadata"),
        ("retrieve_series_metadata", (STUDY, SERIES), SERIES_PATH + "/metadata"),
    ],
)
def test_retrieve_list_metadata(
    server: RecordingServer, method: str, args: tuple, path: str
) -> None:
    items = [uid_item(SOP, "00080018"), uid_item("1.2.3", "00080018")]
    server.add("GET", PREFIX + path, json_response(items))
    client = make_client(server)
    assert getattr(client, method)(*args) == items
    check_request(server.last, "GET", PREFIX + path, accept=JSON_ACCEPT)
    server.add("GET", PREFIX + path, Response(status=204))
    assert getattr(client, method)(*args) == []


def test_retrieve_instance_metadata(server: RecordingServer) -> None:
    item = uid_item(SOP, "00080018")
    server.add("GET", PREFIX + INSTANCE_PATH + "/metadata", json_response([item]))
    assert make_client(server).retrieve_instance_metadata(STUDY, SERIES, SOP) == item
    check_request(server.last, "GET", PREFIX + INSTANCE_PATH + "/metadata", accept=JSON_ACCEPT)


def test_instance_metadata_answer_of_several_items_gives_the_first(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = uid_item(SOP, "00080018"), uid_item("1.2.3", "00080018")
    server.add("GET", None, json_response([first, second]))
    assert make_client(server).retrieve_instance_metadata(STUDY, SERIES, SOP) == first
    assert "the first is used" in caplog.text


def test_instance_metadata_answer_without_items_raises_value_and_index_error(
    server: RecordingServer,
) -> None:
    """IndexError is what the established package raises there."""
    server.add("GET", None, json_response([]))
    with pytest.raises(ValueError) as caught:
        make_client(server).retrieve_instance_metadata(STUDY, SERIES, SOP)
    assert isinstance(caught.value, IndexError)


def test_metadata_additional_params(server: RecordingServer) -> None:
    server.add("GET", None, json_response([]))
    make_client(server).retrieve_study_metadata(STUDY, additional_params={"a": "b"})
    check_request(
        server.last, "GET", PREFIX + STUDY_PATH + "/metadata", {"a": ["b"]}, accept=JSON_ACCEPT
    )


# -- WADO-RS: frames ---------------------------------------------------------------------

FRAMES_PATH = INSTANCE_PATH + "/frames/1,3"


@pytest.mark.parametrize("method", ["retrieve_instance_frames", "iter_instance_frames"])
def test_retrieve_frames_default(server: RecordingServer, method: str) -> None:
    server.add(
        "GET",
        PREFIX + FRAMES_PATH,
        multipart_response([b"frame one", b"frame \r\n three"], "application/octet-stream"),
    )
    frames = list(getattr(make_client(server), method)(STUDY, SERIES, SOP, [1, 3]))
    assert frames == [b"frame one", b"frame \r\n three"]
    check_request(server.last, "GET", PREFIX + FRAMES_PATH, accept=ACCEPT_OCTETS)


@pytest.mark.parametrize("method", ["retrieve_instance_frames", "iter_instance_frames"])
def test_large_frames_come_back_byte_for_byte(server: RecordingServer, method: str) -> None:
    # frames this large take the list path's own allocation (memory mapped in at once)
    rng = random.Random(3)
    frames = [
        bytes(rng.getrandbits(8) for _ in range(300_000)) + b"\r\n--" + bytes(5000),
        b"\r\n" * 150_000,
        bytes(1 << 19),
    ]
    server.add("GET", None, multipart_response(frames, "application/octet-stream"))
    got = list(getattr(make_client(server), method)(STUDY, SERIES, SOP, [1, 2, 3]))
    assert [type(frame) for frame in got] == [bytes] * 3
    assert got == frames


@pytest.mark.parametrize("method", ["retrieve_bulkdata", "iter_bulkdata"])
def test_large_bulk_data_comes_back_byte_for_byte(server: RecordingServer, method: str) -> None:
    payload = bytes(range(256)) * 2000
    server.add("GET", "/bulk/big", multipart_response([payload], "application/octet-stream"))
    got = list(getattr(make_client(server), method)(server.url + "/bulk/big"))
    assert got == [payload] and type(got[0]) is bytes


def test_retrieve_frames_of_a_real_instance(server: RecordingServer) -> None:
    ds = dicom_data.make_instance(STUDY, SERIES, SOP, frames=3, rows=8, columns=8)
    expected = [dicom_data.frame_bytes(ds, 1), dicom_data.frame_bytes(ds, 3)]
    server.add("GET", None, multipart_response(expected, "application/octet-stream"))
    assert make_client(server).retrieve_instance_frames(STUDY, SERIES, SOP, (1, 3)) == expected


@pytest.mark.parametrize("frames", [(1, 3), range(1, 4, 2)], ids=["tuple", "range"])
def test_frame_numbers_as_any_sequence(server: RecordingServer, frames: Any) -> None:
    server.add("GET", None, multipart_response([b"1", b"3"], "application/octet-stream"))
    assert make_client(server).retrieve_instance_frames(STUDY, SERIES, SOP, frames) == [b"1", b"3"]
    assert server.last.path == PREFIX + FRAMES_PATH


def test_frame_numbers_as_an_iterator(server: RecordingServer) -> None:
    """An iterator of frame numbers either works or is refused before anything is sent."""
    server.add("GET", None, multipart_response([b"1", b"3"], "application/octet-stream"))
    client = make_client(server)
    try:
        frames = client.retrieve_instance_frames(STUDY, SERIES, SOP, iter([1, 3]))
    except TypeError:
        assert server.requests == []
    else:
        assert frames == [b"1", b"3"]
        assert server.last.path == PREFIX + FRAMES_PATH


@pytest.mark.parametrize(
    "media_types, accept",
    [
        (("image/jpeg",), 'multipart/related; type="image/jpeg"'),
        (
            (("image/jp2", "1.2.840.10008.1.2.4.90"),),
            'multipart/related; type="image/jp2"; transfer-syntax=1.2.840.10008.1.2.4.90',
        ),
        (("image/*",), 'multipart/related; type="image/*"'),
        (
            ("image/jpeg", "image/jp2"),
            'multipart/related; type="image/jpeg", multipart/related; type="image/jp2"',
        ),
        (
            (("image/jpeg", "1.2.840.10008.1.2.4.50"), "application/octet-stream"),
            'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.50, '
            'multipart/related; type="application/octet-stream"',
        ),
        (
            (("application/octet-stream", "*"),),
            'multipart/related; type="application/octet-stream"; transfer-syntax=*',
        ),
    ],
)
def test_retrieve_frames_media_types(
    server: RecordingServer, media_types: tuple, accept: str
) -> None:
    server.add("GET", None, multipart_response([b"\xff\xd8", b"\xff\xd9"], "image/jpeg"))
    frames = make_client(server).retrieve_instance_frames(
        STUDY, SERIES, SOP, [1, 3], media_types=media_types
    )
    assert frames == [b"\xff\xd8", b"\xff\xd9"]
    check_request(server.last, "GET", PREFIX + FRAMES_PATH, accept=accept)


@pytest.mark.parametrize("method", ["retrieve_instance_frames", "iter_instance_frames"])
def test_fewer_frames_than_asked_raise(server: RecordingServer, method: str) -> None:
    server.add("GET", None, multipart_response([b"only one"], "application/octet-stream"))
    with pytest.raises(MultipartError):
        list(getattr(make_client(server), method)(STUDY, SERIES, SOP, [1, 2, 3]))


def test_more_frames_than_asked_raise(server: RecordingServer) -> None:
    server.add("GET", None, multipart_response([b"a", b"b", b"c"], "application/octet-stream"))
    with pytest.raises(MultipartError):
        make_client(server).retrieve_instance_frames(STUDY, SERIES, SOP, [1, 2])


def test_truncated_frames_answer_raises(server: RecordingServer) -> None:
    response = multipart_response([b"a" * 100, b"b" * 100], "application/octet-stream")
    response.body = response.payload()[:150]
    server.add("GET", None, response)
    with pytest.raises((MultipartError, dicomweb_client.TransportError)):
        make_client(server).retrieve_instance_frames(STUDY, SERIES, SOP, [1, 2])


NO_BOUNDARY = 'multipart/related; type="application/octet-stream"'


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
@pytest.mark.parametrize("method", ["retrieve_instance_frames", "iter_instance_frames"])
def test_multipart_answer_without_boundary_is_split_at_the_boundary_of_its_body(
    server: RecordingServer, method: str, chunked: bool
) -> None:
    frames = [b"frame one" * 300, b"frame two \r\n--not-it"]
    body = multipart_body(frames, "b0undary-in-the-body", "application/octet-stream")
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)] if chunked else body
    server.add("GET", None, Response(body=pieces, content_type=NO_BOUNDARY, chunked=chunked))
    result = getattr(make_client(server), method)(STUDY, SERIES, SOP, [1, 2])
    assert list(result) == frames


@pytest.mark.parametrize("content_type", [NO_BOUNDARY, "multipart/related"])
def test_multipart_answer_without_any_boundary_is_the_single_part(
    server: RecordingServer, content_type: str
) -> None:
    """As the established package does: the body is returned as the one part."""
    frame = b"\x00\x01--raw frame\r\nwith lines" * 100
    server.add("GET", None, Response(body=frame, content_type=content_type))
    client = make_client(server)
    assert client.retrieve_instance_frames(STUDY, SERIES, SOP, [1]) == [frame]
    assert client.retrieve_bulkdata(server.url + "/bulk/1") == [frame]


def test_multipart_answer_with_an_invalid_boundary_still_raises(server: RecordingServer) -> None:
    server.add("GET", None, Response(body=b"x", content_type=NO_BOUNDARY + '; boundary=""'))
    with pytest.raises(MultipartError):
        make_client(server).retrieve_instance_frames(STUDY, SERIES, SOP, [1])


def test_frames_additional_params(server: RecordingServer) -> None:
    server.add("GET", None, multipart_response([b"a"], "application/octet-stream"))
    make_client(server).retrieve_instance_frames(
        STUDY, SERIES, SOP, [2], additional_params={"x": "1"}
    )
    check_request(
        server.last, "GET", PREFIX + INSTANCE_PATH + "/frames/2", {"x": ["1"]}, accept=ACCEPT_OCTETS
    )


# -- WADO-RS: bulk data ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["retrieve_bulkdata", "iter_bulkdata"])
def test_bulkdata_absolute_url(server: RecordingServer, method: str) -> None:
    server.add(
        "GET",
        "/elsewhere/bulk/abc",
        multipart_response([b"bulk bytes"], "application/octet-stream"),
    )
    url = server.url + "/elsewhere/bulk/abc?token=t1"
    assert list(getattr(make_client(server), method)(url)) == [b"bulk bytes"]
    check_request(
        server.last, "GET", "/elsewhere/bulk/abc", {"token": ["t1"]}, accept=ACCEPT_OCTETS
    )


def test_bulkdata_relative_url(server: RecordingServer) -> None:
    relative = f"studies/{STUDY}/series/{SERIES}/instances/{SOP}/bulk/7FE00010"
    server.add(
        "GET", f"{PREFIX}/{relative}", multipart_response([b"pixels"], "application/octet-stream")
    )
    assert make_client(server).retrieve_bulkdata(relative) == [b"pixels"]
    check_request(server.last, "GET", f"{PREFIX}/{relative}", accept=ACCEPT_OCTETS)


def test_bulkdata_byte_range(server: RecordingServer) -> None:
    server.add("GET", None, multipart_response([b"x" * 100], "application/octet-stream"))
    result = make_client(server).retrieve_bulkdata(server.url + "/bulk/1", byte_range=(0, 99))
    assert result == [b"x" * 100]
    assert server.last.header("Range") == "bytes=0-99"
    assert server.last.header("Accept") == ACCEPT_OCTETS


def test_bulkdata_without_range_sends_no_range(server: RecordingServer) -> None:
    server.add("GET", None, multipart_response([b"x"], "application/octet-stream"))
    make_client(server).retrieve_bulkdata(server.url + "/bulk/1")
    assert server.last.header("Range") is None


def test_bulkdata_single_part_answer_is_accepted(server: RecordingServer) -> None:
    server.add("GET", None, Response(body=b"\x00\x01raw", content_type="application/octet-stream"))
    assert make_client(server).retrieve_bulkdata(server.url + "/bulk/1") == [b"\x00\x01raw"]


def test_bulkdata_single_part_of_another_type_raises(server: RecordingServer) -> None:
    server.add("GET", None, Response(body=b"<html>", content_type="text/html"))
    with pytest.raises(MultipartError):
        make_client(server).retrieve_bulkdata(server.url + "/bulk/1")


def test_bulkdata_media_types(server: RecordingServer) -> None:
    server.add("GET", None, multipart_response([b"\xff\xd8"], "image/jpeg"))
    result = make_client(server).retrieve_bulkdata(
        server.url + "/bulk/1", media_types=("image/jpeg",)
    )
    assert result == [b"\xff\xd8"]
    assert server.last.header("Accept") == 'multipart/related; type="image/jpeg"'


# -- WADO-RS: rendered and thumbnails ----------------------------------------------------

IMAGE = b"\xff\xd8\xff\xe0 a tiny jpeg \xff\xd9"

RENDERED_CASES = [
    ("retrieve_instance_rendered", (STUDY, SERIES, SOP), INSTANCE_PATH + "/rendered"),
    ("retrieve_series_rendered", (STUDY, SERIES), SERIES_PATH + "/rendered"),
    (
        "retrieve_instance_frames_rendered",
        (STUDY, SERIES, SOP, [1]),
        INSTANCE_PATH + "/frames/1/rendered",
    ),
    (
        "retrieve_instance_frames_rendered",
        (STUDY, SERIES, SOP, [2, 5]),
        INSTANCE_PATH + "/frames/2,5/rendered",
    ),
    ("retrieve_study_thumbnail", (STUDY,), STUDY_PATH + "/thumbnail"),
    ("retrieve_series_thumbnail", (STUDY, SERIES), SERIES_PATH + "/thumbnail"),
    ("retrieve_instance_thumbnail", (STUDY, SERIES, SOP), INSTANCE_PATH + "/thumbnail"),
    (
        "retrieve_instance_frames_thumbnail",
        (STUDY, SERIES, SOP, [3]),
        INSTANCE_PATH + "/frames/3/thumbnail",
    ),
]


@pytest.mark.parametrize("method, args, path", RENDERED_CASES)
def test_rendered_default(server: RecordingServer, method: str, args: tuple, path: str) -> None:
    server.add("GET", PREFIX + path, Response(body=IMAGE, content_type="image/jpeg"))
    assert getattr(make_client(server), method)(*args) == IMAGE
    check_request(server.last, "GET", PREFIX + path, accept="image/jpeg")


@pytest.mark.parametrize("method, args, path", RENDERED_CASES)
def test_rendered_params_and_media_types(
    server: RecordingServer, method: str, args: tuple, path: str
) -> None:
    server.add("GET", PREFIX + path, Response(body=b"png", content_type="image/png"))
    result = getattr(make_client(server), method)(
        *args, media_types=("image/png", "image/jpeg"), params={"quality": 95, "viewport": "64,64"}
    )
    assert result == b"png"
    check_request(
        server.last,
        "GET",
        PREFIX + path,
        {"quality": ["95"], "viewport": ["64,64"]},
        accept="image/png, image/jpeg",
    )


@pytest.mark.parametrize("media_type", ["application/pdf", "video/mp4", "text/html"])
def test_rendered_instance_other_documented_media_types(
    server: RecordingServer, media_type: str
) -> None:
    server.add("GET", None, Response(body=b"doc", content_type=media_type))
    client = make_client(server)
    assert (
        client.retrieve_instance_rendered(STUDY, SERIES, SOP, media_types=(media_type,)) == b"doc"
    )
    assert server.last.header("Accept") == media_type


# -- STOW-RS -----------------------------------------------------------------------------


def store_report(server: RecordingServer, uids: list[str], failed: list[str] = ()) -> dict:
    report: dict = {"00081190": {"vr": "UR", "Value": [f"{server.url}{PREFIX}{STUDY_PATH}"]}}
    if uids:
        report["00081199"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
                    "00081155": {"vr": "UI", "Value": [uid]},
                }
                for uid in uids
            ],
        }
    if failed:
        report["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
                    "00081155": {"vr": "UI", "Value": [uid]},
                    "00081197": {"vr": "US", "Value": [272]},
                }
                for uid in failed
            ],
        }
    return report


def check_store_request(request: RecordedRequest, path: str) -> None:
    assert request.method == "POST"
    assert request.path == path
    assert request.query == {}
    assert request.header("Accept") == DICOM_JSON
    content_type = request.header("Content-Type") or ""
    header = Message()
    header["Content-Type"] = content_type
    assert header.get_content_type() == "multipart/related"
    assert header.get_param("type") == "application/dicom"
    assert header.get_param("boundary")
    assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')


@pytest.mark.parametrize("study_uid, path", [(None, "/studies"), (STUDY, STUDY_PATH)])
def test_store_datasets(
    server: RecordingServer, instances: list[Dataset], study_uid: str | None, path: str
) -> None:
    uids = [ds.SOPInstanceUID for ds in instances]
    server.add("POST", PREFIX + path, json_response(store_report(server, uids)))
    result = make_client(server).store_instances(instances, study_instance_uid=study_uid)
    check_store_request(server.last, PREFIX + path)
    sent = stored_datasets(server.last)
    assert [ds.SOPInstanceUID for ds in sent] == uids
    assert [ds.PixelData for ds in sent] == [ds.PixelData for ds in instances]
    assert isinstance(result, Dataset)
    assert [item.ReferencedSOPInstanceUID for item in result.ReferencedSOPSequence] == uids
    assert result.RetrieveURL == f"{server.url}{PREFIX}{STUDY_PATH}"


def test_store_paths_bytes_and_file_objects(
    server: RecordingServer, instances: list[Dataset], tmp_path
) -> None:
    extra = dicom_data.make_instance(STUDY, rows=4, columns=4)
    path = dicom_data.write_files([instances[0]], tmp_path)[0]
    parts = [
        path,
        str(path),
        dicom_data.to_bytes(instances[1]),
        io.BytesIO(dicom_data.to_bytes(instances[2])),
        extra,
    ]
    server.add("POST", None, json_response({}))
    make_client(server).store_instances(parts)
    check_store_request(server.last, PREFIX + "/studies")
    sent = stored_datasets(server.last)
    assert [ds.SOPInstanceUID for ds in sent] == [
        instances[0].SOPInstanceUID,
        instances[0].SOPInstanceUID,
        instances[1].SOPInstanceUID,
        instances[2].SOPInstanceUID,
        extra.SOPInstanceUID,
    ]


def test_store_bytes_body_has_exact_length(
    server: RecordingServer, instances: list[Dataset]
) -> None:
    server.add("POST", None, json_response({}))
    make_client(server, chunk_size=100).store_instances(
        [dicom_data.to_bytes(ds) for ds in instances]
    )
    request = server.last
    assert request.header("Content-Length") == str(len(request.body))
    assert [ds.SOPInstanceUID for ds in stored_datasets(request)] == [
        ds.SOPInstanceUID for ds in instances
    ]


def test_store_additional_params(server: RecordingServer, instances: list[Dataset]) -> None:
    server.add("POST", None, json_response({}))
    make_client(server).store_instances(instances[:1], additional_params={"x": "y"})
    assert server.last.query == {"x": ["y"]}


def test_store_empty_answer_gives_empty_dataset(
    server: RecordingServer, instances: list[Dataset]
) -> None:
    server.add("POST", None, Response(status=200))
    result = make_client(server).store_instances(instances[:1])
    assert isinstance(result, Dataset)
    assert len(result) == 0


def test_store_conflict_raises_with_server_message(
    server: RecordingServer, instances: list[Dataset]
) -> None:
    message = "Conflict: none of the instances could be stored"
    server.add("POST", None, Response(status=409, body=message.encode(), content_type="text/plain"))
    with pytest.raises(HTTPError) as caught:
        make_client(server).store_instances(instances)
    assert caught.value.status_code == 409
    assert message in str(caught.value)
    assert "409" in str(caught.value)


def test_store_failed_instances_log_a_warning(
    server: RecordingServer, instances: list[Dataset], caplog: pytest.LogCaptureFixture
) -> None:
    uids = [ds.SOPInstanceUID for ds in instances]
    server.add(
        "POST", None, json_response(store_report(server, uids[:2], failed=uids[2:]), status=202)
    )
    caplog.set_level(logging.WARNING, logger="dicomweb_client")
    result = make_client(server).store_instances(instances)
    assert [item.ReferencedSOPInstanceUID for item in result.FailedSOPSequence] == uids[2:]
    assert result.FailedSOPSequence[0].FailureReason == 272
    warnings = [
        r
        for r in caplog.records
        if r.name.startswith("dicomweb_client") and r.levelno == logging.WARNING
    ]
    assert warnings, "a refused instance must be reported as a warning"


def test_store_without_failures_logs_no_warning(
    server: RecordingServer, instances: list[Dataset], caplog: pytest.LogCaptureFixture
) -> None:
    uids = [ds.SOPInstanceUID for ds in instances]
    server.add("POST", None, json_response(store_report(server, uids)))
    caplog.set_level(logging.WARNING, logger="dicomweb_client")
    make_client(server).store_instances(instances)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_store_is_retried_with_the_whole_body(
    server: RecordingServer, instances: list[Dataset]
) -> None:
    server.queue(Response(status=503), json_response({}))
    make_client(server).store_instances(instances)
    assert len(server.requests) == 2
    first, second = server.requests
    assert first.body == second.body
    assert [ds.SOPInstanceUID for ds in stored_datasets(second)] == [
        ds.SOPInstanceUID for ds in instances
    ]


# -- deletion --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, args, path",
    [
        ("delete_study", (STUDY,), STUDY_PATH),
        ("delete_series", (STUDY, SERIES), SERIES_PATH),
        ("delete_instance", (STUDY, SERIES, SOP), INSTANCE_PATH),
    ],
)
@pytest.mark.parametrize("status", [200, 204])
def test_delete(server: RecordingServer, method: str, args: tuple, path: str, status: int) -> None:
    server.add("DELETE", PREFIX + path, Response(status=status))
    assert getattr(make_client(server), method)(*args) is None
    assert len(server.requests) == 1
    check_request(server.last, "DELETE", PREFIX + path)


def test_delete_additional_params(server: RecordingServer) -> None:
    server.add("DELETE", None, Response(status=204))
    make_client(server).delete_study(STUDY, additional_params={"reject": "true"})
    check_request(server.last, "DELETE", PREFIX + STUDY_PATH, {"reject": ["true"]})


def test_delete_failure_raises(server: RecordingServer) -> None:
    server.add(
        "DELETE",
        None,
        Response(status=405, body=b"DELETE is not allowed here", content_type="text/plain"),
    )
    with pytest.raises(HTTPError) as caught:
        make_client(server).delete_series(STUDY, SERIES)
    assert caught.value.status_code == 405
    assert "DELETE is not allowed here" in str(caught.value)


# -- service URL prefixes, headers, callback ---------------------------------------------


def test_url_prefixes_are_inserted_after_the_base_url(server: RecordingServer) -> None:
    server.add(None, None, universal_handler)
    client = make_client(
        server,
        qido_url_prefix="qidors",
        wado_url_prefix="wadors",
        stow_url_prefix="stowrs",
        delete_url_prefix="deleters",
    )
    every_method_call(client, server)
    paths = [(r.method, r.path) for r in server.requests]
    bulk = ("GET", "/bulk/1")
    expected = [
        ("GET", f"{PREFIX}/qidors/studies"),
        ("GET", f"{PREFIX}/qidors{STUDY_PATH}/series"),
        ("GET", f"{PREFIX}/qidors{SERIES_PATH}/instances"),
        ("GET", f"{PREFIX}/wadors{STUDY_PATH}"),
        ("GET", f"{PREFIX}/wadors{STUDY_PATH}"),
        ("GET", f"{PREFIX}/wadors{SERIES_PATH}"),
        ("GET", f"{PREFIX}/wadors{SERIES_PATH}"),
        ("GET", f"{PREFIX}/wadors{INSTANCE_PATH}"),
        ("GET", f"{PREFIX}/wadors{STUDY_PATH}/metadata"),
        ("GET", f"{PREFIX}/wadors{SERIES_PATH}/metadata"),
        ("GET", f"{PREFIX}/wadors{INSTANCE_PATH}/metadata"),
        ("GET", f"{PREFIX}/wadors{INSTANCE_PATH}/frames/1"),
        ("GET", f"{PREFIX}/wadors{INSTANCE_PATH}/frames/1"),
        bulk,
        bulk,
        ("GET", f"{PREFIX}/wadors{INSTANCE_PATH}/rendered"),
        ("GET", f"{PREFIX}/wadors{SERIES_PATH}/rendered"),
        ("GET", f"{PREFIX}/wadors{INSTANCE_PATH}/frames/1/rendered"),
        ("GET", f"{PREFIX}/wadors{STUDY_PATH}/thumbnail"),
        ("GET", f"{PREFIX}/wadors{SERIES_PATH}/thumbnail"),
        ("GET", f"{PREFIX}/wadors{INSTANCE_PATH}/thumbnail"),
        ("GET", f"{PREFIX}/wadors{INSTANCE_PATH}/frames/1/thumbnail"),
        ("POST", f"{PREFIX}/stowrs/studies"),
        ("DELETE", f"{PREFIX}/deleters{STUDY_PATH}"),
        ("DELETE", f"{PREFIX}/deleters{SERIES_PATH}"),
        ("DELETE", f"{PREFIX}/deleters{INSTANCE_PATH}"),
    ]
    assert paths == expected


def test_no_prefix_and_no_base_path(server: RecordingServer) -> None:
    server.add(None, None, universal_handler)
    client = make_client(server, path="")
    client.search_for_studies()
    client.retrieve_study_metadata(STUDY)
    client.delete_study(STUDY)
    assert [r.path for r in server.requests] == ["/studies", STUDY_PATH + "/metadata", STUDY_PATH]


def test_stow_prefix_with_study(server: RecordingServer, instances: list[Dataset]) -> None:
    server.add(None, None, universal_handler)
    make_client(server, stow_url_prefix="stowrs").store_instances(instances, STUDY)
    assert server.last.path == f"{PREFIX}/stowrs{STUDY_PATH}"


def test_headers_are_sent_with_every_request(server: RecordingServer) -> None:
    server.add(None, None, universal_handler)
    headers = {"Authorization": "Bearer token-123", "X-Request-Source": "tests"}
    client = make_client(server, headers=headers)
    every_method_call(client, server)
    assert len(server.requests) == EVERY_METHOD_COUNT
    for request in server.requests:
        assert request.header("Authorization") == "Bearer token-123", request.path
        assert request.header("X-Request-Source") == "tests", request.path


def test_callback_sees_every_response(server: RecordingServer) -> None:
    server.add(None, None, universal_handler)
    seen: list[Any] = []
    client = make_client(server, callback=seen.append)
    every_method_call(client, server)
    assert len(seen) == EVERY_METHOD_COUNT
    assert [response.status_code for response in seen[-3:]] == [204, 204, 204]
    assert [response.url.split("?")[0] for response in seen] == [
        server.url + r.path for r in server.requests
    ]


def test_callback_sees_error_responses(server: RecordingServer) -> None:
    server.add(None, None, Response(status=404, body=b"gone", content_type="text/plain"))
    seen: list[Any] = []
    client = make_client(server, callback=seen.append)
    with pytest.raises(HTTPError):
        client.retrieve_study_metadata(STUDY)
    assert [response.status_code for response in seen] == [404]


def test_client_attributes(server: RecordingServer) -> None:
    client = make_client(server)
    assert client.base_url == server.url + PREFIX
    assert client.scheme == client.protocol == "http"
    assert client.host == "127.0.0.1"
    assert client.port == server.port
    assert client.url_prefix == PREFIX


# -- compressed answers ------------------------------------------------------------------

JSON_CALLS = [
    ("search_for_studies", ()),
    ("search_for_instances", (STUDY,)),
    ("retrieve_series_metadata", (STUDY, SERIES)),
]


@pytest.mark.parametrize("method, args", JSON_CALLS)
def test_json_answers_may_come_compressed(
    server: RecordingServer, method: str, args: tuple
) -> None:
    items = [uid_item(f"1.2.3.{n}") for n in range(200)]
    server.add(
        "GET",
        None,
        Response(
            body=gzip.compress(json.dumps(items).encode()),
            content_type=DICOM_JSON,
            headers={"Content-Encoding": "gzip"},
        ),
    )
    assert getattr(make_client(server), method)(*args) == items
    assert server.last.header("Accept-Encoding") == "gzip, deflate"


def test_a_client_accept_encoding_header_is_kept(server: RecordingServer) -> None:
    server.add("GET", None, json_response([]))
    make_client(server, headers={"Accept-Encoding": "identity"}).search_for_studies()
    assert server.last.headers.get_all("Accept-Encoding") == ["identity"]


@pytest.mark.parametrize("method", ["retrieve_instance_frames", "iter_instance_frames"])
def test_binary_answers_are_asked_for_uncompressed(server: RecordingServer, method: str) -> None:
    server.add("GET", None, multipart_response([b"one", b"three"], "application/octet-stream"))
    list(getattr(make_client(server), method)(STUDY, SERIES, SOP, [1, 3]))
    assert server.last.header("Accept-Encoding") == "identity"


@pytest.mark.parametrize("chunk_size", [1, 100, 10**6])
@pytest.mark.parametrize("method", ["retrieve_instance_frames", "iter_instance_frames"])
def test_a_compressed_multipart_answer_is_decoded(
    server: RecordingServer, method: str, chunk_size: int
) -> None:
    # servers compress whatever they like when the client's headers allow it
    frames = [bytes(range(256)) * 40 + b"\r\n--test-boundary", b"frame \r\n three"]
    answer = multipart_response(frames, "application/octet-stream")
    body = gzip.compress(answer.payload())
    answer.body = [body[start : start + 97] for start in range(0, len(body), 97)]
    answer.headers = {"Content-Encoding": "gzip"}
    server.add("GET", None, answer)
    client = make_client(server, headers={"Accept-Encoding": "gzip"})
    client.set_chunk_size(chunk_size)
    assert list(getattr(client, method)(STUDY, SERIES, SOP, [1, 3])) == frames


def test_a_truncated_compressed_multipart_answer_raises(server: RecordingServer) -> None:
    answer = multipart_response([b"one" * 1000, b"two" * 1000], "application/octet-stream")
    answer.body = gzip.compress(answer.payload())[:-30]
    answer.headers = {"Content-Encoding": "gzip"}
    server.add("GET", None, answer)
    with pytest.raises(dicomweb_client.ContentDecodingError, match="truncated"):
        make_client(server).retrieve_instance_frames(STUDY, SERIES, SOP, [1, 2])


# -- closing ---------------------------------------------------------------------------


def test_with_statement_closes_the_connections_of_its_own_session(server: RecordingServer) -> None:
    server.add("GET", None, json_response([]))
    with make_client(server) as client:
        client.search_for_studies()
        client.search_for_studies()
    client.search_for_studies()  # still usable: a new connection
    first, second, third = [request.connection for request in server.requests]
    assert first == second != third


def test_close_leaves_a_session_passed_in_open(server: RecordingServer) -> None:
    server.add("GET", None, json_response([]))
    session = dicomweb_client.create_session()
    client = make_client(server, session=session)
    client.search_for_studies()
    client.close()
    client.search_for_studies()
    first, second = [request.connection for request in server.requests]
    assert first == second
    session.close()


# -- pickling ---------------------------------------------------------------------------


def test_a_pickled_client_keeps_its_settings_and_works(server: RecordingServer) -> None:
    server.add("GET", None, json_response([uid_item(STUDY)]))
    session = dicomweb_client.create_session_from_user_pass("ann", "pw")
    session.cookies.set("pinned", "backend-2")
    client = make_client(
        server, session=session, headers={"X-Site": "north"}, qido_url_prefix="qido", timeout=7
    )
    client.search_for_studies()  # a pooled connection, remembered heads: not pickled
    copy = pickle.loads(pickle.dumps(client))
    assert copy.search_for_studies() == [uid_item(STUDY)]
    request = server.last
    assert request.path == f"{PREFIX}/qido/studies"
    assert request.header("X-Site") == "north" and request.header("Cookie") == "pinned=backend-2"
    assert request.header("Authorization", "").startswith("Basic ")
    assert copy._timeout == 7 and copy._retry == client._retry


def test_a_client_goes_to_a_spawned_worker_process(server: RecordingServer) -> None:
    # how data loaders of machine learning frameworks hand a dataset object to workers
    server.add("GET", None, json_response([uid_item(STUDY)]))
    client = make_client(server, headers={"X-Worker": "yes"})
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(search_in_this_process, client).result(timeout=60) == [uid_item(STUDY)]
    assert server.last.header("X-Worker") == "yes"


# -- timeout, chunk size, retries --------------------------------------------------------


@pytest.mark.parametrize("timeout", [0.3, (5, 0.3)])
def test_timeout_while_waiting_for_the_answer(server: RecordingServer, timeout: Any) -> None:
    server.add(None, None, Response(body=b"[]", content_type=DICOM_JSON, delay=1.5))
    client = make_client(server, timeout=timeout)
    started = time.monotonic()
    with pytest.raises(dicomweb_client.Timeout):
        client.search_for_studies()
    assert time.monotonic() - started < 1.2
    assert len(server.requests) == 1


def test_generous_timeout_waits_for_a_slow_answer(server: RecordingServer) -> None:
    server.add(None, None, Response(body=b"[]", content_type=DICOM_JSON, delay=0.3))
    assert make_client(server, timeout=5).search_for_studies() == []


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5, "100", True, None])
def test_chunk_size_validation(server: RecordingServer, chunk_size: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        DICOMwebClient(server.url, chunk_size=chunk_size)
    client = DICOMwebClient(server.url)
    with pytest.raises((ValueError, TypeError)):
        client.set_chunk_size(chunk_size)
    assert server.requests == []


@pytest.mark.parametrize("chunk_size", [0, -1])
def test_non_positive_chunk_size_is_a_value_error(server: RecordingServer, chunk_size: int) -> None:
    with pytest.raises(ValueError):
        DICOMwebClient(server.url, chunk_size=chunk_size)


def test_small_chunk_size_store_round_trips(
    server: RecordingServer, instances: list[Dataset]
) -> None:
    server.add(None, None, json_response({}))
    client = make_client(server, chunk_size=1000)
    client.set_chunk_size(7)
    client.store_instances(instances)
    assert [ds.SOPInstanceUID for ds in stored_datasets(server.last)] == [
        ds.SOPInstanceUID for ds in instances
    ]


def test_retry_disabled_raises_at_once(server: RecordingServer) -> None:
    server.queue(Response(status=503, body=b"busy"), json_response([]))
    client = make_client(server)
    client.set_http_retry_params(retry=False)
    with pytest.raises(HTTPError) as caught:
        client.search_for_studies()
    assert caught.value.status_code == 503
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [429, 408, 503, 504])
def test_retry_then_success(server: RecordingServer, status: int) -> None:
    server.queue(Response(status=status), json_response([uid_item(STUDY)]))
    client = DICOMwebClient(server.url)
    client.set_http_retry_params(wait_exponential_multiplier=1)
    assert client.search_for_studies() == [uid_item(STUDY)]
    assert len(server.requests) == 2


def test_retry_of_a_streamed_retrieve(server: RecordingServer, instances: list[Dataset]) -> None:
    server.queue(Response(status=503), multipart_response([dicom_data.to_bytes(instances[0])]))
    assert len(make_client(server).retrieve_study(STUDY)) == 1
    assert len(server.requests) == 2


def test_retries_stop_after_max_attempts(server: RecordingServer) -> None:
    server.queue(*[Response(status=503) for _ in range(3)], json_response([]))
    client = make_client(server)
    client.set_http_retry_params(max_attempts=3, wait_exponential_multiplier=1)
    with pytest.raises(HTTPError) as caught:
        client.search_for_studies()
    assert caught.value.status_code == 503
    assert len(server.requests) == 3


def test_retriable_error_codes_are_honoured(server: RecordingServer) -> None:
    client = make_client(server)
    client.set_http_retry_params(
        wait_exponential_multiplier=1, retriable_error_codes=(HTTPStatus.TOO_MANY_REQUESTS,)
    )
    server.queue(Response(status=503), json_response([]))
    with pytest.raises(HTTPError):
        client.search_for_studies()
    assert len(server.requests) == 1
    server.reset()
    server.queue(Response(status=429), json_response([]))
    assert client.search_for_studies() == []
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [500, 502])
def test_default_retry_codes_are_the_documented_ones(server: RecordingServer, status: int) -> None:
    server.queue(Response(status=status, body=b"broken"), json_response([]))
    client = make_client(server)  # documented defaults, short waits
    with pytest.raises(HTTPError):
        client.search_for_studies()
    assert len(server.requests) == 1


def test_errors_are_not_retried(server: RecordingServer) -> None:
    server.queue(Response(status=400, body=b"bad"), json_response([]))
    with pytest.raises(HTTPError):
        make_client(server).search_for_studies()
    assert len(server.requests) == 1


def test_retry_params_validation(server: RecordingServer) -> None:
    client = make_client(server)
    with pytest.raises(ValueError):
        client.set_http_retry_params(max_attempts=0)
    with pytest.raises(ValueError):
        client.set_http_retry_params(wait_exponential_multiplier=-1)


# -- bad input is refused before anything is sent ----------------------------------------

UID_ARGUMENTS = {
    "search_for_series": (["study_instance_uid"], {}),
    "search_for_instances": (["study_instance_uid", "series_instance_uid"], {}),
    "retrieve_study": (["study_instance_uid"], {}),
    "iter_study": (["study_instance_uid"], {}),
    "retrieve_series": (["study_instance_uid", "series_instance_uid"], {}),
    "iter_series": (["study_instance_uid", "series_instance_uid"], {}),
    "retrieve_instance": (["study_instance_uid", "series_instance_uid", "sop_instance_uid"], {}),
    "retrieve_study_metadata": (["study_instance_uid"], {}),
    "retrieve_series_metadata": (["study_instance_uid", "series_instance_uid"], {}),
    "retrieve_instance_metadata": (
        ["study_instance_uid", "series_instance_uid", "sop_instance_uid"],
        {},
    ),
    "retrieve_instance_frames": (
        ["study_instance_uid", "series_instance_uid", "sop_instance_uid"],
        {"frame_numbers": [1]},
    ),
    "iter_instance_frames": (
        ["study_instance_uid", "series_instance_uid", "sop_instance_uid"],
        {"frame_numbers": [1]},
    ),
    "retrieve_instance_rendered": (
        ["study_instance_uid", "series_instance_uid", "sop_instance_uid"],
        {},
    ),
    "retrieve_series_rendered": (["study_instance_uid", "series_instance_uid"], {}),
    "retrieve_instance_frames_rendered": (
        ["study_instance_uid", "series_instance_uid", "sop_instance_uid"],
        {"frame_numbers": [1]},
    ),
    "retrieve_study_thumbnail": (["study_instance_uid"], {}),
    "retrieve_series_thumbnail": (["study_instance_uid", "series_instance_uid"], {}),
    "retrieve_instance_thumbnail": (
        ["study_instance_uid", "series_instance_uid", "sop_instance_uid"],
        {},
    ),
    "retrieve_instance_frames_thumbnail": (
        ["study_instance_uid", "series_instance_uid", "sop_instance_uid"],
        {"frame_numbers": [1]},
    ),
    "store_instances": (["study_instance_uid"], {"datasets": [b"not read"]}),
    "delete_study": (["study_instance_uid"], {}),
    "delete_series": (["study_instance_uid", "series_instance_uid"], {}),
    "delete_instance": (["study_instance_uid", "series_instance_uid", "sop_instance_uid"], {}),
}

VALID = {"study_instance_uid": STUDY, "series_instance_uid": SERIES, "sop_instance_uid": SOP}

TOO_LONG_UID = "1." * 32 + "1"
assert len(TOO_LONG_UID) == 65
BAD_UIDS = ["1.2.abc", "../etc", "", TOO_LONG_UID, "1.2.3/4", "1.2 3", "1.2.3?x=1"]


def test_a_folder_to_store_is_refused_before_sending(server: RecordingServer, tmp_path) -> None:
    with pytest.raises(ValueError, match="is a folder: pass the paths of the files"):
        make_client(server).store_instances([tmp_path])
    assert server.requests == []


def test_a_dataset_without_transfer_syntax_is_refused_before_sending(
    server: RecordingServer,
) -> None:
    ds = dicom_data.make_instance()
    bare = Dataset()
    bare.update(ds)  # the same elements, but no file meta information
    with pytest.raises(
        ValueError,
        match=f"dataset {ds.SOPInstanceUID} has no Transfer "
        f"Syntax UID.*file_meta.TransferSyntaxUID",
    ):
        make_client(server).store_instances([ds, bare])
    assert server.requests == []


def _uid_cases() -> list[Any]:
    cases = []
    for method, (names, extra) in UID_ARGUMENTS.items():
        for name in names:
            cases.append(pytest.param(method, names, extra, name, id=f"{method}-{name}"))
    return cases


UID_CASES = _uid_cases()


@pytest.mark.parametrize("bad", BAD_UIDS, ids=repr)
@pytest.mark.parametrize("method, names, extra, argument", UID_CASES)
def test_invalid_uid_is_refused(
    server: RecordingServer, method: str, names: list[str], extra: dict, argument: str, bad: str
) -> None:
    kwargs = {name: VALID[name] for name in names}
    kwargs[argument] = bad
    client = make_client(server)
    with pytest.raises(ValueError) as caught:
        exhaust(getattr(client, method)(**{**kwargs, **extra}))
    assert argument in str(caught.value)
    assert server.requests == []


@pytest.mark.parametrize("bad", BAD_UIDS, ids=repr)
def test_invalid_series_uid_without_study_is_refused(server: RecordingServer, bad: str) -> None:
    with pytest.raises(ValueError, match="series_instance_uid"):
        make_client(server).search_for_instances(series_instance_uid=bad)
    assert server.requests == []


def test_uid_of_64_characters_is_accepted(server: RecordingServer) -> None:
    uid = "1." * 31 + "12"
    assert len(uid) == 64
    server.add(None, None, json_response([]))
    make_client(server).retrieve_study_metadata(uid)
    assert server.last.path == f"{PREFIX}/studies/{uid}/metadata"


@pytest.mark.parametrize("method, names, extra, argument", UID_CASES)
def test_permissive_uid_accepts_nonconformant_uids(
    server: RecordingServer, method: str, names: list[str], extra: dict, argument: str
) -> None:
    server.add(None, None, universal_handler)
    kwargs = {name: VALID[name] for name in names}
    kwargs[argument] = "1.2.abc"
    if method == "store_instances":
        extra = {"datasets": [dicom_data.make_instance(rows=2, columns=2)]}
    client = make_client(server, permissive_uid=True)
    exhaust(getattr(client, method)(**{**kwargs, **extra}))
    assert len(server.requests) == 1
    assert "/1.2.abc" in server.last.path


@pytest.mark.parametrize("bad", ["a/b", "../etc", "", "1.2 3", "..", "user@host"])
@pytest.mark.parametrize("method, names, extra, argument", UID_CASES[:6] + UID_CASES[-3:])
def test_permissive_uid_still_refuses_unsafe_uids(
    server: RecordingServer, method: str, names: list[str], extra: dict, argument: str, bad: str
) -> None:
    kwargs = {name: VALID[name] for name in names}
    kwargs[argument] = bad
    client = make_client(server, permissive_uid=True)
    with pytest.raises(ValueError) as caught:
        exhaust(getattr(client, method)(**{**kwargs, **extra}))
    assert argument in str(caught.value)
    assert server.requests == []


FRAME_METHODS = [
    "retrieve_instance_frames",
    "iter_instance_frames",
    "retrieve_instance_frames_rendered",
    "retrieve_instance_frames_thumbnail",
]


@pytest.mark.parametrize("frames", [[0], [-1], [1, 0], [2, -3], []], ids=repr)
@pytest.mark.parametrize("method", FRAME_METHODS)
def test_non_positive_frame_numbers_are_refused(
    server: RecordingServer, method: str, frames: list[int]
) -> None:
    with pytest.raises(ValueError):
        exhaust(getattr(make_client(server), method)(STUDY, SERIES, SOP, frames))
    assert server.requests == []


@pytest.mark.parametrize("frames", [["a"], [1.0], [1, 2.5], [None], "1", 1], ids=repr)
@pytest.mark.parametrize("method", FRAME_METHODS)
def test_non_integer_frame_numbers_are_refused(
    server: RecordingServer, method: str, frames: Any
) -> None:
    with pytest.raises(TypeError):
        exhaust(getattr(make_client(server), method)(STUDY, SERIES, SOP, frames))
    assert server.requests == []


@pytest.mark.parametrize("method", FRAME_METHODS)
def test_frame_numbers_may_be_digit_strings(server: RecordingServer, method: str) -> None:
    """Frame numbers such as ``['1', '3']`` (from a command line, say) are sent as the
    numbers they spell, as by the established package."""
    server.add("GET", None, Response(status=404, body=b"none"))
    with pytest.raises(dicomweb_client.HTTPError):
        exhaust(getattr(make_client(server), method)(STUDY, SERIES, SOP, ["1", "3"]))
    assert server.last.path.split("/frames/")[1].startswith("1,3")


@pytest.mark.parametrize(
    "method", ["search_for_studies", "search_for_series", "search_for_instances"]
)
@pytest.mark.parametrize(
    "filters", [{"NotAKeyword": "x"}, {"PatientId": "x"}, {"0010002": "x"}], ids=repr
)
def test_unknown_search_filter_keyword_is_refused(
    server: RecordingServer, method: str, filters: dict
) -> None:
    with pytest.raises(ValueError):
        getattr(make_client(server), method)(search_filters=filters)
    assert server.requests == []


@pytest.mark.parametrize("kwargs", [{"limit": -1}, {"offset": -5}], ids=repr)
def test_negative_limit_or_offset_is_refused(server: RecordingServer, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make_client(server).search_for_studies(**kwargs)
    assert server.requests == []


UNSUPPORTED_MEDIA = [
    ("retrieve_study", (STUDY,), ("image/jpeg",)),
    ("iter_study", (STUDY,), ("application/octet-stream",)),
    ("retrieve_series", (STUDY, SERIES), ("image/jpeg",)),
    ("iter_series", (STUDY, SERIES), ("application/dicom+json",)),
    ("retrieve_instance", (STUDY, SERIES, SOP), ("image/png",)),
    ("retrieve_study", (STUDY,), (("application/dicom", "not-a-uid"),)),
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, [1]), ("application/pdf",)),
    ("iter_instance_frames", (STUDY, SERIES, SOP, [1]), ("application/pdf",)),
    (
        "retrieve_instance_frames",
        (STUDY, SERIES, SOP, [1]),
        (("image/jpeg", "1.2.840.10008.1.2.4.90"),),
    ),
    (
        "retrieve_instance_frames",
        (STUDY, SERIES, SOP, [1]),
        (("image/jp2", "1.2.840.10008.1.2.4.50"),),
    ),
    (
        "retrieve_instance_frames",
        (STUDY, SERIES, SOP, [1]),
        (("application/octet-stream", "1.2.840.10008.1.2.4.50"),),
    ),
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, [1]), ("application/dicom",)),
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, [1]), ("image/jpeg", "text/html")),
    ("retrieve_bulkdata", ("http://127.0.0.1:9/bulk",), ("text/html",)),
    ("iter_bulkdata", ("http://127.0.0.1:9/bulk",), ("application/pdf",)),
    ("retrieve_instance_frames_rendered", (STUDY, SERIES, SOP, [1]), ("text/html",)),
    ("retrieve_instance_frames_rendered", (STUDY, SERIES, SOP, [1]), ("application/pdf",)),
    ("retrieve_instance_rendered", (STUDY, SERIES, SOP), ("application/dicom",)),
    ("retrieve_series_rendered", (STUDY, SERIES), ("application/octet-stream",)),
    ("retrieve_study_thumbnail", (STUDY,), ("application/pdf",)),
    ("retrieve_instance_thumbnail", (STUDY, SERIES, SOP), ("text/html",)),
    ("retrieve_instance_frames_thumbnail", (STUDY, SERIES, SOP, [1]), ("video/mp4",)),
]


@pytest.mark.parametrize(
    "method, args, media_types",
    UNSUPPORTED_MEDIA,
    ids=[f"{m}-{t}" for m, _, t in UNSUPPORTED_MEDIA],
)
def test_unsupported_media_types_are_refused(
    server: RecordingServer, method: str, args: tuple, media_types: tuple
) -> None:
    with pytest.raises(ValueError):
        exhaust(getattr(make_client(server), method)(*args, media_types=media_types))
    assert server.requests == []


RENDERED_METHODS = [
    ("retrieve_series_rendered", (STUDY, SERIES)),
    ("retrieve_instance_rendered", (STUDY, SERIES, SOP)),
    ("retrieve_instance_frames_rendered", (STUDY, SERIES, SOP, [1])),
    ("retrieve_study_thumbnail", (STUDY,)),
]


@pytest.mark.parametrize(
    "media_types",
    [
        (("image/jpeg", "1.2.840.10008.1.2.4.50"),),
        (("image/jpeg",),),
        (("image/png", "1.2.840.10008.1.2.1"), "image/jpeg"),
    ],
    ids=["jpeg-with-syntax", "one-tuple", "pair-and-string"],
)
@pytest.mark.parametrize(
    "method, args", RENDERED_METHODS, ids=[method for method, _ in RENDERED_METHODS]
)
def test_rendered_media_types_with_a_transfer_syntax_raise_type_error(
    server: RecordingServer, method: str, args: tuple, media_types: tuple
) -> None:
    """TypeError, as the established package raises for a (media type, transfer
    syntax) pair where only media types apply."""
    with pytest.raises(TypeError):
        getattr(make_client(server), method)(*args, media_types=media_types)
    assert server.requests == []


def _bare_dataset(meta: dict | None, **elements: Any) -> Dataset:
    dataset = Dataset()
    dataset.PatientName = "Doe^Jane"
    for keyword, value in elements.items():
        setattr(dataset, keyword, value)
    if meta is not None:
        dataset.file_meta = pydicom.dataset.FileMetaDataset()
        for keyword, value in meta.items():
            setattr(dataset.file_meta, keyword, value)
    return dataset


@pytest.mark.parametrize(
    "syntax", [pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian]
)
def test_store_dataset_whose_meta_names_only_the_transfer_syntax(
    server: RecordingServer, syntax: str
) -> None:
    """With SOP Class and Instance UIDs the meta is completed into a Part 10 file;
    without them the dataset is sent as it is, as the established package sends it."""
    server.add("POST", None, json_response({}))
    complete = _bare_dataset(
        {"TransferSyntaxUID": syntax}, SOPClassUID=CT_IMAGE, SOPInstanceUID="1.2.3.4"
    )
    bare = _bare_dataset({"TransferSyntaxUID": syntax})
    make_client(server).store_instances([complete, bare])
    first, second = (
        payload
        for _, payload in split_multipart(
            server.last.body, server.last.header("Content-Type") or ""
        )
    )
    assert first[128:132] == b"DICM"
    part10 = pydicom.dcmread(io.BytesIO(first))
    assert part10.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert part10.file_meta.TransferSyntaxUID == syntax
    assert second.startswith(b"\x02\x00\x10\x00UI")  # the meta element, then the dataset
    sent = pydicom.dcmread(io.BytesIO(second), force=True)
    assert sent.PatientName == "Doe^Jane"
    assert sent.file_meta.TransferSyntaxUID == syntax


def test_store_dataset_without_meta_but_with_a_known_encoding(server: RecordingServer) -> None:
    server.add("POST", None, json_response({}))
    decoded = pydicom.dcmread(io.BytesIO(b"\x10\x00\x10\x00\x08\x00\x00\x00Doe^Jane"), force=True)
    assert "TransferSyntaxUID" not in decoded.file_meta
    make_client(server).store_instances([decoded])
    ((_, payload),) = split_multipart(server.last.body, server.last.header("Content-Type") or "")
    assert payload == b"\x10\x00\x10\x00\x08\x00\x00\x00Doe^Jane"


@pytest.mark.parametrize("meta", [None, {}], ids=["no-meta", "empty-meta"])
def test_store_refuses_a_dataset_whose_encoding_is_unknown(
    server: RecordingServer, meta: dict | None
) -> None:
    with pytest.raises(ValueError, match="Transfer Syntax UID"):
        make_client(server).store_instances(
            [_bare_dataset(meta, SOPClassUID=CT_IMAGE, SOPInstanceUID="1.2.3.4")]
        )
    assert server.requests == []


def test_store_refuses_a_single_dataset(server: RecordingServer) -> None:
    client = make_client(server)
    with pytest.raises(TypeError):
        client.store_instances(dicom_data.make_instance(rows=2, columns=2))
    assert server.requests == []


@pytest.mark.parametrize(
    "answer, expected",
    [
        (Response(status=200), 0),
        (Response(status=204), 0),
        (json_response({"00081198": {"vr": "SQ", "Value": [{}]}}, status=202), 1),
        (Response(status=200, body=b"stored nothing", content_type="text/plain"), 0),
    ],
    ids=["empty-200", "204", "202-report", "text"],
)
def test_store_of_no_instances_sends_a_request_without_parts(
    server: RecordingServer, answer: Response, expected: int
) -> None:
    """As in the established package: an empty list is posted all the same."""
    server.add("POST", None, answer)
    result = make_client(server).store_instances([])
    check_store_request(server.last, PREFIX + "/studies")
    boundary = Message()
    boundary["Content-Type"] = server.last.header("Content-Type") or ""
    assert server.last.body.strip() == f"--{boundary.get_param('boundary')}--".encode()
    assert server.last.header("Content-Length") == str(len(server.last.body))
    assert isinstance(result, Dataset)
    assert len(result) == expected


def test_store_of_no_instances_raises_the_servers_refusal(server: RecordingServer) -> None:
    server.add("POST", None, json_response({}, status=409))
    with pytest.raises(dicomweb_client.HTTPError) as error:
        make_client(server).store_instances(())
    assert error.value.status_code == 409


@pytest.mark.parametrize("name", ["qido", "wado", "stow", "delete"])
def test_empty_url_prefix_is_refused(server: RecordingServer, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name}_url_prefix"):
        dicomweb_client.DICOMwebClient(server.url, **{f"{name}_url_prefix": ""})
    client = dicomweb_client.DICOMwebClient(server.url, **{f"{name}_url_prefix": None})
    assert getattr(client, f"{name}_url_prefix") is None


@pytest.mark.parametrize("byte_range", [(5, 1), (-1, 10)], ids=repr)
def test_bad_byte_range_is_refused(server: RecordingServer, byte_range: tuple) -> None:
    with pytest.raises(ValueError):
        make_client(server).retrieve_bulkdata(server.url + "/bulk/1", byte_range=byte_range)
    assert server.requests == []


# -- HTTP errors -------------------------------------------------------------------------

ERROR_CALLS = [
    ("search_for_studies", (), "/studies"),
    ("retrieve_study", (STUDY,), STUDY_PATH),
    ("iter_series", (STUDY, SERIES), SERIES_PATH),
    ("retrieve_instance", (STUDY, SERIES, SOP), INSTANCE_PATH),
    ("retrieve_study_metadata", (STUDY,), STUDY_PATH + "/metadata"),
    ("retrieve_instance_frames", (STUDY, SERIES, SOP, [1]), INSTANCE_PATH + "/frames/1"),
    ("retrieve_instance_rendered", (STUDY, SERIES, SOP), INSTANCE_PATH + "/rendered"),
    ("retrieve_study_thumbnail", (STUDY,), STUDY_PATH + "/thumbnail"),
    ("delete_study", (STUDY,), STUDY_PATH),
]


@pytest.mark.parametrize("method, args, path", ERROR_CALLS)
def test_not_found_raises_http_error_with_details(
    server: RecordingServer, method: str, args: tuple, path: str
) -> None:
    text = "Study 1.2.3 is not known to this archive"
    server.add(None, None, Response(status=404, body=text.encode(), content_type="text/plain"))
    with pytest.raises(HTTPError) as caught:
        exhaust(getattr(make_client(server), method)(*args))
    error = caught.value
    message = str(error)
    assert "404" in message
    assert server.url + PREFIX + path in message
    assert text in message
    assert error.status_code == 404
    assert error.url.startswith(server.url + PREFIX + path)
    assert isinstance(error, dicomweb_client.RequestException)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "method, get_remaining",
    [("search_for_studies", False), ("search_for_series", True), ("search_for_instances", False)],
)
def test_a_404_for_a_whole_archive_search_says_the_url_is_likely_wrong(
    server: RecordingServer, method: str, get_remaining: bool
) -> None:
    server.add(
        None, None, Response(status=404, body=b"Unknown resource", content_type="text/plain")
    )
    client = make_client(server, path="")  # the server root, not its DICOMweb root
    with pytest.raises(HTTPError) as caught:
        getattr(client, method)(get_remaining=get_remaining)
    message = str(caught.value)
    assert caught.value.status_code == 404 and "Unknown resource" in message
    assert f"no DICOMweb search service answers at {server.url};" in message
    assert "/dicom-web" in message


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"<html><body>Welcome</body></html>", "not valid JSON"),
        (b'["a0c2e1f3-orthanc-id"]', "not a DICOM JSON array"),
    ],
)
def test_a_whole_archive_search_answered_with_other_json_says_the_url_is_likely_wrong(
    server: RecordingServer, body: bytes, problem: str
) -> None:
    server.add(None, None, Response(body=body, content_type="application/json"))
    with pytest.raises(ValueError, match=problem) as caught:
        make_client(server, path="").search_for_studies()
    assert "no DICOMweb search service answers at" in str(caught.value)


def test_a_404_for_a_search_within_a_study_has_no_url_hint(server: RecordingServer) -> None:
    server.add(None, None, Response(status=404, body=b"no such study", content_type="text/plain"))
    with pytest.raises(HTTPError) as caught:
        make_client(server).search_for_series(STUDY)
    assert "no DICOMweb search service" not in str(caught.value)


def test_bulkdata_not_found(server: RecordingServer) -> None:
    server.add(
        None, None, Response(status=404, body=b"no such bulk data", content_type="text/plain")
    )
    with pytest.raises(HTTPError) as caught:
        make_client(server).retrieve_bulkdata(server.url + "/bulk/9")
    assert "404" in str(caught.value)
    assert server.url + "/bulk/9" in str(caught.value)
    assert "no such bulk data" in str(caught.value)


def test_server_error_with_json_body(server: RecordingServer) -> None:
    server.add(
        None,
        None,
        Response(
            status=500, body=b'{"error": "database is down"}', content_type="application/json"
        ),
    )
    client = make_client(server)
    client.set_http_retry_params(retry=False)
    with pytest.raises(HTTPError) as caught:
        client.search_for_series(STUDY)
    assert caught.value.status_code == 500
    assert "database is down" in str(caught.value)


def test_invalid_json_answer_raises(server: RecordingServer) -> None:
    server.add(None, None, Response(body=b"<html>not json</html>", content_type=DICOM_JSON))
    with pytest.raises(ValueError):
        make_client(server).search_for_studies()


def test_stored_datasets_arrive_whole_whatever_their_sizes(make_server) -> None:
    # the sender reuses one encoding buffer from dataset to dataset: a small dataset after
    # a big one must not carry the big one's leftover bytes
    server = make_server()
    server.add("POST", "/studies", Response(body=b"{}", content_type="application/dicom+json"))
    datasets = [
        dicom_data.make_instance(rows=size, columns=size, seed=size) for size in (64, 8, 32, 8)
    ]
    client = dicomweb_client.DICOMwebClient(server.url)
    client.store_instances(datasets)
    request = server.last
    assert request.chunked
    boundary = request.header('Content-Type').split('boundary=')[1].encode()
    parts = [
        body
        for _, body in dicomweb_client.MultipartReader(io.BytesIO(request.body).read1, boundary)
    ]
    assert parts == [dicom_data.to_bytes(ds) for ds in datasets]


# -- behaviours matched to the established package (see also test_oracle.py) ----------------


def test_json_error_is_a_json_decode_error(server: RecordingServer) -> None:
    """An answer that is not JSON raises json's (and requests') JSONDecodeError."""
    import json

    import requests

    server.add("GET", None, Response(body=b"[{not json", content_type="application/dicom+json"))
    with pytest.raises(json.JSONDecodeError) as raised:
        make_client(server).search_for_series(STUDY)
    assert isinstance(raised.value, requests.exceptions.JSONDecodeError)
    assert isinstance(raised.value, dicomweb_client.JSONDecodeError)
    assert "not valid JSON" in str(raised.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.delete_study(None),
        lambda client: client.delete_series(STUDY, None),
        lambda client: client.delete_instance(STUDY, SERIES, None),
    ],
    ids=["study", "series", "instance"],
)
def test_delete_without_a_uid_is_refused(server: RecordingServer, call: Any) -> None:
    """A missing UID would name the level above (DELETE /studies/...): nothing is sent."""
    with pytest.raises(ValueError, match="required"):
        call(make_client(server))
    assert server.requests == []


def test_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="url must be a string"):
        dicomweb_client.DICOMwebClient(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.3.4"])
def test_instance_transfer_syntaxes_outside_ps3_18_are_refused(
    server: RecordingServer, syntax: str
) -> None:
    """Implicit VR Little Endian and unknown UIDs are not transfer syntaxes of
    application/dicom in DICOMweb; the request is refused before it is sent."""
    with pytest.raises(ValueError, match="PS3.18"):
        make_client(server).retrieve_instance(
            STUDY, SERIES, SOP, media_types=(("application/dicom", syntax),)
        )
    assert server.requests == []


def test_a_part_that_is_not_dicom_raises(server: RecordingServer) -> None:
    """A part that neither is a Part 10 file nor parses as a bare data set raises
    pydicom's InvalidDicomError instead of becoming a data set of garbage."""
    import pydicom.errors

    server.add("GET", None, multipart_response([b"not a dicom file"]))
    with pytest.raises(pydicom.errors.InvalidDicomError):
        make_client(server).retrieve_instance(STUDY, SERIES, SOP)
