"""The scripted calls of the differential oracle (see ``test_oracle.py``).

A :class:`Scenario` is one call as a user writes it: ``setup`` statements and one
``call`` expression, run by ``oracle_runner.py`` inside each implementation with
``URL`` bound to the scenario's server (the recording server, Orthanc or a folder of
files) and ``DATA`` to a folder of generated Part 10 files (``1.dcm`` ... ``3.dcm``, the
fake service's instances).  ``answers`` are the recording server's canned answers
(default: the fake DICOMweb service of ``oracle_server.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from oracle_server import PNG, SERIES_1, SERIES_2, SOP_1, SOP_2, SOP_3, STUDY
from recording_server import Response, multipart_response

WEB = "client = api.DICOMwebClient(URL)"
FILES = "client = api.DICOMfileClient(URL, in_memory=True)"
FAST_RETRIES = WEB + "\nclient.set_http_retry_params(max_attempts=3, wait_exponential_multiplier=1)"
INSTANCE = f"'{STUDY}', '{SERIES_1}', '{SOP_1}'"
FRAMES_INSTANCE = f"'{STUDY}', '{SERIES_2}', '{SOP_3}'"


@dataclass(frozen=True)
class Scenario:
    """One scripted call, run through both implementations."""

    id: str
    call: str
    setup: str = WEB
    target: str = "server"  # "server", "orthanc", "files", "pydicom_files" or "none"
    answers: Sequence[object] = ()
    capture_stdout: bool = False


def _status(code: int, text: bytes = b"server says no") -> Response:
    return Response(status=code, body=text, content_type="text/plain")


def _json(body: bytes, content_type: str = "application/dicom+json") -> Response:
    return Response(body=body, content_type=content_type)


# -- search ----------------------------------------------------------------------------

_SEARCH_ARGUMENTS = {
    "plain": "",
    "fuzzy": "fuzzymatching=True",
    "fuzzy_false": "fuzzymatching=False",
    "limit_offset": "limit=5, offset=2",
    "limit_zero": "limit=0",
    "fields_keyword": "fields=['StudyDescription', 'SeriesDescription']",
    "fields_tuple_tag": "fields=('00081030',)",
    "fields_all": "fields=['all']",
    "fields_empty": "fields=[]",
    "filter_keyword": "search_filters={'PatientID': 'P1'}",
    "filter_tag": "search_filters={'00100020': 'P1'}",
    "filter_int": "search_filters={'SeriesNumber': 2}",
    "filter_list": "search_filters={'ModalitiesInStudy': ['CT', 'MR']}",
    "filter_tuple": "search_filters={'Modality': ('CT', 'OT')}",
    "filter_range": "search_filters={'StudyDate': '20240101-20241231'}",
    "filter_empty_value": "search_filters={'PatientID': ''}",
    "filter_none_value": "search_filters={'PatientID': None}",
    "filter_empty": "search_filters={}",
    "filter_unknown": "search_filters={'NoSuchKeyword': 'x'}",
    "filter_uid_list": f"search_filters={{'SOPInstanceUID': ['{SOP_1}', '{SOP_2}']}}",
    "filter_space": "search_filters={'PatientName': 'Doe Jane'}",
    "filter_caret": "search_filters={'PatientName': 'Doe^Jane'}",
    "filter_wildcard": "search_filters={'PatientName': 'Doe*'}",
    "filter_question": "search_filters={'PatientID': 'P?'}",
    "filter_ampersand": "search_filters={'PatientID': 'a&b=c'}",
    "filter_unicode": "search_filters={'PatientName': 'Müller'}",
    "additional": "additional_params={'includefield': 'all', 'extra': 1}",
    "additional_list": "additional_params={'extra': ['a', 'b']}",
    "additional_and_limit": "limit=3, additional_params={'limit': 7}",
    "offset_only": "offset=3",
    "limit_str": "limit='4'",
    "bool_true_filter": "search_filters={'PatientID': True}",
}

_SEARCH_SCOPES = {
    "search_for_studies": [("", "")],
    "search_for_series": [("", ""), ("study", f"study_instance_uid='{STUDY}'")],
    "search_for_instances": [
        ("", ""),
        ("study", f"study_instance_uid='{STUDY}'"),
        ("series", f"study_instance_uid='{STUDY}', series_instance_uid='{SERIES_1}'"),
    ],
}


def _join(*arguments: str) -> str:
    return ", ".join(a for a in arguments if a)


def search_scenarios() -> Iterator[Scenario]:
    """Every search method over every argument shape and scope."""
    for method, scopes in _SEARCH_SCOPES.items():
        for scope_name, scope in scopes:
            for name, arguments in _SEARCH_ARGUMENTS.items():
                label = f"{method}-{scope_name}-{name}" if scope_name else f"{method}-{name}"
                yield Scenario(label, f"client.{method}({_join(scope, arguments)})")
    yield Scenario(
        "search_for_series-invalid_uid", "client.search_for_series(study_instance_uid='1..2')"
    )
    yield Scenario(
        "search_for_series-letters_uid", "client.search_for_series(study_instance_uid='abc')"
    )
    yield Scenario(
        "search_for_instances-series_without_study",
        f"client.search_for_instances(series_instance_uid='{SERIES_1}')",
    )
    yield Scenario(
        "search_for_studies-empty_string_uid_scope",
        "client.search_for_series(study_instance_uid='')",
    )
    yield from _paging_scenarios()
    yield from _search_answer_scenarios()


def _paging_scenarios() -> Iterator[Scenario]:
    page = b'[{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}]'
    other = page.replace(b"1.2.3", b"1.2.4")
    yield Scenario(
        "search-get_remaining-two_pages",
        "client.search_for_studies(get_remaining=True)",
        answers=[_json(page), _json(other), _json(b"[]")],
    )
    yield Scenario(
        "search-get_remaining-offset_ignored",
        "client.search_for_studies(get_remaining=True)",
        answers=[_json(page), _json(page), _json(b"[]")],
    )
    yield Scenario(
        "search-get_remaining-limit",
        "client.search_for_studies(get_remaining=True, limit=1)",
        answers=[_json(page), _json(b"[]")],
    )
    yield Scenario(
        "search-get_remaining-offset",
        "client.search_for_studies(get_remaining=True, offset=5)",
        answers=[_json(page), _json(b"[]")],
    )
    yield Scenario(
        "search-get_remaining-204",
        "client.search_for_studies(get_remaining=True)",
        answers=[_json(page), Response(status=204)],
    )


def _search_answer_scenarios() -> Iterator[Scenario]:
    call = "client.search_for_studies()"
    answers = {
        "204": Response(status=204),
        "empty_200": Response(status=200, content_type="application/dicom+json"),
        "object_not_list": _json(b'{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}'),
        "plain_json_type": _json(
            b'[{"0020000D": {"vr": "UI", "Value": ["1"]}}]', "application/json"
        ),
        "no_content_type": Response(body=b'[{"0020000D": {"vr": "UI", "Value": ["1"]}}]'),
        "invalid_json": _json(b"[{not json"),
        "html": Response(body=b"<html>login</html>", content_type="text/html"),
        "400": _status(400),
        "401": _status(401),
        "403": _status(403),
        "404": _status(404),
        "405": _status(405),
        "406": _status(406),
        "409": _status(409),
        "413": _status(413),
        "500": _status(500),
        "501": _status(501),
        "502": _status(502),
        "warning_header": Response(
            body=b"[]",
            content_type="application/dicom+json",
            headers={"Warning": "299 server: too many results"},
        ),
        "latin1_charset": Response(
            body='[{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller"}]}}]'.encode(
                "utf-8"
            ),
            content_type="application/dicom+json; charset=ISO-8859-1",
        ),
    }
    for name, answer in answers.items():
        yield Scenario(f"search-answer-{name}", call, answers=[answer])
    for code in (429, 408, 503, 504):
        yield Scenario(
            f"search-retry-{code}-then-ok",
            call,
            setup=FAST_RETRIES,
            answers=[_status(code), _json(b"[]")],
        )
        yield Scenario(
            f"search-retry-{code}-exhausted", call, setup=FAST_RETRIES, answers=[_status(code)]
        )
    yield Scenario(
        "search-retry-disabled",
        call,
        setup=WEB + "\nclient.set_http_retry_params(retry=False)",
        answers=[_status(503), _json(b"[]")],
    )
    yield Scenario(
        "search-retry-custom_codes",
        call,
        setup=WEB + "\nclient.set_http_retry_params(max_attempts=2, "
        "wait_exponential_multiplier=1, retriable_error_codes=(500,))",
        answers=[_status(500)],
    )
    yield Scenario(
        "search-retry-500-not_retried",
        call,
        setup=FAST_RETRIES,
        answers=[_status(500), _json(b"[]")],
    )


# -- retrieve --------------------------------------------------------------------------

_INSTANCE_MEDIA = {
    "default": "",
    "dicom": "media_types=('application/dicom',)",
    "dicom_star": "media_types=(('application/dicom', '*'),)",
    "dicom_evrle": "media_types=(('application/dicom', '1.2.840.10008.1.2.1'),)",
    "dicom_ivrle": "media_types=(('application/dicom', '1.2.840.10008.1.2'),)",
    "dicom_two": "media_types=(('application/dicom', '1.2.840.10008.1.2.1'), "
    "('application/dicom', '1.2.840.10008.1.2.5'))",
    "dicom_list": "media_types=[('application/dicom', '1.2.840.10008.1.2.1')]",
    "octet": "media_types=('application/octet-stream',)",
    "jpeg": "media_types=('image/jpeg',)",
    "bad_syntax": "media_types=(('application/dicom', '1.2.3.4'),)",
    "not_a_type": "media_types=('nonsense',)",
    "empty": "media_types=()",
    "string_not_tuple": "media_types='application/dicom'",
    "additional": "additional_params={'x': '1'}",
}


def retrieve_scenarios() -> Iterator[Scenario]:
    """Study, series and instance retrieval, iteration and metadata."""
    targets = {
        "study": f"'{STUDY}'",
        "series": f"'{STUDY}', '{SERIES_1}'",
        "instance": INSTANCE,
    }
    for level, uids in targets.items():
        methods = [f"retrieve_{level}"] + ([f"iter_{level}"] if level != "instance" else [])
        for method in methods:
            for name, arguments in _INSTANCE_MEDIA.items():
                call = f"client.{method}({_join(uids, arguments)})"
                if method.startswith("iter"):
                    call = f"list({call})"
                yield Scenario(f"{method}-{name}", call)
        yield Scenario(f"retrieve_{level}_metadata", f"client.retrieve_{level}_metadata({uids})")
        yield Scenario(
            f"retrieve_{level}_metadata-additional",
            f"client.retrieve_{level}_metadata({uids}, additional_params={{'a': 1}})",
        )
        yield Scenario(
            f"retrieve_{level}-invalid_uid",
            f"client.retrieve_{level}({uids.replace(STUDY, '1..2')})",
        )
        yield Scenario(
            f"retrieve_{level}_metadata-unknown",
            f"client.retrieve_{level}_metadata({uids.replace(STUDY, '1.2.3')})",
        )
    yield from _retrieve_answer_scenarios()


def _retrieve_answer_scenarios() -> Iterator[Scenario]:
    call = f"client.retrieve_instance({INSTANCE})"
    frames_call = f"client.retrieve_instance_frames({FRAMES_INSTANCE}, [1])"
    part = b"frame-bytes"
    answers = {
        "single_part_no_boundary": Response(
            body=part, content_type='multipart/related; type="application/octet-stream"'
        ),
        "multipart_inline_boundary": Response(
            body=b"--abc\r\nContent-Type: application/octet-stream\r\n\r\n"
            + part
            + b"\r\n--abc--\r\n",
            content_type='multipart/related; type="application/octet-stream"',
        ),
        "bare_octet": Response(body=part, content_type="application/octet-stream"),
        "two_parts": multipart_response([part, part], "application/octet-stream"),
        "truncated": Response(
            body=b"--b\r\nContent-Type: application/octet-stream\r\n\r\n" + part,
            content_type='multipart/related; type="application/octet-stream"; boundary=b',
        ),
        "204": Response(status=204),
        "404": _status(404),
        "empty_multipart": Response(
            body=b"--b--\r\n",
            content_type='multipart/related; type="application/octet-stream"; boundary=b',
        ),
    }
    for name, answer in answers.items():
        yield Scenario(f"retrieve_instance_frames-answer-{name}", frames_call, answers=[answer])
    yield Scenario(
        "retrieve_instance-answer-not_dicom",
        call,
        answers=[multipart_response([b"not a dicom file"])],
    )
    yield Scenario(
        "retrieve_instance-answer-two_instances",
        call,
        answers=[lambda request, rest: multipart_response([_fake_file(SOP_1), _fake_file(SOP_2)])],
    )
    yield Scenario(
        "retrieve_instance-answer-bare_dicom",
        call,
        answers=[
            lambda request, rest: Response(body=_fake_file(SOP_1), content_type="application/dicom")
        ],
    )
    yield Scenario(
        "retrieve_study-answer-empty",
        f"client.retrieve_study('{STUDY}')",
        answers=[
            Response(
                body=b"--b--\r\n",
                content_type=('multipart/related; type="application/dicom"; boundary=b'),
            )
        ],
    )
    yield Scenario(
        "retrieve_study_metadata-answer-object",
        f"client.retrieve_study_metadata('{STUDY}')",
        answers=[_json(b'{"0020000D": {"vr": "UI", "Value": ["1"]}}')],
    )
    yield Scenario(
        "retrieve_instance_metadata-answer-list_of_two",
        f"client.retrieve_instance_metadata({INSTANCE})",
        answers=[_json(b'[{"00080018": {"vr": "UI", "Value": ["1"]}}, {}]')],
    )
    yield Scenario(
        "retrieve_instance_metadata-answer-empty_list",
        f"client.retrieve_instance_metadata({INSTANCE})",
        answers=[_json(b"[]")],
    )


_FILES: dict[str, bytes] = {}


def _fake_file(sop: str) -> bytes:
    from oracle_server import FakeDICOMweb

    if not _FILES:
        _FILES.update(FakeDICOMweb().files)
    return _FILES[sop]


# -- frames, bulk data, rendered --------------------------------------------------------

_FRAME_MEDIA = {
    "default": "",
    "octet": "media_types=('application/octet-stream',)",
    "octet_star": "media_types=(('application/octet-stream', '*'),)",
    "octet_evrle": "media_types=(('application/octet-stream', '1.2.840.10008.1.2.1'),)",
    "jpeg": "media_types=('image/jpeg',)",
    "jpeg_baseline": "media_types=(('image/jpeg', '1.2.840.10008.1.2.4.50'),)",
    "jpeg_wrong_syntax": "media_types=(('image/jpeg', '1.2.840.10008.1.2.1'),)",
    "jp2": "media_types=('image/jp2',)",
    "jpegls": "media_types=('image/jls',)",
    "mixed": "media_types=('application/octet-stream', 'image/jpeg')",
    "dicom": "media_types=('application/dicom',)",
    "empty": "media_types=()",
    "additional": "additional_params={'x': '1'}",
}


def frame_scenarios() -> Iterator[Scenario]:
    """Frames, bulk data and rendered resources."""
    for name, arguments in _FRAME_MEDIA.items():
        for numbers in ("[1]", "[1, 3]", "(2,)"):
            label = numbers.strip("[]()").replace(", ", "_").rstrip(",")
            call = f"client.retrieve_instance_frames({_join(FRAMES_INSTANCE, numbers, arguments)})"
            yield Scenario(f"retrieve_instance_frames-{name}-{label}", call)
        iterated = _join(FRAMES_INSTANCE, "[1, 2]", arguments)
        yield Scenario(
            f"iter_instance_frames-{name}", f"list(client.iter_instance_frames({iterated}))"
        )
    for numbers in ("[]", "[0]", "[-1]", "['1']", "[9]", "None"):
        label = numbers.strip("[]'") or "empty"
        yield Scenario(
            f"retrieve_instance_frames-numbers-{label}",
            f"client.retrieve_instance_frames({FRAMES_INSTANCE}, {numbers})",
        )
    yield from _bulk_scenarios()
    yield from _rendered_scenarios()


def _bulk_scenarios() -> Iterator[Scenario]:
    bulk = f"URL + '/studies/{STUDY}/series/{SERIES_1}/instances/{SOP_1}/bulk/7fe00010'"
    shapes = {
        "plain": "",
        "octet": "media_types=('application/octet-stream',)",
        "range": "byte_range=(0, 3)",
        "range_open": "byte_range=(5, None)",
        "jpeg": "media_types=('image/jpeg',)",
        "additional": "additional_params={'x': 1}",
    }
    for name, arguments in shapes.items():
        yield Scenario(
            f"retrieve_bulkdata-{name}", f"client.retrieve_bulkdata({_join(bulk, arguments)})"
        )
        yield Scenario(
            f"iter_bulkdata-{name}", f"list(client.iter_bulkdata({_join(bulk, arguments)}))"
        )
    yield Scenario(
        "retrieve_bulkdata-answer-octet",
        f"client.retrieve_bulkdata({bulk})",
        answers=[Response(body=b"raw", content_type="application/octet-stream")],
    )


_RENDERED_MEDIA = {
    "default": "",
    "png": "media_types=('image/png',)",
    "jpeg": "media_types=('image/jpeg',)",
    "gif": "media_types=('image/gif',)",
    "jpeg_with_syntax": "media_types=(('image/jpeg', '1.2.840.10008.1.2.4.50'),)",
    "two": "media_types=('image/png', 'image/jpeg')",
    "dicom": "media_types=('application/dicom',)",
    "mp4": "media_types=('video/mp4',)",
    "pdf": "media_types=('application/pdf',)",
    "text": "media_types=('text/plain',)",
    "params": "params={'quality': 90, 'window': '100,200,linear'}",
    "params_empty": "params={}",
}


def _rendered_scenarios() -> Iterator[Scenario]:
    targets = {
        "retrieve_instance_rendered": INSTANCE,
        "retrieve_series_rendered": f"'{STUDY}', '{SERIES_1}'",
        "retrieve_instance_frames_rendered": f"{FRAMES_INSTANCE}, [1]",
    }
    for method, uids in targets.items():
        for name, arguments in _RENDERED_MEDIA.items():
            yield Scenario(f"{method}-{name}", f"client.{method}({_join(uids, arguments)})")
    yield Scenario(
        "retrieve_instance_frames_rendered-two_frames",
        f"client.retrieve_instance_frames_rendered({FRAMES_INSTANCE}, [1, 2])",
    )
    yield Scenario(
        "retrieve_instance_rendered-answer-multipart",
        f"client.retrieve_instance_rendered({INSTANCE})",
        answers=[multipart_response([PNG], "image/png")],
    )


# -- store, delete -----------------------------------------------------------------------


def store_scenarios() -> Iterator[Scenario]:
    """STOW-RS and DELETE calls."""
    read = WEB + "\nimport pydicom\nds = [pydicom.dcmread(DATA + f'/{n}.dcm') for n in (1, 2)]"
    yield Scenario("store_instances-two", "client.store_instances(ds)", setup=read)
    yield Scenario("store_instances-tuple", "client.store_instances(tuple(ds))", setup=read)
    yield Scenario("store_instances-study", f"client.store_instances(ds, '{STUDY}')", setup=read)
    yield Scenario(
        "store_instances-study_invalid", "client.store_instances(ds, '1..2')", setup=read
    )
    yield Scenario(
        "store_instances-additional",
        "client.store_instances(ds, additional_params={'a': 1})",
        setup=read,
    )
    yield Scenario("store_instances-empty", "client.store_instances([])")
    yield Scenario("store_instances-generator", "client.store_instances(d for d in ds)", setup=read)
    yield Scenario(
        "store_instances-only_syntax_meta",
        "client.store_instances([d])",
        setup=WEB + "\nimport pydicom\nd = pydicom.dcmread(DATA + '/1.dcm')\n"
        "syntax = d.file_meta.TransferSyntaxUID\n"
        "d.file_meta = pydicom.dataset.FileMetaDataset()\n"
        "d.file_meta.TransferSyntaxUID = syntax",
    )
    yield Scenario(
        "store_instances-no_meta",
        "client.store_instances([d])",
        setup=WEB + "\nimport pydicom\nd = pydicom.dcmread(DATA + '/1.dcm')\ndel d.file_meta",
    )
    yield Scenario("store_instances-path_not_dataset", "client.store_instances([DATA + '/1.dcm'])")
    stow_answers = {
        "warning_202": Response(status=202, body=b"{}", content_type="application/dicom+json"),
        "409": _status(409),
        "empty_200": Response(status=200),
        "204": Response(status=204),
        "xml": Response(body=b"<NativeDicomModel/>", content_type="application/dicom+xml"),
        "not_json": Response(body=b"ok", content_type="text/plain"),
    }
    for name, answer in stow_answers.items():
        yield Scenario(
            f"store_instances-answer-{name}",
            "client.store_instances(ds)",
            setup=read,
            answers=[answer],
        )
    deletes = {
        "study": f"'{STUDY}'",
        "series": f"'{STUDY}', '{SERIES_1}'",
        "instance": INSTANCE,
    }
    for level, uids in deletes.items():
        yield Scenario(f"delete_{level}", f"client.delete_{level}({uids})")
        yield Scenario(
            f"delete_{level}-additional",
            f"client.delete_{level}({uids}, additional_params={{'a': 1}})",
        )
        yield Scenario(
            f"delete_{level}-404", f"client.delete_{level}({uids})", answers=[_status(404)]
        )
        yield Scenario(
            f"delete_{level}-invalid", f"client.delete_{level}({uids.replace(STUDY, 'x')})"
        )
    yield Scenario("delete_study-none", "client.delete_study(None)")
    yield Scenario("delete_series-none", f"client.delete_series('{STUDY}', None)")


# -- client construction, URL prefixes, headers, sessions ----------------------------------


def client_scenarios() -> Iterator[Scenario]:
    """Constructor arguments, URL prefixes, headers, sessions and the callback."""
    search = "client.search_for_studies()"
    for prefix in ("qido", "wado", "stow", "delete"):
        for value, label in (
            ("'prefix'", "word"),
            ("''", "empty"),
            ("'/slash'", "slash"),
            ("'a/b'", "nested"),
            ("None", "none"),
        ):
            setup = f"client = api.DICOMwebClient(URL, {prefix}_url_prefix={value})"
            call = {
                "qido": search,
                "wado": f"client.retrieve_study_metadata('{STUDY}')",
                "stow": "client.store_instances([])",
                "delete": f"client.delete_study('{STUDY}')",
            }[prefix]
            yield Scenario(f"client-{prefix}_prefix-{label}", call, setup=setup)
    setups = {
        "trailing_slash": "client = api.DICOMwebClient(URL + '/')",
        "headers": "client = api.DICOMwebClient(URL, headers={'X-Key': 'k', 'Accept': 'x'})",
        "headers_empty": "client = api.DICOMwebClient(URL, headers={})",
        "user_pass": "client = api.DICOMwebClient(URL, session="
        "session_utils.create_session_from_user_pass('alice', 's3cret'))",
        "create_session": "client = api.DICOMwebClient(URL, "
        "session=session_utils.create_session())",
        "session_headers": "s = session_utils.create_session()\n"
        "s.headers.update({'Authorization': 'Bearer t'})\n"
        "client = api.DICOMwebClient(URL, session=s)",
        "callback": "seen = []\nclient = api.DICOMwebClient(URL, "
        "callback=lambda response, *a, **k: seen.append(response.status_code))",
        "chunk_size": "client = api.DICOMwebClient(URL, chunk_size=1)",
        "set_chunk_size": WEB + "\nclient.set_chunk_size(7)",
        "proxies_empty": "client = api.DICOMwebClient(URL, proxies={})",
    }
    for name, setup in setups.items():
        yield Scenario(f"client-{name}", search, setup=setup)
    yield Scenario("client-callback-seen", "seen", setup=setups["callback"] + "\n" + search)
    sessions = {
        "from_auth_basic": "import requests.auth\nclient = api.DICOMwebClient(URL, session="
        "session_utils.create_session_from_auth("
        "requests.auth.HTTPBasicAuth('bob', 'pw')))",
        "from_auth_callable": "def bearer(request):\n"
        "    request.headers['Authorization'] = 'Bearer abc'\n"
        "    return request\n"
        "client = api.DICOMwebClient(URL, session="
        "session_utils.create_session_from_auth(bearer))",
        "user_pass_unicode": "client = api.DICOMwebClient(URL, session="
        "session_utils.create_session_from_user_pass('jörg', 'pä'))",
    }
    for name, setup in sessions.items():
        yield Scenario(f"session-{name}", search, setup=setup)
    yield Scenario(
        "session-add_certs_missing_file",
        "session_utils.add_certs_to_session(session_utils.create_session(), "
        "DATA + '/no-such-ca.pem')",
        setup="",
        target="none",
    )
    yield Scenario(
        "client-url_with_query", search, setup="client = api.DICOMwebClient(URL + '?key=1')"
    )
    bad_urls = {
        "no_scheme": "'127.0.0.1/dicom-web'",
        "ftp": "'ftp://host/x'",
        "empty": "''",
        "none": "None",
        "file": "'file:///tmp/x'",
    }
    for name, url in bad_urls.items():
        yield Scenario(f"client-bad_url-{name}", f"api.DICOMwebClient({url}).base_url", setup="")
    attributes = (
        "base_url",
        "protocol",
        "host",
        "port",
        "url_prefix",
        "qido_url_prefix",
        "wado_url_prefix",
        "stow_url_prefix",
        "delete_url_prefix",
    )
    for attribute in attributes:
        yield Scenario(
            f"client-attribute-{attribute}",
            f"getattr(client, '{attribute}', 'missing')",
            setup="client = api.DICOMwebClient('https://pacs.example.org:8443/"
            "root/dicom-web', qido_url_prefix='q', wado_url_prefix='w')",
            target="none",
        )
    for name, call in {
        "lookup_keyword": "client.lookup_keyword('00100020')",
        "lookup_keyword_int": "client.lookup_keyword(0x00100020)",
        "lookup_tag": "client.lookup_tag('PatientID')",
        "lookup_tag_unknown": "client.lookup_tag('NoSuchKeyword')",
        "lookup_keyword_unknown": "client.lookup_keyword('99999999')",
        "isinstance_protocol": "isinstance(client, protocol.DICOMClient)",
        "version_type": "type(dicomweb_client.__version__).__name__",
    }.items():
        yield Scenario(
            f"client-{name}",
            call,
            target="none",
            setup="client = api.DICOMwebClient('http://127.0.0.1:9/dicom-web')",
        )


# -- URIs ----------------------------------------------------------------------------------

_URI_CALLS = {
    "base": "uri.URI('https://host/dicom-web')",
    "study": f"uri.URI('https://host/dicom-web', '{STUDY}')",
    "series": f"uri.URI('https://host/dicom-web', '{STUDY}', '{SERIES_1}')",
    "instance": f"uri.URI('https://host/dicom-web', {INSTANCE})",
    "frames": f"uri.URI('https://host/dicom-web', {INSTANCE}, frames=(1, 2))",
    "frames_list": f"uri.URI('https://host/dicom-web', {INSTANCE}, frames=[3])",
    "frames_zero": f"uri.URI('https://host/dicom-web', {INSTANCE}, frames=(0,))",
    "frames_empty": f"uri.URI('https://host/dicom-web', {INSTANCE}, frames=())",
    "metadata": f"uri.URI('https://host/dicom-web', '{STUDY}', suffix=uri.URISuffix.METADATA)",
    "rendered": f"uri.URI('https://host/dicom-web', {INSTANCE}, suffix=uri.URISuffix.RENDERED)",
    "thumbnail_frames": f"uri.URI('https://host/dicom-web', {INSTANCE}, frames=(1,), "
    "suffix=uri.URISuffix.THUMBNAIL)",
    "metadata_frames": f"uri.URI('https://host/dicom-web', {INSTANCE}, frames=(1,), "
    "suffix=uri.URISuffix.METADATA)",
    "series_without_study": f"uri.URI('https://host/dicom-web', None, '{SERIES_1}')",
    "invalid_uid": "uri.URI('https://host/dicom-web', '1..2')",
    "long_uid": "uri.URI('https://host/dicom-web', '1.' * 40 + '1')",
    "letters_uid_permissive": "uri.URI('https://host/dicom-web', 'abc', permissive=True)",
    "letters_uid": "uri.URI('https://host/dicom-web', 'abc')",
    "trailing_slash": "uri.URI('https://host/dicom-web/')",
    "no_scheme": "uri.URI('host/dicom-web')",
    "query_in_base": "uri.URI('https://host/dicom-web?x=1')",
    "http_port": "uri.URI('http://host:8042/dicom-web')",
}

_URI_VIEWS = {
    "str": "str({})",
    "repr": "repr({})",
    "hash": "hash({}) == hash({})",
    "hash_of_parts": "hash({0}) == hash(({0}.base_url, {0}.study_instance_uid, "
    "{0}.series_instance_uid, {0}.sop_instance_uid, {0}.frames, {0}.suffix))",
    "eq": "{} == {}",
    "type": "{}.type",
    "parts": "({0}.base_url, {0}.study_instance_uid, {0}.series_instance_uid, "
    "{0}.sop_instance_uid, {0}.frames, {0}.suffix, {0}.permissive)",
    "parent": "str({}.parent)",
    "base_uri": "str({}.base_uri())",
    "study_uri": "str({}.study_uri())",
    "series_uri": "str({}.series_uri())",
    "instance_uri": "str({}.instance_uri())",
    "frame_uri": "str({}.frame_uri())",
    "update": "str({}.update(suffix=uri.URISuffix.METADATA))",
    "update_frames": "str({}.update(frames=(5,)))",
    "from_string": "uri.URI.from_string(str({})) == {}",
}


def uri_scenarios() -> Iterator[Scenario]:
    """URI construction, its views and from_string."""
    for name, expression in _URI_CALLS.items():
        for view, template in _URI_VIEWS.items():
            call = template.format(expression, expression)
            yield Scenario(f"uri-{name}-{view}", call, setup="", target="none")
    strings = {
        "study": f"'https://host/dicom-web/studies/{STUDY}'",
        "series": f"'https://host/dicom-web/studies/{STUDY}/series/{SERIES_1}'",
        "instance": f"'https://host/dicom-web/studies/{STUDY}/series/{SERIES_1}/instances/{SOP_1}'",
        "frames": f"'https://host/dicom-web/studies/{STUDY}/series/{SERIES_1}/"
        f"instances/{SOP_1}/frames/1,2'",
        "metadata": f"'https://host/dicom-web/studies/{STUDY}/metadata'",
        "rendered": f"'https://host/dicom-web/studies/{STUDY}/series/{SERIES_1}/rendered'",
        "thumbnail": f"'https://host/dicom-web/studies/{STUDY}/thumbnail'",
        "base": "'https://host/dicom-web'",
        "bad_resource": "'https://host/dicom-web/studies'",
        "bad_frames": f"'https://host/dicom-web/studies/{STUDY}/series/{SERIES_1}/"
        f"instances/{SOP_1}/frames/a'",
        "unknown_suffix": f"'https://host/dicom-web/studies/{STUDY}/bulk'",
        "gcp": "'https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/"
        f"dicomStores/s/dicomWeb/studies/{STUDY}'",
    }
    for name, string in strings.items():
        for kind in ("None", "uri.URIType.STUDY", "uri.URIType.SERVICE", "uri.URIType.SERIES"):
            label = kind.rsplit(".", 1)[-1].lower()
            yield Scenario(
                f"uri-from_string-{name}-{label}",
                f"repr(uri.URI.from_string({string}, {kind}))",
                setup="",
                target="none",
            )
        yield Scenario(
            f"uri-from_string-{name}-permissive",
            f"repr(uri.URI.from_string({string}, permissive=True))",
            setup="",
            target="none",
        )
    for name, call in {
        "enum_type": "[t.value for t in uri.URIType]",
        "enum_suffix": "[s.value for s in uri.URISuffix]",
    }.items():
        yield Scenario(f"uri-{name}", call, setup="", target="none")


# -- Google Cloud Healthcare URLs --------------------------------------------------------------

_GCP_IDS = {
    "plain": ("'p'", "'us-central1'", "'d'", "'s'"),
    "dashes": ("'my-project'", "'europe-west4'", "'data-set_1'", "'store.v2'"),
    "empty_project": ("''", "'l'", "'d'", "'s'"),
    "slash_project": ("'p/x'", "'l'", "'d'", "'s'"),
    "space_store": ("'p'", "'l'", "'d'", "'s s'"),
    "colon_project": ("'org.com:p'", "'l'", "'d'", "'s'"),
    "upper_location": ("'p'", "'US'", "'d'", "'s'"),
    "long_dataset": ("'p'", "'l'", "'d' * 257", "'s'"),
    "unicode_store": ("'p'", "'l'", "'d'", "'ß'"),
    "slash_dataset": ("'p'", "'l'", "'d/x'", "'s'"),
}


def gcp_scenarios() -> Iterator[Scenario]:
    """GoogleCloudHealthcareURL construction and parsing."""
    for name, ids in _GCP_IDS.items():
        expression = f"gcp_uri.GoogleCloudHealthcareURL({', '.join(ids)})"
        yield Scenario(f"gcp-{name}-str", f"str({expression})", setup="", target="none")
        keywords = ("project_id", "location", "dataset_id", "dicom_store_id")
        keyword_call = ", ".join(f"{k}={v}" for k, v in zip(keywords, ids))
        yield Scenario(
            f"gcp-{name}-keywords",
            f"str(gcp_uri.GoogleCloudHealthcareURL({keyword_call}))",
            setup="",
            target="none",
        )
    base = (
        "https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/"
        "dicomStores/s/dicomWeb"
    )
    strings = {
        "valid": f"'{base}'",
        "trailing_slash": f"'{base}/'",
        "http": f"'{base.replace('https', 'http')}'",
        "beta": f"'{base.replace('v1', 'v1beta1')}'",
        "other_host": f"'{base.replace('healthcare.googleapis.com', 'example.org')}'",
        "missing_store": "'https://healthcare.googleapis.com/v1/projects/p/locations/l/"
        "datasets/d/dicomWeb'",
        "with_study": f"'{base}/studies/{STUDY}'",
    }
    for name, string in strings.items():
        yield Scenario(
            f"gcp-from_string-{name}",
            f"repr(gcp_uri.GoogleCloudHealthcareURL.from_string({string}))",
            setup="",
            target="none",
        )
    for view in (
        "repr({})",
        "{} == {}",
        "hash({}) == hash({})",
        "({0}.project_id, {0}.location, {0}.dataset_id, {0}.dicom_store_id)",
        "getattr({}, 'api_version', 'missing')",
    ):
        expression = "gcp_uri.GoogleCloudHealthcareURL('p', 'l', 'd', 's')"
        yield Scenario(
            f"gcp-view-{len(view)}-{view[:4].strip('({')}",
            view.format(expression, expression),
            setup="",
            target="none",
        )


# -- CLI ---------------------------------------------------------------------------------------


def cli_scenarios() -> Iterator[Scenario]:
    """The CLI's main(), given what its own parser builds."""
    commands = {
        "search_studies": ["search", "studies"],
        "search_studies_filter": ["search", "studies", "--filter", "PatientID=P1"],
        "search_series": ["search", "series", "--study", STUDY],
        "search_instances": ["search", "instances", "--study", STUDY, "--series", SERIES_1],
        "search_limit": ["search", "studies", "--limit", "2", "--offset", "1"],
        "retrieve_study_metadata": ["retrieve", "studies", "--study", STUDY, "metadata"],
        "retrieve_instance_metadata": [
            "retrieve",
            "instances",
            "--study",
            STUDY,
            "--series",
            SERIES_1,
            "--instance",
            SOP_1,
            "metadata",
        ],
        "retrieve_frames": [
            "retrieve",
            "instances",
            "--study",
            STUDY,
            "--series",
            SERIES_2,
            "--instance",
            SOP_3,
            "frames",
            "--numbers",
            "1",
        ],
        "unknown_command": ["nonsense"],
        "bad_url": ["search", "studies"],
    }
    for name, argv in commands.items():
        url_argv = ["--url", "URL_PLACEHOLDER"] + argv
        if name == "bad_url":
            url_argv = ["--url", "not a url"] + argv
        listing = repr(url_argv).replace("'URL_PLACEHOLDER'", "URL")
        yield Scenario(
            f"cli-{name}",
            f"cli.main(cli._get_parser().parse_args({listing}))",
            setup="",
            capture_stdout=True,
        )


# -- file client ---------------------------------------------------------------------------------


def file_scenarios() -> Iterator[Scenario]:
    """The same calls against DICOMfileClient on a folder of the fake service's files."""
    for method, scopes in _SEARCH_SCOPES.items():
        for scope_name, scope in scopes:
            for name in (
                "plain",
                "limit_offset",
                "fields_all",
                "filter_keyword",
                "filter_tag",
                "filter_wildcard",
                "filter_question",
                "filter_range",
                "filter_list",
                "filter_unknown",
                "filter_int",
                "fuzzy",
                "fields_keyword",
            ):
                label = (
                    f"file-{method}-{scope_name}-{name}" if scope_name else f"file-{method}-{name}"
                )
                call = f"client.{method}({_join(scope, _SEARCH_ARGUMENTS[name])})"
                yield Scenario(label, call, setup=FILES, target="files")
    calls = {
        "retrieve_study": f"client.retrieve_study('{STUDY}')",
        "retrieve_series": f"client.retrieve_series('{STUDY}', '{SERIES_1}')",
        "retrieve_instance": f"client.retrieve_instance({INSTANCE})",
        "retrieve_instance_star": f"client.retrieve_instance({INSTANCE}, "
        "media_types=(('application/dicom', '*'),))",
        "retrieve_instance_bad_syntax": f"client.retrieve_instance({INSTANCE}, "
        "media_types=(('application/dicom', '1.2.3.4'),))",
        "retrieve_instance_unknown": f"client.retrieve_instance('{STUDY}', '{SERIES_1}', '1.2.3')",
        "retrieve_instance_invalid": f"client.retrieve_instance('{STUDY}', '{SERIES_1}', '1..2')",
        "retrieve_study_metadata": f"client.retrieve_study_metadata('{STUDY}')",
        "retrieve_series_metadata": f"client.retrieve_series_metadata('{STUDY}', '{SERIES_1}')",
        "retrieve_instance_metadata": f"client.retrieve_instance_metadata({INSTANCE})",
        "frames": f"client.retrieve_instance_frames({FRAMES_INSTANCE}, [1, 3])",
        "frames_out_of_range": f"client.retrieve_instance_frames({FRAMES_INSTANCE}, [9])",
        "frames_rendered_syntax": f"client.retrieve_instance_frames_rendered({FRAMES_INSTANCE}, "
        "[1], media_types=(('image/jpeg', '1.2.840.10008.1.2.4.50'),))",
        "rendered_png": f"len(client.retrieve_instance_rendered({INSTANCE}, "
        "media_types=('image/png',))) > 0",
        "iter_study": f"list(client.iter_study('{STUDY}'))",
        "isinstance_protocol": "isinstance(client, protocol.DICOMClient)",
        "search_study_unknown_scope": "client.search_for_series(study_instance_uid='1.2.3')",
        "iter_series": f"list(client.iter_series('{STUDY}', '{SERIES_1}'))",
        "iter_frames": f"list(client.iter_instance_frames({FRAMES_INSTANCE}, [2, 3]))",
        "frames_octet": f"client.retrieve_instance_frames({FRAMES_INSTANCE}, [1], "
        "media_types=('application/octet-stream',))",
        "frames_rendered_png": f"len(client.retrieve_instance_frames_rendered("
        f"{FRAMES_INSTANCE}, [1], media_types=('image/png',))) > 0",
        "rendered_jpeg": f"client.retrieve_instance_rendered({INSTANCE}, "
        "media_types=('image/jpeg',))[:2]",
        "metadata_unknown": f"client.retrieve_instance_metadata('{STUDY}', '{SERIES_1}', '1.2.3')",
        "search_series_of_unknown_study": "client.search_for_instances('1.2.3', '1.2.4')",
        "delete_series": f"client.delete_series('{STUDY}', '{SERIES_2}')",
        "delete_study": f"client.delete_study('{STUDY}')",
        "store_existing": "client.store_instances([pydicom.dcmread(DATA + '/1.dcm')])",
        "delete_instance": f"client.delete_instance({INSTANCE})",
        "delete_study_none": "client.delete_study(None)",
    }
    for name, call in calls.items():
        yield Scenario(f"file-{name}", call, setup=FILES + "\nimport pydicom", target="files")


def pydicom_file_scenarios() -> Iterator[Scenario]:
    """The file client on a folder of the files pydicom ships (CT, MR, RLE MR, RLE RGB)."""
    uids = "(r['0020000D']['Value'][0], r['0020000E']['Value'][0], r['00080018']['Value'][0])"
    each = "for r in client.search_for_instances()"
    calls = {
        "search_studies": "client.search_for_studies()",
        "search_series": "client.search_for_series()",
        "search_instances": "client.search_for_instances()",
        "search_patient": "client.search_for_studies(search_filters={'PatientName': '*'})",
        "search_modality": "client.search_for_series(search_filters={'Modality': 'MR'})",
        "metadata": f"[client.retrieve_instance_metadata(*{uids}) {each}]",
        "instances": f"[client.retrieve_instance(*{uids}) {each}]",
        "instances_as_stored": f"[client.retrieve_instance(*{uids}, media_types=("
        f"('application/dicom', '*'),)) {each}]",
        "frames_octet": f"[client.retrieve_instance_frames(*{uids}, [1], media_types=("
        f"('application/octet-stream', '*'),)) {each}]",
    }
    for name, call in calls.items():
        yield Scenario(f"pydicom_files-{name}", call, setup=FILES, target="pydicom_files")


# -- Orthanc --------------------------------------------------------------------------------


def orthanc_scenarios() -> Iterator[Scenario]:
    """Read-only calls against a real Orthanc holding the fake service's instances."""
    calls = {
        "search_studies": "client.search_for_studies()",
        "search_studies_patient": "client.search_for_studies(search_filters={'PatientID': 'P1'})",
        "search_series_scoped": f"client.search_for_series('{STUDY}')",
        "search_instances_scoped": f"client.search_for_instances('{STUDY}', '{SERIES_2}')",
        "search_instances_fields": "client.search_for_instances(fields=['Rows'], limit=2)",
        "retrieve_instance": f"client.retrieve_instance({INSTANCE})",
        "retrieve_series": f"client.retrieve_series('{STUDY}', '{SERIES_1}')",
        "retrieve_frames": f"client.retrieve_instance_frames({FRAMES_INSTANCE}, [1, 2])",
        "retrieve_instance_metadata_keys": f"sorted(client.retrieve_instance_metadata({INSTANCE}))",
        "retrieve_unknown": f"client.retrieve_instance('{STUDY}', '{SERIES_1}', '1.2.3')",
        "rendered_png": f"client.retrieve_instance_rendered({INSTANCE}, "
        "media_types=('image/png',))[:8]",
        "store_again": "client.store_instances([pydicom.dcmread(DATA + '/1.dcm')])",
        "delete_405": f"client.delete_study('{STUDY}')",
    }
    for name, call in calls.items():
        setup = WEB + "\nimport pydicom"
        yield Scenario(f"orthanc-{name}", call, setup=setup, target="orthanc")


def all_scenarios() -> list[Scenario]:
    """Every scenario, checked to have a unique id."""
    scenarios = [
        *search_scenarios(),
        *retrieve_scenarios(),
        *frame_scenarios(),
        *store_scenarios(),
        *client_scenarios(),
        *uri_scenarios(),
        *gcp_scenarios(),
        *cli_scenarios(),
        *file_scenarios(),
        *pydicom_file_scenarios(),
        *orthanc_scenarios(),
    ]
    ids = [s.id for s in scenarios]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate scenario ids: {duplicates}")
    return scenarios
