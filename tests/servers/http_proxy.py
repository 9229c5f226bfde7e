"""A loopback HTTP/1.1 reverse proxy that logs S3 requests and injects faults.

`HttpProxy` listens on 127.0.0.1 (free port) and forwards every request to one upstream
`http://127.0.0.1:PORT`. It streams bodies (Content-Length, `Transfer-Encoding: chunked`,
`Expect: 100-continue`) without buffering them whole, keeps client connections alive across
requests, and forwards the request head byte for byte (so SigV4 signatures stay valid).
Each client connection has its own upstream connection, kept alive while the server allows it
(radosgw does; moto closes after every response): a connection the server has closed, or one
idle for longer than `upstream_idle_timeout`, is replaced before a request is sent on it, and a
bodyless idempotent request that meets a connection closed under it is sent once more.

Every request becomes a `RequestRecord` (and, with `log_path`, one JSON line flushed at once).
Header values are never recorded: only whether the request carried a SigV4 signature. Query
parameters of presigned URLs that hold credentials or signatures are redacted.

Faults (all thread-safe): `fail_next`, `fail_always`, `fail_requests_matching` answer an S3-style
XML error without forwarding; `cut_upload_after` forwards part of a request body and then resets
both the client and the upstream connection.

Typical use::

    with HttpProxy("http://127.0.0.1:5000", log_path=tmp / "requests.jsonl") as proxy:
        client = boto3.client("s3", endpoint_url=proxy.url, ...)
        proxy.fail_next(2, status=503)
        client.put_object(...)  # botocore retries twice, then succeeds
        assert proxy.count(status=503) == 2
"""

from __future__ import annotations

import contextlib
import http
import io
import itertools
import json
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

BUFFER_SIZE = 1 << 20
"""Largest piece of a body read or sent at once."""
MAX_LINE = 1 << 16
"""Longest accepted request line, header line or chunk-size line."""
MAX_HEADER_LINES = 256
UPSTREAM_IDLE_SECONDS = 20.0
"""An idle upstream connection older than this is replaced rather than reused."""
_RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Idempotent methods: resent once, when bodyless, if a reused connection turns out closed."""

RequestPredicate = Callable[[str, str], bool]
"""`predicate(method, path_and_query) -> bool` selecting requests for a fault."""

_S3_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Injected by the test proxy."),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "The proxy could not get a response from the upstream server."),
    503: ("SlowDown", "Please reduce your request rate."),
}
_SECRET_QUERY = re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token)=)[^&]*")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection"}


@dataclass(frozen=True)
class RequestRecord:
    """What the proxy saw of one request (never any header value).

    `path` is path and query, with signature and credential query values redacted.
    `status` is None when no response reached the client (connection cut or client gone).
    `authorization` is "sigv4-header", "sigv4-query" (presigned URL), "other" or "none";
    `signed` is True for the two SigV4 kinds. `request_bytes` / `response_bytes` count the
    message bodies as transferred (chunk framing included). `fault` is None, "injected",
    "cut", "held" or "upstream-error". Requests sharing a `connection_id` came over one client
    connection (keep-alive).
    """

    method: str
    path: str
    status: int | None
    signed: bool
    authorization: str
    request_bytes: int
    response_bytes: int
    chunked: bool
    expect_continue: bool
    fault: str | None
    connection_id: int
    seconds: float


@dataclass
class _FaultRule:
    """Answer matching requests with `status`; `remaining` None means forever."""

    status: int
    remaining: int | None
    methods: frozenset[str] | None
    predicate: RequestPredicate | None

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.predicate is None or self.predicate(method, path)


@dataclass
class _CutRule:
    """Cut the next `remaining` requests of `methods` whose body exceeds `byte_count`."""

    byte_count: int
    methods: frozenset[str]
    remaining: int


class _ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 as understood here."""


class _PeerClosedError(Exception):
    """The peer closed the connection in the middle of a message."""


class _NoResponseError(_PeerClosedError):
    """The upstream closed (or reset) the connection without sending a response byte."""


class _CutConnectionError(Exception):
    """A cut fault fired: both connections must be reset."""


@dataclass
class _Head:
    """A parsed request or response head; `raw` is the exact bytes received."""

    start_line: str
    headers: list[tuple[str, str]]
    raw: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def has_token(self, name: str, token: str) -> bool:
        value = self.header(name) or ""
        return token in (part.strip().lower() for part in value.split(","))


@dataclass
class _Exchange:
    """Mutable bookkeeping of one request while it is being handled."""

    head: _Head
    method: str
    target: str
    connection_id: int
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    fault: str | None = None
    recorded: bool = False

    @property
    def chunked(self) -> bool:
        return self.head.has_token("Transfer-Encoding", "chunked")

    @property
    def expect_continue(self) -> bool:
        return (self.head.header("Expect") or "").strip().lower() == "100-continue"

    @property
    def client_wants_close(self) -> bool:
        version = self.head.start_line.rsplit(" ", 1)[-1]
        return self.head.has_token("Connection", "close") or version == "HTTP/1.0"


def _buffered_reader(connection: socket.socket) -> io.BufferedReader:
    return cast(io.BufferedReader, connection.makefile("rb", buffering=BUFFER_SIZE))


def _read_line(reader: io.BufferedReader) -> bytes:
    line = reader.readline(MAX_LINE)
    if not line:
        raise _PeerClosedError("connection closed inside a message head")
    if not line.endswith(b"\n"):
        raise _ProtocolError("line too long")
    return line


def _read_head(reader: io.BufferedReader) -> _Head | None:
    """Read a message head; None if the peer closed cleanly before its first byte."""
    first = reader.readline(MAX_LINE)
    while first in (b"\r\n", b"\n"):
        first = reader.readline(MAX_LINE)
    if not first:
        return None
    if not first.endswith(b"\n"):
        raise _ProtocolError("start line too long")
    lines = [first]
    headers: list[tuple[str, str]] = []
    while (line := _read_line(reader)) not in (b"\r\n", b"\n"):
        if len(lines) > MAX_HEADER_LINES:
            raise _ProtocolError("too many header lines")
        name, separator, value = line.decode("latin-1").partition(":")
        if not separator:
            raise _ProtocolError("malformed header line")
        headers.append((name.strip(), value.strip()))
        lines.append(line)
    lines.append(line)
    return _Head(first.decode("latin-1").rstrip("\r\n"), headers, b"".join(lines))


def _copy_exact(reader: io.BufferedReader, length: int, sink: Callable[[bytes], None]) -> None:
    remaining = length
    while remaining:
        data = reader.read1(min(remaining, BUFFER_SIZE))
        if not data:
            raise _PeerClosedError("connection closed inside a message body")
        sink(data)
        remaining -= len(data)


def _copy_chunked(reader: io.BufferedReader, sink: Callable[[bytes], None]) -> None:
    """Copy a chunked body with its framing and trailers unchanged."""
    while True:
        line = _read_line(reader)
        sink(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise _ProtocolError("bad chunk size") from error
        if size == 0:
            break
        _copy_exact(reader, size + 2, sink)
    while True:
        line = _read_line(reader)
        sink(line)
        if line in (b"\r\n", b"\n"):
            return


def _copy_until_close(reader: io.BufferedReader, sink: Callable[[bytes], None]) -> None:
    while data := reader.read1(BUFFER_SIZE):
        sink(data)


def _copy_body(
    reader: io.BufferedReader, framing: str | int, sink: Callable[[bytes], None]
) -> None:
    """Copy a body framed as "chunked", "close" (until EOF) or an exact byte count."""
    if framing == "chunked":
        _copy_chunked(reader, sink)
    elif framing == "close":
        _copy_until_close(reader, sink)
    elif isinstance(framing, int) and framing > 0:
        _copy_exact(reader, framing, sink)


def _request_framing(head: _Head) -> str | int:
    if head.has_token("Transfer-Encoding", "chunked"):
        return "chunked"
    length = head.header("Content-Length")
    try:
        return int(length) if length else 0
    except ValueError as error:
        raise _ProtocolError("bad Content-Length") from error


def _response_framing(method: str, status: int, head: _Head) -> str | int:
    if method == "HEAD" or status < 200 or status in (204, 304):
        return 0
    if head.has_token("Transfer-Encoding", "chunked"):
        return "chunked"
    length = head.header("Content-Length")
    return int(length) if length and length.isdigit() else "close"


def _authorization_kind(head: _Head, target: str) -> str:
    authorization = head.header("Authorization")
    if authorization is not None:
        return "sigv4-header" if authorization.startswith("AWS4-HMAC-SHA256") else "other"
    if "x-amz-algorithm=aws4-hmac-sha256" in target.lower():
        return "sigv4-query"
    return "none"


def _error_response(status: int, *, close: bool, with_body: bool, request_id: str) -> bytes:
    """An S3-style XML error response (SlowDown for 503, InternalError for 500, ...)."""
    code, message = _S3_ERRORS.get(status, ("InjectedFault", "Injected by the test proxy."))
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()
    lines = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        "Content-Type: application/xml",
        f"Content-Length: {len(body)}",
        f"x-amz-request-id: {request_id}",
    ]
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if with_body else head


def _response_head(head: _Head, close: bool) -> bytes:
    """The upstream response head without hop-by-hop headers, for the client connection."""
    status_line = head.start_line
    if status_line.startswith("HTTP/1.0 "):
        status_line = "HTTP/1.1 " + status_line[len("HTTP/1.0 ") :]
    lines = [status_line]
    lines += [f"{k}: {v}" for k, v in head.headers if k.lower() not in _HOP_BY_HOP]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _abort(connection: socket.socket | None, reader: io.BufferedReader | None) -> None:
    """Close a connection with a TCP reset (SO_LINGER 0) rather than a clean FIN."""
    if connection is None:
        return
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if reader is not None:
        with contextlib.suppress(OSError):
            reader.close()
    with contextlib.suppress(OSError):
        connection.close()


class _BodySender:
    """Sends request body bytes upstream, counting them; fires a claimed cut at its limit.

    After an upstream send error it keeps consuming (and counting) the client's body so the
    client connection stays in a known state.
    """

    def __init__(
        self, upstream: socket.socket, limit: int | None, claim: Callable[[], bool]
    ) -> None:
        self.upstream = upstream
        self.limit = limit
        self.claim = claim
        self.sent = 0
        self.broken = False

    def __call__(self, data: bytes) -> None:
        if self.limit is not None and self.sent + len(data) > self.limit:
            if self.claim():
                self._send(data[: self.limit - self.sent])
                raise _CutConnectionError
            self.limit = None
        self._send(data)

    def _send(self, data: bytes) -> None:
        if not self.broken:
            try:
                self.upstream.sendall(data)
            except OSError:
                self.broken = True
        self.sent += len(data)


class _HoldLastSender:
    """Sends to the client one piece late, so the last piece goes out only on `flush`."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.held: bytes | None = None

    def push(self, data: bytes) -> None:
        if self.held is not None:
            self.client.sendall(self.held)
        self.held = data

    def flush(self) -> None:
        if self.held is not None:
            self.client.sendall(self.held)
            self.held = None


class _Upstream:
    """The upstream connection of one client connection, kept alive between requests.

    An idle connection is reused only if the server has not closed it (nothing readable: a
    zero-timeout poll, never a blocking read) and it has been idle for less than
    `upstream_idle_timeout`, which stays below the keep-alive timeouts of real servers so
    that the proxy never races a server closing an idle connection.
    """

    def __init__(self, proxy: HttpProxy) -> None:
        self.proxy = proxy
        self.connection: socket.socket | None = None
        self.reader: io.BufferedReader | None = None
        self.idle_since = 0.0

    def ensure_open(self) -> tuple[socket.socket, io.BufferedReader, bool]:
        """The connection to send the next request on, and whether it is a reused one."""
        if self.connection is not None and self.reader is not None and self._reusable():
            return self.connection, self.reader, True
        self.close()
        connection = socket.create_connection(self.proxy.upstream_address, timeout=None)
        connection.settimeout(self.proxy.upstream_timeout)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proxy._track(connection)
        self.connection = connection
        self.reader = _buffered_reader(connection)
        return connection, self.reader, False

    def send_head(self, raw: bytes) -> tuple[socket.socket, io.BufferedReader, bool]:
        """Send a request head, retrying once on a fresh connection if a reused one failed.

        Returns the connection, its reader, and whether the connection was a reused one.
        """
        connection, reader, reused = self.ensure_open()
        try:
            connection.sendall(raw)
        except OSError:
            self.close()
            if not reused:
                raise
            connection, reader, reused = self.ensure_open()
            connection.sendall(raw)
        return connection, reader, reused

    def release(self, reusable: bool) -> None:
        """The response has been relayed whole: keep the connection for the next request?"""
        if reusable:
            self.idle_since = time.monotonic()
        else:
            self.close()

    def _reusable(self) -> bool:
        assert self.connection is not None
        if time.monotonic() - self.idle_since > self.proxy.upstream_idle_timeout:
            return False
        # Readable while idle means closed by the server (or bytes out of sync): not reusable.
        # A poll, because recv(MSG_DONTWAIT) on a socket with a timeout still waits.
        poller = select.poll()
        poller.register(self.connection, select.POLLIN | select.POLLERR | select.POLLHUP)
        try:
            return not poller.poll(0)
        except OSError:
            return False

    def close(self) -> None:
        if self.reader is not None:
            with contextlib.suppress(OSError):
                self.reader.close()
        if self.connection is not None:
            self.proxy._untrack(self.connection)
            with contextlib.suppress(OSError):
                self.connection.close()
        self.connection, self.reader = None, None

    def abort(self) -> None:
        if self.connection is not None:
            self.proxy._untrack(self.connection)
        _abort(self.connection, self.reader)
        self.connection, self.reader = None, None


class HttpProxy:
    """A threaded HTTP/1.1 reverse proxy on 127.0.0.1 for request logging and fault injection.

    `upstream_url` is `http://127.0.0.1:PORT` (any host name works; no TLS). `log_path`, if
    given, receives one JSON line per request (the fields of `RequestRecord`), flushed at once.
    `upstream_timeout` bounds each wait on the upstream server; an upstream connection idle
    for longer than `upstream_idle_timeout` is not reused (servers close idle keep-alive
    connections on their own schedule: radosgw's beast after 65 s, moto after every response).
    Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        upstream_url: str,
        log_path: Path | None = None,
        *,
        upstream_timeout: float = 300.0,
        client_idle_timeout: float = 300.0,
        upstream_idle_timeout: float = UPSTREAM_IDLE_SECONDS,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://HOST:PORT, got {upstream_url!r}")
        self.upstream_address = (parts.hostname, parts.port)
        self.log_path = log_path
        self.upstream_timeout = upstream_timeout
        self.client_idle_timeout = client_idle_timeout
        self.upstream_idle_timeout = upstream_idle_timeout
        self.url = ""
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._rules: list[_FaultRule] = []
        self._cut: _CutRule | None = None
        self._hold: RequestPredicate | None = None
        self.held = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._connection_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._log_file: io.TextIOWrapper | None = None
        self.connections_accepted = 0

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> HttpProxy:
        """Bind 127.0.0.1 on a free port, start accepting, and return self (`url` is set)."""
        if self._listener is not None:
            raise RuntimeError("proxy already started")
        if self.log_path is not None:
            self._log_file = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"proxy-accept-{self.url}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, reset open connections, and wait for the proxy's threads."""
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for connection in open_sockets:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> HttpProxy:
        return self.start()

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- records

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the records of all requests completed since the last reset."""
        with self._lock:
            return list(self._records)

    def reset_counts(self) -> None:
        """Forget the records (the log file keeps its lines) and the connection count."""
        with self._lock:
            self._records.clear()
            self.connections_accepted = 0

    def count(
        self,
        method: str | None = None,
        *,
        status: int | None = None,
        signed: bool | None = None,
        fault: str | None = None,
    ) -> int:
        """How many recorded requests match every criterion given."""
        return sum(
            1
            for record in self.requests
            if (method is None or record.method == method)
            and (status is None or record.status == status)
            and (signed is None or record.signed == signed)
            and (fault is None or record.fault == fault)
        )

    # ----------------------------------------------------------------- faults

    def fail_next(
        self, count: int, status: int = 503, methods: Iterable[str] | None = None
    ) -> None:
        """Answer the next `count` requests (of `methods`, default all) with an S3 XML error."""
        self._add_rule(_FaultRule(status, count, _method_set(methods), None))

    def fail_always(self, status: int = 503, methods: Iterable[str] | None = None) -> None:
        """Answer every request (of `methods`) with an S3 XML error until `clear_faults`."""
        self._add_rule(_FaultRule(status, None, _method_set(methods), None))

    def fail_requests_matching(
        self, predicate: RequestPredicate, status: int, count: int | None = None
    ) -> None:
        """Answer requests for which `predicate(method, path_and_query)` is true with `status`.

        `count` limits how many requests fail (None: until `clear_faults`). The predicate runs
        on the proxy's threads and must be thread-safe.
        """
        self._add_rule(_FaultRule(status, count, None, predicate))

    def cut_upload_after(
        self, byte_count: int, methods: Iterable[str] = ("PUT", "POST"), count: int = 1
    ) -> None:
        """Cut the next `count` requests (of `methods`) whose body exceeds `byte_count` bytes.

        The proxy forwards exactly `byte_count` body bytes upstream, then resets both the
        client and the upstream connection (TCP RST); the client gets no response.
        """
        with self._lock:
            self._cut = _CutRule(byte_count, frozenset(m.upper() for m in methods), count)

    def hold_requests_matching(self, predicate: RequestPredicate) -> None:
        """Never answer requests matching `predicate(method, path_and_query)` (nor forward them).

        The client waits on the connection until it gives up or the proxy stops; `held` is set
        when the first such request arrives. This freezes a client at an exact point of a
        protocol (say, before CompleteMultipartUpload) for a test to kill it there.
        """
        with self._lock:
            self._hold = predicate

    def clear_faults(self) -> None:
        """Remove every pending fault (requests already held stay held)."""
        with self._lock:
            self._rules.clear()
            self._cut = None
            self._hold = None

    def pending_faults(self) -> int:
        """How many one-shot faults have not fired yet (-1 if a permanent rule is active)."""
        with self._lock:
            if any(rule.remaining is None for rule in self._rules):
                return -1
            pending = sum(rule.remaining or 0 for rule in self._rules)
            return pending + (self._cut.remaining if self._cut else 0)

    def _add_rule(self, rule: _FaultRule) -> None:
        if rule.remaining is not None and rule.remaining <= 0:
            return
        with self._lock:
            self._rules.append(rule)

    def _claim_fault(self, method: str, path: str) -> int | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    return rule.status
        return None

    def _holds(self, method: str, path: str) -> bool:
        with self._lock:
            hold = self._hold
        return hold is not None and hold(method, path)

    def _cut_limit(self, method: str) -> int | None:
        with self._lock:
            if self._cut is not None and method in self._cut.methods:
                return self._cut.byte_count
        return None

    def _claim_cut(self) -> bool:
        with self._lock:
            if self._cut is None:
                return False
            self._cut.remaining -= 1
            if self._cut.remaining <= 0:
                self._cut = None
            return True

    # ----------------------------------------------------------------- serving

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._sockets.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(connection)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.settimeout(self.client_idle_timeout)
            with self._lock:
                self.connections_accepted += 1
                self._sockets.add(connection)
                thread = threading.Thread(
                    target=self._serve_connection,
                    args=(connection, next(self._connection_ids)),
                    name="proxy-connection",
                    daemon=True,
                )
                self._threads.add(thread)
            thread.start()

    def _serve_connection(self, client: socket.socket, connection_id: int) -> None:
        reader = _buffered_reader(client)
        upstream = _Upstream(self)
        try:
            while not self._stopping.is_set():
                head = _read_head(reader)
                if head is None or not self._handle(head, reader, client, upstream, connection_id):
                    break
        except (OSError, _ProtocolError, _PeerClosedError, ValueError):
            pass
        finally:
            upstream.close()
            self._untrack(client)
            with contextlib.suppress(OSError):
                reader.close()
            with contextlib.suppress(OSError):
                client.close()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _handle(
        self,
        head: _Head,
        reader: io.BufferedReader,
        client: socket.socket,
        upstream: _Upstream,
        connection_id: int,
    ) -> bool:
        """Handle one request; True if the client connection can carry another one.

        The request is recorded before the client receives the last byte of the response (or
        the reset), so a client that has its answer always finds the record.
        """
        method, target = _split_request_line(head.start_line)
        exchange = _Exchange(head, method, target, connection_id)
        try:
            if self._holds(method, target):
                exchange.fault = "held"
                self.held.set()
                self._stopping.wait()
                return False
            status = self._claim_fault(method, target)
            if status is not None:
                return self._answer_fault(exchange, status, reader, client)
            return self._forward(exchange, reader, client, upstream)
        except _CutConnectionError:
            exchange.fault = "cut"
            self._record(exchange)
            upstream.abort()
            self._untrack(client)
            _abort(client, reader)
            return False
        finally:
            self._record(exchange)

    def _answer_fault(
        self, exchange: _Exchange, status: int, reader: io.BufferedReader, client: socket.socket
    ) -> bool:
        """Send an injected error; drain the body unless the client waits for 100-continue."""
        exchange.fault = "injected"
        close = exchange.client_wants_close or exchange.expect_continue
        if not exchange.expect_continue:
            exchange.request_bytes = _drain(reader, _request_framing(exchange.head))
        request_id = f"proxy-fault-{next(self._request_ids)}"
        response = _error_response(
            status, close=close, with_body=exchange.method != "HEAD", request_id=request_id
        )
        exchange.status = status
        self._record(exchange)
        client.sendall(response)
        return not close

    def _forward(
        self,
        exchange: _Exchange,
        reader: io.BufferedReader,
        client: socket.socket,
        upstream: _Upstream,
    ) -> bool:
        framing = _request_framing(exchange.head)
        # A bodyless idempotent request can be sent again if a reused keep-alive connection
        # turns out to have been closed by the server before it answered anything.
        may_resend = framing == 0 and exchange.method in _RETRYABLE_METHODS
        if exchange.expect_continue:
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while True:
            try:
                connection, upstream_reader, reused = upstream.send_head(exchange.head.raw)
            except OSError:
                return self._answer_upstream_error(exchange, client, upstream)
            sender = _BodySender(connection, self._cut_limit(exchange.method), self._claim_cut)
            try:
                _copy_body(reader, framing, sender)
            finally:
                exchange.request_bytes = sender.sent
            try:
                response, continued = _read_final_head(upstream_reader)
            except _NoResponseError:
                if reused and may_resend:
                    upstream.close()
                    continue
                return self._answer_upstream_error(exchange, client, upstream)
            except (OSError, _PeerClosedError, _ProtocolError):
                return self._answer_upstream_error(exchange, client, upstream)
            # Whether the server read the whole body is unknown if it answered a request that
            # asked for 100-continue without a 100 (it may skip the body) or if sending failed.
            body_in_doubt = sender.broken or (
                exchange.expect_continue and not continued and sender.sent > 0
            )
            return self._relay_response(exchange, response, client, upstream, body_in_doubt)

    def _relay_response(
        self,
        exchange: _Exchange,
        response: _Head,
        client: socket.socket,
        upstream: _Upstream,
        body_in_doubt: bool = False,
    ) -> bool:
        assert upstream.reader is not None
        exchange.status = _status_code(response)
        framing = _response_framing(exchange.method, exchange.status, response)
        upstream_closes = body_in_doubt or framing == "close" or not _keeps_alive(response)
        close = exchange.client_wants_close or framing == "close"
        sender = _HoldLastSender(client)
        sender.push(_response_head(response, close))

        def to_client(data: bytes) -> None:
            sender.push(data)
            exchange.response_bytes += len(data)

        _copy_body(upstream.reader, framing, to_client)
        upstream.release(reusable=not upstream_closes)
        self._record(exchange)
        sender.flush()
        return not close

    def _answer_upstream_error(
        self, exchange: _Exchange, client: socket.socket, upstream: _Upstream
    ) -> bool:
        upstream.close()
        exchange.fault = "upstream-error"
        exchange.status = 502
        self._record(exchange)
        request_id = f"proxy-error-{next(self._request_ids)}"
        client.sendall(
            _error_response(
                502, close=True, with_body=exchange.method != "HEAD", request_id=request_id
            )
        )
        return False

    def _record(self, exchange: _Exchange) -> None:
        """Append (and log) the exchange's record, once."""
        if exchange.recorded:
            return
        exchange.recorded = True
        kind = _authorization_kind(exchange.head, exchange.target)
        record = RequestRecord(
            method=exchange.method,
            path=_SECRET_QUERY.sub(r"\1REDACTED", exchange.target),
            status=exchange.status,
            signed=kind.startswith("sigv4"),
            authorization=kind,
            request_bytes=exchange.request_bytes,
            response_bytes=exchange.response_bytes,
            chunked=exchange.chunked,
            expect_continue=exchange.expect_continue,
            fault=exchange.fault,
            connection_id=exchange.connection_id,
            seconds=round(time.monotonic() - exchange.started, 6),
        )
        with self._lock:
            self._records.append(record)
            if self._log_file is not None:
                self._log_file.write(json.dumps(asdict(record)) + "\n")
                self._log_file.flush()


def _method_set(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(method.upper() for method in methods)


def _split_request_line(line: str) -> tuple[str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _ProtocolError("malformed request line")
    return parts[0].upper(), parts[1]


def _status_code(head: _Head) -> int:
    try:
        return int(head.start_line.split(" ", 2)[1])
    except (IndexError, ValueError) as error:
        raise _ProtocolError("malformed status line") from error


def _read_final_head(reader: io.BufferedReader) -> tuple[_Head, bool]:
    """Read the upstream's final response head, skipping interim 1xx responses.

    Returns the head and whether a `100 Continue` preceded it. Raises `_NoResponseError` if
    the connection was closed or reset before the first byte of a response.
    """
    continued = False
    while True:
        try:
            head = _read_head(reader)
        except ConnectionResetError as error:
            if continued:
                raise
            raise _NoResponseError("upstream reset the connection before responding") from error
        if head is None:
            if continued:
                raise _PeerClosedError("upstream closed after 100 Continue")
            raise _NoResponseError("upstream closed before responding")
        status = _status_code(head)
        if status == 100:
            continued = True
        elif not 100 <= status < 200:
            return head, continued


def _keeps_alive(response: _Head) -> bool:
    """Whether the upstream keeps the connection open after this response."""
    if response.has_token("Connection", "close"):
        return False
    if response.start_line.startswith("HTTP/1.0 "):
        return response.has_token("Connection", "keep-alive")
    return True


def _drain(reader: io.BufferedReader, framing: str | int) -> int:
    """Read and discard a request body; return its size."""
    consumed = 0

    def discard(data: bytes) -> None:
        nonlocal consumed
        consumed += len(data)

    _copy_body(reader, framing, discard)
    return consumed


def read_request_log(path: Path) -> list[dict[str, Any]]:
    """The records of a proxy log file as dictionaries (fields of `RequestRecord`)."""
    with open(path, encoding="utf-8") as log_file:
        return [json.loads(line) for line in log_file if line.strip()]
