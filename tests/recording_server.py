"""A small HTTP/1.1 server for tests that records requests and replays canned responses.

The server listens on ``127.0.0.1`` (a free port is picked), keeps connections
alive by default and serves every connection in its own daemon thread.

Typical use::

    with RecordingServer() as server:
        server.add("GET", "/studies", Response(body=b"[]", content_type="application/dicom+json"))
        server.queue(Response(status=503))         # served once, before any route
        ...                                          # talk to server.url
        assert server.last.path == "/studies"

Responses are described by :class:`Response`; a route may also be a callable that
receives the :class:`RecordedRequest` and returns a :class:`Response`.
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import itertools
import re
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
import traceback
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Union

__all__ = [
    "DigestProtected",
    "Handler",
    "Part",
    "PathMatcher",
    "RecordedRequest",
    "RecordingServer",
    "Response",
    "multipart_body",
    "multipart_response",
    "self_signed_certificate",
]


@dataclass
class RecordedRequest:
    """One request as received by the server.

    ``headers`` is the case-insensitive :class:`email.message.Message` parsed by
    ``http.server``; use ``headers.get("Accept")`` or ``headers.get_all("Accept")``.
    ``connection`` numbers the TCP connection the request arrived on (1, 2, ...),
    which lets tests check connection reuse.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: Message
    body: bytes
    chunked: bool = False
    target: str = ""
    connection: int = 0

    def header(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of header ``name`` (case-insensitive)."""
        return self.headers.get(name, default)


@dataclass
class Response:
    """A canned response.

    ``body`` may be a list of byte strings: each piece is written and flushed on
    its own (optionally ``piece_delay`` seconds apart) to simulate split delivery;
    with ``chunked=True`` each piece becomes one chunk of a chunked transfer.
    ``raw`` replaces the whole exchange: these exact bytes are written, then the
    connection is closed.  ``reset_after`` announces the real Content-Length but
    aborts the connection with a TCP RST after that many body bytes.
    Extra ``headers`` are sent as given; a ``Content-Length`` among them
    replaces the computed one (useful for lying servers).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | list[bytes] = b""
    content_type: str | None = None
    chunked: bool = False
    delay: float = 0.0
    close: bool = False
    raw: bytes | None = None
    reset_after: int | None = None
    piece_delay: float = 0.0

    def pieces(self) -> list[bytes]:
        """Return the body as a list of pieces."""
        if isinstance(self.body, (bytes, bytearray, memoryview)):
            return [bytes(self.body)] if self.body else []
        return [bytes(piece) for piece in self.body]

    def payload(self) -> bytes:
        """Return the whole body as one byte string."""
        return b"".join(self.pieces())


Handler = Callable[[RecordedRequest], Response]
"""A route target computing the response from the request."""

PathMatcher = Union[str, "re.Pattern[str]", None]
"""Exact path, compiled regex (full match on the path) or ``None`` for any path."""

Part = Union[bytes, tuple]
"""A multipart part: payload bytes, or ``(payload, content_type[, headers])``."""


@dataclass
class _Route:
    method: str | None
    path: PathMatcher
    target: Response | Handler

    def matches(self, request: RecordedRequest) -> bool:
        if self.method is not None and self.method.upper() != request.method:
            return False
        if self.path is None:
            return True
        if isinstance(self.path, str):
            return self.path == request.path
        return self.path.fullmatch(request.path) is not None


class _HTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer carrying a back reference to its RecordingServer."""

    daemon_threads = True
    block_on_close = False
    owner: RecordingServer

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer`` would do."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    """Records each request and writes the response chosen by the owner."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    connection_number = 0

    # -- connection life cycle -------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_number = self.server.owner._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._connection_closed(self.connection)

    def handle_one_request(self) -> None:
        """Wait at most ``idle_timeout`` for the next request, then handle it."""
        self.connection.settimeout(self.server.owner.idle_timeout)
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError, ValueError):
            # ValueError: rfile closed under us after a deliberate reset.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep the test output quiet."""

    # -- dispatch -----------------------------------------------------------------

    def _dispatch(self) -> None:
        self.connection.settimeout(self.server.owner.io_timeout)
        request = self._record()
        response = self.server.owner._respond_to(request)
        self._write(response)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch
    do_PATCH = do_OPTIONS = _dispatch

    def _record(self) -> RecordedRequest:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        body = self._read_chunked() if chunked else self._read_sized()
        path, _, raw_query = self.path.partition("?")
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=urllib.parse.parse_qs(raw_query, keep_blank_values=True),
            raw_query=raw_query,
            headers=self.headers,
            body=body,
            chunked=chunked,
            target=self.path,
            connection=self.connection_number,
        )
        self.server.owner._store(request)
        return request

    def _read_sized(self) -> bytes:
        length = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        """Decode a ``Transfer-Encoding: chunked`` request body (trailers are dropped)."""
        data = bytearray()
        while True:
            size_line = self.rfile.readline(65537)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            data += self.rfile.read(size)
            self.rfile.readline()  # CRLF after the chunk data
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # trailer fields
        return bytes(data)

    # -- responses ----------------------------------------------------------------

    def _write(self, response: Response) -> None:
        if response.delay:
            time.sleep(response.delay)
        try:
            if response.raw is not None:
                self._write_raw(response.raw)
            elif response.reset_after is not None:
                self._write_then_reset(response)
            else:
                self._write_normal(response)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    def _write_raw(self, raw: bytes) -> None:
        self.wfile.write(raw)
        self.wfile.flush()
        self.close_connection = True

    def _write_headers(self, response: Response, length: int | None) -> None:
        self.send_response(response.status)
        if response.content_type is not None:
            self.send_header("Content-Type", response.content_type)
        extra = {name.lower() for name in response.headers}
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None and "content-length" not in extra:
            self.send_header("Content-Length", str(length))
        if response.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    @staticmethod
    def _status_allows_body(status: int) -> bool:
        return status >= 200 and status not in (204, 304)

    def _write_normal(self, response: Response) -> None:
        pieces = response.pieces()
        allowed = self._status_allows_body(response.status)
        self._write_headers(response, sum(map(len, pieces)) if allowed else None)
        if not allowed or self.command == "HEAD":
            return
        for index, piece in enumerate(pieces):
            if index and response.piece_delay:
                time.sleep(response.piece_delay)
            if response.chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece) if piece else b""
            self.wfile.write(piece)
            self.wfile.flush()
        if response.chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _write_then_reset(self, response: Response) -> None:
        body = response.payload()
        plain = Response(
            status=response.status,
            headers=response.headers,
            content_type=response.content_type,
        )
        self._write_headers(plain, len(body))
        self.wfile.write(body[: response.reset_after])
        self.wfile.flush()
        self._abort()

    def _abort(self) -> None:
        """Close the socket with SO_LINGER 0 so that the peer receives an RST."""
        self.close_connection = True
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile reference so close() is real
        sock.close()


class RecordingServer:
    """Threaded HTTP/1.1 server on 127.0.0.1 that records requests and replays responses.

    :param idle_timeout: close a kept-alive connection after this many idle seconds
        (``None``: keep it open until the client closes it or the server stops).
    :param io_timeout: socket timeout while a request is read or answered.
    :param ssl_context: serve HTTPS with this server-side context.
    """

    def __init__(
        self,
        *,
        idle_timeout: float | None = None,
        io_timeout: float | None = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.io_timeout = io_timeout
        self.ssl_context = ssl_context
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.connection_count = 0
        self._lock = threading.Lock()
        self._routes: list[_Route] = []
        self._queue: collections.deque[Response | Handler] = collections.deque()
        self._open: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> RecordingServer:
        """Bind to a free port on 127.0.0.1 and serve in a background thread."""
        if self._httpd is not None:
            return self
        httpd = _HTTPServer(("127.0.0.1", 0), _RequestHandler)
        httpd.owner = self
        if self.ssl_context is not None:
            httpd.socket = self.ssl_context.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and shut down every open connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("server is not running")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- configuration ----------------------------------------------------------

    def add(self, method: str | None, path: PathMatcher, response: Response | Handler) -> None:
        """Register a route; ``method``/``path`` ``None`` match anything.

        When several routes match, the one added last wins, so a test can
        override a broad route with a narrower one.
        """
        with self._lock:
            self._routes.append(_Route(method, path, response))

    def queue(self, *responses: Response | Handler) -> None:
        """Serve these responses once each, in order, to the next requests."""
        with self._lock:
            self._queue.extend(responses)

    def clear(self) -> None:
        """Forget the recorded requests and errors (routes and queue are kept)."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()

    def reset(self) -> None:
        """Forget requests, routes and queued responses."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self._routes.clear()
            self._queue.clear()

    # -- inspection ---------------------------------------------------------------

    @property
    def last(self) -> RecordedRequest:
        """The most recent request (``IndexError`` if there is none)."""
        with self._lock:
            if not self.requests:
                raise IndexError("no request was recorded")
            return self.requests[-1]

    @property
    def pending(self) -> int:
        """Number of queued responses not served yet."""
        with self._lock:
            return len(self._queue)

    # -- called from handler threads -------------------------------------------------

    def _connection_opened(self, sock: socket.socket) -> int:
        with self._lock:
            self.connection_count += 1
            self._open.add(sock)
            return self.connection_count

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def _store(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _select(self, request: RecordedRequest) -> Response | Handler | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            for route in reversed(self._routes):
                if route.matches(request):
                    return route.target
        return None

    def _respond_to(self, request: RecordedRequest) -> Response:
        target = self._select(request)
        if target is None:
            return Response(
                status=404,
                body=f"no route for {request.method} {request.path}".encode(),
                content_type="text/plain",
            )
        if isinstance(target, Response):
            return target
        try:
            return target(request)
        except Exception:  # noqa: BLE001 - report handler bugs to the client and test
            text = traceback.format_exc()
            with self._lock:
                self.errors.append(text)
            return Response(status=500, body=text.encode(), content_type="text/plain")


# -- helpers --------------------------------------------------------------------------


def _split_part(part: Part, default_type: str | None) -> tuple[bytes, str | None, dict]:
    if isinstance(part, (bytes, bytearray, memoryview)):
        return bytes(part), default_type, {}
    payload, content_type, *rest = part
    return bytes(payload), content_type, dict(rest[0]) if rest else {}


def multipart_body(parts: Iterable[Part], boundary: str, content_type: str | None = None) -> bytes:
    """Build a multipart/related body.

    ``parts`` holds payloads, or ``(payload, content_type)`` or
    ``(payload, content_type, extra_headers)`` tuples.  Bare payloads get
    ``content_type`` (default ``application/octet-stream``); a tuple whose
    content type is ``None`` gets no Content-Type header.
    """
    default_type = content_type or "application/octet-stream"
    out = bytearray()
    for part in parts:
        payload, part_type, extra = _split_part(part, default_type)
        out += b"--" + boundary.encode("ascii") + b"\r\n"
        if part_type is not None:
            out += f"Content-Type: {part_type}\r\n".encode("latin-1")
        for name, value in extra.items():
            out += f"{name}: {value}\r\n".encode("latin-1")
        out += b"\r\n" + payload + b"\r\n"
    out += b"--" + boundary.encode("ascii") + b"--\r\n"
    return bytes(out)


def multipart_response(
    parts: Sequence[Part],
    part_type: str = "application/dicom",
    *,
    boundary: str = "test-boundary-0123456789",
    status: int = 200,
    **kwargs: object,
) -> Response:
    """Return a Response with a multipart/related body of ``parts``.

    The Content-Type is ``multipart/related; type="<part_type>"; boundary=<boundary>``
    and every bare part is labelled ``part_type``.  Other ``Response`` fields may be
    given as keyword arguments.
    """
    return Response(
        status=status,
        body=multipart_body(parts, boundary, part_type),
        content_type=f'multipart/related; type="{part_type}"; boundary={boundary}',
        **kwargs,  # type: ignore[arg-type]
    )


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """Create a self-signed certificate for 127.0.0.1 with the ``openssl`` CLI.

    Returns ``(certfile, keyfile)``; the certificate also serves as CA file for
    clients.  Raises ``FileNotFoundError`` when openssl is not installed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# -- digest authentication ------------------------------------------------------------

_DIGEST_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class DigestProtected:
    """A route target that serves ``inner`` only to requests with valid HTTP digest
    credentials (RFC 7616); every other request gets a 401 challenge.

    The server side is computed here, independently of the client: each answer is
    checked field by field (user, realm, nonce, uri, algorithm, opaque, qop, nonce
    count, cnonce) and its ``response`` recomputed with :mod:`hashlib`.  ``qop=None``
    plays an RFC 2069 server; ``algorithm=None`` sends no algorithm parameter (MD5).
    ``extra_challenges`` are put before the digest challenge in the same field.
    :meth:`expire_nonces` makes the nonces issued so far stale: using one is then
    answered with a new challenge that says ``stale=true``.  ``accepted`` holds the
    parsed credentials of every request that was let through, ``rejected`` the
    reasons of every refusal of credentials.
    """

    def __init__(
        self,
        inner: Response | Handler,
        users: dict[str, str],
        realm: str = "dicomweb tests",
        algorithm: str | None = "MD5",
        qop: str | None = "auth",
        opaque: str | None = "0pa9ue",
        extra_challenges: Sequence[str] = (),
    ) -> None:
        self.inner = inner
        self.users = dict(users)
        self.realm = realm
        self.algorithm = algorithm
        self.qop = qop
        self.opaque = opaque
        self.extra_challenges = list(extra_challenges)
        self.accepted: list[dict[str, str]] = []
        self.rejected: list[str] = []
        self._counts: dict[str, set[int]] = {}  # nonce -> nonce counts seen
        self._stale: set[str] = set()
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    def expire_nonces(self) -> None:
        """Make every nonce issued so far stale."""
        with self._lock:
            self._stale.update(self._counts)

    def __call__(self, request: RecordedRequest) -> Response:
        header = request.header("Authorization") or ""
        if header[:7].lower() != "digest ":
            return self._challenge()
        fields = urllib.request.parse_keqv_list(urllib.request.parse_http_list(header[7:]))
        problem = self._problem(fields, request)
        if problem is not None:
            with self._lock:
                self.rejected.append(problem)
            return self._challenge(stale=problem == "stale nonce")
        with self._lock:
            self.accepted.append(fields)
        return self.inner if isinstance(self.inner, Response) else self.inner(request)

    def _challenge(self, stale: bool = False) -> Response:
        nonce = f"n{next(self._serial)}-{time.monotonic_ns():x}"
        with self._lock:
            self._counts[nonce] = set()
        params = [f'realm="{self.realm}"', f'nonce="{nonce}"']
        if self.qop is not None:
            params.append(f'qop="{self.qop}"')
        if self.algorithm is not None:
            params.append(f"algorithm={self.algorithm}")
        if self.opaque is not None:
            params.append(f'opaque="{self.opaque}"')
        if stale:
            params.append("stale=true")
        challenge = ", ".join([*self.extra_challenges, "Digest " + ", ".join(params)])
        return Response(
            status=401,
            headers={"WWW-Authenticate": challenge},
            body=b"digest credentials needed",
            content_type="text/plain",
        )

    def _problem(self, fields: dict[str, str], request: RecordedRequest) -> str | None:
        """Why the credentials are refused, or ``None`` if they are valid."""
        nonce = fields.get("nonce", "")
        expected = {
            "realm": self.realm,
            "uri": request.target,
            "opaque": self.opaque,
            "algorithm": self.algorithm,
            "qop": self.qop,
        }
        for name, value in expected.items():
            if fields.get(name) != value:
                return f"{name} is {fields.get(name)!r}, expected {value!r}"
        if fields.get("username") not in self.users:
            return f"unknown user {fields.get('username')!r}"
        with self._lock:
            if nonce not in self._counts:
                return f"unknown nonce {nonce!r}"
            if nonce in self._stale:
                return "stale nonce"
            if self.qop is not None:
                count = int(fields.get("nc", "0"), 16)
                if count < 1 or count in self._counts[nonce] or not fields.get("cnonce"):
                    return f"nonce count {fields.get('nc')!r} repeated or missing"
                self._counts[nonce].add(count)
        if fields.get("response") != self.expected_response(fields, request.method):
            return "wrong response (password)"
        return None

    def expected_response(self, fields: dict[str, str], method: str) -> str:
        """The ``response`` value valid credentials have for these fields."""
        algorithm = self.algorithm or "MD5"
        sess = algorithm.endswith("-sess")
        hash_function = _DIGEST_HASHES[algorithm.removesuffix("-sess")]

        def h(text: str) -> str:
            return hash_function(text.encode()).hexdigest()

        user, nonce = fields["username"], fields["nonce"]
        ha1 = h(f"{user}:{self.realm}:{self.users[user]}")
        if sess:
            ha1 = h(f"{ha1}:{nonce}:{fields['cnonce']}")
        ha2 = h(f"{method}:{fields['uri']}")
        if self.qop is None:
            return h(f"{ha1}:{nonce}:{ha2}")
        return h(f"{ha1}:{nonce}:{fields['nc']}:{fields['cnonce']}:{fields['qop']}:{ha2}")
