"""A small DICOMweb archive served by the recording server, for the CLI and cohort tests."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

import dicom_data
from recording_server import RecordedRequest, RecordingServer, Response, multipart_response

FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64)) + b"\xff\xd9"


def json_response(value: Any, status: int = 200) -> Response:
    return Response(
        status=status, body=json.dumps(value).encode(), content_type="application/dicom+json"
    )


def subset(ds: Dataset, keywords: tuple[str, ...]) -> dict:
    out = Dataset()
    for keyword in keywords:
        if keyword in ds:
            setattr(out, keyword, ds.data_element(keyword).value)
    return out.to_json_dict()


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, payload = chunk.partition(b"\r\n\r\n")
        parts.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    return parts


class FakeArchive:
    """Serves datasets over DICOMweb below one or more path prefixes.

    ``break_once[sop]`` is served once, instead of the instance, to the next WADO-RS request
    for that instance; ``delay`` slows every instance retrieval (the first ones take
    ``first_delays`` instead, one value each, while there are some), and ``max_in_flight``
    counts how many of them overlapped.  ``refuse`` holds SOP Instance UIDs that STOW-RS
    reports as failed.
    """

    def __init__(self, server: RecordingServer, prefixes: tuple[str, ...] = ("",)) -> None:
        self.server = server
        self.prefixes = sorted(prefixes, key=len, reverse=True)
        self.files: dict[str, bytes] = {}
        self.datasets: dict[str, Dataset] = {}
        self.break_once: dict[str, Response] = {}
        self.refuse: set[str] = set()
        self.delay = 0.0
        self.first_delays: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server.add(None, None, self.handle)

    @property
    def url(self) -> str:
        return self.server.url + self.prefixes[-1]

    def add(self, datasets: list[Dataset]) -> list[Dataset]:
        for ds in datasets:
            data = dicom_data.to_bytes(ds)
            self.files[ds.SOPInstanceUID] = data
            self.datasets[ds.SOPInstanceUID] = dicom_data.from_bytes(data)
        return datasets

    def select(
        self, study: str | None = None, series: str | None = None, sop: str | None = None
    ) -> list[Dataset]:
        return [
            ds
            for ds in self.datasets.values()
            if study in (None, ds.StudyInstanceUID)
            and series in (None, ds.SeriesInstanceUID)
            and sop in (None, ds.SOPInstanceUID)
        ]

    def wado_requests(self) -> list[RecordedRequest]:
        """Requests for single whole instances."""
        return [
            r
            for r in self.server.requests
            if r.method == "GET" and re.search(r"/instances/[^/]+$", r.path)
        ]

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Response:
        for prefix in self.prefixes:
            if request.path.startswith(prefix):
                path = request.path[len(prefix) :]
                break
        else:
            return Response(status=404, body=b"unknown prefix")
        if request.method == "POST":
            return self.stow(request)
        for pattern, method in self._ROUTES:
            match = re.fullmatch(pattern, path)
            if match:
                return getattr(self, method)(request, **match.groupdict())
        return Response(status=404, body=f"nothing at {path}".encode(), content_type="text/plain")

    _UID = r"[^/]+"
    _ROUTES = [
        (r"/studies", "qido_studies"),
        (rf"/studies/(?P<study>{_UID})/series", "qido_series"),
        (r"/series", "qido_series"),
        (rf"/studies/(?P<study>{_UID})/series/(?P<series>{_UID})/instances", "qido_instances"),
        (rf"/studies/(?P<study>{_UID})/instances", "qido_instances"),
        (r"/instances", "qido_instances"),
        (rf"/studies/(?P<study>{_UID})/metadata", "metadata"),
        (rf"/studies/(?P<study>{_UID})/series/(?P<series>{_UID})/metadata", "metadata"),
        (
            rf"/studies/(?P<study>{_UID})/series/(?P<series>{_UID})/instances/(?P<sop>{_UID})"
            r"/metadata",
            "metadata",
        ),
        (
            rf"/studies/(?P<study>{_UID})/series/(?P<series>{_UID})/instances/(?P<sop>{_UID})"
            r"/frames/(?P<frames>[0-9,]+)",
            "frames",
        ),
        (
            rf"/studies/(?P<study>{_UID})/series/(?P<series>{_UID})/instances/(?P<sop>{_UID})",
            "instance",
        ),
        (rf"/studies/(?P<study>{_UID})/series/(?P<series>{_UID})", "instances"),
        (rf"/studies/(?P<study>{_UID})", "instances"),
        (rf"/bulk/(?P<sop>{_UID})", "bulk"),
    ]

    # -- QIDO-RS ----------------------------------------------------------------------------

    def _page(self, request: RecordedRequest, items: list[dict]) -> Response:
        offset = int(request.query.get("offset", ["0"])[0])
        items = items[offset:]
        if "limit" in request.query:
            items = items[: int(request.query["limit"][0])]
        return json_response(items)

    def qido_studies(self, request: RecordedRequest) -> Response:
        studies: dict[str, dict] = {}
        for ds in self.datasets.values():
            item = studies.setdefault(
                ds.StudyInstanceUID,
                subset(
                    ds,
                    (
                        "StudyInstanceUID",
                        "PatientID",
                        "PatientName",
                        "StudyDate",
                        "AccessionNumber",
                        "StudyDescription",
                    ),
                ),
            )
            item.setdefault("00080061", {"vr": "CS", "Value": [ds.Modality]})
        for uid, item in studies.items():
            chosen = self.select(study=uid)
            item["00201206"] = {"vr": "IS", "Value": [len({ds.SeriesInstanceUID for ds in chosen})]}
            item["00201208"] = {"vr": "IS", "Value": [len(chosen)]}
        return self._page(request, list(studies.values()))

    def qido_series(self, request: RecordedRequest, study: str | None = None) -> Response:
        series: dict[str, dict] = {}
        for ds in self.select(study=study):
            series.setdefault(
                ds.SeriesInstanceUID,
                subset(
                    ds,
                    (
                        "StudyInstanceUID",
                        "SeriesInstanceUID",
                        "Modality",
                        "SeriesNumber",
                        "SeriesDescription",
                    ),
                ),
            )
        return self._page(request, list(series.values()))

    def qido_instances(
        self, request: RecordedRequest, study: str | None = None, series: str | None = None
    ) -> Response:
        series = series or request.query.get("SeriesInstanceUID", [None])[0]
        items = [
            subset(
                ds,
                (
                    "StudyInstanceUID",
                    "SeriesInstanceUID",
                    "SOPInstanceUID",
                    "SOPClassUID",
                    "InstanceNumber",
                    "Rows",
                    "Columns",
                ),
            )
            for ds in self.select(study, series)
        ]
        return self._page(request, items)

    # -- WADO-RS ----------------------------------------------------------------------------

    def metadata(
        self,
        request: RecordedRequest,
        study: str,
        series: str | None = None,
        sop: str | None = None,
    ) -> Response:
        chosen = self.select(study, series, sop)
        if not chosen:
            return Response(status=404, body=b"no such object", content_type="text/plain")
        base = self.url
        return json_response(
            [
                ds.to_json_dict(
                    bulk_data_threshold=64,
                    bulk_data_element_handler=lambda element, uid=ds.SOPInstanceUID: (
                        f"{base}/bulk/{uid}"
                    ),
                )
                for ds in chosen
            ]
        )

    def instances(
        self, request: RecordedRequest, study: str, series: str | None = None
    ) -> Response:
        chosen = self.select(study, series)
        return multipart_response([self.files[ds.SOPInstanceUID] for ds in chosen])

    def instance(self, request: RecordedRequest, study: str, series: str, sop: str) -> Response:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            broken = self.break_once.pop(sop, None)
            delay = self.first_delays.pop(0) if self.first_delays else self.delay
        try:
            time.sleep(delay)
            if broken is not None:
                return broken
            if not self.select(study, series, sop):
                return Response(status=404, body=b"no such instance", content_type="text/plain")
            return multipart_response([self.files[sop]])
        finally:
            with self._lock:
                self.in_flight -= 1

    def frames(
        self, request: RecordedRequest, study: str, series: str, sop: str, frames: str
    ) -> Response:
        ds = self.datasets[sop]
        numbers = [int(number) for number in frames.split(",")]
        if "image/jpeg" in (request.header("Accept") or ""):
            return multipart_response([FAKE_JPEG + bytes([n]) for n in numbers], "image/jpeg")
        return multipart_response(
            [dicom_data.frame_bytes(ds, n) for n in numbers], "application/octet-stream"
        )

    def bulk(self, request: RecordedRequest, sop: str) -> Response:
        return multipart_response([self.datasets[sop].PixelData], "application/octet-stream")

    # -- STOW-RS ----------------------------------------------------------------------------

    def stow(self, request: RecordedRequest) -> Response:
        stored, failed = [], []
        for part in split_multipart(request.body, request.header("Content-Type")):
            ds = dicom_data.from_bytes(part)
            item = {
                "00081150": {"vr": "UI", "Value": [ds.SOPClassUID]},
                "00081155": {"vr": "UI", "Value": [ds.SOPInstanceUID]},
            }
            if ds.SOPInstanceUID in self.refuse:
                item["00081197"] = {"vr": "US", "Value": [0xC000]}
                failed.append(item)
            else:
                self.files[ds.SOPInstanceUID] = part
                self.datasets[ds.SOPInstanceUID] = ds
                stored.append(item)
        report: dict = {}
        if stored:
            report["00081199"] = {"vr": "SQ", "Value": stored}
        if failed:
            report["00081198"] = {"vr": "SQ", "Value": failed}
        return json_response(report, 409 if failed and not stored else 202 if failed else 200)


def expected_layout(archive: FakeArchive, datasets: list[Dataset]) -> dict[str, bytes]:
    return {
        f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm": archive.files[
            ds.SOPInstanceUID
        ]
        for ds in datasets
    }


def tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }
