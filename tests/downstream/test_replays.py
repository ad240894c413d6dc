"""What real downstream projects do with ``dicomweb_client``, replayed against Orthanc.

Each test runs, in this project's own interpreter and through this module, the call
sequence one project makes (read from its source at the commit named in the test's
comments), on data generated here and uploaded to Orthanc, and checks what that project
itself goes on to read from the answers: the types, the keys and the values.  The
projects are not installed; only their calls into ``dicomweb_client`` are replayed, in
the same order and with the same arguments, written here in our own words.

Where a project talks to a server that is not plain DICOMweb (ADIT's ``qidors`` /
``wadors`` / ``stowrs`` prefixes and NIfTI endpoint, a server that labels a frame
``application/octet-stream``, a server demanding credentials), a small relay in front of
Orthanc plays that server: it forwards to Orthanc and changes only what the case needs.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import logging
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pydicom.filewriter
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, VLWholeSlideMicroscopyImageStorage, generate_uid

import dicom_data
import wsi_data
from helpers import basic

SERIES_UID = "0020000E"
SOP_UID = "00080018"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"

# Dataset.from_json of metadata with a BulkDataURI for the pixels, as MONAILabel does it
pytestmark = pytest.mark.filterwarnings("ignore:No bulk data URI handler:UserWarning")


# -- helpers -------------------------------------------------------------------------


def tag_key(keyword: str) -> str:
    """The DICOM JSON key of ``keyword`` (large_image's ``dicom_key_to_tag``)."""
    return Tag(tag_for_keyword(keyword)).json_key


def upload(orthanc, datasets: list[Dataset]) -> list[Dataset]:
    orthanc.upload(dicom_data.to_bytes(ds) for ds in datasets)
    return datasets


def by_sop(datasets) -> dict[str, Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in datasets}


def same_instance(got: Dataset, sent: Dataset) -> bool:
    """The retrieved instance holds what was uploaded (identity and pixels)."""
    return (
        str(got.SOPInstanceUID) == str(sent.SOPInstanceUID)
        and str(got.SeriesInstanceUID) == str(sent.SeriesInstanceUID)
        and bytes(got.PixelData) == bytes(sent.PixelData)
    )


def split_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts (headers, content) of a multipart body: a tiny independent decoder."""
    boundary = None
    for item in content_type.split(";")[1:]:
        name, _, value = item.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"').encode()
    assert boundary, content_type
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content[:-2] if content.endswith(b"\r\n") else content))
    return parts


def make_seg(images: list[Dataset]) -> Dataset:
    """A small DICOM SEG (one segment, one bit frame per image) over ``images``."""
    first = images[0]
    sop_uid = generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SEGMENTATION_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SEGMENTATION_STORAGE
    ds.SOPInstanceUID = sop_uid
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyID",
        "StudyDescription",
    ):
        setattr(ds, keyword, getattr(first, keyword))
    ds.Modality = "SEG"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 99
    ds.InstanceNumber = 1
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SegmentationType = "BINARY"
    referenced = Dataset()
    referenced.SeriesInstanceUID = first.SeriesInstanceUID
    items = []
    for image in images:
        item = Dataset()
        item.ReferencedSOPClassUID = image.SOPClassUID
        item.ReferencedSOPInstanceUID = image.SOPInstanceUID
        items.append(item)
    referenced.ReferencedInstanceSequence = Sequence(items)
    ds.ReferencedSeriesSequence = Sequence([referenced])
    segment = Dataset()
    segment.SegmentNumber = 1
    segment.SegmentLabel = "spleen"
    segment.SegmentAlgorithmType = "MANUAL"
    ds.SegmentSequence = Sequence([segment])
    ds.Rows, ds.Columns = first.Rows, first.Columns
    ds.NumberOfFrames = len(images)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 1
    ds.HighBit = 0
    ds.PixelRepresentation = 0
    mask = np.zeros((len(images), first.Rows, first.Columns), dtype=np.uint8)
    mask[:, 4:12, 4:12] = 1
    ds.PixelData = np.packbits(mask.ravel(), bitorder="little").tobytes()
    return ds


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    """The ``dicomweb_client`` logger, its level and handlers put back afterwards (the
    Slicer replays change them as Slicer does)."""
    package = logging.getLogger("dicomweb_client")
    level, handlers = package.level, list(package.handlers)
    yield package
    package.setLevel(level)
    for handler in list(package.handlers):
        if handler not in handlers:
            package.removeHandler(handler)


# -- a relay in front of Orthanc -----------------------------------------------------

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
Answer = tuple  # (status, headers dict, body bytes)


@dataclass
class Exchange:
    """One request the relay received."""

    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Relay:
    url: str
    seen: list[Exchange] = field(default_factory=list)


def forward(upstream: str, exchange: Exchange, path: str, keep_query: bool = True) -> Answer:
    """Send ``exchange`` on to ``upstream + path``; return Orthanc's answer."""
    url = upstream + path
    if keep_query and exchange.raw_query:
        url += "?" + exchange.raw_query
    headers = {
        name: exchange.headers[name]
        for name in ("accept", "content-type")
        if name in exchange.headers
    }
    request = urllib.request.Request(
        url, data=exchange.body or None, method=exchange.method, headers=headers
    )
    try:
        with _DIRECT.open(request, timeout=30) as answer:
            return (
                answer.status,
                {"Content-Type": answer.headers.get("Content-Type", "")},
                answer.read(),
            )
    except urllib.error.HTTPError as error:
        return error.code, {"Content-Type": error.headers.get("Content-Type", "")}, error.read()


@contextmanager
def relay(
    route: Callable[[Exchange], Answer], certificate: tuple[Path, Path] | None = None
) -> Iterator[Relay]:
    """An HTTP/1.1 server on 127.0.0.1 answering every request with ``route``; HTTPS
    with ``certificate`` (``(certfile, keyfile)``)."""
    state = Relay(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            target = urllib.parse.urlsplit(self.path)
            exchange = Exchange(
                self.command,
                target.path,
                urllib.parse.parse_qs(target.query),
                target.query,
                {k.lower(): v for k, v in self.headers.items()},
                self._body(),
            )
            state.seen.append(exchange)
            status, headers, body = route(exchange)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _serve  # noqa: N815

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    scheme = "http"
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, certificate))
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- girder/large_image --------------------------------------------------------------
# sources/dicom/large_image_source_dicom/assetstore/dicomweb_assetstore_adapter.py at
# dac7c2a5fd44addd655769c14f6c4662cfda0c20 (repository HEAD ebff6109...); dicomweb_utils.py
# at 17736cc4c569e9c771ce778bae5c3091c8c5d0b3; dicom_tags.py (tags as JSON keys).


def _large_image_client(url: str, token: str | None):
    """``_create_dicomweb_client`` with ``_create_auth_session``: no session, or a
    ``requests.Session`` carrying a bearer token."""
    from dicomweb_client.api import DICOMwebClient

    session = None
    if token is not None:
        import requests

        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token}"})
    return DICOMwebClient(url=url, qido_url_prefix=None, wado_url_prefix=None, session=session)


@pytest.fixture
def slide(orthanc_clean) -> tuple[str, list[Dataset]]:
    datasets = wsi_data.make_slide()
    return orthanc_clean.url, upload(orthanc_clean, datasets)


@pytest.mark.parametrize("token", [None, "a-token"])
def test_large_image_validate_and_import(slide, token) -> None:
    url, datasets = slide
    client = _large_image_client(url, token)
    study_tag, series_tag, sop_tag = (
        tag_key("StudyInstanceUID"),
        tag_key("SeriesInstanceUID"),
        tag_key("SOPInstanceUID"),
    )

    # validateInfo: one series with two fields, then its metadata as a WADO check
    series = client.search_for_series(limit=1, fields=(study_tag, series_tag))
    assert isinstance(series, list) and len(series) == 1
    study_uid = series[0][study_tag]["Value"][0]
    series_uid = series[0][series_tag]["Value"][0]
    assert (study_uid, series_uid) == (wsi_data.STUDY, wsi_data.SERIES)
    assert (
        len(
            client.retrieve_series_metadata(
                study_instance_uid=study_uid, series_instance_uid=series_uid
            )
        )
        == 4
    )

    # _importData: studies, their series, the metadata of the first volume, instances
    studies = client.search_for_studies(limit=None, fields=[study_tag], search_filters={})
    found = []
    for study in studies:
        found += client.search_for_series(
            study[study_tag]["Value"][0], fields=[study_tag, series_tag]
        )
    assert [(s[study_tag]["Value"][0], s[series_tag]["Value"][0]) for s in found] == [
        (wsi_data.STUDY, wsi_data.SERIES)
    ]

    # get_first_wsi_volume_metadata: filter SOP class and ImageType[2] by hand
    class_tag, type_tag = tag_key("SOPClassUID"), tag_key("ImageType")
    instances = client.search_for_instances(
        study_uid, series_uid, fields=[type_tag, sop_tag, class_tag]
    )
    volume = next(
        i
        for i in instances
        if (i.get(class_tag, {}).get("Value") or [None])[0] == VLWholeSlideMicroscopyImageStorage
        and len(i.get(type_tag, {}).get("Value") or []) > 2
        and i[type_tag]["Value"][2] == "VOLUME"
    )
    metadata = client.retrieve_instance_metadata(study_uid, series_uid, volume[sop_tag]["Value"][0])
    assert isinstance(metadata, dict)
    meta = Dataset.from_json(metadata)
    assert meta.SOPInstanceUID in by_sop(datasets)
    assert meta.ImageType[2] == "VOLUME"
    assert meta.TotalPixelMatrixColumns in (256, 128, 64)

    files = [i[sop_tag]["Value"][0] for i in client.search_for_instances(study_uid, series_uid)]
    assert sorted(files) == sorted(by_sop(datasets))

    # __init__.py at 6871cb83610812717ead7a01d7d0aba6fdde7bc4, _open_wsi_dicomweb: the
    # top-level name with the URL positional (then handed to wsidicom, which
    # test_wsidicom.py covers)
    import dicomweb_client

    web = dicomweb_client.DICOMwebClient(
        url, qido_url_prefix=None, wado_url_prefix=None, session=None
    )
    assert web.base_url == url


def _large_image_stream(response, buffer_size: int = 65536) -> bytes:
    """What ``_stream_retrieve_instance_response`` reads: the request's Accept decides;
    a multipart answer is cut after the first blank line and before the closing
    boundary found from ``response.headers['content-type']``."""
    if "multipart/related" not in response.request.headers.get("Accept", ""):
        with response:
            return b"".join(response.iter_content(buffer_size))
    content_type = response.headers["content-type"]
    media_type, *parameters = (p.strip() for p in content_type.split(";"))
    assert media_type.lower() == "multipart/related"
    boundary = next(
        v.strip('"')
        for k, _, v in (p.partition("=") for p in parameters)
        if k.lower() == "boundary"
    ).encode()
    with response:
        data = b"".join(response.iter_content(buffer_size))
    body = data[data.index(b"\r\n\r\n") + 4 :]
    return body.split(b"\r\n--" + boundary, 1)[0]


@pytest.mark.parametrize("token", [None, "a-token"])
def test_large_image_download_instance(slide, token) -> None:
    """downloadFile: the URL from ``_get_instances_url(_Transaction.RETRIEVE, ...)``,
    ``_http_get(url, headers=..., stream=True)`` single part first, multipart after an
    ``requests.HTTPError`` or a multipart answer, then the stream."""
    import requests
    from dicomweb_client.web import _Transaction

    url, datasets = slide
    sent = datasets[1]
    client = _large_image_client(url, token)
    instance_url = client._get_instances_url(
        _Transaction.RETRIEVE, wsi_data.STUDY, wsi_data.SERIES, str(sent.SOPInstanceUID)
    )
    assert instance_url == (
        f"{url}/studies/{wsi_data.STUDY}/series/{wsi_data.SERIES}/instances/{sent.SOPInstanceUID}"
    )

    def request(multipart: bool):
        if multipart:
            accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
        else:
            accept = "application/dicom; transfer-syntax=*"
        return client._http_get(instance_url, headers={"Accept": accept}, stream=True)

    response = None
    try:
        response = request(multipart=False)
    except requests.HTTPError:
        pass
    single = (
        response is not None
        and response.status_code == 200
        and not any(
            x in response.headers.get("Content-Type") for x in ("multipart/related", "boundary")
        )
    )
    if not single:
        response = request(multipart=True)
        assert "multipart/related" in response.request.headers["Accept"]
    data = _large_image_stream(response)
    got = pydicom.dcmread(DicomBytesIO(data))
    assert same_instance(got, sent)


# -- Project-MONAI/MONAILabel --------------------------------------------------------
# monailabel/datastore/dicom.py at d95c8a2ea6c8b9dd0bc6d9a06cd3bd8767df3da0 (DICOMwebClientX,
# DICOMWebDatastore), monailabel/datastore/utils/dicom.py at
# 45ae4b8d3562d2053d2088ba33638237d057afd5 (dicom_web_download_series,
# dicom_web_upload_dcm), monailabel/interfaces/app.py at f18b767e5185f74118c808534511f584542462bb
# (client construction); repository HEAD 058ddfc45ac52c2cae7783e2cadac0efeb2a9647.


def _monailabel_client_class():
    from dicomweb_client import DICOMwebClient  # as MONAILabel imports it

    class RelabellingClient(DICOMwebClient):
        """MONAILabel's subclass pattern: call the answer multipart/related when the
        server labelled it otherwise, then let the package decode it.  (``labels``
        records what the override saw; MONAILabel has no such list.)"""

        labels: list[str] = []

        def _decode_multipart_message(self, response, stream):
            media_type = response.headers["content-type"].split(";")[0].strip()
            self.labels.append(media_type)
            if media_type.lower() != "multipart/related":
                response.headers["content-type"] = "multipart/related"
            return super()._decode_multipart_message(response, stream)

    return RelabellingClient


def _monailabel_download_series(client, study_id, series_id, folder: Path) -> list[Path]:
    """dicom_web_download_series without frame fetching: find the study when not
    given, retrieve the series, write each instance as ``<SOPInstanceUID>.dcm``."""
    if not study_id:
        matches = [
            s
            for s in client.search_for_series(search_filters={"SeriesInstanceUID": series_id})
            if s[SERIES_UID]["Value"] == [series_id]
        ]
        study_id = str(Dataset.from_json(matches[0])["StudyInstanceUID"].value)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for instance in client.retrieve_series(study_id, series_id):
        path = folder / f"{instance['SOPInstanceUID'].value}.dcm"
        instance.save_as(str(path))
        paths.append(path)
    return paths


@pytest.mark.parametrize("credentials", [False, True], ids=["anonymous", "user-pass"])
def test_monailabel_datastore_round_trip(orthanc_clean, tmp_path: Path, credentials: bool) -> None:
    from dicomweb_client.session_utils import create_session_from_user_pass

    images = upload(orthanc_clean, dicom_data.make_study(n_series=2, n_instances=3))
    first_series = [ds for ds in images if ds.SeriesNumber == 1]
    series_id = str(first_series[0].SeriesInstanceUID)
    # _init_dicomweb_datastore: a user/pass session when both settings are set
    session = create_session_from_user_pass("monai", "label") if credentials else None
    client = _monailabel_client_class()(
        url=orthanc_clean.url,
        session=session,
        qido_url_prefix=None,
        wado_url_prefix=None,
        stow_url_prefix=None,
    )
    assert client.base_url == orthanc_clean.url  # the datastore's name and cache key

    # list_images with the default search filter {"Modality": "CT"}
    listed = [
        str(Dataset.from_json(ds)["SeriesInstanceUID"].value)
        for ds in client.search_for_series(search_filters={"Modality": "CT"})
    ]
    assert sorted(listed) == sorted({str(ds.SeriesInstanceUID) for ds in images})

    # get_image_uri -> dicom_web_download_series(None, image_id, ...)
    paths = _monailabel_download_series(client, None, series_id, tmp_path / series_id)
    written = {p.stem: pydicom.dcmread(p) for p in paths}
    assert sorted(written) == sorted(by_sop(first_series))
    assert client.labels == ["multipart/related"]  # retrieve_series went through the hook
    for sop, sent in by_sop(first_series).items():
        assert same_instance(written[sop], sent)
        assert np.array_equal(written[sop].pixel_array, sent.pixel_array)

    # _dicom_info: the first matching series as a Dataset, six fields as strings
    meta = Dataset.from_json(
        client.search_for_series(search_filters={"SeriesInstanceUID": series_id})[0]
    )
    info = {
        f: str(meta[f].value) if meta.get(f) else "UNK"
        for f in (
            "StudyDate",
            "StudyTime",
            "Modality",
            "RetrieveURL",
            "PatientID",
            "StudyInstanceUID",
        )
    }
    assert info["StudyDate"] == "20240101" and info["Modality"] == "CT"
    assert info["PatientID"] == "P1"
    assert info["StudyInstanceUID"] == str(first_series[0].StudyInstanceUID)
    assert info["RetrieveURL"].endswith(f"/series/{series_id}")

    # save_label -> dicom_web_upload_dcm: read the SEG file, store it, take the series UID
    # from the first value of the answer that holds "/series/"
    seg = make_seg(first_series)
    seg_file = tmp_path / "label.dcm"
    dicom_data.write_part10(seg_file, seg)
    result = client.store_instances([pydicom.dcmread(seg_file)])
    url = next((str(e.value) for e in result.iterall() if "/series/" in str(e.value)), "")
    assert url.split("/series/")[1].split("/")[0] == str(seg.SeriesInstanceUID)

    # get_labeled_images: SEG series, their metadata, ReferencedSeriesSequence
    labeled = []
    for found in (
        Dataset.from_json(ds) for ds in client.search_for_series(search_filters={"Modality": "SEG"})
    ):
        series_meta = client.retrieve_series_metadata(
            str(found["StudyInstanceUID"].value), str(found["SeriesInstanceUID"].value)
        )
        seg_meta = Dataset.from_json(series_meta[0])
        assert seg_meta.get("ReferencedSeriesSequence")
        labeled.append(
            str(seg_meta["ReferencedSeriesSequence"].value[0]["SeriesInstanceUID"].value)
        )
    assert labeled == [series_id]

    # get_label_uri -> download the SEG series itself
    seg_paths = _monailabel_download_series(
        client, None, str(seg.SeriesInstanceUID), tmp_path / "seg"
    )
    stored = pydicom.dcmread(seg_paths[0])
    assert stored.Modality == "SEG" and bytes(stored.PixelData) == bytes(seg.PixelData)


def _bare_frames(orthanc_url: str) -> Callable[[Exchange], Answer]:
    """A server that answers a frame request with the bare frame (one part, labelled
    ``application/octet-stream``): the case MONAILabel's subclass exists for."""

    def route(exchange: Exchange) -> Answer:
        status, headers, body = forward(orthanc_url, exchange, exchange.path)
        if status == 200 and "/frames/" in exchange.path:
            parts = split_multipart(headers["Content-Type"], body)
            return status, {"Content-Type": "application/octet-stream"}, parts[0][1]
        return status, headers, body

    return route


def test_monailabel_fetch_by_frame_through_subclass(orthanc_clean) -> None:
    """dicom_web_download_series with frame_fetch: the series metadata, then frame 1 of
    every instance from two threads, through the subclass against a server labelling
    frames application/octet-stream."""
    images = upload(orthanc_clean, dicom_data.make_study(n_series=1, n_instances=4))
    study_id, series_id = str(images[0].StudyInstanceUID), str(images[0].SeriesInstanceUID)
    with relay(_bare_frames(orthanc_clean.rest_url)) as front:
        client = _monailabel_client_class()(
            url=front.url + "/dicom-web",
            session=None,
            qido_url_prefix=None,
            wado_url_prefix=None,
            stow_url_prefix=None,
        )

        def fetch(metadata: dict) -> tuple[str, bytes]:
            d = Dataset.from_json(metadata)
            sop = str(d["SOPInstanceUID"].value)
            frame = client.retrieve_instance_frames(
                study_instance_uid=study_id,
                series_instance_uid=series_id,
                sop_instance_uid=sop,
                frame_numbers=[1],
            )[0]
            return sop, frame

        metadata = client.retrieve_series_metadata(study_id, series_id)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="DICOMFetch") as executor:
            frames = dict(executor.map(fetch, metadata))
    assert sorted(frames) == sorted(by_sop(images))
    for sop, sent in by_sop(images).items():
        assert isinstance(frames[sop], bytes)
        assert frames[sop] == dicom_data.frame_bytes(sent, 1)
    frame_requests = [e for e in front.seen if "/frames/" in e.path]
    assert len(frame_requests) == 4
    assert client.labels == ["application/octet-stream"] * 4  # the override relabelled


# -- mercure-imaging/mercure ---------------------------------------------------------
# app/dispatch/target_types/dicomweb.py at 50406b2e4b68c331b44a2f4d9a9e2e6619d31f84
# (repository HEAD 3b2772270474b78fa927ada3bc53931ef6bbed7f): create_client,
# test_connection, find_from_target, get_from_target, send_to_target.


def _mercure_client(
    url: str, user: str | None = None, password: str | None = None, token: str | None = None
):
    from dicomweb_client.api import DICOMwebClient
    from dicomweb_client.session_utils import create_session_from_user_pass

    session = headers = None
    if user and password:
        session = create_session_from_user_pass(username=user, password=password)
    elif token:
        headers = {"Authorization": "Bearer {}".format(token)}
    client = DICOMwebClient(
        url=url,
        qido_url_prefix=None,
        wado_url_prefix=None,
        stow_url_prefix=None,
        session=session,
        headers=headers,
    )
    client.set_http_retry_params(retry=False, max_attempts=2, wait_exponential_multiplier=100)
    logging.getLogger("mercure-replay").info(client)  # mercure logs the client
    return client


def _mercure_test_connection(client, url: str) -> dict:
    from dicomweb_client import DICOMfileClient
    from dicomweb_client.api import DICOMwebClient
    from requests.exceptions import HTTPError

    results: dict = {"Authentication": None}
    if isinstance(client, DICOMwebClient):
        try:
            client._http_get(url)
            results["Authentication"] = True
        except HTTPError as e:
            results["Authentication"] = e.errno != 401
    elif isinstance(client, DICOMfileClient):
        folder = Path(url[7:])
        results["Authentication"] = folder.is_dir() or f"No such folder {folder}"
    try:
        client.search_for_studies(limit=1)
        results["QIDO query"] = True
    except HTTPError:
        results["QIDO query"] = False
    return results


def _basic_auth_front(orthanc_url: str, user: str, password: str):
    expected = basic(user, password)

    def route(exchange: Exchange) -> Answer:
        if exchange.headers.get("authorization") != expected:
            return (
                401,
                {"Content-Type": "text/plain", "WWW-Authenticate": 'Basic realm="x"'},
                b"unauthorized",
            )
        return forward(orthanc_url, exchange, exchange.path)

    return route


def test_mercure_connection_test(orthanc_clean) -> None:
    upload(orthanc_clean, dicom_data.make_study(n_series=1, n_instances=1))
    url = orthanc_clean.url
    for client in (_mercure_client(url), _mercure_client(url, token="tok")):
        assert _mercure_test_connection(client, url) == {"Authentication": True, "QIDO query": True}
    # a wrong QIDO root: the query fails with an HTTPError that mercure catches
    wrong = url + "/nowhere"
    assert _mercure_test_connection(_mercure_client(wrong), wrong)["QIDO query"] is False

    with relay(_basic_auth_front(orthanc_clean.rest_url, "mercure", "secret")) as front:
        good = _mercure_client(front.url + "/dicom-web", "mercure", "secret")
        assert _mercure_test_connection(good, front.url + "/dicom-web") == {
            "Authentication": True,
            "QIDO query": True,
        }
        bad = _mercure_client(front.url + "/dicom-web", "mercure", "wrong")
        # requests' HTTPError from raise_for_status has no errno, so the established
        # package reports Authentication True here too; only the QIDO query fails
        assert _mercure_test_connection(bad, front.url + "/dicom-web") == {
            "Authentication": True,
            "QIDO query": False,
        }


def _mercure_archive() -> list[Dataset]:
    archive = dicom_data.make_archive(n_studies=2, n_series=2, n_instances=2)
    for ds in archive:  # Orthanc takes a "+" in a query for itself, not for a space
        ds.SeriesDescription = f"Series{ds.SeriesNumber}"
    return archive


def _mercure_send(client, archive: list[Dataset], source: Path) -> None:
    """send_to_target: every .dcm below the folder, read with pydicom, stored at once."""
    dicom_data.write_files(archive, source / "sub")
    datasets = [pydicom.dcmread(str(k)) for k in source.glob("**/*.dcm")]
    response = client.store_instances(datasets)
    assert isinstance(response, Dataset)
    assert len(response.ReferencedSOPSequence) == len(datasets) == len(archive)


def _mercure_find_and_get(
    client, archive: list[Dataset], destination: Path, search_filters: dict[str, list[str]]
) -> None:
    """find_from_target, then get_from_target into ``destination``."""
    use_filters = {"AccessionNumber": "ACC0002"}
    use_filters.update({k: v[0] for k, v in search_filters.items()})
    metadata = client.search_for_series(
        search_filters=use_filters,
        get_remaining=True,
        fields=[
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "NumberOfSeriesRelatedInstances",
            "StudyDescription",
            "SeriesDescription",
        ]
        + list(search_filters.keys()),
    )
    series = [
        d
        for d in (Dataset.from_json(ds) for ds in metadata)
        if all(d.get(f) in values for f, values in search_filters.items())
    ]
    expected = [
        ds
        for ds in archive
        if ds.AccessionNumber == "ACC0002"
        and all(ds.get(f) in values for f, values in search_filters.items())
    ]
    assert sorted(str(s.SeriesInstanceUID) for s in series) == sorted(
        {str(ds.SeriesInstanceUID) for ds in expected}
    )
    assert sum(int(x.NumberOfSeriesRelatedInstances) for x in series) == len(expected)

    # get_from_target: retrieve each series, save as <SOPInstanceUID>.dcm
    destination.mkdir()
    for s in series:
        for instance in client.retrieve_series(s.StudyInstanceUID, s.SeriesInstanceUID):
            instance.save_as(f"{destination}/{instance.get('SOPInstanceUID')}.dcm")
    saved = {p.stem: pydicom.dcmread(p) for p in destination.glob("*.dcm")}
    assert sorted(saved) == sorted(by_sop(expected))
    for sop, sent in by_sop(expected).items():
        assert same_instance(saved[sop], sent)


def test_mercure_send_find_and_get(orthanc_clean, tmp_path: Path) -> None:
    archive = _mercure_archive()
    client = _mercure_client(orthanc_clean.url)
    _mercure_send(client, archive, tmp_path / "outgoing" / "task")
    _mercure_find_and_get(
        client, archive, tmp_path / "incoming", {"SeriesDescription": ["Series2"]}
    )


def test_mercure_file_target(tmp_path: Path) -> None:
    """The same target type with a ``file://`` URL (mercure's app/tests/test_query.py at
    a6e71a05a41a77c2d6387b464f32f31655aebc2a stores files named by SOP Instance UID)."""
    from dicomweb_client import DICOMfileClient

    archive = _mercure_archive()
    folder = tmp_path / "dicomweb"
    folder.mkdir()
    for ds in archive[:4]:
        dicom_data.write_part10(folder / str(ds.SOPInstanceUID), ds)
    url = f"file://{folder}"
    client = DICOMfileClient(url=url, in_memory=False, update_db=True)
    assert _mercure_test_connection(client, url) == {"Authentication": True, "QIDO query": True}
    _mercure_send(client, archive[4:], tmp_path / "outgoing" / "task")
    client = DICOMfileClient(url=url, in_memory=False, update_db=True)
    _mercure_find_and_get(client, archive, tmp_path / "incoming", {})


# -- openradx/adit -------------------------------------------------------------------
# adit-client/adit_client/client.py at d463e9f40fd5359d657c88c695b2b504f84b58e2 (repository
# HEAD e3bd000dedaaa663bba5e804640e6e889a1d5c29): AditClient's DICOMweb calls and its
# NIfTI downloads (_http_get with stream=True, then _decode_multipart_message on a client
# whose _extract_part_content is swapped for one keeping the part headers).

ADIT_TOKEN = "adit-secret-token"
ADIT_AE = "ORTHANC"
NIFTI_ACCEPT = "multipart/related; type=application/octet-stream"


def _adit_server(orthanc) -> Callable[[Exchange], Answer]:
    """ADIT's DICOMweb API in front of Orthanc: token check, the three prefixes, and a
    NIfTI endpoint (one gzip "volume" per image plus a JSON sidecar per series)."""
    base = f"/api/dicom-web/{ADIT_AE}/"

    def nifti(exchange: Exchange, uids: list[str]) -> Answer:
        search = "/dicom-web/studies/" + uids[0]
        if len(uids) > 1:
            search += "/series/" + uids[1]
        query = "" if len(uids) < 3 else f"?SOPInstanceUID={uids[2]}"
        found = json.loads(orthanc.rest("GET", search + "/instances" + query))
        boundary = "nifti-" + hashlib.sha1("/".join(uids).encode()).hexdigest()[:12]
        body = b""
        for item in sorted(found, key=lambda i: i[SOP_UID]["Value"][0]):
            sop = item[SOP_UID]["Value"][0]
            orthanc_id = json.loads(orthanc.rest("POST", "/tools/lookup", sop.encode()))[0]["ID"]
            frame = orthanc.rest("GET", f"/instances/{orthanc_id}/frames/0/raw")
            pieces = [
                (f"{sop}.nii.gz", gzip.compress(frame, mtime=0)),
                (f"{sop}.json", json.dumps({"SOPInstanceUID": sop}).encode()),
            ]
            for name, content in pieces:
                head = "Content-Type: application/octet-stream\r\n"
                if len(uids) < 3:  # single images carry the name on the whole answer
                    head += f'Content-Disposition: attachment; filename="{name}"\r\n'
                body += f"--{boundary}\r\n{head}\r\n".encode() + content + b"\r\n"
                if len(uids) == 3:
                    break
        body += f"--{boundary}--\r\n".encode()
        headers = {
            "Content-Type": f"multipart/related; type=application/octet-stream; boundary={boundary}"
        }
        if len(uids) == 3:
            headers["Content-Disposition"] = f'attachment; filename="{uids[2]}.nii.gz"'
        return 200, headers, body

    def route(exchange: Exchange) -> Answer:
        if exchange.headers.get("authorization") != f"Token {ADIT_TOKEN}":
            return 401, {"Content-Type": "application/json"}, b'{"detail": "no token"}'
        if not exchange.path.startswith(base):
            return 404, {"Content-Type": "text/plain"}, b"not found"
        prefix, _, rest = exchange.path[len(base) :].partition("/")
        if prefix not in ("qidors", "wadors", "stowrs"):
            return 404, {"Content-Type": "text/plain"}, b"not found"
        if rest.endswith("/nifti"):
            assert exchange.headers.get("accept") == NIFTI_ACCEPT
            parts = rest[: -len("/nifti")].split("/")
            return nifti(exchange, parts[1::2])
        # pseudonym and trial protocol are ADIT's own: it consumes them, Orthanc never sees
        return forward(
            orthanc.rest_url, exchange, "/dicom-web/" + rest, keep_query=prefix == "qidors"
        )

    return route


class _AditReplay:
    """The calls of AditClient, with its client construction (``_create_dicom_web_client``)."""

    def __init__(self, server_url: str, verify: str | bool = True) -> None:
        self.server_url = server_url
        self.verify = verify
        self.version = "1.0.0"  # importlib.metadata.version("adit-client") there

    def client(self, ae_title: str):
        from dicomweb_client import DICOMwebClient, session_utils  # as ADIT imports them

        session = session_utils.create_session()
        if isinstance(self.verify, bool):
            session.verify = self.verify
        else:
            session = session_utils.add_certs_to_session(session=session, ca_bundle=self.verify)
        return DICOMwebClient(
            session=session,
            url=f"{self.server_url}/api/dicom-web/{ae_title}",
            qido_url_prefix="qidors",
            wado_url_prefix="wadors",
            stow_url_prefix="stowrs",
            headers={
                "Authorization": f"Token {ADIT_TOKEN}",
                "User-Agent": f"python-adit_client/{self.version}",
            },
        )

    def nifti(self, uids: list[str], stream: bool) -> list[tuple[str, bytes]]:
        path = "/".join(
            f"{level}/{uid}" for level, uid in zip(("studies", "series", "instances"), uids)
        )
        url = f"{self.server_url}/api/dicom-web/{ADIT_AE}/wadors/{path}/nifti"
        response = self.client(ADIT_AE)._http_get(
            url, headers={"Accept": NIFTI_ACCEPT}, stream=True
        )
        response.raise_for_status()
        return [(name, content.read()) for name, content in self.parts(response, stream)]

    def parts(self, response, stream: bool):
        """_iter_multipart_response: parts with their headers, names from each part's
        Content-Disposition or else from the answer's."""
        import io

        def keep_headers(part: bytes):
            if part in (b"", b"--", b"\r\n") or part.startswith(b"--\r\n"):
                return None
            return part

        decoder = self.client("")
        original = decoder._extract_part_content
        try:
            decoder._extract_part_content = keep_headers
            for part in decoder._decode_multipart_message(response, stream=stream):
                headers, content = {}, part
                index = part.find(b"\r\n\r\n")
                if index > -1:
                    content = part[index + 4 :]
                    for line in part[:index].split(b"\r\n"):
                        if b":" in line:
                            name, value = line.split(b":", 1)
                            headers[name.decode().strip()] = value.decode().strip()
                disposition = headers.get("Content-Disposition")
                if disposition is None:
                    disposition = next(
                        v for k, v in response.headers.items() if k.lower() == "content-disposition"
                    )
                name = disposition.split("filename=")[1].strip('"')
                yield Path(name).name, io.BytesIO(content)
        finally:
            decoder._extract_part_content = original
        assert decoder._extract_part_content == original


@pytest.fixture(params=["http", "https-ca-bundle"])
def adit(
    request, orthanc_clean, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[_AditReplay, Relay, list[Dataset]]]:
    """ADIT in front of Orthanc; over HTTPS the client gets ``verify=<CA bundle path>``
    (AditClient's ``verify: str | bool``), which it turns into ``add_certs_to_session``."""
    certificate = None
    if request.param == "https-ca-bundle":
        certificate = request.getfixturevalue("tls_certificate")
        # requests lets these override a session's CA bundle; keep the machine's out
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
    datasets = upload(orthanc_clean, dicom_data.make_study(n_series=2, n_instances=2))
    with relay(_adit_server(orthanc_clean), certificate) as front:
        verify = str(certificate[0]) if certificate else True
        yield _AditReplay(front.url, verify), front, datasets


def test_adit_search_retrieve_and_store(adit) -> None:
    replay, front, datasets = adit
    study = str(datasets[0].StudyInstanceUID)
    series = str(datasets[0].SeriesInstanceUID)
    client = replay.client(ADIT_AE)

    studies = [
        Dataset.from_json(r) for r in client.search_for_studies(search_filters={"PatientID": "P1"})
    ]
    assert [str(s.StudyInstanceUID) for s in studies] == [study]
    found = [Dataset.from_json(r) for r in client.search_for_series(study, search_filters=None)]
    assert sorted(str(s.SeriesInstanceUID) for s in found) == sorted(
        {str(ds.SeriesInstanceUID) for ds in datasets}
    )
    images = [
        Dataset.from_json(r)
        for r in client.search_for_instances(study, series, search_filters={"InstanceNumber": "2"})
    ]
    assert [int(i.InstanceNumber) for i in images] == [2]

    whole = client.retrieve_study(study, additional_params={"pseudonym": "Pseudo1"})
    assert sorted(str(ds.SOPInstanceUID) for ds in whole) == sorted(by_sop(datasets))
    assert all(isinstance(ds, Dataset) for ds in whole)
    study_meta = client.retrieve_study_metadata(study, additional_params={})
    assert len(study_meta) == 4 and all(isinstance(m, dict) for m in study_meta)
    assert sorted(str(ds.SOPInstanceUID) for ds in client.iter_study(study)) == sorted(
        by_sop(datasets)
    )

    own = [ds for ds in datasets if str(ds.SeriesInstanceUID) == series]
    params = {"trial_protocol_id": "T1", "trial_protocol_name": "Trial one"}
    got = client.retrieve_series(study, series_instance_uid=series, additional_params=params)
    assert sorted(str(ds.SOPInstanceUID) for ds in got) == sorted(by_sop(own))
    meta = client.retrieve_series_metadata(
        study, series_instance_uid=series, additional_params=params
    )
    assert sorted(m[SOP_UID]["Value"][0] for m in meta) == sorted(by_sop(own))
    assert sorted(
        str(ds.SOPInstanceUID) for ds in client.iter_series(study, series_instance_uid=series)
    ) == sorted(by_sop(own))
    sent = own[0]
    image = client.retrieve_instance(
        study, series, str(sent.SOPInstanceUID), additional_params={"pseudonym": "Pseudo1"}
    )
    assert same_instance(image, sent)
    image_meta = client.retrieve_instance_metadata(
        study, series, str(sent.SOPInstanceUID), additional_params={}
    )
    assert image_meta[SOP_UID]["Value"] == [str(sent.SOPInstanceUID)]

    extra = dicom_data.make_instance(study_uid=study, series_uid=generate_uid())
    stored = client.store_instances([extra])
    assert isinstance(stored, Dataset)
    assert len(stored.ReferencedSOPSequence) == 1

    # the additional parameters reached ADIT, and every request carried its headers
    retrieves = [e for e in front.seen if "/wadors/" in e.path]
    assert {"pseudonym": ["Pseudo1"]} in [e.query for e in retrieves]
    assert {"trial_protocol_id": ["T1"], "trial_protocol_name": ["Trial one"]} in [
        e.query for e in retrieves
    ]
    assert all(e.headers.get("user-agent") == "python-adit_client/1.0.0" for e in front.seen)
    assert {e.path.split("/")[4] for e in front.seen} == {"qidors", "wadors", "stowrs"}


@pytest.mark.parametrize("stream", [False, True], ids=["retrieve", "iter"])
def test_adit_nifti_downloads(adit, stream: bool) -> None:
    replay, front, datasets = adit
    study = str(datasets[0].StudyInstanceUID)
    own = [ds for ds in datasets if ds.SeriesInstanceUID == datasets[0].SeriesInstanceUID]
    series = str(own[0].SeriesInstanceUID)

    def volumes(files: list[tuple[str, bytes]]) -> dict[str, bytes]:
        return {
            name[: -len(".nii.gz")]: gzip.decompress(content)
            for name, content in files
            if name.endswith(".nii.gz")
        }

    for uids, expected in (([study], datasets), ([study, series], own)):
        files = replay.nifti(uids, stream=stream)
        assert all(isinstance(name, str) and isinstance(content, bytes) for name, content in files)
        assert len(files) == 2 * len(expected)
        sidecars = {name: json.loads(content) for name, content in files if name.endswith(".json")}
        assert sorted(sidecars) == sorted(f"{sop}.json" for sop in by_sop(expected))
        got = volumes(files)
        assert sorted(got) == sorted(by_sop(expected))
        for sop, sent in by_sop(expected).items():
            assert got[sop] == dicom_data.frame_bytes(sent, 1)

    sop = str(own[1].SOPInstanceUID)
    files = replay.nifti([study, series, sop], stream=stream)
    assert [name for name, _ in files] == [f"{sop}.nii.gz"]  # from the answer's header
    assert volumes(files)[sop] == dicom_data.frame_bytes(own[1], 1)


# -- Slicer/Slicer -------------------------------------------------------------------
# Modules/Scripted/DICOMLib/DICOMUtils.py, importFromDICOMWeb, at
# cecaf6792162de71ba01d834e372f2d138b83a01 (repository HEAD
# 583e9b37d50ead7daf7b783dce465ccaecec8809).


def _slicer_client(url: str, how: str):
    from dicomweb_client.api import DICOMwebClient
    from dicomweb_client.session_utils import create_session_from_auth

    if how == "plain":
        return DICOMwebClient(url=url)
    if how == "auth":
        import requests

        session = create_session_from_auth(requests.auth.HTTPBasicAuth("user", "password"))
        return DICOMwebClient(url=url, session=session)
    return DICOMwebClient(url=url, headers={"Authorization": "Bearer a-token"})


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "per-instance"])
@pytest.mark.parametrize("how", ["plain", "auth", "token"])
def test_slicer_import_from_dicomweb(
    orthanc_clean,
    tmp_path: Path,
    how: str,
    bulk: bool,
    package_logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    datasets = upload(orthanc_clean, dicom_data.make_study(n_series=2, n_instances=3))
    study = str(datasets[0].StudyInstanceUID)
    client = _slicer_client(orthanc_clean.url, how)
    client_logger = logging.getLogger("dicomweb_client")
    original_level = client_logger.level
    caplog.set_level(logging.DEBUG)

    series_list = client.search_for_series(study_instance_uid=study)
    series_uids = [s["0020000E"]["Value"][0] for s in series_list]
    assert sorted(series_uids) == sorted({str(ds.SeriesInstanceUID) for ds in datasets})

    client_logger.setLevel(logging.WARNING)  # Slicer quiets the package for the transfer
    caplog.clear()
    file_number = 0
    imported = []
    try:
        for series_uid in series_uids:
            series_info = client.retrieve_series_metadata(
                study_instance_uid=study, series_instance_uid=series_uid
            )
            assert all(isinstance(i["00080018"]["Value"][0], str) for i in series_info)
            if bulk:
                instances = client.iter_series(
                    study_instance_uid=study, series_instance_uid=series_uid
                )
            else:
                instances = series_info
            folder = tmp_path / f"DICOMweb-{series_uid}"
            folder.mkdir()
            for instance in instances:
                if not bulk:
                    instance = client.retrieve_instance(
                        study, series_uid, instance["00080018"]["Value"][0]
                    )
                instance.save_as(str(folder / f"{file_number}.dcm"))
                file_number += 1
            imported.append(series_uid)
    finally:
        quiet = [
            r
            for r in caplog.records
            if r.name.startswith("dicomweb_client") and r.levelno < logging.WARNING
        ]
        client_logger.setLevel(original_level)
    assert quiet == []  # the package logs below WARNING under "dicomweb_client" only
    assert imported == series_uids and file_number == len(datasets)

    read_back = by_sop(pydicom.dcmread(p) for p in tmp_path.glob("DICOMweb-*/*.dcm"))
    assert sorted(read_back) == sorted(by_sop(datasets))
    for sop, sent in by_sop(datasets).items():
        assert same_instance(read_back[sop], sent)
        assert np.array_equal(read_back[sop].pixel_array, sent.pixel_array)


# -- SlicerDICOMwebBrowser -----------------------------------------------------------
# lassoan/SlicerDICOMwebBrowser, DICOMwebBrowser/DICOMwebBrowser.py at
# 01ee03ddf05c7ee08331636923e8180f8f16e5a4: the version check in setup(), the GCP URL,
# showBrowser / studySelected / downloadSelectedSeries with _get_all_pages paging.


def _all_pages(search, *args, **kwargs) -> list:
    """The browser's ``_get_all_pages``: ask with growing offsets until an empty page or
    a page that starts with a result already seen."""
    data: list = []
    offset = 0
    while True:
        kwargs["offset"] = offset
        page = search(*args, **kwargs)
        if len(page) == 0 or page[0] in data:
            return data
        data.extend(page)
        offset += len(page)


def test_slicer_dicomweb_browser(
    orthanc_clean, tmp_path: Path, package_logger: logging.Logger
) -> None:
    import dicomweb_client
    from packaging import version

    assert not version.parse(dicomweb_client.__version__) < version.parse("0.57")

    from dicomweb_client.ext.gcp.uri import GoogleCloudHealthcareURL

    assert str(
        GoogleCloudHealthcareURL(project_id="p", location="l", dataset_id="d", dicom_store_id="s")
    ) == (
        "https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/"
        "dicomStores/s/dicomWeb"
    )

    archive = upload(orthanc_clean, dicom_data.make_archive(n_studies=2, n_series=2, n_instances=2))
    import dicomweb_client.log

    configured = dicomweb_client.log.configure_logging(2)
    assert configured is package_logger and package_logger.level == logging.INFO
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=orthanc_clean.url, session=None, headers={})

    # showBrowser: every study with StudyDescription, cached as JSON
    studies = _all_pages(client.search_for_studies, fields=["StudyDescription"])
    cache = tmp_path / "studies.json"
    cache.write_text(json.dumps(studies))
    assert json.loads(cache.read_text()) == studies
    assert sorted(s["0020000D"]["Value"][0] for s in studies) == sorted(
        {str(ds.StudyInstanceUID) for ds in archive}
    )
    assert all(Dataset.from_json(s).StudyDescription == "Test study" for s in studies)

    # studySelected: the series of one study with SeriesNumber, shown from Datasets
    study = str(archive[0].StudyInstanceUID)
    series = _all_pages(client.search_for_series, study, fields=["SeriesNumber"])
    json.dumps(series)
    rows = sorted(
        (
            int(d.SeriesNumber),
            str(d.Modality),
            str(d.SeriesDescription),
            int(d.NumberOfSeriesRelatedInstances),
            str(d.SeriesInstanceUID),
        )
        for d in (Dataset.from_json(s) for s in series)
        if hasattr(d, "SeriesInstanceUID")
    )
    own = [ds for ds in archive if str(ds.StudyInstanceUID) == study]
    assert [r[:4] for r in rows] == [(1, "CT", "Series 1", 2), (2, "CT", "Series 2", 2)]

    # downloadSelectedSeries: all instances, then iter_series for a new series, or
    # retrieve_instance for the ones missing from the local database
    write = getattr(pydicom.filewriter, "write_file", None) or pydicom.dcmwrite  # pydicom 3
    folder = tmp_path / "download"
    folder.mkdir()
    for number, (*_, series_uid) in enumerate(rows):
        instances = _all_pages(
            client.search_for_instances, study_instance_uid=study, series_instance_uid=series_uid
        )
        uids = {i["00080018"]["Value"][0] for i in instances}
        assert len(uids) == 2
        if number == 0:
            retrieved = client.iter_series(study_instance_uid=study, series_instance_uid=series_uid)
        else:
            already = sorted(uids)[:1]
            retrieved = (
                client.retrieve_instance(
                    study_instance_uid=study, series_instance_uid=series_uid, sop_instance_uid=sop
                )
                for sop in sorted(uids - set(already))
            )
        for instance in retrieved:
            name = hashlib.md5(instance.SOPInstanceUID.encode()).hexdigest() + ".dcm"
            write(str(folder / name), instance)
    saved = by_sop(pydicom.dcmread(p) for p in folder.glob("*.dcm"))
    assert len(saved) == 3
    for sop, got in saved.items():
        assert same_instance(got, by_sop(own)[sop])
