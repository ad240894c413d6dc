"""A loopback DICOMweb server with prebuilt answers, for benchmarks.

Start it as its own process, so that client processes measure only themselves::

    python -m benchmarks.server --port 0

Once the answers are built and the socket listens, the port is printed on a line of its
own on standard output.  The server runs until it is terminated.

Every answer is prepared before the first request, so serving costs little CPU: the big
multipart body of frames lives in an unlinked temporary file and goes out with
``os.sendfile``; the other answers are bytes in memory sent with one ``sendall``.
Connections are HTTP/1.1 keep-alive, one thread per connection.

``--part-delay S`` makes the server sleep S seconds before it sends each part of a
multipart answer (each frame, each instance), like a server that reads or transcodes every
instance or frame before sending it.  Each connection thread sleeps on its own, so parallel
requests overlap their waits, as they would on such a server.

``--study-series K`` gives the study K series of ``--series-instances`` instances each
(default 1: the series below).  ``--any-instance`` answers a single-instance WADO-RS request
for any SOP Instance UID under a known series with the series' first instance, so that a
cohort of any size can be downloaded without building it (``benchmarks/cohort.py``).

Routes (any path prefix before ``/studies`` is accepted, e.g. ``/dicom-web/studies``):

``GET .../studies``
    QIDO-RS: a DICOM JSON array of three studies.
``GET .../studies/{study}/series/{series}``
    WADO-RS: ``multipart/related`` of the prebuilt small Part 10 instances.
``GET .../studies/{study}/series/{series}/instances`` and ``GET .../studies/{study}/instances``
    QIDO-RS: the instances of the series as DICOM JSON, in order; ``offset`` and ``limit``
    select a page and an offset past the end gives ``[]``.  This is the search that the
    client's parallel retrieval (``workers=``) sends first.  The study-level search lists
    the instances of every series of the study.
``GET .../studies/{study}/series``
    QIDO-RS: the series of the study as DICOM JSON, paged like the instances.
``GET .../studies/{study}/series/{series}/instances/{sop}``
    WADO-RS: one instance of the series as a one-part ``multipart/related`` (with
    ``--any-instance``, the series' first instance for an unknown UID).
``GET .../studies/{study}/series/{series}/instances/{sop}/frames/{list}``
    WADO-RS: the asked-for frames (any of 1..N, in any order) as ``multipart/related;
    type="application/octet-stream"``.
``POST .../studies`` and ``POST .../studies/{study}``
    STOW-RS: reads the body (``Content-Length`` or chunked), counts its bytes and parts,
    discards it and answers a small DICOM JSON report.
``GET /_bench/info``
    JSON description of the data (UIDs, sizes, counts).
``GET /_bench/stats``
    JSON counters: requests, connections that carried them, bytes sent, STOW bytes and
    parts received.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import socketserver
import struct
import sys
import tempfile
import threading
import time
import urllib.parse
from typing import Dict, List, Optional, Tuple

STUDY_UID = '1.2.826.0.1.3680043.8.498.7001'
SERIES_UID = '1.2.826.0.1.3680043.8.498.7001.1'
FRAMES_SOP_UID = '1.2.826.0.1.3680043.8.498.7001.1.1'
OTHER_STUDY_UIDS = ('1.2.826.0.1.3680043.8.498.7002', '1.2.826.0.1.3680043.8.498.7003')
SERIES_SOP_PREFIX = '1.2.826.0.1.3680043.8.498.7001.2.'
CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2'
EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1'
BOUNDARY = 'bench-7c1e5a90f3d24b6e8a1d'

MIB = 1 << 20
_MAX_LINE = 65536
_MSG_MORE = getattr(socket, 'MSG_MORE', 0)

_FRAMES_PATH = re.compile(r'/studies/([^/]+)/series/([^/]+)/instances/([^/]+)/frames/([^/]+)$')
_SERIES_QIDO_PATH = re.compile(r'/studies/([^/]+)/series$')
_SERIES_PATH = re.compile(r'/studies/([^/]+)/series/([^/]+)$')
_INSTANCE_PATH = re.compile(r'/studies/([^/]+)/series/([^/]+)/instances/([^/]+)$')
_INSTANCES_QIDO_PATH = re.compile(r'/studies/([^/]+)(?:/series/([^/]+))?/instances$')
_STOW_PATH = re.compile(r'/studies(?:/[^/]+)?$')
_QIDO_PATH = re.compile(r'/studies$')
_UID = re.compile(r'[0-9]+(\.[0-9]+)*')


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def make_instance(
    sop_instance_uid: str,
    instance_number: int,
    pixel_bytes: int,
    study_uid: str = STUDY_UID,
    series_uid: str = SERIES_UID,
) -> bytes:
    """A CT image as Part 10 bytes with about ``pixel_bytes`` bytes of 16-bit pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset

    columns = 256
    rows = max(pixel_bytes // (2 * columns), 1)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = 'Bench^Patient'
    ds.PatientID = 'BENCH-0001'
    ds.StudyDate = '20240101'
    ds.Modality = 'CT'
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    # a cheap pattern that differs from instance to instance
    seed = bytes((instance_number + i) & 0xFF for i in range(256))
    ds.PixelData = (seed * (rows * columns * 2 // 256 + 1))[: rows * columns * 2]
    buffer = io.BytesIO()
    try:
        ds.save_as(buffer, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        ds.save_as(buffer, write_like_original=False)
    return buffer.getvalue()


def frame_bytes(number: int, size: int, pattern: bytes) -> bytes:
    """Frame ``number``: its number as 8 big-endian bytes, then a fixed pattern."""
    return struct.pack('>Q', number) + pattern[: size - 8]


def _study_json(study_uid: str, index: int) -> Dict[str, dict]:
    return {
        '00080020': {'vr': 'DA', 'Value': [f'202401{index + 1:02d}']},
        '00080050': {'vr': 'SH', 'Value': [f'ACC{index:05d}']},
        '00080061': {'vr': 'CS', 'Value': ['CT']},
        '00080090': {'vr': 'PN', 'Value': [{'Alphabetic': 'Referring^Doctor'}]},
        '00100010': {'vr': 'PN', 'Value': [{'Alphabetic': f'Bench^Patient{index}'}]},
        '00100020': {'vr': 'LO', 'Value': [f'BENCH-{index:04d}']},
        '00100030': {'vr': 'DA', 'Value': ['19700101']},
        '00100040': {'vr': 'CS', 'Value': ['O']},
        '0020000D': {'vr': 'UI', 'Value': [study_uid]},
        '00200010': {'vr': 'SH', 'Value': [f'S{index}']},
        '00201206': {'vr': 'IS', 'Value': [1]},
        '00201208': {'vr': 'IS', 'Value': [200]},
    }


def series_uid_of(series: int) -> str:
    """The Series Instance UID of series ``series`` (from 1) of the study."""
    return SERIES_UID if series == 1 else f'{STUDY_UID}.3.{series}'


def sop_prefix_of(series: int) -> str:
    """What the SOP Instance UIDs of series ``series`` start with (then the number)."""
    return SERIES_SOP_PREFIX if series == 1 else f'{STUDY_UID}.4.{series}.'


def _instance_json(number: int, series: int = 1) -> Dict[str, dict]:
    return {
        '00080016': {'vr': 'UI', 'Value': [CT_IMAGE_STORAGE]},
        '00080018': {'vr': 'UI', 'Value': [f'{sop_prefix_of(series)}{number}']},
        '0020000D': {'vr': 'UI', 'Value': [STUDY_UID]},
        '0020000E': {'vr': 'UI', 'Value': [series_uid_of(series)]},
        '00200013': {'vr': 'IS', 'Value': [number]},
    }


def _series_json(series: int, instances: int) -> Dict[str, dict]:
    return {
        '00080060': {'vr': 'CS', 'Value': ['CT']},
        '0020000D': {'vr': 'UI', 'Value': [STUDY_UID]},
        '0020000E': {'vr': 'UI', 'Value': [series_uid_of(series)]},
        '00200011': {'vr': 'IS', 'Value': [series]},
        '00201209': {'vr': 'IS', 'Value': [instances]},
    }


def _query(target: str) -> Dict[str, str]:
    """The query parameters of a request target (the last value of each name wins)."""
    return dict(urllib.parse.parse_qsl(target.partition('?')[2], keep_blank_values=True))


class BenchData:
    """Every answer the server gives, built once."""

    def __init__(
        self,
        frame_count: int,
        frame_size: int,
        series_count: int,
        instance_size: int,
        study_series: int = 1,
        any_instance: bool = False,
    ) -> None:
        if frame_size < 16:
            raise ValueError('frame size must be at least 16 bytes')
        if study_series < 1:
            raise ValueError('the study needs at least one series')
        self.frame_count = frame_count
        self.frame_size = frame_size
        self.series_count = series_count
        self.instance_size = instance_size
        self.study_series = study_series
        self.any_instance = any_instance

        # frames: one part per frame, all parts of the same length, so the part of frame
        # n starts at (n - 1) * segment and any list of frames is a list of file ranges
        self.frame_part_header = (
            f'--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode('ascii')
        self.segment = len(self.frame_part_header) + frame_size + 2
        self.closing = f'--{BOUNDARY}--\r\n'.encode('ascii')
        pattern = bytes(range(256)) * (frame_size // 256 + 1)
        self.frames_file = tempfile.TemporaryFile(prefix='dicomweb-bench-frames-')
        for number in range(1, frame_count + 1):
            self.frames_file.write(self.frame_part_header)
            self.frames_file.write(frame_bytes(number, frame_size, pattern))
            self.frames_file.write(b'\r\n')
        self.frames_file.flush()
        self.frames_fd = self.frames_file.fileno()

        studies = [
            _study_json(uid, index) for index, uid in enumerate((STUDY_UID,) + OTHER_STUDY_UIDS)
        ]
        self.qido_body = json.dumps(studies).encode('utf-8')
        self.qido_answers = {
            close: _head(200, 'application/dicom+json', len(self.qido_body), close) + self.qido_body
            for close in (False, True)
        }

        part_header = (
            f'--{BOUNDARY}\r\nContent-Type: application/dicom; '
            f'transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}\r\n\r\n'
        ).encode('ascii')
        # per series UID: one complete part (header, instance, CRLF) per instance in
        # series order, the whole multipart body, the part of each SOP Instance UID, the
        # file sizes, and the QIDO-RS entries of the instances, serialised one by one so
        # that any page is a cheap join
        self.parts_of: Dict[str, List[bytes]] = {}
        self.body_of: Dict[str, bytes] = {}
        self.index_of: Dict[str, Dict[str, int]] = {}
        self.sizes_of: Dict[str, List[int]] = {}
        self.entries_of: Dict[str, List[bytes]] = {}
        for series in range(1, study_series + 1):
            uid, prefix = series_uid_of(series), sop_prefix_of(series)
            parts, sizes = [], []
            for number in range(1, series_count + 1):
                instance = make_instance(f'{prefix}{number}', number, instance_size, series_uid=uid)
                sizes.append(len(instance))
                parts.append(part_header + instance + b'\r\n')
            self.parts_of[uid] = parts
            self.body_of[uid] = b''.join(parts) + self.closing
            self.index_of[uid] = {f'{prefix}{n}': n - 1 for n in range(1, series_count + 1)}
            self.sizes_of[uid] = sizes
            self.entries_of[uid] = [
                json.dumps(_instance_json(number, series)).encode('utf-8')
                for number in range(1, series_count + 1)
            ]
        # series 1, as it was before there could be more
        self.series_parts = self.parts_of[SERIES_UID]
        self.series_body = self.body_of[SERIES_UID]
        self.series_instance_bytes = self.sizes_of[SERIES_UID][-1] if series_count else 0
        self.series_index = self.index_of[SERIES_UID]
        self.instance_entries = self.entries_of[SERIES_UID]
        self.all_instance_entries = [
            entry for entries in self.entries_of.values() for entry in entries
        ]
        self.series_entries = [
            json.dumps(_series_json(series, series_count)).encode('utf-8')
            for series in range(1, study_series + 1)
        ]

    def info(self) -> Dict[str, object]:
        return {
            'study_uid': STUDY_UID,
            'series_uid': SERIES_UID,
            'sop_uid': FRAMES_SOP_UID,
            'frame_count': self.frame_count,
            'frame_size': self.frame_size,
            'frames_body_bytes': self.frame_count * self.segment + len(self.closing),
            'series_count': self.series_count,
            'series_instance_bytes': self.series_instance_bytes,
            'series_body_bytes': len(self.series_body),
            'series_sop_prefix': SERIES_SOP_PREFIX,
            'qido_count': 1 + len(OTHER_STUDY_UIDS),
            'qido_body_bytes': len(self.qido_body),
            'study_series': self.study_series,
            'any_instance': self.any_instance,
            'series': [
                {
                    'uid': uid,
                    'sop_prefix': sop_prefix_of(number),
                    'instances': len(sizes),
                    'bytes': sum(sizes),
                    'first_instance_bytes': sizes[0] if sizes else 0,
                }
                for number, (uid, sizes) in enumerate(self.sizes_of.items(), start=1)
            ],
        }


class Stats:
    """Counters shared by the connection threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = {
            'requests': 0,
            'connections': 0,
            'bytes_sent': 0,
            'stow_requests': 0,
            'stow_bytes': 0,
            'stow_parts': 0,
            'errors': 0,
            'qido_instance_requests': 0,
        }

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._values[name] += amount

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._values)


# ---------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------


class _BadRequest(Exception):
    pass


class _BoundaryCounter:
    """Counts a delimiter in a stream fed in chunks, including across chunk edges."""

    def __init__(self, needle: bytes) -> None:
        self.needle = needle
        self.count = 0
        self._tail = b''

    def feed(self, buf: bytearray, size: int) -> None:
        keep = len(self.needle) - 1
        if not keep or not size:
            self.count += buf.count(self.needle, 0, size)
            return
        if self._tail:
            # occurrences that start in the previous chunk and end in this one
            self.count += (self._tail + bytes(buf[: min(size, keep)])).count(self.needle)
        self.count += buf.count(self.needle, 0, size)
        if size >= keep:
            self._tail = bytes(buf[size - keep : size])
        else:
            self._tail = (self._tail + bytes(buf[:size]))[-keep:]


def _status_line(code: int) -> bytes:
    reasons = {
        200: 'OK',
        400: 'Bad Request',
        404: 'Not Found',
        405: 'Method Not Allowed',
        413: 'Payload Too Large',
    }
    return f'HTTP/1.1 {code} {reasons.get(code, "Error")}\r\n'.encode('ascii')


def _head(code: int, content_type: str, length: int, close: bool) -> bytes:
    fields = (
        f'Content-Type: {content_type}\r\nContent-Length: {length}\r\nServer: dicomweb-bench\r\n'
    )
    if close:
        fields += 'Connection: close\r\n'
    return _status_line(code) + fields.encode('ascii') + b'\r\n'


def _boundary_param(content_type: str) -> Optional[str]:
    match = re.search(r'boundary\s*=\s*("([^"]*)"|[^;\s]+)', content_type, re.IGNORECASE)
    if not match:
        return None
    return match.group(2) if match.group(2) is not None else match.group(1)


class _Handler(socketserver.BaseRequestHandler):
    server: 'BenchServer'

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        rfile = sock.makefile('rb', 1 << 16)
        self.counted = False
        try:
            while self._one_request(sock, rfile):
                pass
        except (OSError, ValueError, _BadRequest):
            pass
        finally:
            rfile.close()

    def _one_request(self, sock: socket.socket, rfile: io.BufferedReader) -> bool:
        """Answer one request; False when the connection should close."""
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            return False
        if line in (b'\r\n', b'\n'):  # tolerated stray CRLF between requests
            return True
        parts = line.split()
        if len(parts) != 3:
            raise _BadRequest(line[:100])
        method, target, version = (part.decode('latin-1') for part in parts)
        headers: Dict[str, str] = {}
        while True:
            field = rfile.readline(_MAX_LINE + 1)
            if field in (b'\r\n', b'\n', b''):
                break
            name, _, value = field.decode('latin-1').partition(':')
            headers[name.strip().lower()] = value.strip()
        close = (
            version == 'HTTP/1.0' and headers.get('connection', '').lower() != 'keep-alive'
        ) or headers.get('connection', '').lower() == 'close'
        path = target.split('?', 1)[0]
        if headers.get('expect', '').lower() == '100-continue':
            sock.sendall(b'HTTP/1.1 100 Continue\r\n\r\n')

        server = self.server
        if path.startswith('/_bench/'):
            self._discard_body(rfile, headers, None)
            if path == '/_bench/info':
                body = json.dumps(server.data.info()).encode()
            elif path == '/_bench/stats':
                body = json.dumps(server.stats.snapshot()).encode()
            else:
                return self._error(sock, 404, close)
            sock.sendall(_head(200, 'application/json', len(body), close) + body)
            return not close

        if not self.counted:  # connections that carried DICOMweb requests
            self.counted = True
            server.stats.add(connections=1)
        if server.delay:
            time.sleep(server.delay)
        if (
            method == 'GET'
            and path.endswith('/studies')
            and 'content-length' not in headers
            and 'transfer-encoding' not in headers
        ):
            # QIDO-RS of the studies: the small answer of the requests/s row, prebuilt, so
            # that the server's share of each round trip is as small as it can be
            sock.sendall(server.data.qido_answers[close])
            server.stats.add(requests=1, bytes_sent=len(server.data.qido_body))
            return not close
        if method == 'POST' and _STOW_PATH.search(path):
            return self._stow(sock, rfile, headers, close)
        self._discard_body(rfile, headers, None)
        if method != 'GET':
            return self._error(sock, 405, close)
        match = _FRAMES_PATH.search(path)
        if match:
            return self._frames(sock, match, close)
        data = server.data
        match = _SERIES_PATH.search(path)
        if match:
            study, series = match.groups()
            if study != STUDY_UID or series not in data.parts_of:
                return self._error(sock, 404, close)
            return self._instances(sock, data.parts_of[series], close, data.body_of[series])
        match = _INSTANCE_PATH.search(path)
        if match:
            study, series, sop = match.groups()
            index = data.index_of[series].get(sop) if series in data.index_of else None
            if index is None and data.any_instance and series in data.index_of:
                index = 0 if _UID.fullmatch(sop) and data.parts_of[series] else None
            if study != STUDY_UID or index is None:
                return self._error(sock, 404, close)
            return self._instances(sock, data.parts_of[series][index : index + 1], close)
        match = _SERIES_QIDO_PATH.search(path)
        if match:
            entries = data.series_entries if match.group(1) == STUDY_UID else []
            return self._search(sock, entries, _query(target), close)
        match = _INSTANCES_QIDO_PATH.search(path)
        if match:
            return self._search_instances(sock, match, _query(target), close)
        if _QIDO_PATH.search(path):
            body = server.data.qido_body
            sock.sendall(_head(200, 'application/dicom+json', len(body), close) + body)
            server.stats.add(requests=1, bytes_sent=len(body))
            return not close
        return self._error(sock, 404, close)

    def _instances(
        self, sock: socket.socket, parts: List[bytes], close: bool, body: Optional[bytes] = None
    ) -> bool:
        """A multipart answer of prebuilt instance parts (``body``: all of them, prebuilt);
        with a part delay the server sleeps before sending each part."""
        data = self.server.data
        content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        length = sum(len(part) for part in parts) + len(data.closing)
        head = _head(200, content_type, length, close)
        delay = self.server.part_delay
        if not delay and body is not None:
            sock.sendall(head + body)  # the whole series, prebuilt
        elif not delay:
            sock.sendall(head + b''.join(parts) + data.closing)
        else:
            sock.sendall(head)
            for part in parts:
                time.sleep(delay)
                sock.sendall(part)
            sock.sendall(data.closing)
        self.server.stats.add(requests=1, bytes_sent=length)
        return not close

    def _search_instances(
        self, sock: socket.socket, match: 're.Match[str]', query: Dict[str, str], close: bool
    ) -> bool:
        """QIDO-RS of the instances of a series or of the study, paged with ``offset``
        and ``limit``."""
        data = self.server.data
        study, series = match.groups()
        wanted_series = series or query.get('SeriesInstanceUID') or query.get('0020000E')
        if study != STUDY_UID:
            entries: List[bytes] = []
        elif wanted_series is None:
            entries = data.all_instance_entries
        else:
            entries = data.entries_of.get(wanted_series, [])
        return self._search(sock, entries, query, close, qido_instance_requests=1)

    def _search(
        self,
        sock: socket.socket,
        entries: List[bytes],
        query: Dict[str, str],
        close: bool,
        **counters: int,
    ) -> bool:
        """A QIDO-RS answer: a page of prebuilt entries, chosen by ``offset`` and
        ``limit``."""
        try:
            offset = int(query.get('offset') or 0)
            limit = int(query['limit']) if query.get('limit') else None
        except ValueError:
            return self._error(sock, 400, close)
        if offset < 0 or (limit is not None and limit < 0):
            return self._error(sock, 400, close)
        page = entries[offset:] if limit is None else entries[offset : offset + limit]
        body = b'[' + b','.join(page) + b']'
        sock.sendall(_head(200, 'application/dicom+json', len(body), close) + body)
        self.server.stats.add(requests=1, bytes_sent=len(body), **counters)
        return not close

    def _error(self, sock: socket.socket, code: int, close: bool) -> bool:
        body = f'{code}\n'.encode()
        sock.sendall(_head(code, 'text/plain', len(body), close) + body)
        self.server.stats.add(requests=1, errors=1)
        return not close

    def _frames(self, sock: socket.socket, match: 're.Match[str]', close: bool) -> bool:
        data = self.server.data
        study, series, sop, listing = match.groups()
        if (study, series, sop) != (STUDY_UID, SERIES_UID, FRAMES_SOP_UID):
            return self._error(sock, 404, close)
        try:
            numbers = [int(item) for item in listing.replace('%2C', ',').split(',')]
        except ValueError:
            return self._error(sock, 400, close)
        if not numbers or any(not 1 <= number <= data.frame_count for number in numbers):
            return self._error(sock, 404, close)
        # consecutive frames become one file range
        ranges: List[Tuple[int, int]] = []
        for number in numbers:
            start = (number - 1) * data.segment
            if ranges and ranges[-1][0] + ranges[-1][1] == start:
                ranges[-1] = (ranges[-1][0], ranges[-1][1] + data.segment)
            else:
                ranges.append((start, data.segment))
        length = len(numbers) * data.segment + len(data.closing)
        content_type = f'multipart/related; type="application/octet-stream"; boundary={BOUNDARY}'
        sock.sendall(_head(200, content_type, length, close), _MSG_MORE)
        out = sock.fileno()
        delay = self.server.part_delay
        if delay:  # one range per frame, each sent after the delay
            ranges = [((number - 1) * data.segment, data.segment) for number in numbers]
        for offset, count in ranges:
            if delay:
                time.sleep(delay)
            while count:
                sent = os.sendfile(out, data.frames_fd, offset, min(count, 1 << 30))
                if not sent:
                    raise ConnectionError('sendfile sent nothing')
                offset += sent
                count -= sent
        sock.sendall(data.closing)
        self.server.stats.add(requests=1, bytes_sent=length)
        return not close

    def _stow(
        self, sock: socket.socket, rfile: io.BufferedReader, headers: Dict[str, str], close: bool
    ) -> bool:
        boundary = _boundary_param(headers.get('content-type', ''))
        counter = _BoundaryCounter(f'--{boundary}'.encode('latin-1')) if boundary else None
        received = self._discard_body(rfile, headers, counter)
        # every part opens with a delimiter; the closing delimiter matches once more
        parts = max(counter.count - 1, 0) if counter else 0
        body = json.dumps(
            {
                '00081190': {'vr': 'UR', 'Value': [f'http://127.0.0.1/studies/{STUDY_UID}']},
                '00081199': {'vr': 'SQ', 'Value': []},
            }
        ).encode()
        sock.sendall(_head(200, 'application/dicom+json', len(body), close) + body)
        self.server.stats.add(
            requests=1, bytes_sent=len(body), stow_requests=1, stow_bytes=received, stow_parts=parts
        )
        return not close

    def _discard_body(
        self, rfile: io.BufferedReader, headers: Dict[str, str], counter: Optional[_BoundaryCounter]
    ) -> int:
        """Read the request body and throw it away; returns its size."""
        if 'chunked' in headers.get('transfer-encoding', '').lower():
            total = 0
            while True:
                size_line = rfile.readline(_MAX_LINE + 1)
                if not size_line:
                    raise ConnectionError('body ended inside chunked coding')
                size = int(size_line.split(b';', 1)[0].strip(), 16)
                if size == 0:
                    while rfile.readline(_MAX_LINE + 1) not in (b'\r\n', b'\n', b''):
                        pass  # trailer fields
                    return total
                total += self._discard_exactly(rfile, size, counter)
                if rfile.read(2) != b'\r\n':
                    raise _BadRequest('chunk not followed by CRLF')
        length = int(headers.get('content-length', '0') or 0)
        return self._discard_exactly(rfile, length, counter)

    def _discard_exactly(
        self, rfile: io.BufferedReader, size: int, counter: Optional[_BoundaryCounter]
    ) -> int:
        buf = self.server.local_buffer()
        view = memoryview(buf)
        remaining = size
        while remaining:
            got = rfile.readinto(view[: min(remaining, len(buf))])
            if not got:
                raise ConnectionError('body ended early')
            if counter is not None:
                counter.feed(buf, got)
            remaining -= got
        return size


class BenchServer(socketserver.ThreadingTCPServer):
    """Threaded keep-alive HTTP/1.1 server over prebuilt :class:`BenchData`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: Tuple[str, int], data: BenchData, delay: float = 0.0, part_delay: float = 0.0
    ) -> None:
        self.data = data
        self.delay = delay
        self.part_delay = part_delay
        self.stats = Stats()
        self._local = threading.local()
        super().__init__(address, _Handler)

    def local_buffer(self) -> bytearray:
        """A 1 MiB scratch buffer per thread for discarding request bodies."""
        buf = getattr(self._local, 'buf', None)
        if buf is None:
            buf = self._local.buf = bytearray(MIB)
        return buf


def _size(text: str) -> int:
    """Parse a byte count such as 4194304, 4MiB, 70KB or 1M."""
    match = re.fullmatch(r'\s*(\d+)\s*([kKmMgG]?)(i?[bB])?\s*', text)
    if not match:
        raise argparse.ArgumentTypeError(f'not a size: {text!r}')
    unit = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}[match.group(2).lower()]
    if match.group(2) and match.group(3) and not match.group(3).lower().startswith('i'):
        unit = {'k': 10**3, 'm': 10**6, 'g': 10**9}[match.group(2).lower()]
    return int(match.group(1)) * unit


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--host', default='127.0.0.1', help='loopback address to bind')
    parser.add_argument('--port', type=int, default=0, help='port; 0 picks a free one')
    parser.add_argument('--frames', type=int, default=100, help='frames in the instance')
    parser.add_argument(
        '--frame-size', type=_size, default=4 * MIB, help='bytes per frame (e.g. 4MiB)'
    )
    parser.add_argument('--series-instances', type=int, default=200, help='instances in the series')
    parser.add_argument(
        '--study-series',
        type=int,
        default=1,
        metavar='K',
        help='series in the study, each of --series-instances instances (default 1)',
    )
    parser.add_argument(
        '--any-instance',
        action='store_true',
        help='answer WADO-RS of any SOP Instance UID under a known series with its first instance',
    )
    parser.add_argument(
        '--instance-size',
        type=_size,
        default=70 * 1000,
        help='pixel bytes per series instance (e.g. 70KB)',
    )
    parser.add_argument(
        '--delay',
        type=float,
        default=0.0,
        help='seconds to wait before answering each DICOMweb request',
    )
    parser.add_argument(
        '--part-delay',
        type=float,
        default=0.0,
        metavar='SECONDS',
        help='seconds to wait before sending each part (instance, frame) of a multipart answer',
    )
    args = parser.parse_args(argv)
    if args.delay < 0 or args.part_delay < 0:
        parser.error('delays cannot be negative')
    if args.study_series < 1:
        parser.error('--study-series must be at least 1')
    if not args.host.startswith('127.') and args.host not in ('localhost', '::1'):
        parser.error('the benchmark server binds loopback addresses only')
    data = BenchData(
        args.frames,
        args.frame_size,
        args.series_instances,
        args.instance_size,
        args.study_series,
        args.any_instance,
    )
    with BenchServer((args.host, args.port), data, args.delay, args.part_delay) as server:
        print(server.server_address[1], flush=True)
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
