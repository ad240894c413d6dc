"""Checks of the test infrastructure itself (recording server, data, Orthanc).

Only ``http.client``/``urllib`` are used here, never the library under test.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import time
import urllib.parse

import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

import dicom_data
from recording_server import (
    RecordedRequest,
    RecordingServer,
    Response,
    multipart_body,
    multipart_response,
)


def connect(server: RecordingServer, timeout: float = 5.0) -> http.client.HTTPConnection:
    """A plain http.client connection to the server."""
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)


def fetch(
    server: RecordingServer,
    method: str = "GET",
    target: str = "/",
    body: bytes | None = None,
    headers: dict | None = None,
) -> tuple[int, dict, bytes]:
    """One request on a fresh connection; returns status, headers, body."""
    conn = connect(server)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# -- recording ---------------------------------------------------------------------------


def test_records_method_path_query_headers_body(recording_server: RecordingServer) -> None:
    recording_server.add("POST", "/studies", Response(status=201, body=b"ok"))
    status, _, body = fetch(
        recording_server,
        "POST",
        "/studies?PatientID=P1&includefield=a&includefield=b&empty=",
        body=b"payload",
        headers={"X-Test": "yes", "Content-Type": "application/dicom"},
    )
    assert (status, body) == (201, b"ok")
    request = recording_server.last
    assert request.method == "POST"
    assert request.path == "/studies"
    assert request.raw_query == "PatientID=P1&includefield=a&includefield=b&empty="
    assert request.query == {"PatientID": ["P1"], "includefield": ["a", "b"], "empty": [""]}
    assert request.headers["x-test"] == "yes"
    assert request.header("CONTENT-TYPE") == "application/dicom"
    assert request.body == b"payload"
    assert request.chunked is False
    assert len(recording_server.requests) == 1


def test_chunked_request_body_is_decoded(recording_server: RecordingServer) -> None:
    recording_server.add(None, None, Response(status=204))
    conn = connect(recording_server)
    conn.request("PUT", "/x", body=iter([b"hello ", b"chunked ", b"world"]), encode_chunked=True)
    assert conn.getresponse().status == 204
    conn.close()
    assert recording_server.last.chunked is True
    assert recording_server.last.body == b"hello chunked world"


def test_unmatched_request_gets_404(recording_server: RecordingServer) -> None:
    status, headers, body = fetch(recording_server, "GET", "/nothing")
    assert status == 404
    assert headers["Content-Type"] == "text/plain"
    assert b"/nothing" in body


def test_queued_responses_win_over_routes_in_fifo_order(recording_server: RecordingServer) -> None:
    recording_server.add("GET", re.compile(r"/studies/[\d.]+"), Response(body=b"route"))
    recording_server.queue(Response(status=503, body=b"first"), Response(body=b"second"))
    results = [fetch(recording_server, "GET", "/studies/1.2.3") for _ in range(3)]
    assert [(status, body) for status, _, body in results] == [
        (503, b"first"),
        (200, b"second"),
        (200, b"route"),
    ]
    assert recording_server.pending == 0
    assert fetch(recording_server, "POST", "/studies/1.2.3")[0] == 404


def test_last_added_route_wins_and_callable_routes(recording_server: RecordingServer) -> None:
    recording_server.add(None, None, Response(body=b"any"))

    def echo(request: RecordedRequest) -> Response:
        return Response(body=request.query["q"][0].encode(), content_type="text/plain")

    recording_server.add("GET", "/echo", echo)
    assert fetch(recording_server, "GET", "/echo?q=hi")[2] == b"hi"
    assert fetch(recording_server, "GET", "/other")[2] == b"any"


def test_failing_handler_gives_500_and_is_reported(recording_server: RecordingServer) -> None:
    recording_server.add(None, None, lambda request: 1 / 0)
    status, _, body = fetch(recording_server)
    assert status == 500 and b"ZeroDivisionError" in body
    assert len(recording_server.errors) == 1


def test_keep_alive_reuses_one_connection(recording_server: RecordingServer) -> None:
    recording_server.add(None, None, Response(body=b"x"))
    conn = connect(recording_server)
    for _ in range(3):
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"x"
    conn.close()
    assert recording_server.connection_count == 1
    assert {r.connection for r in recording_server.requests} == {1}


def test_clear_forgets_requests(recording_server: RecordingServer) -> None:
    fetch(recording_server)
    recording_server.clear()
    assert recording_server.requests == []
    with pytest.raises(IndexError):
        recording_server.last  # noqa: B018 - reading the property is the test


# -- responses ---------------------------------------------------------------------------


def test_chunked_response_and_split_body(recording_server: RecordingServer) -> None:
    recording_server.add("GET", "/chunked", Response(body=[b"ab", b"cd", b"ef"], chunked=True))
    recording_server.add("GET", "/split", Response(body=[b"12", b"34"], piece_delay=0.01))
    status, headers, body = fetch(recording_server, "GET", "/chunked")
    assert (status, body) == (200, b"abcdef")
    assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
    status, headers, body = fetch(recording_server, "GET", "/split")
    assert (body, headers["Content-Length"]) == (b"1234", "4")


def test_raw_response_is_sent_verbatim(recording_server: RecordingServer) -> None:
    raw = b"HTTP/1.1 299 Odd\r\nX-Raw: 1\r\nContent-Length: 3\r\n\r\nabc"
    recording_server.queue(Response(raw=raw))
    with socket.create_connection(("127.0.0.1", recording_server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received == raw  # and then the server closed the connection


def test_close_response_closes_connection(recording_server: RecordingServer) -> None:
    recording_server.add(None, None, Response(body=b"bye", close=True))
    status, headers, body = fetch(recording_server)
    assert headers["Connection"] == "close" and body == b"bye"


def test_head_request_gets_no_body(recording_server: RecordingServer) -> None:
    recording_server.add(None, None, Response(body=b"12345"))
    conn = connect(recording_server)
    conn.request("HEAD", "/")
    response = conn.getresponse()
    assert response.getheader("Content-Length") == "5" and response.read() == b""
    conn.request("GET", "/")  # connection still in sync
    assert conn.getresponse().read() == b"12345"
    conn.close()


def test_reset_after_aborts_mid_body(recording_server: RecordingServer) -> None:
    recording_server.add(None, None, Response(body=b"x" * 100_000, reset_after=10))
    conn = connect(recording_server)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.getheader("Content-Length") == "100000"
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()
    conn.close()


def test_delay_postpones_the_answer(recording_server: RecordingServer) -> None:
    recording_server.add(None, None, Response(delay=0.2))
    start = time.monotonic()
    fetch(recording_server)
    assert time.monotonic() - start >= 0.2
    conn = connect(recording_server, timeout=0.05)
    conn.request("GET", "/")
    with pytest.raises((TimeoutError, socket.timeout)):  # one class from Python 3.10 on
        conn.getresponse()
    conn.close()


def test_idle_timeout_closes_kept_alive_connection(make_server) -> None:
    server = make_server(idle_timeout=0.2)
    server.add(None, None, Response(body=b"x"))
    conn = connect(server)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"x"
    time.sleep(0.4)
    conn.request("GET", "/")  # http.client notices the close only when reading
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        conn.getresponse()
    conn.close()
    assert fetch(server)[2] == b"x"
    assert server.connection_count == 2


def test_multipart_body_layout() -> None:
    body = multipart_body(
        [b"one", (b"two", "image/jpeg"), (b"3", None)], "BND", "application/dicom"
    )
    assert body == (
        b"--BND\r\nContent-Type: application/dicom\r\n\r\none\r\n"
        b"--BND\r\nContent-Type: image/jpeg\r\n\r\ntwo\r\n"
        b"--BND\r\n\r\n3\r\n"
        b"--BND--\r\n"
    )
    response = multipart_response([b"a"], "application/octet-stream", boundary="B")
    assert response.content_type == 'multipart/related; type="application/octet-stream"; boundary=B'


def test_https_server(make_server, tls_certificate) -> None:
    certfile, keyfile = tls_certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certfile, keyfile)
    server = make_server(ssl_context=server_context)
    server.add(None, None, Response(body=b"secure"))
    assert server.url.startswith("https://127.0.0.1:")
    client_context = ssl.create_default_context(cafile=str(certfile))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=client_context, timeout=5)
    conn.request("GET", "/tls")
    assert conn.getresponse().read() == b"secure"
    conn.close()
    assert server.last.path == "/tls"


# -- DICOM data --------------------------------------------------------------------------


def test_instance_round_trip(tmp_path) -> None:
    ds = dicom_data.make_instance(rows=8, columns=6, seed=3)
    (path,) = dicom_data.write_files([ds], tmp_path)
    read = pydicom.dcmread(path)
    assert read.SOPInstanceUID == ds.SOPInstanceUID
    assert read.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert np.array_equal(read.pixel_array, dicom_data.make_pixels(8, 6, seed=3))
    assert dicom_data.from_bytes(dicom_data.to_bytes(ds)).PatientID == "P1"


def test_multiframe_and_rgb() -> None:
    multi = dicom_data.from_bytes(dicom_data.to_bytes(dicom_data.make_instance(frames=4)))
    assert multi.NumberOfFrames == 4 and multi.pixel_array.shape == (4, 16, 16)
    assert dicom_data.frame_bytes(multi, 2) == multi.pixel_array[1].tobytes()
    rgb = dicom_data.make_instance(samples_per_pixel=3, rows=4, columns=5)
    assert rgb.pixel_array.shape == (4, 5, 3) and rgb.pixel_array.dtype == np.uint8


def test_rle_compressed_decodes_to_same_pixels() -> None:
    plain = dicom_data.make_instance(frames=2, seed=7)
    packed = dicom_data.make_instance(frames=2, seed=7, compressed=True)
    read = dicom_data.from_bytes(dicom_data.to_bytes(packed))
    assert read.file_meta.TransferSyntaxUID == RLELossless
    assert read.SOPInstanceUID == packed.SOPInstanceUID
    assert np.array_equal(read.pixel_array, plain.pixel_array)


def test_study_and_archive_structure() -> None:
    study = dicom_data.make_study(n_series=2, n_instances=3, patient_id="X")
    assert len(study) == 6 and len({ds.StudyInstanceUID for ds in study}) == 1
    assert len({ds.SeriesInstanceUID for ds in study}) == 2
    assert {ds.PatientID for ds in study} == {"X"}
    archive = dicom_data.make_archive(3, 1, 2)
    assert len(archive) == 6 and len({ds.StudyInstanceUID for ds in archive}) == 3
    assert sorted({ds.PatientID for ds in archive}) == ["P1", "P2", "P3"]


def test_pydicom_test_files_are_readable() -> None:
    paths = dicom_data.pydicom_test_files()
    assert len(paths) >= 2
    for path in paths:
        assert pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID


# -- Orthanc -------------------------------------------------------------------------------


@pytest.mark.orthanc
def test_orthanc_stow_then_qido(orthanc_clean) -> None:
    ds = dicom_data.make_instance(patient_id="SMOKE")
    boundary = "smoke-boundary"
    body = multipart_body([dicom_data.to_bytes(ds)], boundary, "application/dicom")
    parts = urllib.parse.urlsplit(orthanc_clean.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(
        "POST",
        parts.path + "/studies",
        body=body,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
    )
    response = conn.getresponse()
    assert response.status == 200, response.read()
    response.read()
    conn.request(
        "GET", parts.path + "/studies?PatientID=SMOKE", headers={"Accept": "application/dicom+json"}
    )
    response = conn.getresponse()
    assert response.status == 200
    found = json.loads(response.read())
    conn.close()
    assert [study["0020000D"]["Value"][0] for study in found] == [ds.StudyInstanceUID]
    orthanc_clean.reset()
    assert orthanc_clean.studies() == []
