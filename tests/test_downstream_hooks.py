"""Private hooks of the established package that real downstream projects use.

Each test replays what one project does with ``DICOMwebClient``'s private helpers,
against the recording server; the ``*_like_the_established_package`` tests run the same
replay in a child interpreter through this module and through ``dicomweb-client``
0.61.2, and compare what each prints.  The projects (file and commit read):

* mercure-imaging/mercure, ``app/dispatch/target_types/dicomweb.py`` at
  50406b2e4b68c331b44a2f4d9a9e2e6619d31f84: ``client._http_get(target.url)`` as a
  credentials check, catching ``requests.exceptions.HTTPError`` and looking at
  ``errno``.
* openradx/adit, ``adit-client/adit_client/client.py`` at
  e3bd000dedaaa663bba5e804640e6e889a1d5c29 (last changed in d463e9f4): NIfTI
  downloads via ``_http_get(url, headers=..., stream=True)``, then
  ``_decode_multipart_message(response, stream)`` on a fresh client whose instance
  attribute ``_extract_part_content`` is replaced by a function that returns each
  piece *with* its part headers (file names come from each part's
  Content-Disposition), and is put back afterwards.
* Project-MONAI/MONAILabel, ``monailabel/datastore/dicom.py`` at
  01c2fbe4a7cef8f6c4968149af6e4aba7d1a9a40 and ``monailabel/datastore/utils/dicom.py``
  at 16ddccb845eec1f78035b3be282b07d2a145ac76: ``DICOMwebClientX`` overrides
  ``_decode_multipart_message`` to set ``response.headers['content-type']`` to
  ``multipart/related`` when a server labels an answer otherwise, then calls
  ``super()``; ``retrieve_series`` and ``retrieve_instance_frames`` must call it.
* girder/large_image, ``sources/dicom/large_image_source_dicom/assetstore/
  dicomweb_assetstore_adapter.py`` at 516fec0b6dfda9f63152f9ea4d6ebfc84ec73072:
  ``from dicomweb_client.web import _Transaction``,
  ``client._get_instances_url(_Transaction.RETRIEVE, ...)``, ``_http_get(...,
  stream=True)`` (single part first, multipart after a ``requests.HTTPError``), then
  ``response.request.headers``, ``response.headers``, ``iter_content`` and ``with
  response:``; a ``requests.Session`` carries token credentials.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import dicom_data
import dicomweb_client
from dicomweb_client import DICOMwebClient, HTTPError, MultipartError
from helpers import PROJECT_ROOT
from isolated_python import clean_env
from recording_server import RecordedRequest, RecordingServer, Response, multipart_response

STUDY = '1.2.826.0.1.3680043.8.498.11'
SERIES = '1.2.826.0.1.3680043.8.498.12'
SOP = '1.2.826.0.1.3680043.8.498.13'
BOUNDARY = 'test-boundary-0123456789'
NIFTI_ACCEPT = 'multipart/related; type=application/octet-stream'


# -- running a replay in both implementations ------------------------------------------


@pytest.fixture(scope='session')
def reference_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter with the established package (as the differential oracle's)."""
    from test_oracle import REFERENCE_REQUIREMENT, _reference_python

    try:
        return _reference_python(tmp_path_factory)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f'cannot install {REFERENCE_REQUIREMENT}: {error}')


def run_replay(python: Path | str, snippet: str, *args: str, ours: bool) -> Any:
    """Run ``snippet`` (which prints one JSON document) with ``args`` in ``python``;
    ``ours`` puts this project first on the path, else the established package runs."""
    env = clean_env(PYTHONPATH=str(PROJECT_ROOT)) if ours else clean_env()
    done = subprocess.run(
        [str(python), '-c', textwrap.dedent(snippet), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def both(
    reference: Path, server: RecordingServer, snippet: str, *args: str
) -> tuple[Any, Any, list[dict], list[dict]]:
    """The printed results and the requests sent of ours and of theirs."""
    results, sent = [], []
    for python, ours in ((sys.executable, True), (reference, False)):
        server.clear()
        results.append(run_replay(python, snippet, server.url, *args, ours=ours))
        sent.append([describe(request) for request in server.requests])
    return results[0], results[1], sent[0], sent[1]


def describe(request: RecordedRequest) -> dict:
    """What of a request both implementations must send alike."""
    return {
        'method': request.method,
        'path': request.path,
        'query': request.query,
        'accept': request.header('Accept'),
        'authorization': request.header('Authorization'),
    }


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# -- mercure: _http_get as a credentials check -----------------------------------------

MERCURE_REPLAY = '''
import json, sys
from requests.exceptions import HTTPError
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass

url = sys.argv[1] + '/dicom-web'
client = DICOMwebClient(url=url, qido_url_prefix=None, wado_url_prefix=None,
                        stow_url_prefix=None, headers=None,
                        session=create_session_from_user_pass(username='mercure',
                                                              password='secret'))
client.set_http_retry_params(retry=False, max_attempts=2, wait_exponential_multiplier=100)
results = {}
try:
    client._http_get(url)
    results['Authentication'] = True
except HTTPError as error:
    results['errno'] = error.errno
    results['status'] = error.response.status_code
    results['Authentication'] = error.errno != 401
try:
    client.search_for_studies(limit=1)
    results['QIDO query'] = True
except HTTPError:
    results['QIDO query'] = False
print(json.dumps(results))
'''


def mercure_server(server: RecordingServer, root_status: int, qido_status: int) -> None:
    server.add(
        'GET',
        '/dicom-web',
        Response(status=root_status, body=b'{}', content_type='application/json'),
    )
    server.add(
        'GET',
        '/dicom-web/studies',
        Response(status=qido_status, body=b'[]', content_type='application/dicom+json'),
    )


@pytest.mark.parametrize(
    ('root_status', 'qido_status', 'expected'),
    [
        (200, 200, {'Authentication': True, 'QIDO query': True}),
        # HTTPError.errno is None in both packages: mercure's 401 test never matches
        (401, 401, {'Authentication': True, 'QIDO query': False, 'errno': None, 'status': 401}),
        (404, 200, {'Authentication': True, 'QIDO query': True, 'errno': None, 'status': 404}),
    ],
)
def test_mercure_connection_test(recording_server, root_status, qido_status, expected) -> None:
    mercure_server(recording_server, root_status, qido_status)
    result = run_replay(sys.executable, MERCURE_REPLAY, recording_server.url, ours=True)
    assert result == expected
    # retry=False: one request each, with the session's Basic credentials
    assert [request.path for request in recording_server.requests] == [
        '/dicom-web',
        '/dicom-web/studies',
    ]
    assert all(
        request.header('Authorization', '').startswith('Basic ')
        for request in recording_server.requests
    )


@pytest.mark.parametrize('root_status', [200, 401, 404])
def test_mercure_connection_test_like_the_established_package(
    recording_server, reference_python, root_status
) -> None:
    mercure_server(recording_server, root_status, root_status if root_status == 401 else 200)
    ours, theirs, sent_ours, sent_theirs = both(reference_python, recording_server, MERCURE_REPLAY)
    assert ours == theirs
    for request in sent_ours + sent_theirs:
        request.pop('accept')  # requests adds "*/*" by itself; no server reads it here
    assert sent_ours == sent_theirs


# -- _http_get: an answer readable as a requests.Response ------------------------------


def test_http_get_answer_reads_like_a_requests_response(recording_server) -> None:
    recording_server.add(
        'GET',
        '/x',
        Response(body=b'0123456789', content_type='text/plain', headers={'X-Thing': 'a'}),
    )
    client = DICOMwebClient(recording_server.url)
    with client._http_get(
        recording_server.url + '/x',
        params={'a': 'b c'},
        headers={'Accept': 'text/plain'},
        stream=True,
    ) as response:
        assert response.status_code == 200
        assert response.headers['content-type'] == response.headers['Content-Type']
        assert response.headers.get('x-thing') == 'a'
        assert response.request.headers.get('Accept') == 'text/plain'
        assert b''.join(response.iter_content(4)) == b'0123456789'
    assert recording_server.last.raw_query == 'a=b%20c'
    response = client._http_get(recording_server.url + '/x')  # read at once
    assert response.content == b'0123456789'
    assert list(response.iter_content(6)) == [b'012345', b'6789']


def test_http_get_raises_for_error_statuses(recording_server) -> None:
    requests = pytest.importorskip('requests')
    recording_server.add('GET', '/missing', Response(status=404, body=b'no such thing'))
    client = DICOMwebClient(recording_server.url)
    client.set_http_retry_params(retry=False)
    with pytest.raises(requests.HTTPError) as caught:
        client._http_get(recording_server.url + '/missing', stream=True)
    assert isinstance(caught.value, HTTPError)
    assert caught.value.response.status_code == 404 and caught.value.errno is None


def test_http_get_logs_a_warning_field(recording_server, caplog) -> None:
    recording_server.add(
        'GET', '/x', Response(body=b'[]', headers={'Warning': '299 server "more results"'})
    )
    DICOMwebClient(recording_server.url)._http_get(recording_server.url + '/x')
    assert 'more results' in caplog.text


def test_assigning_a_header_field_replaces_it(recording_server) -> None:
    recording_server.add(
        'GET', '/x', Response(body=b'x', content_type='application/dicom', headers={'X-Other': '1'})
    )
    response = DICOMwebClient(recording_server.url)._http_get(recording_server.url + '/x')
    response.headers['content-type'] = 'multipart/related'
    assert response.headers.get_all('Content-Type') == ['multipart/related']
    assert response.headers['CONTENT-TYPE'] == 'multipart/related'
    assert response.content_type == 'multipart/related'
    response.headers['X-New'] = 'n'
    assert response.headers.get_all('x-new') == ['n']
    assert response.headers['X-Other'] == '1' and 'x-other' in response.headers


def test_requests_session_answer_knows_the_request_fields(recording_server) -> None:
    requests = pytest.importorskip('requests')
    recording_server.add('GET', '/x', Response(body=b'abc', content_type='application/dicom'))
    session = requests.Session()
    session.headers['Authorization'] = 'Bearer t'
    client = DICOMwebClient(recording_server.url, session=session)
    with client._http_get(
        recording_server.url + '/x', headers={'Accept': 'application/dicom'}, stream=True
    ) as response:
        assert response.request.headers.get('Accept') == 'application/dicom'
        assert response.request.headers.get('authorization') == 'Bearer t'
        assert b''.join(response.iter_content(2)) == b'abc'


# -- ADIT: _decode_multipart_message with a replaced _extract_part_content ------------

ADIT_REPLAY = '''
import hashlib, json, os, sys
from dicomweb_client import DICOMwebClient, session_utils

server, ae, study, mode = sys.argv[1:5]


def make_client(ae_title):
    session = session_utils.create_session()
    session.verify = True
    return DICOMwebClient(session=session, url=f'{server}/api/dicom-web/{ae_title}',
                          qido_url_prefix='qidors', wado_url_prefix='wadors',
                          stow_url_prefix='stowrs',
                          headers={'Authorization': 'Token adit-token',
                                   'User-Agent': 'python-adit_client/test'})


def whole_piece(part):
    """ADIT's replacement: drop the empty pieces, keep the headers of the others."""
    if part in (b'', b'--', b'\\r\\n') or part.startswith(b'--\\r\\n'):
        return None
    return part


def filename_of(field):
    if not field or 'filename=' not in field:
        raise ValueError(f'no file name in {field!r}')
    return os.path.basename(field.split('filename=')[1].strip('"'))


def parts(response, stream):
    decoder = make_client('')
    original = decoder._extract_part_content
    try:
        decoder._extract_part_content = whole_piece
        for piece in decoder._decode_multipart_message(response, stream=stream):
            fields, content = {}, piece
            end = piece.find(b'\\r\\n\\r\\n')
            if end > -1:
                content = piece[end + 4:]
                for line in piece[:end].split(b'\\r\\n'):
                    if b':' in line:
                        name, value = line.split(b':', 1)
                        fields[name.decode().strip()] = value.decode().strip()
            field = fields.get('Content-Disposition')
            if not field:
                field = next(value for name, value in response.headers.items()
                             if name.lower() == 'content-disposition')
            yield filename_of(field), bytes(content)
    finally:
        decoder._extract_part_content = original


url = f'{server}/api/dicom-web/{ae}/wadors/studies/{study}/nifti'
response = make_client(ae)._http_get(
    url, headers={'Accept': 'multipart/related; type=application/octet-stream'},
    stream=True)
found = list(parts(response, stream=(mode == 'iter')))
print(json.dumps([[name, len(data), hashlib.sha256(data).hexdigest()[:16]]
                  for name, data in found]))
'''

NIFTI_FILES = [
    ('series-1.nii.gz', bytes(range(256)) * 1500),  # over one read's worth
    ('series-2.json', b'{"a": 1}'),
    ('series-3.nii.gz', b'\r\n--not-the-boundary\r\n' * 3),
]


def nifti_server(server: RecordingServer, per_part: bool = True) -> str:
    """Serve the NIfTI files of a study as ADIT's server does; return the study path."""
    path = f'/api/dicom-web/AE1/wadors/studies/{STUDY}/nifti'
    if per_part:
        parts = [
            (
                data,
                'application/octet-stream',
                {'Content-Disposition': f'attachment; filename="{name}"'},
            )
            for name, data in NIFTI_FILES
        ]
        server.add(
            'GET', path, multipart_response(parts, 'application/octet-stream', boundary=BOUNDARY)
        )
    else:  # one file, named by the answer's own Content-Disposition
        name, data = NIFTI_FILES[0]
        server.add(
            'GET',
            path,
            multipart_response(
                [data],
                'application/octet-stream',
                boundary=BOUNDARY,
                headers={'Content-Disposition': f'attachment; filename="{name}"'},
            ),
        )
    return path


def expected_files(per_part: bool = True) -> list[list]:
    files = NIFTI_FILES if per_part else NIFTI_FILES[:1]
    return [[name, len(data), digest(data)] for name, data in files]


@pytest.mark.parametrize('mode', ['retrieve', 'iter'])
@pytest.mark.parametrize('per_part', [True, False])
def test_adit_nifti_download(recording_server, mode, per_part) -> None:
    path = nifti_server(recording_server, per_part)
    result = run_replay(
        sys.executable, ADIT_REPLAY, recording_server.url, 'AE1', STUDY, mode, ours=True
    )
    assert result == expected_files(per_part)
    request = recording_server.last
    assert request.path == path and request.header('Accept') == NIFTI_ACCEPT
    assert request.header('Authorization') == 'Token adit-token'


@pytest.mark.parametrize('mode', ['retrieve', 'iter'])
def test_adit_nifti_download_like_the_established_package(
    recording_server, reference_python, mode
) -> None:
    nifti_server(recording_server)
    ours, theirs, sent_ours, sent_theirs = both(
        reference_python, recording_server, ADIT_REPLAY, 'AE1', STUDY, mode
    )
    assert ours == theirs == expected_files()
    assert sent_ours == sent_theirs


def test_replaced_extract_part_content_gets_the_pieces_with_their_headers(recording_server) -> None:
    nifti_server(recording_server)
    client = DICOMwebClient(recording_server.url)
    client.set_chunk_size(1024)  # delimiters straddle reads
    pieces: list[bytes] = []
    client._extract_part_content = lambda part: pieces.append(part) or part  # type: ignore
    url = recording_server.url + f'/api/dicom-web/AE1/wadors/studies/{STUDY}/nifti'
    response = client._http_get(url, stream=True)
    assert list(client._decode_multipart_message(response, stream=True)) == pieces
    # the first piece holds the opening boundary line, the last the closing "--"
    assert pieces[0].startswith(f'--{BOUNDARY}\r\nContent-Type:'.encode())
    assert pieces[1].startswith(
        b'\r\nContent-Type: application/octet-stream\r\n'
        b'Content-Disposition: attachment; filename="series-2'
    )
    assert pieces[-1] == b'--\r\n' and len(pieces) == len(NIFTI_FILES) + 1


def test_putting_the_own_method_back_restores_the_fast_path() -> None:
    client = DICOMwebClient('http://127.0.0.1:1')
    assert not any(
        client._replaced(hook) for hook in ('_decode_multipart_message', '_extract_part_content')
    )
    original = client._extract_part_content
    client._extract_part_content = lambda part: part  # type: ignore[method-assign]
    assert client._replaced('_extract_part_content')
    client._extract_part_content = original  # type: ignore[method-assign]
    assert not client._replaced('_extract_part_content')


def test_multipart_pieces_do_not_depend_on_how_the_body_arrives() -> None:
    body = (
        f'--{BOUNDARY}\r\nA: 1\r\n\r\nfirst\r\n--{BOUNDARY}\r\n\r\n\r\n--{BOUNDARY}--\r\n'
    ).encode()
    whole = list(dicomweb_client._multipart_pieces([body], BOUNDARY.encode()))
    assert whole == [f'--{BOUNDARY}\r\nA: 1\r\n\r\nfirst'.encode(), b'\r\n\r\n', b'--\r\n']
    for size in range(1, len(body) + 1):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert list(dicomweb_client._multipart_pieces(chunks, BOUNDARY.encode())) == whole


EXTRACT_REPLAY = '''
import json, sys
from dicomweb_client.web import DICOMwebClient
results = []
for piece in [b'', b'--', b'\\r\\n', b'--\\r\\n', b'--\\r\\nafter', b'A: 1\\r\\n\\r\\nbody',
              b'\\r\\nA: 1\\r\\n\\r\\nbody\\r\\n\\r\\nmore', b'\\r\\n\\r\\n', b'no blank line']:
    try:
        content = DICOMwebClient._extract_part_content(piece)
        results.append(None if content is None else bytes(content).decode())
    except ValueError:
        results.append('ValueError')
print(json.dumps(results))
'''


def test_extract_part_content_like_the_established_package(reference_python) -> None:
    ours = run_replay(sys.executable, EXTRACT_REPLAY, ours=True)
    assert ours == run_replay(reference_python, EXTRACT_REPLAY, ours=False)
    assert ours == [None, None, None, None, None, 'body', 'body\r\n\r\nmore', '', 'ValueError']


def test_decode_multipart_message_refuses_other_media_types(recording_server) -> None:
    recording_server.add('GET', '/x', Response(body=b'x', content_type='application/dicom'))
    client = DICOMwebClient(recording_server.url)
    response = client._http_get(recording_server.url + '/x')
    with pytest.raises(MultipartError, match='multipart/related'):
        next(client._decode_multipart_message(response, stream=False))


# -- MONAI Label: a subclass overriding _decode_multipart_message ---------------------


class DICOMwebClientX(DICOMwebClient):
    """MONAI Label's subclass (monailabel/datastore/dicom.py), recording its calls."""

    calls: list[str]

    def _decode_multipart_message(self, response: Any, stream: bool) -> Any:
        self.calls = [*getattr(self, 'calls', []), response.headers['content-type']]
        media_type = response.headers['content-type'].split(';')[0].strip()
        if media_type.lower() != 'multipart/related':
            response.headers['content-type'] = 'multipart/related'
        return super()._decode_multipart_message(response, stream)


MONAI_INSTANCES = [
    dicom_data.make_instance(
        study_uid=STUDY, series_uid=SERIES, sop_uid=f'{SOP}.{n}', rows=4, columns=4
    )
    for n in (1, 2)
]
FRAME = bytes(range(32))


def monai_server(server: RecordingServer) -> None:
    """What MONAI Label's downloads ask for; frames come labelled octet-stream without
    multipart framing, the answer the subclass exists for."""
    base = f'/output/studies/{STUDY}/series/{SERIES}'
    server.add(
        'GET',
        '/output/series',
        Response(
            body=json.dumps(
                [
                    {
                        '0020000D': {'vr': 'UI', 'Value': [STUDY]},
                        '0020000E': {'vr': 'UI', 'Value': [SERIES]},
                    }
                ]
            ).encode(),
            content_type='application/dicom+json',
        ),
    )
    server.add(
        'GET',
        base,
        multipart_response([dicom_data.to_bytes(ds) for ds in MONAI_INSTANCES], boundary=BOUNDARY),
    )
    server.add(
        'GET',
        f'{base}/metadata',
        Response(
            body=json.dumps([ds.to_json_dict() for ds in MONAI_INSTANCES]).encode(),
            content_type='application/dicom+json',
        ),
    )
    for ds in MONAI_INSTANCES:
        server.add(
            'GET',
            f'{base}/instances/{ds.SOPInstanceUID}/frames/1',
            Response(body=FRAME, content_type='application/octet-stream'),
        )


def test_monai_subclass_override_is_called_by_retrievals(recording_server) -> None:
    monai_server(recording_server)
    client = DICOMwebClientX(
        url=recording_server.url,
        session=None,
        qido_url_prefix='output',
        wado_url_prefix='output',
        stow_url_prefix='output',
    )
    found = client.search_for_series(search_filters={'SeriesInstanceUID': SERIES})
    assert found[0]['0020000E']['Value'] == [SERIES]
    instances = client.retrieve_series(STUDY, SERIES)
    assert [ds.SOPInstanceUID for ds in instances] == [f'{SOP}.1', f'{SOP}.2']
    assert client.calls == [f'multipart/related; type="application/dicom"; boundary={BOUNDARY}']
    frames = [
        client.retrieve_instance_frames(
            study_instance_uid=STUDY,
            series_instance_uid=SERIES,
            sop_instance_uid=str(m['00080018']['Value'][0]),
            frame_numbers=[1],
        )[0]
        for m in client.retrieve_series_metadata(STUDY, SERIES)
    ]
    assert frames == [FRAME, FRAME]
    assert client.calls[1:] == ['application/octet-stream'] * 2
    assert [ds.SOPInstanceUID for ds in client.iter_series(STUDY, SERIES)] == [
        f'{SOP}.1',
        f'{SOP}.2',
    ]
    assert len(client.calls) == 4


def test_only_overridden_hooks_leave_the_fast_path(recording_server, monkeypatch) -> None:
    monai_server(recording_server)
    fast: list[str] = []
    iter_parts = dicomweb_client._iter_parts

    def counting(response: Any, *args: Any) -> Any:
        fast.append(response.url)
        return iter_parts(response, *args)

    monkeypatch.setattr(dicomweb_client, '_iter_parts', counting)
    plain = DICOMwebClient(recording_server.url, wado_url_prefix='output')
    assert len(plain.retrieve_series(STUDY, SERIES)) == 2 and len(fast) == 1
    hooked = DICOMwebClientX(recording_server.url, wado_url_prefix='output')
    assert len(hooked.retrieve_series(STUDY, SERIES)) == 2 and len(fast) == 1
    assert len(hooked.calls) == 1


def test_subclass_extract_part_content_is_used_for_frames(recording_server) -> None:
    class Upper(DICOMwebClient):
        @classmethod
        def _extract_part_content(cls, part: bytes) -> bytes | None:
            content = super()._extract_part_content(part)
            return None if content is None else content.upper()

    path = f'/studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/1,2'
    recording_server.add(
        'GET', path, multipart_response([b'ab', b'cd'], 'application/octet-stream')
    )
    client = Upper(recording_server.url)
    assert client.retrieve_instance_frames(STUDY, SERIES, SOP, [1, 2]) == [b'AB', b'CD']
    assert list(client.iter_instance_frames(STUDY, SERIES, SOP, [1, 2])) == [b'AB', b'CD']


MONAI_REPLAY = '''
import hashlib, json, sys
from dicomweb_client import DICOMwebClient


class DICOMwebClientX(DICOMwebClient):
    calls = []

    def _decode_multipart_message(self, response, stream):
        content_type = response.headers['content-type']
        self.calls.append(content_type)
        if content_type.split(';')[0].strip().lower() != 'multipart/related':
            response.headers['content-type'] = 'multipart/related'
        return super()._decode_multipart_message(response, stream)


client = DICOMwebClientX(url=sys.argv[1], session=None, qido_url_prefix='output',
                         wado_url_prefix='output', stow_url_prefix='output')
series_uid = sys.argv[2]
meta = [s for s in client.search_for_series(search_filters={'SeriesInstanceUID': series_uid})
        if s['0020000E']['Value'] == [series_uid]][0]
study_uid = meta['0020000D']['Value'][0]
uids = [str(ds.SOPInstanceUID) for ds in client.retrieve_series(study_uid, series_uid)]
frames = []
for item in client.retrieve_series_metadata(study_uid, series_uid):
    frame = client.retrieve_instance_frames(
        study_instance_uid=study_uid, series_instance_uid=series_uid,
        sop_instance_uid=item['00080018']['Value'][0], frame_numbers=[1])[0]
    frames.append(hashlib.sha256(frame).hexdigest()[:16])
print(json.dumps({'uids': uids, 'frames': frames, 'calls': client.calls}))
'''


def test_monai_download_like_the_established_package(recording_server, reference_python) -> None:
    monai_server(recording_server)
    ours, theirs, sent_ours, sent_theirs = both(
        reference_python, recording_server, MONAI_REPLAY, SERIES
    )
    assert ours == theirs
    assert ours['frames'] == [digest(FRAME)] * 2 and len(ours['calls']) == 3
    assert [request['path'] for request in sent_ours] == [
        request['path'] for request in sent_theirs
    ]


# -- large_image: _Transaction, _get_instances_url and streamed answers ----------------

LARGE_IMAGE_REPLAY = '''
import hashlib, json, sys
import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.web import _Transaction

server, study, series, sop, auth = sys.argv[1:6]
session = None
if auth == 'token':
    session = requests.Session()
    session.headers.update({'Authorization': 'Bearer li-token'})
client = DICOMwebClient(url=server + '/dicomweb', qido_url_prefix=None,
                        wado_url_prefix=None, session=session)
url = client._get_instances_url(_Transaction.RETRIEVE, study, series, sop)


def request_instance(multipart):
    if multipart:
        accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    else:
        accept = 'application/dicom; transfer-syntax=*'
    return client._http_get(url, headers={'Accept': accept}, stream=True)


def single_part(response):
    return response is not None and response.status_code == 200 and not any(
        text in response.headers.get('Content-Type') for text in ('multipart', 'boundary'))


def multipart_body(response):
    kind, *params = [item.strip() for item in response.headers['content-type'].split(';')]
    assert kind.lower() == 'multipart/related', kind
    boundary = [p.split('=', 1)[1].strip('"') for p in params
                if p.lower().startswith('boundary=')][0].encode()
    data = b''
    with response:
        for chunk in response.iter_content(65536):
            data += chunk
    start = data.index(b'\\r\\n\\r\\n') + 4
    return data[start:data.index(b'\\r\\n--' + boundary, start)]


try:
    response = request_instance(multipart=False)
except requests.HTTPError:
    response = None
single = single_part(response)
size = response.headers.get('Content-Length') if single else None
if not single:
    response = request_instance(multipart=True)
if 'multipart/related' in response.request.headers.get('Accept', ''):
    data = multipart_body(response)
else:
    with response:
        data = b''.join(response.iter_content(65536))
print(json.dumps({'url': url.replace(server, ''), 'single': single, 'size': size,
                  'data': [len(data), hashlib.sha256(data).hexdigest()[:16]]}))
'''

INSTANCE_FILE = dicom_data.to_bytes(MONAI_INSTANCES[0])


def large_image_server(server: RecordingServer, single_part: bool) -> str:
    """An instance served as a bare file (as Google's API can) or only as multipart."""
    path = f'/dicomweb/studies/{STUDY}/series/{SERIES}/instances/{SOP}'

    def answer(request: RecordedRequest) -> Response:
        if request.header('Accept', '').startswith('multipart/related'):
            return multipart_response([INSTANCE_FILE], boundary=BOUNDARY)
        if single_part:
            return Response(body=INSTANCE_FILE, content_type='application/dicom')
        return Response(status=406, body=b'multipart only')

    server.add('GET', path, answer)
    return path


@pytest.mark.parametrize('auth', ['none', 'token'])
@pytest.mark.parametrize('single_part', [True, False])
def test_large_image_instance_download(recording_server, single_part, auth) -> None:
    pytest.importorskip('requests')
    path = large_image_server(recording_server, single_part)
    result = run_replay(
        sys.executable,
        LARGE_IMAGE_REPLAY,
        recording_server.url,
        STUDY,
        SERIES,
        SOP,
        auth,
        ours=True,
    )
    assert result == {
        'url': path,
        'single': single_part,
        'size': str(len(INSTANCE_FILE)) if single_part else None,
        'data': [len(INSTANCE_FILE), digest(INSTANCE_FILE)],
    }
    assert len(recording_server.requests) == (1 if single_part else 2)
    if auth == 'token':
        assert recording_server.last.header('Authorization') == 'Bearer li-token'


@pytest.mark.parametrize('auth', ['none', 'token'])
@pytest.mark.parametrize('single_part', [True, False])
def test_large_image_instance_download_like_the_established_package(
    recording_server, reference_python, single_part, auth
) -> None:
    large_image_server(recording_server, single_part)
    ours, theirs, sent_ours, sent_theirs = both(
        reference_python, recording_server, LARGE_IMAGE_REPLAY, STUDY, SERIES, SOP, auth
    )
    assert ours == theirs
    assert sent_ours == sent_theirs


URL_HELPERS_REPLAY = '''
import itertools, json, sys
from dicomweb_client.web import DICOMwebClient, _Transaction

results = {'members': [[member.name, member.value] for member in _Transaction]}
uids = [None, '1.2.3']
for prefixes in ([None] * 4, ['q', 'w', 's', 'd']):
    client = DICOMwebClient('http://127.0.0.1:1/base', qido_url_prefix=prefixes[0],
                            wado_url_prefix=prefixes[1], stow_url_prefix=prefixes[2],
                            delete_url_prefix=prefixes[3])
    for transaction in _Transaction:
        key = f'{prefixes[0]}-{transaction.name}'
        results[key] = client._get_transaction_url(transaction)
        for study, series, sop in itertools.product(uids, ['4.5', None], ['6.7', None]):
            name = f'{key}-{study}-{series}-{sop}'
            results[name + '-studies'] = client._get_studies_url(transaction, study)
            results[name + '-series'] = client._get_series_url(transaction, study, series)
            results[name + '-instances'] = client._get_instances_url(transaction, study,
                                                                     series, sop)
print(json.dumps(results))
'''


def test_url_helpers_like_the_established_package(reference_python) -> None:
    ours = run_replay(sys.executable, URL_HELPERS_REPLAY, ours=True)
    assert ours == run_replay(reference_python, URL_HELPERS_REPLAY, ours=False)
    assert ours['members'] == [
        ['STORE', 'store'],
        ['SEARCH', 'search'],
        ['RETRIEVE', 'retrieve'],
        ['DELETE', 'delete'],
    ]


def test_url_helpers_in_process(caplog) -> None:
    from dicomweb_client.web import _Transaction

    client = DICOMwebClient('http://h/base', wado_url_prefix='wado')
    retrieve = _Transaction.RETRIEVE
    assert client._get_instances_url(retrieve, STUDY, SERIES, SOP) == (
        f'http://h/base/wado/studies/{STUDY}/series/{SERIES}/instances/{SOP}'
    )
    assert client._get_series_url(_Transaction.SEARCH, STUDY) == (
        f'http://h/base/studies/{STUDY}/series'
    )
    assert client._get_studies_url(retrieve) == 'http://h/base/wado/studies'
    assert client._get_instances_url(retrieve, None, SERIES, SOP) == 'http://h/base/wado/instances'
    assert 'SOP Instance UID is ignored' in caplog.text
    with pytest.raises(ValueError):  # a "UID" that would change the path
        client._get_studies_url(retrieve, '1.2/../3')
    with pytest.raises(ValueError):
        client._get_transaction_url('retrieve')  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('module', 'names'),
    [
        ('dicomweb_client.web', ('DICOMwebClient', '_Transaction')),
        ('dicomweb_client.file', ('DICOMfileClient',)),
    ],
)
def test_client_modules_import(module: str, names: tuple[str, ...]) -> None:
    code = f'from {module} import {", ".join(names)}; import dicomweb_client; ' + '; '.join(
        f'assert {name} is dicomweb_client.{name}' for name in names
    )
    run_replay(sys.executable, code + '; print("null")', ours=True)


def test_fast_path_check_sees_every_kind_of_override() -> None:
    class Sub(DICOMwebClient):
        def _decode_multipart_message(self, response: Any, stream: bool) -> Any:
            return super()._decode_multipart_message(response, stream)

    plain, sub = DICOMwebClient('http://h'), Sub('http://h')
    assert not plain._replaced('_decode_multipart_message')
    assert sub._replaced('_decode_multipart_message')
    assert not sub._replaced('_extract_part_content')
