"""Tests of the HTTP transport of dicomweb_client over real loopback sockets.

Covered here: header merging, authentication, keep-alive and stale connections,
retries, request bodies, error reporting, redirects, response hooks, thread safety
and what is logged.  TLS and proxies are in ``test_transport_tls_proxy.py``.

Nothing in the library is mocked: every test talks to a :class:`RecordingServer`
on 127.0.0.1 (or, for "connection refused", to a closed port there).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import email.utils
import gzip
import http.cookiejar
import io
import logging
import os
import pathlib
import socket
import struct
import threading
import time
import urllib.request
import zlib

import pytest
from concurrency import run_in_threads
from recording_server import DigestProtected, RecordingServer
from recording_server import Response as Canned

import dicomweb_client as dwc
from helpers import basic, closed_port

#: retries without noticeable waiting: back-off of 2 ms, 4 ms, ...
FAST_RETRY = dwc.RetryPolicy(max_attempts=3, wait_exponential_multiplier=1)


# -- fixtures and helpers -------------------------------------------------------------


def ok(body: bytes = b'ok') -> Canned:
    return Canned(body=body, content_type='text/plain')


def requests_or_skip():
    return pytest.importorskip('requests')


@contextlib.contextmanager
def resetting_server(answer: bytes, pause: float = 0.2):
    """Serve one connection: read a request head, send ``answer``, wait, then reset (RST).

    The pause makes sure the client has read the status line and header fields
    before the reset arrives, so the failure happens while the body is read.  A request
    body is never read, so a large one is cut short by the reset while it is sent.
    """
    listener = socket.create_server(('127.0.0.1', 0))
    listener.settimeout(5)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            received = b''
            while b'\r\n\r\n' not in received:
                data = conn.recv(65536)
                if not data:
                    return
                received += data
            conn.sendall(answer)
            time.sleep(pause)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{listener.getsockname()[1]}'
    finally:
        listener.close()
        thread.join(timeout=5)


# -- header fields and query strings ------------------------------------------------------


def test_default_headers(recording_server: RecordingServer, session) -> None:
    recording_server.add('GET', '/x', ok())
    response = session.get(recording_server.url + '/x')
    assert response.status_code == 200
    request = recording_server.last
    assert request.header('User-Agent', '').startswith('dicomweb_client/')
    assert request.header('Accept') == '*/*'
    assert request.header('Host') == f'127.0.0.1:{recording_server.port}'


def test_session_headers_are_merged_with_request_headers(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.headers['X-Session'] = 'from-session'
    session.headers['X-Both'] = 'session-value'
    session.get(
        recording_server.url + '/x',
        headers={'X-Request': 'from-request', 'x-both': 'request-value'},
    )
    request = recording_server.last
    assert request.header('X-Session') == 'from-session'
    assert request.header('X-Request') == 'from-request'
    # the request's value wins, case-insensitively, and is sent once
    assert request.headers.get_all('X-Both') == ['request-value']
    # the session is not changed by a request's headers
    assert session.headers['X-Both'] == 'session-value'
    assert 'X-Request' not in session.headers


def test_request_header_none_removes_a_session_header(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.headers['X-Drop-Me'] = 'present'
    session.get(recording_server.url + '/x', headers={'X-Drop-Me': None, 'User-Agent': None})
    request = recording_server.last
    assert request.header('X-Drop-Me') is None
    assert request.header('User-Agent') is None
    assert session.headers['X-Drop-Me'] == 'present'


def test_case_insensitive_dict() -> None:
    headers = dwc.CaseInsensitiveDict({'Content-Type': 'a'})
    headers['content-type'] = 'b'
    assert len(headers) == 1 and headers['CONTENT-TYPE'] == 'b'
    copy = headers.copy()
    copy['X'] = '1'
    assert 'x' not in headers and 'x' in copy
    del copy['x']
    assert list(copy) == ['content-type']


def test_params_become_the_query_string(recording_server, session) -> None:
    recording_server.add('GET', '/studies', ok())
    session.get(
        recording_server.url + '/studies',
        params={
            'PatientName': 'Doe^J* & co',
            'includefield': ['00100010', '00100020'],
            'fuzzymatching': True,
            'limit': 5,
        },
    )
    request = recording_server.last
    assert request.path == '/studies'
    assert request.query == {
        'PatientName': ['Doe^J* & co'],
        'includefield': ['00100010', '00100020'],
        'fuzzymatching': ['true'],
        'limit': ['5'],
    }


def test_params_are_appended_to_a_query_in_the_url(recording_server, session) -> None:
    recording_server.add('GET', '/studies', ok())
    session.get(recording_server.url + '/studies?a=1', params={'b': '2'})
    assert recording_server.last.query == {'a': ['1'], 'b': ['2']}


def test_session_params_go_with_every_request(recording_server, session) -> None:
    recording_server.add('GET', '/studies', ok())
    session.params = {'key': 'api-key-1', 'site': 'north'}
    session.get(recording_server.url + '/studies', params={'limit': 5})
    assert recording_server.last.query == {'key': ['api-key-1'], 'site': ['north'], 'limit': ['5']}
    session.get(recording_server.url + '/studies', params={'site': 'south', 'key': None})
    assert recording_server.last.query == {'site': ['south']}


def test_a_client_search_carries_the_session_params(recording_server) -> None:
    recording_server.add(
        'GET', '/studies', Canned(body=b'[]', content_type='application/dicom+json')
    )
    session = dwc.create_session()
    session.params['key'] = 'k'
    dwc.DICOMwebClient(recording_server.url, session=session).search_for_studies(
        search_filters={'PatientID': 'P1'}
    )
    assert recording_server.last.query == {'key': ['k'], 'PatientID': ['P1']}


def test_json_body(recording_server, session) -> None:
    recording_server.add('POST', '/j', ok())
    session.post(recording_server.url + '/j', json={'key': [1, 2]})
    request = recording_server.last
    assert request.header('Content-Type') == 'application/json'
    assert request.body == b'{"key": [1, 2]}'
    assert request.header('Content-Length') == str(len(request.body))


# -- the request head the session writes --------------------------------------------------


def test_default_accept_encoding_is_identity_and_a_given_one_is_kept(
    recording_server, session
) -> None:
    recording_server.add('GET', '/x', ok())
    session.get(recording_server.url + '/x')
    assert recording_server.last.headers.get_all('Accept-Encoding') == ['identity']
    session.get(recording_server.url + '/x', headers={'accept-encoding': 'gzip'})
    assert recording_server.last.headers.get_all('Accept-Encoding') == ['gzip']


def test_a_given_host_field_replaces_the_computed_one(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.get(recording_server.url + '/x', headers={'Host': 'dicom.example:8042'})
    assert recording_server.last.headers.get_all('Host') == ['dicom.example:8042']


def test_post_without_body_says_content_length_zero(recording_server, session) -> None:
    recording_server.add('POST', '/x', ok())
    recording_server.add('DELETE', '/x', ok())
    session.post(recording_server.url + '/x')
    assert recording_server.last.header('Content-Length') == '0'
    session.delete(recording_server.url + '/x')
    assert recording_server.last.header('Content-Length') is None


@pytest.mark.parametrize(
    'headers',
    [
        {'X-Evil': 'value\r\nX-Injected: 1'},
        {'X-Evil': 'value\nX-Injected: 1'},
        {'X-Evil': 'value\r'},
        {'X-Evil\r\nX-Injected': 'value'},
        {'X Space': 'value'},
        {':colon': 'value'},
        {'': 'value'},
    ],
    ids=repr,
)
def test_fields_that_would_break_the_framing_are_refused_before_sending(
    recording_server, session, headers
) -> None:
    recording_server.add('GET', '/x', ok())
    with pytest.raises(ValueError, match='header field'):
        session.get(recording_server.url + '/x', headers=headers)
    assert recording_server.requests == []
    # the session is still usable
    assert session.get(recording_server.url + '/x').content == b'ok'


@pytest.mark.parametrize('method', ['GET\r\nX: 1', 'GE T', 'GET\x00'])
def test_a_method_with_spaces_or_line_breaks_is_refused(recording_server, session, method) -> None:
    with pytest.raises(ValueError, match='method'):
        session.request(method, recording_server.url + '/x')
    assert recording_server.requests == []


def test_non_string_header_values_are_sent_as_text(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.get(recording_server.url + '/x', headers={'X-Number': 42, 'X-Bytes': b'raw'})
    assert recording_server.last.header('X-Number') == '42'
    assert recording_server.last.header('X-Bytes') == 'raw'


def test_text_chunks_of_a_streamed_body_are_sent_as_utf8(recording_server, session) -> None:
    recording_server.add('POST', '/x', ok())
    session.post(recording_server.url + '/x', data=iter(['caf\u00e9 ', b'and bytes']))
    request = recording_server.last
    assert request.chunked
    assert request.body == 'caf\u00e9 and bytes'.encode('utf-8')


def test_one_connection_carries_many_requests_of_every_kind(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok(b'x' * 100_000))
    recording_server.add('POST', '/x', ok())
    recording_server.add('HEAD', '/x', ok(b'12345'))
    recording_server.add('GET', '/chunked', Canned(body=[b'a', b'b' * 70_000], chunked=True))
    for _ in range(3):
        assert len(session.get(recording_server.url + '/x').content) == 100_000
        session.post(recording_server.url + '/x', data=b'y' * 200_000)
        session.post(recording_server.url + '/x', data=iter([b'z'] * 10))
        assert session.head(recording_server.url + '/x').content == b''
        assert session.get(recording_server.url + '/chunked').content == b'a' + b'b' * 70_000
    assert {request.connection for request in recording_server.requests} == {1}


@contextlib.contextmanager
def scripted_server(sends_per_request, close_after: bool = False):
    """A server that answers the n-th request on any connection by sending the pieces
    ``sends_per_request[n]`` (a short pause between pieces), then with ``close_after``
    ends the connection; yields (url, connections)."""
    listener = socket.create_server(('127.0.0.1', 0))
    connections = []
    served = iter(sends_per_request)

    def handle(conn) -> None:
        with conn, contextlib.suppress(OSError):  # the client may hang up first
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            received = b''
            while True:
                while b'\r\n\r\n' not in received:
                    data = conn.recv(65536)
                    if not data:
                        return
                    received += data
                received = received.split(b'\r\n\r\n', 1)[1]
                try:
                    pieces = next(served)
                except StopIteration:
                    return
                for piece in pieces:
                    conn.sendall(piece)
                    time.sleep(0.03)
                if close_after:
                    conn.shutdown(socket.SHUT_WR)
                    return

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{listener.getsockname()[1]}/', connections
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        listener.close()
        thread.join(timeout=5)


OK_HEAD = b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'


def test_exact_answers_keep_their_connection(session) -> None:
    with scripted_server([[OK_HEAD + b'hello']] * 3) as (url, connections):
        for _ in range(3):
            assert session.get(url).content == b'hello'
        assert len(connections) == 1


SMUGGLED = OK_HEAD + b'WRONG'  # an answer to a request that was never sent


@pytest.mark.parametrize(
    'pieces',
    [
        [OK_HEAD + b'hello' + SMUGGLED],  # extra bytes came with the answer
        [OK_HEAD, b'hello' + SMUGGLED],  # extra bytes came with the body
        [OK_HEAD + b'he', b'llo' + SMUGGLED],  # with the rest of a split body
        [OK_HEAD + b'he', b'llo' + SMUGGLED + b'!' * 10_000],  # and more than a buffer holds
    ],
    ids=['with the head', 'with the body', 'after a split body', 'beyond the buffer'],
)
def test_bytes_beyond_an_answer_retire_its_connection(session, pieces) -> None:
    """Bytes past the end of an answer would be taken as the next answer: the connection
    that holds them is closed, and the next request goes over a new one."""
    with scripted_server([pieces, [OK_HEAD + b'world']]) as (url, connections):
        assert session.get(url).content == b'hello'
        assert session.get(url).content == b'world'
        assert len(connections) == 2


@pytest.mark.parametrize('split', [1, 5, 17, 30, 44, 60])
def test_an_answer_head_split_across_reads_is_read_whole(session, split) -> None:
    """The header block may arrive in pieces; the quick path (whole block already
    buffered) and the line-by-line path must give the same answer."""
    answer = (
        b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Folded: one\r\n two\r\n'
        b'Content-Length: 5\r\n\r\nhello'
    )
    with scripted_server([[answer[:split], answer[split:]]] * 2) as (url, _):
        for _ in range(2):
            response = session.get(url)
            assert response.content == b'hello'
            assert response.headers['Content-Type'] == 'text/plain'
            assert response.headers['X-Folded'] == 'one two'


def test_remembered_answer_heads_are_not_shared_or_mixed_up(session, monkeypatch) -> None:
    """Heads are remembered by their bytes: a repeated head gives fresh, equal fields;
    a head that differs in one byte is read anew; a full memory starts over."""
    monkeypatch.setattr(dwc, '_MEMO_SIZE', 2)
    heads = [OK_HEAD.replace(b'\r\n\r\n', b'\r\nX-N: %d\r\n\r\n' % n) for n in (1, 2, 3)]
    sends = [[heads[n % 3] + b'hello'] for n in range(7)]
    with scripted_server(sends) as (url, connections):
        first = session.get(url)
        first.headers['X-N'] = 'changed by the caller'
        for n in range(1, 7):
            response = session.get(url)
            assert response.headers.get_all('X-N') == [str(n % 3 + 1)]
            assert response.content == b'hello'
        assert len(connections) == 1
    assert 0 < len(session._heads_read) <= 2


def test_closing_a_session_forgets_the_heads_it_sent_and_read(session) -> None:
    """What was remembered to save work (request heads with their credentials, answer
    heads with their cookies) lives no longer than the session."""
    answer = OK_HEAD.replace(b'\r\n\r\n', b'\r\nSet-Cookie: id=secret\r\n\r\n') + b'hello'
    with scripted_server([[answer]]) as (url, _):
        session.get(url, headers={'Authorization': 'Bearer token-1'})
    assert any(b'token-1' in head for head in session._heads_sent.values())
    assert any(b'secret' in head for head in session._heads_read)
    session.close()
    assert not session._heads_sent and not session._heads_read


def test_a_remembered_head_with_a_bad_length_fails_every_time(session) -> None:
    bad = b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello'
    with scripted_server([[bad]] * 2, close_after=True) as (url, _):
        for _ in range(2):
            with pytest.raises(dwc.TransportError, match='Content-Length'):
                session.get(url)


ODD_HEADS = {
    'blanks': b'HTTP/1.1 200 OK\r\nContent-Type:text/plain\r\nX-Spaces:   padded  value  \r\n'
    b'X-Tab:\tt\t\r\nX-Empty:\r\nX-Latin: caf\xe9\r\nX-Sp : v\r\n'
    b'X-FF: \x0cv\x0c\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nContent-Length: 5\r\n\r\n'
    b'hello',
    'folded': b'HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\n\tthree\r\nContent-Length: 5\r\n\r\n'
    b'hello',
    'leading colon': b'HTTP/1.1 200 OK\r\n:odd: x\r\nContent-Length: 5\r\n\r\nhello',
    'no colon': b'HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 5\r\n\r\nhello',
    'no reason': b'HTTP/1.1 204\r\nX-A: 1\r\n\r\n',
    'reason with blanks': b'HTTP/1.1 200  All  Good \r\nContent-Length: 5\r\n\r\nhello',
    'interim answer': b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'
    b'hello',
    'HTTP/1.0': b'HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello',
    'no fields': b'HTTP/1.1 200 OK\r\n\r\n',
}


@pytest.mark.parametrize('name', list(ODD_HEADS))
def test_answer_heads_read_whole_or_line_by_line_agree(session, name) -> None:
    """An answer head that is buffered whole takes the quick path, one that arrives in
    pieces the line-by-line path; both must read every kind of head alike."""
    answer = ODD_HEADS[name]
    sends = [[answer], [answer[:1], answer[1:]]]
    with scripted_server(sends, close_after=True) as (url, _):
        seen = []
        for _ in sends:
            response = session.get(url)
            seen.append(
                (response.status_code, response.reason, response.headers.items(), response.content)
            )
    assert seen[0] == seen[1]


# -- authentication -------------------------------------------------------------------------


@pytest.fixture
def netrc_file(tmp_path, monkeypatch):
    """A netrc file named by ``$NETRC`` with credentials for 127.0.0.1 and a default."""
    path = tmp_path / 'netrc'
    path.write_text(
        'machine 127.0.0.1 login nina password n3trc\n'
        'machine pacs.example.org login other password elsewhere\n'
    )
    monkeypatch.setenv('NETRC', str(path))
    return path


def test_netrc_credentials_are_used_like_requests_does(
    recording_server, netrc_file, session
) -> None:
    recording_server.add('GET', '/x', ok())
    session.get(recording_server.url + '/x')
    assert recording_server.last.header('Authorization') == basic('nina', 'n3trc')


def test_netrc_gives_way_to_any_other_credentials(recording_server, netrc_file, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.get(recording_server.url + '/x', headers={'Authorization': 'Bearer t'})
    assert recording_server.last.header('Authorization') == 'Bearer t'
    session.get(recording_server.url + '/x', auth=('ann', 'pw'))
    assert recording_server.last.header('Authorization') == basic('ann', 'pw')
    url = recording_server.url.replace('http://', 'http://url:user@')
    session.get(url + '/x')
    assert recording_server.last.header('Authorization') == basic('url', 'user')


def test_netrc_is_ignored_without_trust_env_or_for_other_hosts(
    recording_server, netrc_file, session
) -> None:
    recording_server.add('GET', '/x', ok())
    session.trust_env = False
    session.get(recording_server.url + '/x')
    assert recording_server.last.header('Authorization') is None
    session.trust_env = True
    session.get(f'http://localhost:{recording_server.port}/x')  # not the machine named
    assert recording_server.last.header('Authorization') is None


def test_an_unreadable_netrc_is_ignored(recording_server, tmp_path, monkeypatch, session) -> None:
    path = tmp_path / 'netrc'
    path.write_text('machine 127.0.0.1 login\n"unterminated')
    monkeypatch.setenv('NETRC', str(path))
    recording_server.add('GET', '/x', ok())
    assert session.get(recording_server.url + '/x').status_code == 200


def test_user_pass_session_sends_basic_auth(recording_server) -> None:
    recording_server.add('GET', '/x', ok())
    with dwc.create_session_from_user_pass('alice', 's3cret:with colon') as session:
        session.get(recording_server.url + '/x')
    assert recording_server.last.header('Authorization') == basic('alice', 's3cret:with colon')


def test_bearer_auth(recording_server) -> None:
    recording_server.add('GET', '/x', ok())
    with dwc.create_session_from_auth(dwc.BearerAuth('tok-123')) as session:
        session.get(recording_server.url + '/x')
    assert recording_server.last.header('Authorization') == 'Bearer tok-123'


def test_plain_callable_auth(recording_server) -> None:
    recording_server.add('GET', '/x', ok())
    seen = []

    def api_key(request):
        seen.append((request.method, request.url))
        request.headers['X-Api-Key'] = 'key-1'
        return request

    with dwc.create_session_from_auth(api_key) as session:
        session.get(recording_server.url + '/x')
    assert recording_server.last.header('X-Api-Key') == 'key-1'
    assert seen == [('GET', recording_server.url + '/x')]


def test_callable_auth_returning_none_still_applies(recording_server) -> None:
    recording_server.add('GET', '/x', ok())

    def in_place(request):
        request.headers['X-Api-Key'] = 'key-2'

    with dwc.create_session_from_auth(in_place) as session:
        session.get(recording_server.url + '/x')
    assert recording_server.last.header('X-Api-Key') == 'key-2'


def test_auth_pair_on_session(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.auth = ('bob', 'pw')
    session.get(recording_server.url + '/x')
    assert recording_server.last.header('Authorization') == basic('bob', 'pw')


def test_requests_http_basic_auth_instance(recording_server) -> None:
    requests = requests_or_skip()
    recording_server.add('GET', '/x', ok())
    auth = requests.auth.HTTPBasicAuth('carol', 'pa55')
    with dwc.create_session_from_auth(auth) as session:
        response = session.get(recording_server.url + '/x')
    assert response.status_code == 200
    assert recording_server.last.header('Authorization') == basic('carol', 'pa55')


def test_credentials_in_the_url(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    port = recording_server.port
    response = session.get(f'http://dave:p%40ss%3Aw@127.0.0.1:{port}/x?q=1')
    assert response.status_code == 200
    request = recording_server.last
    assert request.header('Authorization') == basic('dave', 'p@ss:w')
    assert request.target == '/x?q=1'
    assert request.header('Host') == f'127.0.0.1:{port}'


# -- keep-alive and stale connections ---------------------------------------------------


def test_requests_reuse_one_connection(recording_server, session) -> None:
    recording_server.add(None, '/x', ok())
    for _ in range(5):
        assert session.get(recording_server.url + '/x').content == b'ok'
    session.post(recording_server.url + '/x', data=b'body')
    session.head(recording_server.url + '/x')
    assert recording_server.connection_count == 1
    assert {r.connection for r in recording_server.requests} == {1}


def test_streamed_response_read_to_the_end_releases_the_connection(
    recording_server, session
) -> None:
    recording_server.add('GET', '/x', Canned(body=[b'a' * 1000, b'b' * 1000], chunked=True))
    for _ in range(3):
        response = session.get(recording_server.url + '/x', stream=True)
        assert b''.join(response.iter_content(100)) == b'a' * 1000 + b'b' * 1000
    assert recording_server.connection_count == 1


def test_unread_streamed_response_closes_its_connection(recording_server, session) -> None:
    recording_server.add('GET', '/big', ok(b'z' * 200_000))
    recording_server.add('GET', '/x', ok())
    response = session.get(recording_server.url + '/big', stream=True)
    assert response.read1(10)
    response.close()
    assert session.get(recording_server.url + '/x').content == b'ok'
    # the half-read connection must not be reused: its unread body would be taken as
    # the next answer
    assert recording_server.connection_count == 2


def test_abandoned_answer_whose_connection_closed_first_closes_quietly(
    recording_server, session
) -> None:
    # when an abandoned answer and its connection are collected together, the
    # connection's reader may be closed before the answer's own close runs
    recording_server.add('GET', '/big', ok(b'z' * 200_000))
    response = session.get(recording_server.url + '/big', stream=True)
    assert response.read1(10)
    response.raw.fp.close()
    response.raw.close()  # the standard close flushes the reader, which would raise here
    assert response.raw.isclosed()


def test_connection_close_answer_is_not_reused(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    recording_server.queue(Canned(body=b'bye', close=True))
    assert session.get(recording_server.url + '/x').content == b'bye'
    assert session.get(recording_server.url + '/x').content == b'ok'
    assert recording_server.connection_count == 2


def test_get_after_server_closed_idle_connection(make_server, session) -> None:
    server = make_server(idle_timeout=0.2)
    server.add('GET', '/x', ok())
    assert session.get(server.url + '/x').status_code == 200
    time.sleep(0.5)  # the server drops the idle keep-alive connection meanwhile
    response = session.get(server.url + '/x')
    assert response.status_code == 200 and response.content == b'ok'
    assert server.connection_count == 2
    assert [r.method for r in server.requests] == ['GET', 'GET']


def test_post_after_server_closed_idle_connection(make_server, session) -> None:
    server = make_server(idle_timeout=0.2)
    server.add(None, '/x', ok())
    assert session.get(server.url + '/x').status_code == 200
    time.sleep(0.5)
    # POST is not idempotent: it only succeeds if the dead connection is noticed
    # before anything is sent
    response = session.post(server.url + '/x', data=b'payload')
    assert response.status_code == 200
    assert [(r.method, r.body) for r in server.requests] == [('GET', b''), ('POST', b'payload')]
    assert server.connection_count == 2


# -- retries ---------------------------------------------------------------------------------


def test_503_then_200_is_retried(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    recording_server.queue(Canned(status=503, body=b'busy'))
    response = session.get(recording_server.url + '/x', retry=FAST_RETRY)
    assert response.status_code == 200 and response.content == b'ok'
    assert len(recording_server.requests) == 2


def test_session_retry_policy_is_the_default(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    recording_server.queue(Canned(status=503), Canned(status=429))
    session.retry = FAST_RETRY
    assert session.get(recording_server.url + '/x').status_code == 200
    assert len(recording_server.requests) == 3


def test_no_retry_by_default(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    recording_server.queue(Canned(status=503))
    assert session.get(recording_server.url + '/x').status_code == 503
    assert len(recording_server.requests) == 1


def test_retry_after_zero_seconds(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    recording_server.queue(Canned(status=503, headers={'Retry-After': '0'}))
    # the computed back-off would be 4 s; Retry-After: 0 asks for no wait at all
    policy = dwc.RetryPolicy(max_attempts=3, wait_exponential_multiplier=2000)
    started = time.monotonic()
    response = session.get(recording_server.url + '/x', retry=policy)
    assert response.status_code == 200
    assert time.monotonic() - started < 3.0
    assert len(recording_server.requests) == 2


def test_retry_after_http_date(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    # HTTP dates have whole seconds: two seconds ahead is at least one second of waiting
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    recording_server.queue(Canned(status=503, headers={'Retry-After': when}))
    started = time.monotonic()
    response = session.get(recording_server.url + '/x', retry=FAST_RETRY)
    waited = time.monotonic() - started
    assert response.status_code == 200
    assert waited >= 0.5
    assert len(recording_server.requests) == 2


def test_exhausted_retries_return_the_last_answer(recording_server, session) -> None:
    recording_server.add(
        'GET', '/x', Canned(status=503, body=b'still busy', content_type='text/plain')
    )
    response = session.get(recording_server.url + '/x', retry=FAST_RETRY)
    assert response.status_code == 503
    assert len(recording_server.requests) == 3
    with pytest.raises(dwc.HTTPError) as caught:
        response.raise_for_status()
    assert caught.value.status_code == 503
    assert 'still busy' in str(caught.value)


def test_retry_after_beyond_max_wait_is_not_waited_for(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    recording_server.queue(Canned(status=503, headers={'Retry-After': '120'}))
    policy = dwc.RetryPolicy(max_attempts=3, wait_exponential_multiplier=1, max_wait=2)
    started = time.monotonic()
    response = session.get(recording_server.url + '/x', retry=policy)
    assert response.status_code == 503
    assert time.monotonic() - started < 5
    assert len(recording_server.requests) == 1


def test_404_is_not_retried(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(status=404))
    response = session.get(recording_server.url + '/x', retry=FAST_RETRY)
    assert response.status_code == 404
    assert len(recording_server.requests) == 1


def test_custom_retriable_statuses(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    recording_server.queue(Canned(status=503))
    policy = dwc.RetryPolicy(
        max_attempts=3, wait_exponential_multiplier=1, retriable_statuses=frozenset({502})
    )
    assert session.get(recording_server.url + '/x', retry=policy).status_code == 503
    assert len(recording_server.requests) == 1


def test_post_with_generator_body_is_not_retried(recording_server, session) -> None:
    recording_server.add('POST', '/x', ok())
    recording_server.queue(Canned(status=503))

    def chunks():
        yield b'one-'
        yield b'shot'

    response = session.post(recording_server.url + '/x', data=chunks(), retry=FAST_RETRY)
    assert response.status_code == 503
    assert len(recording_server.requests) == 1
    assert recording_server.last.body == b'one-shot'


def test_post_with_bytes_body_is_retried(recording_server, session) -> None:
    recording_server.add('POST', '/x', ok())
    recording_server.queue(Canned(status=503))
    response = session.post(recording_server.url + '/x', data=b'again', retry=FAST_RETRY)
    assert response.status_code == 200
    assert [r.body for r in recording_server.requests] == [b'again', b'again']


def test_post_with_callable_body_is_replayed(recording_server, session) -> None:
    recording_server.add('POST', '/x', ok())
    recording_server.queue(Canned(status=503))
    response = session.post(
        recording_server.url + '/x', data=lambda: iter([b'part-1|', b'part-2']), retry=FAST_RETRY
    )
    assert response.status_code == 200
    assert [r.body for r in recording_server.requests] == [b'part-1|part-2'] * 2


def test_post_with_file_body_is_replayed_from_its_start(recording_server, session) -> None:
    recording_server.add('POST', '/x', ok())
    recording_server.queue(Canned(status=503))
    stream = io.BytesIO(b'HEADER' + b'payload' * 100)
    stream.seek(6)  # only the rest of the file is the body
    response = session.post(recording_server.url + '/x', data=stream, retry=FAST_RETRY)
    assert response.status_code == 200
    assert [r.body for r in recording_server.requests] == [b'payload' * 100] * 2
    assert recording_server.last.header('Content-Length') == '700'


def test_connection_refused_is_retried_then_raises(session, caplog) -> None:
    url = f'http://127.0.0.1:{closed_port()}/x'
    caplog.set_level(logging.WARNING, logger='dicomweb_client')
    started = time.monotonic()
    with pytest.raises(dwc.TransportError) as caught:
        session.get(url, retry=FAST_RETRY)
    assert time.monotonic() - started < 5
    # three attempts: two of them announced as retries
    assert len([r for r in caplog.records if 'retrying' in r.getMessage()]) == 2
    assert not isinstance(caught.value, dwc.HTTPError)
    assert '127.0.0.1' in str(caught.value)


def test_connection_refused_matches_requests_connection_error(session) -> None:
    requests = requests_or_skip()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f'http://127.0.0.1:{closed_port()}/x')


# -- a server that is down is reported within seconds ----------------------------------


def retry_records(caplog) -> list:
    return [r for r in caplog.records if r.name == 'dicomweb_client.retry']


def test_a_refused_connection_is_reported_within_seconds_by_default(caplog) -> None:
    """Default client settings: one retry after 1 s (the connect budget), then the error
    names the server and the cause; the established package took 30 s (4 retries)."""
    caplog.set_level(logging.WARNING, logger='dicomweb_client')
    port = closed_port()
    client = dwc.DICOMwebClient(f'http://127.0.0.1:{port}/dicom-web')
    started = time.monotonic()
    with pytest.raises(dwc.TransportError) as caught:
        client.search_for_studies()
    elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed
    message = str(caught.value)
    assert f'http://127.0.0.1:{port}' in message and 'Connection refused' in message
    assert not isinstance(caught.value, dwc.HTTPError)
    assert [r.getMessage().rsplit('; ', 1)[1] for r in retry_records(caplog)] == [
        'retrying in 1.0 s (retry 1 of 4)'
    ]


def _resolver_is_quick(host: str, limit: float = 5.0) -> bool:
    """Whether looking ``host`` up ends within ``limit`` seconds here (in a thread, so a
    slow resolver cannot hang the test)."""
    done = threading.Event()

    def look_up() -> None:
        with contextlib.suppress(OSError):
            socket.getaddrinfo(host, 80)
        done.set()

    threading.Thread(target=look_up, daemon=True).start()
    return done.wait(limit)


def test_an_unresolvable_host_is_reported_at_once(caplog) -> None:
    host = 'nonexistent.invalid'  # .invalid never resolves (RFC 6761)
    started = time.monotonic()
    if not _resolver_is_quick(host):
        pytest.skip('the resolver takes more than 5 s to say a name does not exist')
    lookup = time.monotonic() - started
    caplog.set_level(logging.WARNING, logger='dicomweb_client')
    client = dwc.DICOMwebClient(f'http://{host}/dicom-web')
    started = time.monotonic()
    with pytest.raises(dwc.TransportError) as caught:
        client.search_for_studies()
    elapsed = time.monotonic() - started
    assert elapsed < 3 + lookup, (elapsed, lookup)
    message = str(caught.value)
    assert f'http://{host}:80' in message and 'cannot be resolved' in message
    assert retry_records(caplog) == []  # a name that does not exist is not retried


@pytest.mark.parametrize('budget, waits', [(0, []), (0.5, [0.2, 0.3])])
def test_connect_budget_bounds_the_waits(budget: float, waits: list, caplog) -> None:
    caplog.set_level(logging.WARNING, logger='dicomweb_client')
    client = dwc.DICOMwebClient(f'http://127.0.0.1:{closed_port()}')
    client.set_http_retry_params(wait_exponential_multiplier=100, connect_budget=budget)
    started = time.monotonic()
    with pytest.raises(dwc.TransportError):
        client.search_for_studies()
    elapsed = time.monotonic() - started
    logged = [
        float(r.getMessage().split('retrying in ')[1].split(' ')[0]) for r in retry_records(caplog)
    ]
    assert logged == waits
    assert sum(waits) <= elapsed < sum(waits) + 2


def test_connect_budget_of_30_s_repeats_the_established_schedule() -> None:
    policy, waits = dwc.RetryPolicy(connect_budget=30), []
    while (wait := policy.connect_wait()) is not None:
        waits.append(wait)
        policy = policy.increment(connect_wait=wait)
    assert waits == [2, 4, 8, 16]
    assert dwc.RetryPolicy().connect_wait() == 1.0  # the default budget: one second


@pytest.mark.parametrize('budget', [-1, float('nan'), float('inf'), '1', True])
def test_a_bad_connect_budget_is_refused(budget) -> None:
    client = dwc.DICOMwebClient('http://127.0.0.1:1')
    with pytest.raises(ValueError, match='connect_budget'):
        client.set_http_retry_params(connect_budget=budget)


# -- request bodies ---------------------------------------------------------------------


def test_bytes_body_has_content_length(recording_server, session) -> None:
    recording_server.add('PUT', '/x', ok())
    session.put(recording_server.url + '/x', data=b'\x00\x01binary\xff')
    request = recording_server.last
    assert request.header('Content-Length') == '9'
    assert not request.chunked
    assert request.body == b'\x00\x01binary\xff'


def test_str_body_is_sent_as_utf8(recording_server, session) -> None:
    recording_server.add('POST', '/x', ok())
    session.post(recording_server.url + '/x', data='Grüße')
    assert recording_server.last.body == 'Grüße'.encode()
    assert recording_server.last.header('Content-Length') == str(len('Grüße'.encode()))


def test_generator_body_is_sent_chunked(recording_server, session) -> None:
    recording_server.add('POST', '/x', ok())
    pieces = [bytes([i]) * (1000 + i) for i in range(20)] + [b'tail']

    def chunks():
        yield from pieces

    response = session.post(recording_server.url + '/x', data=chunks())
    assert response.status_code == 200
    request = recording_server.last
    assert request.chunked
    assert request.header('Content-Length') is None
    assert request.body == b''.join(pieces)


def test_file_body_is_streamed_with_content_length(recording_server, session, tmp_path) -> None:
    recording_server.add('POST', '/x', ok())
    payload = os.urandom(3 * (1 << 20) + 123)  # more than one read of the library
    path = tmp_path / 'body.bin'
    path.write_bytes(payload)
    with path.open('rb') as stream:
        response = session.post(recording_server.url + '/x', data=stream)
    assert response.status_code == 200
    request = recording_server.last
    assert not request.chunked
    assert request.header('Content-Length') == str(len(payload))
    assert request.body == payload


# -- answers that come before the body is sent ---------------------------------------------


TOO_LARGE = (
    b'HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\n'
    b'Content-Length: 29\r\nConnection: close\r\n\r\nthe limit is 1 MB per request'
)
BIG = 64 << 20  # more than the socket buffers hold, so that sending is cut short


def big_chunks():
    chunk = bytes(1 << 20)
    for _ in range(BIG >> 20):
        yield chunk


@pytest.mark.parametrize('kind', ['bytes', 'chunks', 'file'])
def test_an_answer_sent_before_the_body_was_read_is_reported(session, tmp_path, kind) -> None:
    if kind == 'bytes':
        data = bytes(BIG)
    elif kind == 'chunks':
        data = big_chunks()
    else:
        path = tmp_path / 'big'
        with open(path, 'wb') as handle:
            handle.truncate(BIG)
        data = open(path, 'rb')
    with (
        resetting_server(TOO_LARGE, pause=0.05) as url,
        contextlib.closing(data) if kind == 'file' else contextlib.nullcontext(),
    ):
        response = session.post(url + '/studies', data=data)
        assert response.status_code == 413
        assert response.text == 'the limit is 1 MB per request'
        with pytest.raises(dwc.HTTPError, match='413.*the limit is 1 MB per request'):
            response.raise_for_status()


def test_store_instances_reports_an_early_refusal(tmp_path) -> None:
    path = tmp_path / 'big.dcm'
    with open(path, 'wb') as handle:
        handle.write(bytes(128) + b'DICM')
        handle.truncate(BIG)
    with resetting_server(TOO_LARGE, pause=0.05) as url:
        client = dwc.DICOMwebClient(url)
        with pytest.raises(dwc.HTTPError) as caught:
            client.store_instances([path])
    assert caught.value.status_code == 413
    assert 'the limit is 1 MB per request' in str(caught.value)


def test_a_cut_upload_without_an_answer_is_a_transport_error(session) -> None:
    with resetting_server(b'', pause=0.05) as url:
        with pytest.raises(dwc.TransportError) as caught:
            session.post(url + '/studies', data=bytes(BIG))
    assert not isinstance(caught.value, dwc.HTTPError)
    assert '/studies' in str(caught.value)


# -- answers --------------------------------------------------------------------------------


def test_chunked_answer_is_decoded(recording_server, session) -> None:
    recording_server.add(
        'GET',
        '/x',
        Canned(body=[b'{"a": ', b'[1, 2]}'], chunked=True, content_type='application/json'),
    )
    response = session.get(recording_server.url + '/x')
    assert response.content == b'{"a": [1, 2]}'
    assert response.json() == {'a': [1, 2]}
    assert response.headers['Content-Type'] == 'application/json'
    assert response.ok


def test_text_uses_the_charset(recording_server, session) -> None:
    recording_server.add(
        'GET',
        '/x',
        Canned(body='café'.encode('latin-1'), content_type='text/plain; charset=latin-1'),
    )
    assert session.get(recording_server.url + '/x').text == 'café'


def test_streamed_answer_arrives_piece_by_piece(recording_server, session) -> None:
    recording_server.add(
        'GET', '/x', Canned(body=[b'first piece', b'second piece'], piece_delay=0.3)
    )
    response = session.get(recording_server.url + '/x', stream=True)
    pieces = list(response.iter_content(1 << 16))
    # the first piece is handed out before the second one was even sent
    assert pieces[0] == b'first piece'
    assert b''.join(pieces) == b'first piecesecond piece'


# -- the answer object, as requests users know it -------------------------------------------


def test_elapsed_is_a_timedelta(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(body=b'ok', delay=0.05))
    elapsed = session.get(recording_server.url + '/x').elapsed
    assert isinstance(elapsed, datetime.timedelta) and elapsed.total_seconds() >= 0.05


@pytest.mark.parametrize(
    'content_type, encoding',
    [
        ('text/plain; charset=utf-16', 'utf-16'),
        ('text/plain', 'ISO-8859-1'),
        ('application/dicom+json', 'utf-8'),
        ('application/octet-stream', None),
    ],
)
def test_encoding_is_chosen_as_requests_chooses_it(
    recording_server, session, content_type, encoding
) -> None:
    recording_server.add('GET', '/x', Canned(body=b'abc', content_type=content_type))
    assert session.get(recording_server.url + '/x').encoding == encoding


def test_setting_the_encoding_changes_text(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(body='Müller'.encode(), content_type='text/plain'))
    response = session.get(recording_server.url + '/x')
    assert response.text == 'MÃ¼ller'  # ISO-8859-1, as requests reads text/* without charset
    response.encoding = 'utf-8'
    assert response.text == 'Müller'


def test_an_error_message_without_charset_is_read_as_utf8(recording_server, session) -> None:
    recording_server.add(
        'GET',
        '/x',
        Canned(status=404, body='Studie für Müller fehlt'.encode(), content_type='text/plain'),
    )
    with pytest.raises(dwc.HTTPError, match='Studie für Müller fehlt'):
        session.get(recording_server.url + '/x').raise_for_status()


def test_permanent_redirects_links_and_cookies_of_an_answer(recording_server, session) -> None:
    recording_server.add(
        'GET',
        '/x',
        Canned(
            status=308,
            headers={
                'Location': '/y',
                'Set-Cookie': 'seen=1; Path=/',
                'Link': '</studies?offset=100>; rel="next", <https://pacs.example/a>; rel=last; '
                'title="the end"',
            },
        ),
    )
    response = session.get(recording_server.url + '/x', allow_redirects=False)
    assert response.is_redirect and response.is_permanent_redirect
    assert response.links == {
        'next': {'url': '/studies?offset=100', 'rel': 'next'},
        'last': {'url': 'https://pacs.example/a', 'rel': 'last', 'title': 'the end'},
    }
    assert response.cookies.get_dict() == {'seen': '1'}


@pytest.mark.parametrize('chunk_size', [1, 2, 3, 512])
def test_iter_lines_splits_whatever_the_pieces(recording_server, session, chunk_size) -> None:
    body = b'first\r\nsecond\nthird\r\n\r\nlast'
    recording_server.add('GET', '/x', Canned(body=[body[:7], body[7:], b'']))
    response = session.get(recording_server.url + '/x', stream=True)
    assert list(response.iter_lines(chunk_size)) == [b'first', b'second', b'third', b'', b'last']


def test_iter_lines_with_a_delimiter_and_decoded(recording_server, session) -> None:
    recording_server.add(
        'GET', '/x', Canned(body='ä;b;c'.encode(), content_type='text/csv; charset=utf-8')
    )
    response = session.get(recording_server.url + '/x', stream=True)
    assert list(response.iter_lines(2, decode_unicode=True, delimiter=b';')) == ['ä', 'b', 'c']


def test_head_request(recording_server, session) -> None:
    recording_server.add('HEAD', '/x', Canned(body=b'12345'))
    response = session.head(recording_server.url + '/x')
    assert response.status_code == 200
    assert response.headers['Content-Length'] == '5'
    assert response.content == b''


def test_head_does_not_follow_redirects_unless_asked(recording_server, session) -> None:
    recording_server.add('HEAD', '/old', Canned(status=301, headers={'Location': '/new'}))
    recording_server.add('HEAD', '/new', Canned(body=b'12345'))
    assert session.head(recording_server.url + '/old').status_code == 301
    followed = session.head(recording_server.url + '/old', allow_redirects=True)
    assert followed.status_code == 200 and followed.url.endswith('/new')


@pytest.mark.parametrize(
    'verb, method',
    [('options', 'OPTIONS'), ('patch', 'PATCH'), ('put', 'PUT'), ('delete', 'DELETE')],
)
def test_every_verb_of_requests(recording_server, session, verb, method) -> None:
    recording_server.add(method, '/x', ok())
    assert getattr(session, verb)(recording_server.url + '/x').status_code == 200
    assert recording_server.last.method == method


# -- errors ------------------------------------------------------------------------------------


def test_http_error_describes_the_failure(recording_server, session) -> None:
    recording_server.add(
        'GET',
        '/studies/1.2.3',
        Canned(status=404, body=b'Study 1.2.3 is not\n  on this server', content_type='text/plain'),
    )
    url = recording_server.url + '/studies/1.2.3'
    response = session.get(url)
    with pytest.raises(dwc.HTTPError) as caught:
        response.raise_for_status()
    error = caught.value
    assert error.status_code == 404
    assert error.method == 'GET'
    assert error.url == url
    assert 'Study 1.2.3 is not on this server' in error.message
    text = str(error)
    for part in ('404', 'GET', url, 'Study 1.2.3 is not on this server'):
        assert part in text
    assert error.response is response
    assert isinstance(error, dwc.RequestException) and isinstance(error, OSError)


def test_http_error_without_body_uses_the_reason(recording_server, session) -> None:
    recording_server.add('DELETE', '/x', Canned(status=403))
    response = session.delete(recording_server.url + '/x')
    with pytest.raises(dwc.HTTPError) as caught:
        response.raise_for_status()
    assert 'Forbidden' in str(caught.value) and 'DELETE' in str(caught.value)


def test_http_error_is_a_requests_http_error(recording_server, session) -> None:
    requests = requests_or_skip()
    recording_server.add('GET', '/x', Canned(status=500, body=b'boom'))
    response = session.get(recording_server.url + '/x')
    with pytest.raises(requests.exceptions.HTTPError) as caught:
        response.raise_for_status()
    assert isinstance(caught.value, dwc.HTTPError)
    assert caught.value.status_code == 500


def test_raise_for_status_passes_2xx_and_3xx(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(status=204))
    recording_server.add('GET', '/y', Canned(status=304))
    session.get(recording_server.url + '/x').raise_for_status()
    session.get(recording_server.url + '/y').raise_for_status()


def test_timeout_when_the_server_stalls(recording_server, session) -> None:
    recording_server.add('GET', '/slow', Canned(body=b'late', delay=1.5))
    url = recording_server.url + '/slow'
    started = time.monotonic()
    with pytest.raises(dwc.Timeout) as caught:
        session.get(url, timeout=0.3)
    assert time.monotonic() - started < 1.2
    assert isinstance(caught.value, dwc.TransportError)
    message = str(caught.value)
    assert 'timed out' in message.lower()
    assert url in message


def test_read_timeout_of_a_connect_read_pair(recording_server, session) -> None:
    recording_server.add('GET', '/slow', Canned(body=b'late', delay=1.5))
    with pytest.raises(dwc.Timeout):
        session.get(recording_server.url + '/slow', timeout=(5, 0.3))


def test_session_timeout_applies(recording_server, session) -> None:
    recording_server.add('GET', '/slow', Canned(body=b'late', delay=1.5))
    session.timeout = 0.3
    with pytest.raises(dwc.Timeout):
        session.get(recording_server.url + '/slow')


def test_timeout_while_reading_a_streamed_body(recording_server, session) -> None:
    recording_server.add('GET', '/slow', Canned(body=[b'start', b'late end'], piece_delay=1.5))
    response = session.get(recording_server.url + '/slow', stream=True, timeout=0.3)
    with pytest.raises(dwc.Timeout):
        response.content  # noqa: B018


def test_timeout_is_a_requests_timeout(recording_server, session) -> None:
    requests = requests_or_skip()
    recording_server.add('GET', '/slow', Canned(body=b'late', delay=1.5))
    with pytest.raises(requests.exceptions.Timeout):
        session.get(recording_server.url + '/slow', timeout=0.3)


def test_reset_in_the_middle_of_the_body(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(body=b'x' * 100_000, reset_after=1000))
    with pytest.raises(dwc.TransportError):
        response = session.get(recording_server.url + '/x', stream=True)
        response.content  # noqa: B018
    with pytest.raises(dwc.TransportError):
        session.get(recording_server.url + '/x')


_RESET_HEAD = (
    b'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: application/octet-stream\r\n\r\n'
)


def test_reset_while_reading_streamed_content(session) -> None:
    with resetting_server(_RESET_HEAD + b'a' * 1000) as url:
        response = session.get(url + '/x', stream=True)
        assert response.status_code == 200
        with pytest.raises(dwc.TransportError) as caught:
            response.content  # noqa: B018
    assert not isinstance(caught.value, dwc.Timeout)


def test_reset_while_iterating_over_content(session) -> None:
    with resetting_server(_RESET_HEAD + b'a' * 1000) as url:
        response = session.get(url + '/x', stream=True)
        received = []
        with pytest.raises(dwc.TransportError):
            for piece in response.iter_content(4096):
                received.append(piece)
    assert len(b''.join(received)) < 100_000


def test_reset_while_reading_content_without_stream(session) -> None:
    with resetting_server(_RESET_HEAD + b'a' * 1000) as url:
        with pytest.raises(dwc.TransportError):
            session.get(url + '/x')


def _chunked_answer(body: bytes) -> Canned:
    head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n'
    return Canned(raw=head.encode() + body)


@pytest.mark.parametrize(
    'body',
    [
        b'zz\r\nhello\r\n0\r\n\r\n',  # a chunk size that is not hex
        b'5\r\nhel',  # the connection closes inside a chunk
        b'5\r\nhello\r\n',  # ... or before the last chunk
        b'5\r\nhello\r\n' + b'1' * 70000 + b'\r\n',  # a chunk size line beyond any limit
    ],
    ids=['bad-size', 'inside-a-chunk', 'no-last-chunk', 'size-line-too-long'],
)
@pytest.mark.parametrize('stream', [False, True])
def test_a_broken_chunked_answer_is_a_chunked_encoding_error(
    recording_server, session, body, stream
) -> None:
    recording_server.add('GET', '/x', _chunked_answer(body))
    with pytest.raises(dwc.ChunkedEncodingError) as caught:
        response = session.get(recording_server.url + '/x', stream=stream)
        b''.join(response.iter_content(3))
    assert isinstance(caught.value, dwc.TransportError)
    assert 'chunked' in str(caught.value)
    requests = pytest.importorskip('requests')
    assert isinstance(caught.value, requests.exceptions.ChunkedEncodingError)


def test_a_body_shorter_than_its_content_length_is_caught_as_requests_does(
    recording_server, session
) -> None:
    """requests (through urllib3) raises ChunkedEncodingError here too."""
    requests = requests_or_skip()
    recording_server.add(
        'GET',
        '/x',
        Canned(raw=b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly 20 bytes here..'),
    )
    with pytest.raises(requests.exceptions.ChunkedEncodingError) as caught:
        session.get(recording_server.url + '/x')
    assert isinstance(caught.value, dwc.ChunkedEncodingError)
    assert not isinstance(caught.value, requests.exceptions.ConnectionError)
    assert 'ended early' in str(caught.value)


def test_error_twins_are_caught_like_requests_ones() -> None:
    """Each class is an instance of the same built-in and requests classes as its
    requests twin, so that ``except`` clauses behave the same."""
    requests = pytest.importorskip('requests')
    catalogue = [
        OSError,
        ConnectionError,
        TimeoutError,
        ValueError,
        requests.exceptions.RequestException,
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.SSLError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
        requests.exceptions.HTTPError,
    ]
    for ours, theirs in (
        (dwc.SSLError, requests.exceptions.SSLError),
        (dwc.ChunkedEncodingError, requests.exceptions.ChunkedEncodingError),
        (dwc.TransportError, requests.exceptions.ConnectionError),
    ):
        raised = dwc._compatible(ours)('failure')
        assert [c for c in catalogue if isinstance(raised, c)] == [
            c for c in catalogue if issubclass(theirs, c)
        ], ours


def _short_answer(**headers: str) -> Canned:
    lines = ['HTTP/1.1 200 OK', 'Content-Length: 100', 'Content-Type: text/plain']
    lines += [f'{name}: {value}' for name, value in headers.items()]
    return Canned(raw=('\r\n'.join(lines) + '\r\n\r\n').encode() + b'only 20 bytes here..')


def test_content_shorter_than_content_length_raises(recording_server, session) -> None:
    recording_server.add('GET', '/x', _short_answer())
    with pytest.raises(dwc.TransportError) as caught:
        session.get(recording_server.url + '/x')
    assert 'ended early' in str(caught.value) or '100' in str(caught.value)


def test_truncated_content_keeps_raising(recording_server, session) -> None:
    recording_server.add('GET', '/x', _short_answer())
    response = session.get(recording_server.url + '/x', stream=True)
    with pytest.raises(dwc.TransportError):
        response.content  # noqa: B018
    # asking again must not hand out an empty or partial body as if it were complete
    with pytest.raises(dwc.TransportError):
        response.content  # noqa: B018


def test_truncated_content_raises_in_iter_content(recording_server, session) -> None:
    recording_server.add('GET', '/x', _short_answer())
    response = session.get(recording_server.url + '/x', stream=True)
    received = []
    with pytest.raises(dwc.TransportError):
        for piece in response.iter_content(16):
            received.append(piece)
    assert len(b''.join(received)) < 100


def test_truncated_chunked_answer_raises(recording_server, session) -> None:
    raw = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nonly a bit'
    recording_server.add('GET', '/x', Canned(raw=raw))
    response = session.get(recording_server.url + '/x', stream=True)
    with pytest.raises(dwc.TransportError):
        b''.join(response.iter_content(4))


def test_connection_closed_without_answer(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(raw=b''))
    with pytest.raises(dwc.TransportError):
        session.get(recording_server.url + '/x')


def test_garbage_instead_of_http(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(raw=b'SSH-2.0-OpenSSH_9.0\r\n'))
    with pytest.raises(dwc.TransportError):
        session.get(recording_server.url + '/x')


def test_not_an_http_url(session) -> None:
    with pytest.raises(ValueError):
        session.get('ftp://127.0.0.1/x')


# -- compressed answers (Content-Encoding) ------------------------------------------------

#: a body that compresses well and has bytes of every value in it
PLAIN = b''.join(bytes([n % 256]) * (n % 7 + 1) for n in range(5000)) + b'{"end": true}'

#: name of a case: (Content-Encoding, how the body is made)
CODINGS = {
    'gzip': ('gzip', gzip.compress),
    'x-gzip': ('x-gzip', gzip.compress),
    'deflate': ('deflate', zlib.compress),
    'upper-case': ('GZIP', gzip.compress),
    # deflate without the zlib wrapper, as some servers send it
    'deflate-raw': ('deflate', lambda data: zlib.compress(data)[2:-4]),
    # two gzip members one after the other make one body
    'gzip-members': ('gzip', lambda data: gzip.compress(data[:1000]) + gzip.compress(data[1000:])),
}


def compressed(name: str, data: bytes = PLAIN, pieces: int = 1, chunked: bool = False) -> Canned:
    """``data`` compressed by coding ``name`` of :data:`CODINGS`, sent in ``pieces``."""
    coding, compress = CODINGS[name]
    body = compress(data)
    step = -(-len(body) // pieces)
    return Canned(
        body=[body[start : start + step] for start in range(0, len(body), step)],
        chunked=chunked,
        headers={'Content-Encoding': coding},
        content_type='application/octet-stream',
    )


@pytest.mark.parametrize('chunked', [False, True], ids=['length', 'chunked'])
@pytest.mark.parametrize('name', sorted(CODINGS))
def test_compressed_content_is_decoded(recording_server, session, name, chunked) -> None:
    recording_server.add('GET', '/x', compressed(name, chunked=chunked))
    response = session.get(recording_server.url + '/x')
    assert response.content == PLAIN
    assert response.headers['Content-Encoding'].lower() in ('gzip', 'x-gzip', 'deflate')


@pytest.mark.parametrize('size', [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize('name', ['gzip', 'deflate', 'deflate-raw', 'gzip-members'])
def test_compressed_content_streams_in_pieces_of_at_most_the_size_asked(
    recording_server, session, name, size
) -> None:
    # the body arrives in 9 writes, so the decoder also sees its input cut anywhere
    recording_server.add('GET', '/x', compressed(name, pieces=9, chunked=True))
    response = session.get(recording_server.url + '/x', stream=True)
    pieces = list(response.iter_content(size))
    assert all(0 < len(piece) <= size for piece in pieces)
    assert b''.join(pieces) == PLAIN


def test_compressed_content_through_readinto1(recording_server, session) -> None:
    recording_server.add('GET', '/x', compressed('gzip', pieces=5))
    response = session.get(recording_server.url + '/x', stream=True)
    buffer = bytearray(1000)
    received = bytearray()
    while True:
        count = response.readinto1(memoryview(buffer))
        if not count:
            break
        received += buffer[:count]
    assert received == PLAIN


def test_a_decoded_answer_keeps_its_connection(recording_server, session) -> None:
    recording_server.add('GET', '/x', compressed('gzip'))
    for _ in range(3):
        assert session.get(recording_server.url + '/x').content == PLAIN
    assert {request.connection for request in recording_server.requests} == {1}


def test_identity_coding_is_no_coding(recording_server, session) -> None:
    recording_server.add(
        'GET', '/x', Canned(body=b'as it is', headers={'Content-Encoding': 'identity'})
    )
    assert session.get(recording_server.url + '/x').content == b'as it is'


def test_an_empty_compressed_body_is_empty(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(status=200, headers={'Content-Encoding': 'gzip'}))
    assert session.get(recording_server.url + '/x').content == b''


def test_a_compressed_error_answer_gives_its_message(recording_server, session) -> None:
    message = b'{"Message": "no such study"}'
    recording_server.add(
        'GET',
        '/x',
        Canned(status=404, body=gzip.compress(message), headers={'Content-Encoding': 'gzip'}),
    )
    with pytest.raises(dwc.HTTPError, match='no such study'):
        session.get(recording_server.url + '/x').raise_for_status()


@pytest.mark.parametrize(
    'body, problem',
    [
        (gzip.compress(PLAIN)[:-20], 'truncated'),
        (gzip.compress(PLAIN)[:5], 'truncated'),
        (b'\x1f', 'truncated'),
        (b'this is not gzip at all', 'corrupt'),
        (gzip.compress(PLAIN) + b'trailing junk', 'corrupt'),
        (gzip.compress(PLAIN)[:100] + b'\xff' * 50 + gzip.compress(PLAIN)[150:], 'corrupt'),
    ],
    ids=['short', 'header-only', 'one-byte', 'not-gzip', 'junk-after', 'damaged'],
)
@pytest.mark.parametrize('streamed', [False, True], ids=['content', 'iter_content'])
def test_bad_compressed_data_raises(recording_server, session, body, problem, streamed) -> None:
    recording_server.add('GET', '/x', Canned(body=body, headers={'Content-Encoding': 'gzip'}))
    response = session.get(recording_server.url + '/x', stream=True)
    with pytest.raises(dwc.ContentDecodingError, match=problem) as caught:
        if streamed:
            b''.join(response.iter_content(64))
        else:
            response.content  # noqa: B018
    assert recording_server.url + '/x' in str(caught.value)
    assert isinstance(caught.value, dwc.TransportError)
    # the error stays: a second look must not hand out a partial body
    with pytest.raises(dwc.ContentDecodingError):
        response.content  # noqa: B018


@pytest.mark.parametrize('coding', ['br', 'zstd', 'compress', 'gzip, br'])
def test_a_coding_that_cannot_be_undone_raises_and_names_it(
    recording_server, session, coding
) -> None:
    recording_server.add(
        'GET', '/x', Canned(body=b'\x0b\x02\x80hi\x03', headers={'Content-Encoding': coding})
    )
    response = session.get(recording_server.url + '/x', stream=True)
    assert response.status_code == 200  # the head is fine; reading the body fails
    with pytest.raises(dwc.ContentDecodingError, match=repr(coding)):
        response.content  # noqa: B018


def test_content_decoding_error_is_a_requests_one(recording_server, session) -> None:
    requests = requests_or_skip()
    recording_server.add('GET', '/x', Canned(body=b'junk', headers={'Content-Encoding': 'gzip'}))
    with pytest.raises(requests.exceptions.ContentDecodingError):
        session.get(recording_server.url + '/x')


def test_a_small_compressed_body_is_not_inflated_all_at_once(recording_server, session) -> None:
    # 64 MiB of zeros are 64 KiB of gzip; a streamed read hands out pieces of the size
    # asked for, never the whole inflated body in one go
    # (zeros inflate 1000 times, past the default max_decoding_ratio: turned off here)
    bomb = gzip.compress(bytes(64 << 20), compresslevel=9)
    recording_server.add('GET', '/x', Canned(body=bomb, headers={'Content-Encoding': 'gzip'}))
    session.max_decoding_ratio = None
    response = session.get(recording_server.url + '/x', stream=True)
    total = 0
    for piece in response.iter_content(1 << 16):
        assert len(piece) <= 1 << 16
        total += len(piece)
    assert total == 64 << 20


# -- cookies ------------------------------------------------------------------------------


def cookie_answer(*set_cookies: str, status: int = 200, location: str = '') -> Canned:
    """An answer with one ``Set-Cookie`` field per argument."""
    fields = ''.join(f'Set-Cookie: {value}\r\n' for value in set_cookies)
    if location:
        fields += f'Location: {location}\r\n'
    head = f'HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{fields}\r\n'
    return Canned(raw=head.encode() + b'ok')


def cookies_sent(server: RecordingServer) -> str | None:
    return server.last.header('Cookie')


def visit(make_server, session, routes: dict, paths: list) -> RecordingServer:
    """A server answering GET ``routes`` (path: answer); ``session`` asks for ``paths``."""
    server = make_server()
    for path, answer in routes.items():
        server.add('GET', path, answer)
    for path in paths:
        session.get(server.url + path)
    return server


def test_cookies_an_answer_sets_are_sent_back(make_server, session) -> None:
    server = visit(
        make_server,
        session,
        {
            '/login': cookie_answer('session=abc123; Path=/; HttpOnly', 'theme=dark'),
            '/studies': ok(),
        },
        ['/login'],
    )
    assert session.cookies['session'] == 'abc123' and 'theme' in session.cookies
    session.get(server.url + '/studies')
    assert sorted(cookies_sent(server).split('; ')) == ['session=abc123', 'theme=dark']


def test_no_cookie_field_without_cookies(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.get(recording_server.url + '/x')
    assert cookies_sent(recording_server) is None


def test_a_cookie_goes_only_below_its_path(make_server, session) -> None:
    server = visit(
        make_server,
        session,
        {
            '/dicom-web/login': cookie_answer('token=t1; Path=/dicom-web'),
            '/dicom-web/studies': ok(),
            '/other': ok(),
        },
        ['/dicom-web/login', '/dicom-web/studies'],
    )
    assert cookies_sent(server) == 'token=t1'
    session.get(server.url + '/other')
    assert cookies_sent(server) is None


def test_an_expired_cookie_is_dropped(make_server, session) -> None:
    server = visit(
        make_server,
        session,
        {
            '/in': cookie_answer('session=abc'),
            '/out': cookie_answer('session=gone; Max-Age=0'),
            '/x': ok(),
        },
        ['/in', '/out', '/x'],
    )
    assert cookies_sent(server) is None and 'session' not in session.cookies


def test_a_secure_cookie_is_not_sent_over_plain_http(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.cookies.set_cookie(
        http.cookiejar.Cookie(
            0,
            'secret',
            'v',
            None,
            False,
            '',
            False,
            False,
            '/',
            True,
            True,
            None,
            True,
            None,
            None,
            {},
        )
    )
    session.get(recording_server.url + '/x')
    assert cookies_sent(recording_server) is None


def test_a_cookie_for_another_domain_is_neither_kept_nor_sent(make_server, session) -> None:
    server = visit(
        make_server,
        session,
        {'/in': cookie_answer('foreign=1; Domain=example.org'), '/x': ok()},
        ['/in'],
    )
    assert 'foreign' not in session.cookies
    session.cookies.set('elsewhere', '2', domain='pacs.example.org')
    session.get(server.url + '/x')
    assert cookies_sent(server) is None


def test_a_cookie_set_by_a_redirect_reaches_its_target(make_server, session) -> None:
    server = make_server()
    server.add('GET', '/start', cookie_answer('step=1', status=302, location='/end'))
    server.add('GET', '/end', ok())
    response = session.get(server.url + '/start')
    assert response.status_code == 200
    assert cookies_sent(server) == 'step=1'


def test_a_cookie_field_given_by_hand_wins(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok())
    session.cookies['jar'] = 'yes'
    session.get(recording_server.url + '/x', headers={'Cookie': 'hand=made'})
    assert recording_server.last.headers.get_all('Cookie') == ['hand=made']


def test_the_jar_has_the_name_helpers_of_requests(recording_server, session) -> None:
    jar = session.cookies
    jar.set('a', '1')
    jar['b'] = '2'
    jar.update({'c': '3'})
    assert jar.get_dict() == {'a': '1', 'b': '2', 'c': '3'}
    assert jar.get('missing') is None and jar.get('missing', 'x') == 'x'
    assert sorted(jar.keys()) == ['a', 'b', 'c'] and sorted(jar.values()) == ['1', '2', '3']
    del jar['a']
    jar.set('b', None)
    assert jar.items() == [('c', '3')]
    with pytest.raises(KeyError):
        jar['a']  # noqa: B018
    recording_server.add('GET', '/x', ok())
    session.get(recording_server.url + '/x')
    assert cookies_sent(recording_server) == 'c=3'


def test_a_client_keeps_the_cookies_of_its_session(make_server) -> None:
    server = make_server()
    server.add(
        'GET',
        '/dicom-web/studies',
        Canned(
            body=b'[]',
            content_type='application/dicom+json',
            headers={'Set-Cookie': 'AWSALB=sticky; Path=/'},
        ),
    )
    client = dwc.DICOMwebClient(server.url + '/dicom-web')
    client.search_for_studies()
    client.search_for_studies()
    assert [request.header('Cookie') for request in server.requests] == [None, 'AWSALB=sticky']


# -- redirects ---------------------------------------------------------------------------------


def redirect(status: int, location: str) -> Canned:
    return Canned(status=status, headers={'Location': location}, body=b'moved')


def test_302_is_followed(recording_server, session) -> None:
    recording_server.add('GET', '/start', redirect(302, '/target?x=1'))
    recording_server.add('GET', '/target', ok(b'arrived'))
    response = session.get(recording_server.url + '/start')
    assert response.status_code == 200 and response.content == b'arrived'
    assert response.url == recording_server.url + '/target?x=1'
    assert [r.status_code for r in response.history] == [302]
    assert [r.target for r in recording_server.requests] == ['/start', '/target?x=1']


def test_redirect_not_followed_when_disallowed(recording_server, session) -> None:
    recording_server.add('GET', '/start', redirect(302, '/target'))
    response = session.get(recording_server.url + '/start', allow_redirects=False)
    assert response.status_code == 302 and response.is_redirect
    assert len(recording_server.requests) == 1


def test_307_replays_a_post_body(recording_server, session) -> None:
    recording_server.add('POST', '/start', redirect(307, '/target'))
    recording_server.add('POST', '/target', ok())
    response = session.post(
        recording_server.url + '/start',
        data=b'instance bytes',
        headers={'Content-Type': 'application/dicom'},
    )
    assert response.status_code == 200
    second = recording_server.requests[1]
    assert (second.method, second.path, second.body) == ('POST', '/target', b'instance bytes')
    assert second.header('Content-Type') == 'application/dicom'


def test_303_turns_a_post_into_a_get(recording_server, session) -> None:
    recording_server.add('POST', '/start', redirect(303, '/result'))
    recording_server.add('GET', '/result', ok())
    response = session.post(
        recording_server.url + '/start', data=b'form', headers={'Content-Type': 'text/plain'}
    )
    assert response.status_code == 200
    second = recording_server.requests[1]
    assert (second.method, second.body) == ('GET', b'')
    assert second.header('Content-Type') is None
    assert second.header('Content-Length') in (None, '0')


def test_authorization_kept_on_same_origin_redirect(recording_server) -> None:
    recording_server.add('GET', '/start', redirect(302, '/target'))
    recording_server.add('GET', '/target', ok())
    with dwc.create_session_from_user_pass('alice', 'pw') as session:
        assert session.get(recording_server.url + '/start').status_code == 200
    assert [r.header('Authorization') for r in recording_server.requests] == [
        basic('alice', 'pw')
    ] * 2


def test_authorization_dropped_on_redirect_to_another_host(make_server) -> None:
    first, second = make_server(), make_server()
    first.add('GET', '/start', redirect(302, f'http://localhost:{second.port}/landing'))
    second.add('GET', '/landing', ok())
    with dwc.create_session_from_auth(dwc.BearerAuth('secret-token')) as session:
        session.headers['Cookie'] = 'session=abc'
        session.headers['X-Harmless'] = 'kept'
        response = session.get(first.url + '/start')
    assert response.status_code == 200
    assert first.last.header('Authorization') == 'Bearer secret-token'
    landing = second.last
    assert landing.path == '/landing'
    assert landing.header('Host') == f'localhost:{second.port}'
    assert landing.header('Authorization') is None
    assert landing.header('Cookie') is None
    # every field set on the session may be a credential (X-Api-Key, ...): it stays
    # behind too; only those that describe the client (User-Agent, Accept, ...) follow
    assert landing.header('X-Harmless') is None
    assert landing.header('User-Agent') == first.last.header('User-Agent')


def test_authorization_dropped_when_only_the_host_name_differs(recording_server) -> None:
    port = recording_server.port
    recording_server.add('GET', '/start', redirect(302, f'http://127.0.0.1:{port}/landing'))
    recording_server.add('GET', '/landing', ok())
    with dwc.create_session_from_user_pass('alice', 'pw') as session:
        assert session.get(f'http://localhost:{port}/start').status_code == 200
    first, second = recording_server.requests
    assert first.header('Authorization') == basic('alice', 'pw')
    assert second.header('Authorization') is None


def test_too_many_redirects(recording_server, session) -> None:
    recording_server.add('GET', '/loop', redirect(302, '/loop'))
    session.max_redirects = 3
    with pytest.raises(dwc.TransportError) as caught:
        session.get(recording_server.url + '/loop')
    assert 'redirect' in str(caught.value)
    assert len(recording_server.requests) == 4


# -- digest authentication ------------------------------------------------------------------


def digest_route(server: RecordingServer, path: str = '/x', **options) -> DigestProtected:
    """Protect ``GET``/``POST path`` of ``server`` with digest authentication (ann/pw)."""
    protected = DigestProtected(ok(b'inside'), {'ann': 'pw'}, **options)
    server.add(None, path, protected)
    return protected


def authorization_of(request) -> dict:
    header = request.header('Authorization') or ''
    assert header.startswith('Digest ')
    return urllib.request.parse_keqv_list(urllib.request.parse_http_list(header[7:]))


@pytest.mark.parametrize('algorithm', ['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess', None])
def test_digest_challenge_is_answered_then_the_nonce_is_reused(recording_server, algorithm) -> None:
    protected = digest_route(recording_server, algorithm=algorithm)
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        first = session.get(recording_server.url + '/x')
        assert (first.status_code, first.content) == (200, b'inside')
        assert [r.status_code for r in first.history] == [401]
        second = session.get(recording_server.url + '/x', params={'q': 'a b'})
        assert second.status_code == 200 and second.history == []
    assert protected.rejected == []
    assert recording_server.requests[0].header('Authorization') is None
    answers = [authorization_of(r) for r in recording_server.requests[1:]]
    assert [a['nc'] for a in answers] == ['00000001', '00000002']
    assert answers[0]['nonce'] == answers[1]['nonce']
    assert answers[0]['cnonce'] != answers[1]['cnonce']
    assert answers[1]['uri'] == '/x?q=a%20b'
    assert answers[0].get('algorithm') == algorithm
    assert len(recording_server.requests) == 3


def test_digest_without_quality_of_protection_as_rfc_2069(recording_server) -> None:
    protected = digest_route(recording_server, qop=None, algorithm=None, opaque=None)
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        assert session.get(recording_server.url + '/x').status_code == 200
    answer = authorization_of(recording_server.last)
    assert protected.rejected == [] and 'nc' not in answer and 'qop' not in answer


def test_a_stale_nonce_is_replaced_without_asking_the_caller(recording_server) -> None:
    protected = digest_route(recording_server, algorithm='SHA-256')
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        assert session.get(recording_server.url + '/x').status_code == 200
        protected.expire_nonces()
        response = session.get(recording_server.url + '/x')
        assert response.status_code == 200 and len(response.history) == 1
        assert response.history[0].headers['WWW-Authenticate'].count('stale=true') == 1
    assert protected.rejected == ['stale nonce']
    old, new = (authorization_of(r) for r in recording_server.requests[2:])
    assert old['nonce'] != new['nonce'] and new['nc'] == '00000001'


def test_a_wrong_password_is_a_401_http_error(recording_server) -> None:
    requests = requests_or_skip()
    protected = digest_route(recording_server)
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'wrong')) as session:
        response = session.get(recording_server.url + '/x')
        assert response.status_code == 401
        with pytest.raises(dwc.HTTPError) as caught:
            response.raise_for_status()
    assert isinstance(caught.value, requests.exceptions.HTTPError)
    assert caught.value.status_code == 401
    assert protected.rejected == ['wrong response (password)']
    assert len(recording_server.requests) == 2  # the challenge is answered once only


def test_a_client_search_with_a_wrong_digest_password_raises(recording_server) -> None:
    digest_route(recording_server, path='/studies')
    session = dwc.create_session_from_auth(dwc.HTTPDigestAuth('bob', 'pw'))
    client = dwc.DICOMwebClient(recording_server.url, session=session)
    with pytest.raises(dwc.HTTPError) as caught:
        client.search_for_studies()
    assert caught.value.status_code == 401


def test_the_first_usable_of_several_challenges_is_answered(recording_server) -> None:
    protected = digest_route(
        recording_server,
        extra_challenges=[
            'Basic realm="other"',
            'Digest realm="x", nonce="n", algorithm=UNKNOWN-HASH',
            'Digest realm="y", nonce="m", qop="auth-int"',
        ],
    )
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        assert session.get(recording_server.url + '/x').status_code == 200
    assert protected.rejected == [] and len(protected.accepted) == 1


def test_a_401_without_a_digest_challenge_is_returned(recording_server) -> None:
    recording_server.add(
        'GET', '/x', Canned(status=401, headers={'WWW-Authenticate': 'Basic realm="x"'})
    )
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        assert session.get(recording_server.url + '/x').status_code == 401
    assert len(recording_server.requests) == 1


def test_digest_replays_a_bytes_or_file_body(recording_server, tmp_path) -> None:
    digest_route(recording_server, path='/studies')
    upload = tmp_path / 'upload.bin'
    upload.write_bytes(b'from a file')
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        assert (
            session.post(recording_server.url + '/studies', data=b'instance bytes').status_code
            == 200
        )
        session.auth = dwc.HTTPDigestAuth('ann', 'pw')  # no nonce yet: challenged again
        with upload.open('rb') as fileobj:
            assert session.post(recording_server.url + '/studies', data=fileobj).status_code == 200
    assert [r.body for r in recording_server.requests] == [
        b'instance bytes',
        b'instance bytes',
        b'from a file',
        b'from a file',
    ]


def test_digest_returns_the_401_of_a_one_shot_body(recording_server) -> None:
    digest_route(recording_server, path='/studies')
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        response = session.post(
            recording_server.url + '/studies', data=(chunk for chunk in [b'one ', b'shot'])
        )
        assert response.status_code == 401
        # once the nonce is known, a one-shot body goes out with credentials at once
        assert session.get(recording_server.url + '/studies').status_code == 200
        response = session.post(
            recording_server.url + '/studies', data=(chunk for chunk in [b'one ', b'shot'])
        )
        assert response.status_code == 200 and response.history == []
    assert recording_server.last.body == b'one shot'


def test_digest_credentials_follow_a_redirect_on_the_same_server(recording_server) -> None:
    protected = digest_route(recording_server, path='/target')
    recording_server.add('GET', '/start', redirect(302, '/target'))
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        assert session.get(recording_server.url + '/target').status_code == 200
        response = session.get(recording_server.url + '/start')
    assert response.status_code == 200 and [r.status_code for r in response.history] == [302]
    assert protected.rejected == []
    assert authorization_of(recording_server.last)['uri'] == '/target'


def test_digest_answers_no_challenge_of_another_server(make_server) -> None:
    first, second = make_server(), make_server()
    digest_route(first, path='/target')
    protected = digest_route(second, path='/target')
    first.add('GET', '/start', redirect(302, second.url + '/target'))
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        assert session.get(first.url + '/target').status_code == 200
        assert session.get(first.url + '/start').status_code == 401
    assert protected.accepted == [] and second.last.header('Authorization') is None


def test_requests_digest_auth_is_answered_natively(recording_server) -> None:
    requests = requests_or_skip()
    protected = DigestProtected(
        Canned(body=b'[]', content_type='application/dicom+json'),
        {'ann': 'pw'},
        algorithm='SHA-256',
    )
    recording_server.add('GET', '/studies', protected)
    auth = requests.auth.HTTPDigestAuth('ann', 'pw')
    session = dwc.session_utils.create_session_from_auth(auth)
    assert isinstance(session.auth, dwc.HTTPDigestAuth)
    client = dwc.DICOMwebClient(recording_server.url, session=session)
    assert client.search_for_studies() == []  # as wsidicom does it
    assert session.get(recording_server.url + '/studies').status_code == 200
    with dwc.Session() as other:
        other.auth = auth
        assert other.get(recording_server.url + '/studies').status_code == 200
    with dwc.Session() as other:  # given per request: the same twin every time
        for _ in range(3):
            assert other.get(recording_server.url + '/studies', auth=auth).status_code == 200
    assert protected.rejected == []
    assert len(recording_server.requests) == 2 + 1 + 2 + 4


def test_one_digest_session_shared_by_threads(recording_server) -> None:
    protected = digest_route(recording_server)
    failures: list = []
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:

        def worker(number: int) -> None:
            for _ in range(10):
                response = session.get(recording_server.url + '/x')
                if response.status_code != 200:
                    failures.append(response.status_code)

        run_in_threads(worker, 8, timeout=30)
    assert failures == [] and len(protected.accepted) == 80


def test_a_digest_session_can_be_pickled(recording_server) -> None:
    import pickle

    digest_route(recording_server)
    with dwc.create_session_from_auth(dwc.HTTPDigestAuth('ann', 'pw')) as session:
        assert session.get(recording_server.url + '/x').status_code == 200
        copy = pickle.loads(pickle.dumps(session))
    assert isinstance(copy.auth, dwc.HTTPDigestAuth) and copy.auth.username == 'ann'
    with copy:
        assert copy.get(recording_server.url + '/x').status_code == 200


class ResendingAuth:
    """An auth in the style of requests' hook-based schemes: the response hook answers
    a 401 by sending a copy of the request with a token, through ``r.connection``."""

    def __call__(self, request):
        request.register_hook('response', self.handle_401)
        return request

    def handle_401(self, r, **kwargs):
        if r.status_code != 401:
            return r
        r.content  # noqa: B018
        r.close()
        r.raw.release_conn()
        prep = r.request.copy()
        prep.prepare_cookies(prep._cookies)
        prep.headers['X-Token'] = 'granted'
        answer = r.connection.send(prep, **kwargs)
        answer.history.append(r)
        answer.request = prep
        return answer


def test_a_hook_based_auth_can_resend_through_the_connection(recording_server) -> None:
    recording_server.add(
        'GET',
        '/x',
        lambda request: (
            ok(b'welcome')
            if request.header('X-Token') == 'granted'
            else Canned(status=401, headers={'Set-Cookie': 'k=v'})
        ),
    )
    with dwc.create_session_from_auth(ResendingAuth()) as session:
        response = session.get(recording_server.url + '/x')
    assert response.status_code == 200 and response.content == b'welcome'
    assert [r.status_code for r in response.history] == [401]
    assert recording_server.last.header('Cookie') == 'k=v'


class NeedsInternals:
    def __call__(self, request):
        request.register_hook('response', lambda r, **kw: r.raw._original_response.msg)
        return request


def test_a_hook_needing_requests_internals_names_its_auth(recording_server) -> None:
    recording_server.add('GET', '/x', ok())
    with dwc.create_session_from_auth(NeedsInternals()) as session:
        with pytest.raises(TypeError, match='NeedsInternals'):
            session.get(recording_server.url + '/x')


# -- response hooks ----------------------------------------------------------------------------


def test_response_hook_receives_the_response(recording_server, session) -> None:
    recording_server.add('GET', '/x', ok(b'hooked'))
    seen = []
    session.hooks['response'].append(lambda response, **kwargs: seen.append(response))
    response = session.get(recording_server.url + '/x')
    assert seen == [response]
    assert response.content == b'hooked'


def test_response_hook_can_replace_the_response(recording_server, session) -> None:
    recording_server.add(
        'GET',
        '/x',
        lambda request: (
            ok(b'welcome')
            if request.header('X-Token') == 'late'
            else Canned(status=401, body=b'who are you?')
        ),
    )

    def log_in_on_401(response, **kwargs):
        if response.status_code != 401 or 'X-Token' in response.request.headers:
            return None
        response.close()
        return session.get(response.request.url, headers={'X-Token': 'late'})

    session.hooks['response'].append(log_in_on_401)
    response = session.get(recording_server.url + '/x')
    assert response.status_code == 200 and response.content == b'welcome'
    assert [r.header('X-Token') for r in recording_server.requests] == [None, 'late']


def test_hook_registered_by_an_auth_callable(recording_server) -> None:
    recording_server.add('GET', '/x', ok())
    statuses = []

    def auth(request):
        request.register_hook(
            'response', lambda response, **kw: statuses.append(response.status_code)
        )
        return request

    with dwc.create_session_from_auth(auth) as session:
        session.get(recording_server.url + '/x')
    assert statuses == [200]


# -- threads ----------------------------------------------------------------------------------


def test_one_session_shared_by_16_threads(recording_server, session) -> None:
    recording_server.add(
        'GET', '/echo', lambda request: ok(('echo:' + request.query['token'][0]).encode())
    )
    mismatches: list = []
    failures: list = []

    def worker(number: int) -> None:
        try:
            for index in range(20):
                token = f'{number}-{index}'
                answer = session.get(recording_server.url + '/echo', params={'token': token})
                if answer.status_code != 200 or answer.text != 'echo:' + token:
                    mismatches.append((token, answer.status_code, answer.text))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(repr(error))

    run_in_threads(worker, 16, timeout=30)
    assert failures == []
    assert mismatches == []
    assert len(recording_server.requests) == 16 * 20
    assert 0 < recording_server.connection_count <= 16 * 20
    assert recording_server.errors == []


# -- logging ------------------------------------------------------------------------------------


def test_debug_log_reveals_no_credentials(recording_server, caplog) -> None:
    recording_server.add('GET', '/x', ok())
    recording_server.add('GET', '/start', redirect(302, '/x'))
    recording_server.queue(Canned(status=503))
    port = recording_server.port
    caplog.set_level(logging.DEBUG, logger='dicomweb_client')
    with dwc.create_session_from_user_pass('erin', 'Hunter2-password') as session:
        session.get(recording_server.url + '/start', retry=FAST_RETRY)
    with dwc.Session() as session:
        session.get(f'http://frank:Url-Password-9@127.0.0.1:{port}/start', retry=FAST_RETRY)
        with pytest.raises(dwc.TransportError):
            session.get(
                f'http://frank:Url-Password-9@127.0.0.1:{closed_port()}/x', retry=FAST_RETRY
            )
    assert caplog.records, 'expected some log output at DEBUG level'
    text = caplog.text + ' '.join(str(record.args) for record in caplog.records)
    for secret in (
        'Hunter2-password',
        'Url-Password-9',
        basic('erin', 'Hunter2-password').split()[1],
        basic('frank', 'Url-Password-9').split()[1],
    ):
        assert secret not in text


def test_error_messages_reveal_no_url_password(recording_server, session) -> None:
    recording_server.add('GET', '/x', Canned(status=500, body=b'broken'))
    port = recording_server.port
    response = session.get(f'http://frank:Url-Password-9@127.0.0.1:{port}/x')
    with pytest.raises(dwc.HTTPError) as caught:
        response.raise_for_status()
    assert 'Url-Password-9' not in str(caught.value)
    with pytest.raises(dwc.TransportError) as refused:
        session.get(f'http://frank:Url-Password-9@127.0.0.1:{closed_port()}/x')
    assert 'Url-Password-9' not in str(refused.value)


# -- through the DICOMweb client -----------------------------------------------------------


def test_client_retry_params_and_timeout(recording_server) -> None:
    recording_server.add(
        'GET', '/dicom-web/studies', Canned(body=b'[]', content_type='application/dicom+json')
    )
    recording_server.queue(Canned(status=503), Canned(status=503))
    client = dwc.DICOMwebClient(recording_server.url + '/dicom-web', timeout=5)
    client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=1)
    assert client.search_for_studies() == []
    assert len(recording_server.requests) == 3

    recording_server.clear()
    recording_server.queue(Canned(status=503))
    client.set_http_retry_params(retry=False)
    with pytest.raises(dwc.HTTPError) as caught:
        client.search_for_studies()
    assert caught.value.status_code == 503
    assert len(recording_server.requests) == 1
    assert not isinstance(caught.value, dwc.RetryError)


def test_exhausted_retries_raise_retry_error(recording_server) -> None:
    recording_server.add(None, None, Canned(status=503, body=b'busy'))
    client = dwc.DICOMwebClient(recording_server.url + '/dicom-web')
    client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=1)
    with pytest.raises(dwc.RetryError) as caught:
        client.retrieve_study_metadata('1.2')
    error = caught.value
    assert isinstance(error, dwc.HTTPError) and error.status_code == 503
    assert error.last_attempt.attempt_number == 3
    assert error.last_attempt.has_exception is False
    assert error.last_attempt.get() is error.response
    assert error.last_attempt.value.status_code == 503
    assert len(recording_server.requests) == 3


def test_exhausted_retries_raise_retryings_retry_error(recording_server) -> None:
    """As the established package (which retries with ``retrying``) raises there."""
    retrying = pytest.importorskip('retrying')
    recording_server.add(None, None, Canned(status=429))
    client = dwc.DICOMwebClient(recording_server.url)
    client.set_http_retry_params(retry=True, max_attempts=2, wait_exponential_multiplier=1)
    for call in (
        client.search_for_studies,
        lambda: client.store_instances([]),
        lambda: client.delete_study('1.2'),
    ):
        with pytest.raises(retrying.RetryError) as caught:
            call()
        assert isinstance(caught.value, dwc.RetryError)
        assert caught.value.last_attempt.attempt_number == 2
    client.set_http_retry_params(retry=True, max_attempts=1)
    with pytest.raises(retrying.RetryError):
        client.search_for_studies()  # one attempt, still given up on a retriable status
    recording_server.add(None, None, Canned(status=500))
    with pytest.raises(dwc.HTTPError) as caught:
        client.search_for_studies()  # 500 is not retriable by default
    assert not isinstance(caught.value, retrying.RetryError)


def test_client_timeout(recording_server) -> None:
    recording_server.add(
        'GET',
        '/dicom-web/studies',
        Canned(body=b'[]', content_type='application/dicom+json', delay=1.5),
    )
    client = dwc.DICOMwebClient(recording_server.url + '/dicom-web', timeout=0.3)
    with pytest.raises(dwc.Timeout):
        client.search_for_studies()


@pytest.mark.parametrize(
    'suffix, target',
    [
        ('', '/'),
        ('/', '/'),
        ('?x=1', '/?x=1'),
        ('/a/b?x=1#frag', '/a/b?x=1'),
        ('#frag', '/'),
        ('/a%20b?q=a%20b', '/a%20b?q=a%20b'),
    ],
)
def test_request_target_is_path_and_query(recording_server, session, suffix, target) -> None:
    recording_server.add(None, None, Canned(body=b'ok'))
    session.get(recording_server.url + suffix)
    assert recording_server.last.target == target


def test_add_certs_refuses_a_missing_ca_bundle(tmp_path: pathlib.Path) -> None:
    """A CA bundle that does not exist is reported when it is set, naming the path."""
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(FileNotFoundError, match="no-such-ca.pem"):
        dwc.add_certs_to_session(dwc.Session(), str(missing))


@pytest.mark.parametrize(
    "user, password, raw",
    [
        ("jörg", "pä", "jörg:pä".encode("latin-1")),
        ("jan", "密码", "jan:密码".encode("utf-8")),
    ],
)
def test_basic_credentials_are_latin1_when_they_can_be(
    recording_server: RecordingServer, user: str, password: str, raw: bytes
) -> None:
    """As requests sends them (Latin-1); UTF-8 only for what Latin-1 cannot hold."""
    recording_server.add("GET", None, Canned(body=b"[]", content_type="application/dicom+json"))
    session = dwc.create_session_from_user_pass(user, password)
    dwc.DICOMwebClient(recording_server.url, session=session).search_for_studies()
    expected = "Basic " + base64.b64encode(raw).decode("ascii")
    assert recording_server.last.header("Authorization") == expected
