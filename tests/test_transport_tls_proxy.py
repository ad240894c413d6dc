"""TLS and proxy tests of the dicomweb_client transport, over loopback sockets.

Besides the shared :class:`RecordingServer` this file has two small servers of its
own: a forwarding HTTP proxy (absolute-URI requests and CONNECT tunnels) that
records what it was asked, and a server that speaks HTTP and HTTPS on the same
port (to test a redirect that only downgrades the scheme).
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import logging
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from recording_server import Response as Canned

import dicomweb_client as dwc
from helpers import basic, closed_port

HOP_BY_HOP = frozenset(
    {
        'connection',
        'keep-alive',
        'proxy-authorization',
        'proxy-connection',
        'te',
        'trailer',
        'transfer-encoding',
        'upgrade',
    }
)


# -- fixtures and helpers -------------------------------------------------------------


def server_context(certfile: Path, keyfile: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """Server-side TLS context; with ``client_ca`` it demands a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certfile), str(keyfile))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca))
    return context


@pytest.fixture
def tls_server(make_server, tls_certificate):
    certfile, keyfile = tls_certificate
    server = make_server(ssl_context=server_context(certfile, keyfile))
    server.add(None, '/x', Canned(body=b'secure', content_type='text/plain'))
    return server


@pytest.fixture(scope='module')
def foreign_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate that names only ``other.invalid`` (not 127.0.0.1)."""
    if shutil.which('openssl') is None:
        pytest.skip('openssl is not installed')
    folder = tmp_path_factory.mktemp('foreign-cert')
    cert, key = folder / 'cert.pem', folder / 'key.pem'
    subprocess.run(
        [
            'openssl',
            'req',
            '-x509',
            '-newkey',
            'ec',
            '-pkeyopt',
            'ec_paramgen_curve:prime256v1',
            '-nodes',
            '-keyout',
            str(key),
            '-out',
            str(cert),
            '-days',
            '2',
            '-subj',
            '/CN=other.invalid',
            '-addext',
            'subjectAltName=DNS:other.invalid',
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class _QuietServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 that skips the reverse DNS lookup."""

    daemon_threads = True
    block_on_close = False

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


@contextlib.contextmanager
def serving(server: socketserver.BaseServer):
    thread = threading.Thread(
        target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- a small recording proxy ----------------------------------------------------------


@dataclass
class ProxyRecord:
    method: str
    target: str
    headers: Message


class _ProxyServer(_QuietServer):
    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), _ProxyHandler)
        self.seen: list[ProxyRecord] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.server_port}'


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """Forwards absolute-URI requests and opens CONNECT tunnels."""

    protocol_version = 'HTTP/1.1'
    timeout = 10
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _record(self) -> None:
        with self.server.lock:
            self.server.seen.append(ProxyRecord(self.command, self.path, self.headers))

    def do_CONNECT(self) -> None:
        self._record()
        host, _, port = self.path.rpartition(':')
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, 'Connection established')
        self.end_headers()
        self.close_connection = True
        try:
            self._relay(upstream)
        finally:
            upstream.close()

    def _relay(self, upstream: socket.socket) -> None:
        client = self.connection
        while True:
            readable, _, _ = select.select([client, upstream], [], [], 10)
            if not readable:
                return
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)

    def _forward(self) -> None:
        self._record()
        parts = urllib.parse.urlsplit(self.path)
        if parts.scheme != 'http' or not parts.hostname:
            self.send_error(400, 'absolute http URI expected')
            return
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP
        }
        target = (parts.path or '/') + (f'?{parts.query}' if parts.query else '')
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=5)
        try:
            upstream.request(self.command, target, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
        except OSError:
            self.send_error(502)
            return
        finally:
            upstream.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP | {'content-length', 'date', 'server'}:
                self.send_header(name, value)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


@pytest.fixture
def proxy():
    with serving(_ProxyServer()) as server:
        yield server


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    quoted = f'{urllib.parse.quote(user, safe="")}:{urllib.parse.quote(password, safe="")}'
    return urllib.parse.urlunsplit(parts._replace(netloc=f'{quoted}@{parts.netloc}'))


# -- a server speaking HTTP and HTTPS on one port ------------------------------------------


class _DualServer(_QuietServer):
    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(('127.0.0.1', 0), _DualHandler)
        self.context = context
        self.seen: list[tuple[str, str, str | None]] = []


class _DualHandler(http.server.BaseHTTPRequestHandler):
    """Looks at the first byte: a TLS handshake record (0x16) means HTTPS."""

    protocol_version = 'HTTP/1.1'
    timeout = 10
    server: _DualServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def setup(self) -> None:
        self.request.settimeout(5)
        self.scheme = 'http'
        if self.request.recv(1, socket.MSG_PEEK) == b'\x16':
            self.request = self.server.context.wrap_socket(self.request, server_side=True)
            self.scheme = 'https'
        super().setup()

    def do_GET(self) -> None:
        self.server.seen.append((self.scheme, self.path, self.headers.get('Authorization')))
        if self.path == '/start':
            port = self.server.server_port
            self.send_response(302)
            self.send_header('Location', f'http://127.0.0.1:{port}/landing')
            self.send_header('Content-Length', '0')
        else:
            self.send_response(200)
            self.send_header('Content-Length', '6')
        self.end_headers()
        if self.path != '/start':
            self.wfile.write(b'landed')


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_ca_bundle_variables(monkeypatch) -> None:
    """The tests decide which CA bundle applies, not the environment they run in."""
    for name in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'):
        monkeypatch.delenv(name, raising=False)


def test_self_signed_certificate_is_rejected_by_default(tls_server, session) -> None:
    with pytest.raises(dwc.TransportError) as caught:
        session.get(tls_server.url + '/x')
    message = str(caught.value).lower()
    assert 'certificate' in message or 'tls' in message
    assert tls_server.requests == []


def test_a_failed_verification_is_an_ssl_error(tls_server, session) -> None:
    requests = pytest.importorskip('requests')
    with pytest.raises(dwc.SSLError) as caught:
        session.get(tls_server.url + '/x')
    assert isinstance(caught.value, dwc.TransportError)
    assert isinstance(caught.value, requests.exceptions.SSLError)
    assert isinstance(caught.value, requests.exceptions.ConnectionError)
    assert 'CERTIFICATE_VERIFY_FAILED' in str(caught.value)


def test_a_refused_handshake_is_an_ssl_error(session) -> None:
    """A server that answers the TLS client hello with plain HTTP."""
    listener = socket.create_server(('127.0.0.1', 0))
    listener.settimeout(5)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')
            time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(dwc.SSLError):
            session.get(f'https://127.0.0.1:{listener.getsockname()[1]}/x', timeout=5)
    finally:
        listener.close()
        thread.join(timeout=5)


@pytest.mark.parametrize('missing', ['/no/such/ca-bundle.pem', Path('/no/such/folder')])
def test_a_missing_ca_bundle_is_refused_when_it_is_set(session, missing) -> None:
    with pytest.raises(FileNotFoundError, match='/no/such'):
        session.verify = missing
    assert session.verify is True
    with pytest.raises(FileNotFoundError, match='/no/such') as caught:
        dwc.add_certs_to_session(session, ca_bundle=missing)
    assert caught.value.filename == str(missing)
    assert session.verify is True


def test_verify_accepts_booleans_and_existing_paths(tls_certificate, session) -> None:
    certfile, _ = tls_certificate
    for value in (False, True, str(certfile), certfile, str(certfile.parent)):
        session.verify = value
        assert session.verify == value


def test_a_missing_ca_bundle_given_per_request_fails_that_request(tls_server, session) -> None:
    with pytest.raises(FileNotFoundError, match='/no/such/ca.pem'):
        session.get(tls_server.url + '/x', verify='/no/such/ca.pem')


@pytest.mark.parametrize('variable', ['REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'])
def test_a_missing_ca_bundle_named_by_the_environment_fails_https_requests(
    tls_server, recording_server, session, monkeypatch, variable
) -> None:
    """As in requests: the variable is read when an https request is sent, and a bundle
    that does not exist fails it with an ``OSError`` (here a FileNotFoundError)."""
    recording_server.add('GET', '/x', Canned(body=b'plain'))
    monkeypatch.setenv(variable, '/no/such/env-bundle.pem')
    with pytest.raises(FileNotFoundError, match=f'{variable}.*/no/such/env-bundle.pem'):
        session.get(tls_server.url + '/x')
    assert session.get(recording_server.url + '/x').content == b'plain'
    assert session.get(tls_server.url + '/x', verify=False).content == b'secure'
    session.trust_env = False
    with pytest.raises(dwc.SSLError):  # the variable is not read: the system's CAs apply
        session.get(tls_server.url + '/x')


def test_ca_bundle_from_add_certs_to_session(tls_server, tls_certificate, session) -> None:
    certfile, _ = tls_certificate
    assert dwc.add_certs_to_session(session, ca_bundle=str(certfile)) is session
    response = session.get(tls_server.url + '/x')
    assert response.status_code == 200 and response.content == b'secure'


def test_ca_bundle_given_as_a_path_object(tls_server, tls_certificate, session) -> None:
    certfile, _ = tls_certificate
    dwc.add_certs_to_session(session, ca_bundle=certfile)
    assert session.get(tls_server.url + '/x').content == b'secure'


@pytest.mark.parametrize('variable', ['REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'])
def test_ca_bundle_named_by_the_environment(
    tls_server, tls_certificate, session, monkeypatch, variable
) -> None:
    monkeypatch.setenv(variable, str(tls_certificate[0]))
    assert session.get(tls_server.url + '/x').content == b'secure'


def test_ca_bundle_variables_are_ignored_without_trust_env(
    tls_server, tls_certificate, session, monkeypatch
) -> None:
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', str(tls_certificate[0]))
    session.trust_env = False
    with pytest.raises(dwc.TransportError):
        session.get(tls_server.url + '/x')


def test_a_given_ca_bundle_or_verify_false_wins_over_the_environment(
    tls_server, tls_certificate, foreign_certificate, session, monkeypatch
) -> None:
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', str(foreign_certificate[0]))
    with pytest.raises(dwc.TransportError):  # the environment's bundle does not fit
        session.get(tls_server.url + '/x')
    assert session.get(tls_server.url + '/x', verify=str(tls_certificate[0])).content == b'secure'
    assert session.get(tls_server.url + '/x', verify=False).content == b'secure'


def test_an_early_refusal_over_tls_is_reported(tls_certificate, session) -> None:
    """A TLS server that answers 413 before reading a large body, then closes."""
    context = server_context(*tls_certificate)
    listener = socket.create_server(('127.0.0.1', 0))
    listener.settimeout(5)

    def serve() -> None:
        raw, _ = listener.accept()
        with context.wrap_socket(raw, server_side=True) as conn:
            received = b''
            while b'\r\n\r\n' not in received:
                received += conn.recv(65536)
            conn.sendall(
                b'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n'
                b'Connection: close\r\n\r\ntoo large'
            )
            time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    session.verify = str(tls_certificate[0])
    try:
        response = session.post(
            f'https://127.0.0.1:{listener.getsockname()[1]}/studies', data=bytes(64 << 20)
        )
    finally:
        listener.close()
        thread.join(timeout=5)
    assert response.status_code == 413 and response.content == b'too large'


def test_verify_false_accepts_any_certificate(tls_server, session) -> None:
    session.verify = False
    assert session.get(tls_server.url + '/x').content == b'secure'


def test_localhost_is_a_name_of_the_certificate(tls_server, tls_certificate, session) -> None:
    session.verify = str(tls_certificate[0])
    response = session.get(f'https://localhost:{tls_server.port}/x')
    assert response.content == b'secure'


def test_tls_connection_is_kept_alive(tls_server, tls_certificate, session) -> None:
    session.verify = str(tls_certificate[0])
    for _ in range(4):
        assert session.get(tls_server.url + '/x').status_code == 200
    assert tls_server.connection_count == 1


def test_hostname_mismatch_is_rejected(make_server, foreign_certificate, session) -> None:
    certfile, keyfile = foreign_certificate
    server = make_server(ssl_context=server_context(certfile, keyfile))
    server.add(None, '/x', Canned(body=b'secure'))
    session.verify = str(certfile)  # the certificate is trusted, but names another host
    with pytest.raises(dwc.TransportError) as caught:
        session.get(server.url + '/x')
    message = str(caught.value).lower()
    assert 'mismatch' in message or 'not valid' in message or 'hostname' in message
    assert server.requests == []


def test_mutual_tls_with_client_certificate(make_server, tls_certificate, session) -> None:
    certfile, keyfile = tls_certificate
    server = make_server(ssl_context=server_context(certfile, keyfile, client_ca=certfile))
    server.add(None, '/x', Canned(body=b'mutual'))
    session.verify = str(certfile)
    session.cert = (str(certfile), str(keyfile))
    assert session.get(server.url + '/x').content == b'mutual'
    assert len(server.requests) == 1


def test_mutual_tls_with_one_pem_file(make_server, tls_certificate, session, tmp_path) -> None:
    certfile, keyfile = tls_certificate
    combined = tmp_path / 'client.pem'
    combined.write_bytes(certfile.read_bytes() + keyfile.read_bytes())
    server = make_server(ssl_context=server_context(certfile, keyfile, client_ca=certfile))
    server.add(None, '/x', Canned(body=b'mutual'))
    dwc.add_certs_to_session(session, ca_bundle=str(certfile), cert=str(combined))
    assert session.get(server.url + '/x').content == b'mutual'


def test_mutual_tls_fails_without_client_certificate(make_server, tls_certificate, session) -> None:
    certfile, keyfile = tls_certificate
    server = make_server(ssl_context=server_context(certfile, keyfile, client_ca=certfile))
    server.add(None, '/x', Canned(body=b'mutual'))
    session.verify = str(certfile)
    with pytest.raises(dwc.TransportError):
        session.get(server.url + '/x', timeout=5)
    assert server.requests == []


def test_authorization_dropped_on_https_to_http_redirect(tls_certificate) -> None:
    certfile, keyfile = tls_certificate
    with serving(_DualServer(server_context(certfile, keyfile))) as server:
        port = server.server_port
        with dwc.create_session_from_user_pass('alice', 'pw') as session:
            session.verify = str(certfile)
            response = session.get(f'https://127.0.0.1:{port}/start')
        assert response.status_code == 200 and response.content == b'landed'
        assert server.seen == [
            ('https', '/start', basic('alice', 'pw')),
            ('http', '/landing', None),
        ]


# -- proxies ---------------------------------------------------------------------------------


def test_http_request_through_proxy_uses_an_absolute_uri(recording_server, proxy, session) -> None:
    recording_server.add(None, '/x', Canned(body=b'via proxy'))
    session.proxies = {'http': proxy.url}
    response = session.get(recording_server.url + '/x', params={'q': 'a b'})
    assert response.status_code == 200 and response.content == b'via proxy'
    assert [(r.method, r.target) for r in proxy.seen] == [
        ('GET', recording_server.url + '/x?q=a%20b')
    ]
    assert proxy.seen[0].headers.get('Host') == f'127.0.0.1:{recording_server.port}'
    assert recording_server.last.target == '/x?q=a%20b'


def test_post_through_proxy(recording_server, proxy, session) -> None:
    recording_server.add('POST', '/x', Canned(body=b'stored'))
    session.proxies = {'all': proxy.url}
    response = session.post(recording_server.url + '/x', data=b'payload')
    assert response.content == b'stored'
    assert recording_server.last.body == b'payload'
    assert [r.method for r in proxy.seen] == ['POST']


def test_https_through_proxy_uses_connect(tls_server, tls_certificate, proxy, session) -> None:
    session.verify = str(tls_certificate[0])
    session.proxies = {'https': proxy.url}
    for _ in range(2):
        assert session.get(tls_server.url + '/x').content == b'secure'
    # one tunnel carries both requests
    assert [(r.method, r.target) for r in proxy.seen] == [
        ('CONNECT', f'127.0.0.1:{tls_server.port}')
    ]
    assert [r.target for r in tls_server.requests] == ['/x', '/x']


def test_proxy_chosen_by_scheme_and_host(recording_server, proxy, session) -> None:
    recording_server.add(None, '/x', Canned(body=b'ok'))
    session.proxies = {'http://localhost': proxy.url}
    session.get(f'http://127.0.0.1:{recording_server.port}/x')
    assert proxy.seen == []
    session.get(f'http://localhost:{recording_server.port}/x')
    assert [r.target for r in proxy.seen] == [f'http://localhost:{recording_server.port}/x']


def test_proxy_from_environment(recording_server, proxy, session, monkeypatch) -> None:
    recording_server.add(None, '/x', Canned(body=b'ok'))
    monkeypatch.setenv('http_proxy', proxy.url)
    assert session.get(recording_server.url + '/x').content == b'ok'
    assert len(proxy.seen) == 1


def test_trust_env_false_ignores_proxy_variables(
    recording_server, proxy, session, monkeypatch
) -> None:
    recording_server.add(None, '/x', Canned(body=b'ok'))
    monkeypatch.setenv('http_proxy', proxy.url)
    session.trust_env = False
    assert session.get(recording_server.url + '/x').content == b'ok'
    assert proxy.seen == []


@pytest.mark.parametrize('variable', ['no_proxy', 'NO_PROXY'])
@pytest.mark.parametrize('configured', ['session', 'environment'])
def test_no_proxy_is_honoured(
    recording_server, proxy, session, monkeypatch, variable, configured
) -> None:
    recording_server.add(None, '/x', Canned(body=b'direct'))
    if configured == 'session':
        session.proxies = {'http': proxy.url}
    else:
        monkeypatch.setenv('http_proxy', proxy.url)
    monkeypatch.setenv(variable, 'example.org,127.0.0.1')
    assert session.trust_env
    assert session.get(recording_server.url + '/x').content == b'direct'
    assert proxy.seen == []
    assert len(recording_server.requests) == 1


def test_proxy_credentials_on_connect(tls_server, tls_certificate, proxy, session) -> None:
    session.verify = str(tls_certificate[0])
    session.proxies = {'https': with_credentials(proxy.url, 'proxy-user', 'p@ss:word')}
    assert session.get(tls_server.url + '/x').content == b'secure'
    (connect,) = proxy.seen
    assert connect.method == 'CONNECT'
    assert connect.headers.get('Proxy-Authorization') == basic('proxy-user', 'p@ss:word')
    # the tunnelled request itself carries no proxy credentials
    assert tls_server.last.header('Proxy-Authorization') is None


def test_proxy_credentials_on_plain_http(make_server, proxy, session) -> None:
    proxied, direct = make_server(), make_server()
    proxied.add(None, '/x', Canned(body=b'proxied'))
    direct.add(None, '/x', Canned(body=b'direct'))
    session.proxies = {'http://localhost': with_credentials(proxy.url, 'pu', 'pp')}
    assert session.get(f'http://localhost:{proxied.port}/x').content == b'proxied'
    assert proxy.seen[0].headers.get('Proxy-Authorization') == basic('pu', 'pp')
    # proxy credentials go to the proxy only, never to a server reached directly
    assert session.get(direct.url + '/x').content == b'direct'
    assert direct.last.header('Proxy-Authorization') is None
    assert 'Proxy-Authorization' not in session.headers


def test_unreachable_proxy(session) -> None:
    session.proxies = {'http': f'http://127.0.0.1:{closed_port()}'}
    with pytest.raises(dwc.TransportError) as caught:
        session.get('http://127.0.0.1:9/x')
    assert 'proxy' in str(caught.value)


def test_unreachable_proxy_hides_proxy_password(session, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger='dicomweb_client')
    session.proxies = {
        'http': with_credentials(f'http://127.0.0.1:{closed_port()}', 'pu', 'Proxy-Secret-7')
    }
    policy = dwc.RetryPolicy(max_attempts=2, wait_exponential_multiplier=1)
    with pytest.raises(dwc.TransportError) as caught:
        session.get('http://127.0.0.1:9/x', retry=policy)
    assert 'Proxy-Secret-7' not in str(caught.value)
    assert 'Proxy-Secret-7' not in caplog.text


# -- per-request overrides of the session's settings ------------------------------------------


def test_verify_given_per_request(tls_server, tls_certificate, session) -> None:
    assert session.get(tls_server.url + '/x', verify=str(tls_certificate[0])).content == b'secure'
    assert session.get(tls_server.url + '/x', verify=False).content == b'secure'
    with pytest.raises(dwc.TransportError):
        session.get(tls_server.url + '/x')  # the session itself still verifies


def test_proxies_given_per_request(recording_server, proxy, session) -> None:
    recording_server.add(None, '/x', Canned(body=b'via proxy'))
    response = session.get(recording_server.url + '/x', proxies={'http': proxy.url})
    assert response.content == b'via proxy'
    assert len(proxy.seen) == 1
    session.get(recording_server.url + '/x')
    assert len(proxy.seen) == 1  # the next request goes direct again


def test_auth_given_per_request(recording_server, session) -> None:
    recording_server.add(None, '/x', Canned(body=b'ok'))
    session.get(recording_server.url + '/x', auth=('alice', 'pw'))
    assert recording_server.last.header('Authorization') == basic('alice', 'pw')
    session.get(recording_server.url + '/x')
    assert recording_server.last.header('Authorization') is None


def test_unknown_request_options_are_refused(recording_server, session) -> None:
    with pytest.raises(TypeError):
        session.get(recording_server.url + '/x', files={'a': b'b'})
    assert recording_server.requests == []
