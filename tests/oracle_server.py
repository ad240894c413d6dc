"""The server side of the differential oracle: one recording server, one path per call.

Every scripted call of ``test_oracle.py`` gets its own URL,
``http://127.0.0.1:PORT/o/<implementation>/<scenario id>``, so both implementations can
run all their calls at the same time against one server while the requests of each call
are kept apart.  What a call is answered with is the scenario's own list of canned
answers or, when it has none, :class:`FakeDICOMweb`, a small DICOMweb service over three
generated instances.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from dicom_data import frame_bytes, make_instance, to_bytes
from recording_server import RecordedRequest, RecordingServer, Response, multipart_response

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES_1 = "1.2.826.0.1.3680043.8.498.1.1"
SERIES_2 = "1.2.826.0.1.3680043.8.498.1.2"
SOP_1 = "1.2.826.0.1.3680043.8.498.1.1.1"
SOP_2 = "1.2.826.0.1.3680043.8.498.1.1.2"
SOP_3 = "1.2.826.0.1.3680043.8.498.1.2.1"

PNG = b"\x89PNG\r\n\x1a\n" + b"rendered-image-bytes"
JPEG = b"\xff\xd8\xff\xe0" + b"thumbnail-bytes\xff\xd9"

_PATH = re.compile(r"/o/(?P<impl>[^/]+)/(?P<scenario>[^/]+)(?P<rest>/.*)?")


def make_instances() -> list[Dataset]:
    """The fake service's instances: two series, one of them a 3-frame image."""
    common = {"study_uid": STUDY, "patient_id": "P1", "patient_name": "Doe^Jane"}
    return [
        make_instance(
            series_uid=SERIES_1, sop_uid=SOP_1, seed=1, instance_number=1, series_number=1, **common
        ),
        make_instance(
            series_uid=SERIES_1, sop_uid=SOP_2, seed=2, instance_number=2, series_number=1, **common
        ),
        make_instance(
            series_uid=SERIES_2,
            sop_uid=SOP_3,
            seed=3,
            frames=3,
            bits=8,
            modality="OT",
            series_number=2,
            series_description="Frames",
            **common,
        ),
    ]


class FakeDICOMweb:
    """Answers QIDO, WADO, STOW and DELETE requests over :func:`make_instances`."""

    def __init__(self) -> None:
        self.instances = make_instances()
        self.files = {ds.SOPInstanceUID: to_bytes(ds) for ds in self.instances}

    def __call__(self, request: RecordedRequest, rest: str) -> Response:
        parts = [urllib.parse.unquote(p) for p in rest.strip("/").split("/") if p]
        while parts and parts[0] not in ("studies", "series", "instances"):
            parts = parts[1:]  # URL prefixes of the client under test
        if request.method == "POST":
            return self._stored(request)
        if request.method == "DELETE":
            return Response(status=200)
        if parts and parts[-1] in ("studies", "series", "instances"):
            return self._search(parts)
        return self._retrieve(parts)

    # -- answers ---------------------------------------------------------------------

    def _select(self, uids: dict) -> list[Dataset]:
        keys = {
            "studies": "StudyInstanceUID",
            "series": "SeriesInstanceUID",
            "instances": "SOPInstanceUID",
        }
        return [
            ds
            for ds in self.instances
            if all(str(ds.get(keys[level])) == uid for level, uid in uids.items())
        ]

    @staticmethod
    def _uids(parts: list[str]) -> dict:
        return {
            parts[i]: parts[i + 1]
            for i in range(0, len(parts) - 1, 2)
            if parts[i] in ("studies", "series", "instances")
        }

    def _search(self, parts: list[str]) -> Response:
        found = self._select(self._uids(parts))
        level = parts[-1]
        keywords = {
            "studies": ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate"),
            "series": ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber"),
            "instances": (
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "SOPInstanceUID",
                "SOPClassUID",
                "InstanceNumber",
            ),
        }[level]
        key = keywords[{"studies": 0, "series": 1, "instances": 2}[level]]
        results, seen = [], set()
        for ds in found:
            if str(ds.get(key)) in seen:
                continue
            seen.add(str(ds.get(key)))
            subset = Dataset()
            for keyword in keywords:
                setattr(subset, keyword, ds.get(keyword))
            results.append(subset.to_json_dict())
        return _json(results)

    def _retrieve(self, parts: list[str]) -> Response:
        uids = self._uids(parts)
        found = self._select(uids)
        if not found:
            return Response(status=404, body=b"not found", content_type="text/plain")
        tail = parts[-1] if len(parts) % 2 == 1 else None
        if tail == "metadata":
            return _json(
                [
                    ds.to_json_dict(
                        bulk_data_threshold=64,
                        bulk_data_element_handler=(lambda element: "http://127.0.0.1/bulk"),
                    )
                    for ds in found
                ]
            )
        if tail == "rendered":
            return Response(body=PNG, content_type="image/png")
        if tail == "thumbnail":
            return Response(body=JPEG, content_type="image/jpeg")
        if len(parts) >= 2 and parts[-2] == "frames":
            return self._frames(found[0], parts[-1])
        if "bulk" in parts:
            return multipart_response([b"bulk-data-bytes"], "application/octet-stream")
        return multipart_response([self.files[ds.SOPInstanceUID] for ds in found])

    def _frames(self, ds: Dataset, numbers: str) -> Response:
        try:
            frames = [frame_bytes(ds, int(n)) for n in numbers.split(",")]
        except (IndexError, ValueError):
            return Response(status=404, body=b"no such frame", content_type="text/plain")
        return multipart_response(frames, "application/octet-stream")

    def _stored(self, request: RecordedRequest) -> Response:
        answer = Dataset()
        answer.RetrieveURL = "http://127.0.0.1/studies/" + STUDY
        return _json(answer.to_json_dict())


def _json(value: object) -> Response:
    return Response(body=json.dumps(value).encode(), content_type="application/dicom+json")


Answer = Callable[[RecordedRequest, str], Response]


@dataclass
class _Calls:
    """What one scenario answers, and what each implementation sent it."""

    answers: Sequence[Response | Answer]
    sent: dict[str, list[RecordedRequest]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )


class OracleServer:
    """A recording server that routes ``/o/<impl>/<scenario>/...`` to the scenario."""

    def __init__(self) -> None:
        self.fake = FakeDICOMweb()
        self.server = RecordingServer()
        self._calls: dict[str, _Calls] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> OracleServer:
        self.server.start()
        self.server.add(None, None, self._answer)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()

    def url(self, impl: str, scenario: str) -> str:
        """The base URL a scenario's calls go to for one implementation."""
        return f"{self.server.url}/o/{impl}/{scenario}"

    def expect(self, scenario: str, answers: Sequence[Response | Answer]) -> None:
        """Register a scenario's answers (served in order, the last one repeated)."""
        self._calls[scenario] = _Calls(answers)

    def sent(self, impl: str, scenario: str) -> list[RecordedRequest]:
        """The requests one implementation sent for one scenario."""
        with self._lock:
            return list(self._calls[scenario].sent.get(impl, ()))

    def _answer(self, request: RecordedRequest) -> Response:
        match = _PATH.fullmatch(request.path)
        if match is None or match["scenario"] not in self._calls:
            return Response(status=404, body=b"unknown scenario", content_type="text/plain")
        calls = self._calls[match["scenario"]]
        rest = match["rest"] or "/"
        request.path = rest
        with self._lock:
            sent = calls.sent[match["impl"]]
            sent.append(request)
            count = len(sent)
        if not calls.answers:
            return self.fake(request, rest)
        answer = calls.answers[min(count, len(calls.answers)) - 1]
        return answer if isinstance(answer, Response) else answer(request, rest)
