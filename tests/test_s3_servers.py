"""The S3 test servers themselves: moto with SigV4 enforced, and the logging/fault proxy.

The proxy's faults and the S3 operations the IO manager uses run through a fresh proxy in
front of each real server (moto closes every connection; radosgw keeps them alive); its
HTTP/1.1 framing and keep-alive handling are also checked against a scripted upstream.
"""

from __future__ import annotations

import http.client
import io
import os
import pickle
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import boto3
import polars as pl
import pytest
from botocore import UNSIGNED
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError

from tests.faults_support import SERVERS, proxied_server, server_endpoint
from tests.servers import S3Endpoint
from tests.servers.http_proxy import HttpProxy, read_request_log
from tests.servers.moto_server import MotoServer, start_moto_server

pytestmark = pytest.mark.s3

BUCKET = "servers-tests"
MEGABYTE = 1 << 20


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server (SigV4 enforced) behind its logging proxy, for the whole module."""
    with start_moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def endpoint(moto: MotoServer) -> S3Endpoint:
    """The proxied moto endpoint, with the bucket `BUCKET` created."""
    moto.endpoint.client().create_bucket(Bucket=BUCKET)
    return moto.endpoint


@pytest.fixture(scope="module")
def s3(endpoint: S3Endpoint) -> Any:
    """A correctly signed boto3 client."""
    return endpoint.client()


@pytest.fixture(params=SERVERS)
def faulty(request: pytest.FixtureRequest) -> Iterator[tuple[S3Endpoint, HttpProxy]]:
    """A fresh proxy of the test's own in front of moto itself or radosgw (no shared state),
    with the bucket `BUCKET` on that server and no request recorded yet."""
    shared = server_endpoint(request, request.param)[0].client()
    try:
        shared.head_bucket(Bucket=BUCKET)
    except ClientError:
        shared.create_bucket(Bucket=BUCKET)
    with proxied_server(request, request.param) as pair:
        yield pair


def direct(endpoint: S3Endpoint, proxy: HttpProxy) -> Any:
    """A signed client talking to the server behind `proxy` directly (nothing recorded)."""
    host, port = proxy.upstream_address
    return endpoint.client(endpoint_url=f"http://{host}:{port}")


def client_with_attempts(endpoint: S3Endpoint, attempts: int) -> Any:
    """A signed client that makes at most `attempts` attempts per call."""
    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": attempts},
    )
    return endpoint.client(config=config)


def anonymous_client(endpoint: S3Endpoint) -> Any:
    """A client that sends unsigned requests, once each."""
    config = Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
    return boto3.client(
        "s3", endpoint_url=endpoint.endpoint_url, region_name=endpoint.region, config=config
    )


def storage_options(endpoint: S3Endpoint, **overrides: Any) -> dict[str, Any]:
    """polars / object_store options for `endpoint`."""
    options: dict[str, Any] = {
        "aws_access_key_id": endpoint.access_key_id,
        "aws_secret_access_key": endpoint.secret_access_key,
        "aws_region": endpoint.region,
        "aws_endpoint_url": endpoint.endpoint_url,
        "aws_allow_http": "true",
    }
    options.update(overrides)
    return options


def keys_under(s3: Any, prefix: str) -> list[str]:
    """The keys in `BUCKET` starting with `prefix`."""
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_signed_put_get_and_head(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="basic/hello.txt", Body=b"hello")

    assert s3.get_object(Bucket=BUCKET, Key="basic/hello.txt")["Body"].read() == b"hello"
    assert s3.head_object(Bucket=BUCKET, Key="basic/hello.txt")["ContentLength"] == 5
    assert keys_under(s3, "basic/") == ["basic/hello.txt"]


def test_multipart_upload_through_proxy(s3: Any, moto: MotoServer) -> None:
    data = os.urandom(12 * MEGABYTE)
    moto.proxy.reset_counts()

    s3.upload_fileobj(io.BytesIO(data), BUCKET, "multipart/twelve.bin")

    assert s3.get_object(Bucket=BUCKET, Key="multipart/twelve.bin")["Body"].read() == data
    records = moto.proxy.requests
    parts = [r for r in records if r.method == "PUT" and "partNumber=" in r.path]
    assert len(parts) == 2
    assert sum(part.request_bytes for part in parts) == len(data)
    assert all(part.expect_continue and part.status == 200 for part in parts)
    assert any(r.method == "POST" and r.path.endswith("?uploads") for r in records)
    assert len({r.connection_id for r in records}) < len(records), "no keep-alive reuse"


def test_wrong_secret_is_refused(endpoint: S3Endpoint, s3: Any) -> None:
    impostor = endpoint.client(aws_secret_access_key="wrong-secret")

    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        impostor.put_object(Bucket=BUCKET, Key="refused/wrong-secret", Body=b"x")
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        impostor.list_objects_v2(Bucket=BUCKET)
    assert keys_under(s3, "refused/wrong-secret") == []


def test_unknown_access_key_is_refused(endpoint: S3Endpoint, s3: Any) -> None:
    stranger = endpoint.client(aws_access_key_id="AKIAUNKNOWNUNKNOWN00")

    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        stranger.put_object(Bucket=BUCKET, Key="refused/unknown-key", Body=b"x")
    assert keys_under(s3, "refused/unknown-key") == []


def test_anonymous_requests_are_refused(endpoint: S3Endpoint, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="anonymous/existing", Body=b"secret data")
    anonymous = anonymous_client(endpoint)

    with pytest.raises(ClientError) as put_error:
        anonymous.put_object(Bucket=BUCKET, Key="anonymous/new", Body=b"x")
    with pytest.raises(ClientError, match=r"\(403\).*GetObject"):
        anonymous.get_object(Bucket=BUCKET, Key="anonymous/existing")
    with pytest.raises(ClientError):
        anonymous.list_objects_v2(Bucket=BUCKET)

    assert put_error.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 400
    assert keys_under(s3, "anonymous/") == ["anonymous/existing"]


def test_polars_round_trip_through_proxy(endpoint: S3Endpoint, moto: MotoServer) -> None:
    frame = pl.DataFrame({"id": range(10_000), "group": [i % 3 for i in range(10_000)]})
    options = storage_options(endpoint)
    moto.proxy.reset_counts()

    frame.write_parquet(f"s3://{BUCKET}/polars/one.parquet", storage_options=options)
    frame.write_parquet(
        f"s3://{BUCKET}/polars/hive/", partition_by=["group"], storage_options=options
    )

    read_back = pl.read_parquet(f"s3://{BUCKET}/polars/one.parquet", storage_options=options)
    assert read_back.equals(frame)
    scanned = pl.scan_parquet(
        f"s3://{BUCKET}/polars/hive/", hive_partitioning=True, storage_options=options
    )
    assert scanned.filter(pl.col("group") == 2).select(pl.len()).collect().item() == 3333
    assert moto.proxy.count("PUT", status=200) == 4
    assert moto.proxy.count(signed=False) == 0


def test_polars_with_wrong_secret_is_refused(endpoint: S3Endpoint, s3: Any) -> None:
    frame = pl.DataFrame({"id": [1, 2, 3]})
    frame.write_parquet(
        f"s3://{BUCKET}/polars-refused/ok.parquet", storage_options=storage_options(endpoint)
    )
    wrong = storage_options(endpoint, aws_secret_access_key="wrong-secret")

    with pytest.raises(
        PermissionError, match=r"403 Forbidden(?s:.*)<Code>SignatureDoesNotMatch</Code>"
    ):
        frame.write_parquet(f"s3://{BUCKET}/polars-refused/bad.parquet", storage_options=wrong)
    with pytest.raises(PermissionError, match="SignatureDoesNotMatch"):
        pl.read_parquet(f"s3://{BUCKET}/polars-refused/ok.parquet", storage_options=wrong)
    assert keys_under(s3, "polars-refused/") == ["polars-refused/ok.parquet"]


def test_request_log_marks_signed_and_unsigned(endpoint: S3Endpoint, s3: Any) -> None:
    assert endpoint.request_log is not None
    s3.put_object(Bucket=BUCKET, Key="log/signed", Body=b"x")
    with pytest.raises(ClientError):
        anonymous_client(endpoint).get_object(Bucket=BUCKET, Key="log/signed")

    lines = read_request_log(Path(endpoint.request_log))
    signed = [line for line in lines if line["path"] == f"/{BUCKET}/log/signed"]
    assert [(line["method"], line["signed"]) for line in signed] == [("PUT", True), ("GET", False)]
    assert signed[0]["authorization"] == "sigv4-header"
    assert signed[1]["authorization"] == "none"
    log_text = Path(endpoint.request_log).read_text()
    assert endpoint.secret_access_key not in log_text
    assert "Signature=" not in log_text


def test_chunked_body_and_keep_alive(endpoint: S3Endpoint, moto: MotoServer) -> None:
    body = os.urandom(300_000)
    address = urlsplit(endpoint.endpoint_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    pieces = iter([body[start : start + 70_000] for start in range(0, len(body), 70_000)])
    moto.proxy.reset_counts()

    put_headers = sigv4_headers(endpoint, "PUT", f"/{BUCKET}/chunked/body", body)
    connection.request("PUT", f"/{BUCKET}/chunked/body", pieces, put_headers, encode_chunked=True)
    assert connection.getresponse().read() == b""
    connection.request(
        "GET",
        f"/{BUCKET}/chunked/body",
        headers=sigv4_headers(endpoint, "GET", f"/{BUCKET}/chunked/body", b""),
    )
    response = connection.getresponse()
    assert (response.status, response.read() == body) == (200, True)
    connection.close()

    put, get = moto.proxy.requests
    assert (put.chunked, put.status, put.request_bytes > len(body)) == (True, 200, True)
    assert put.connection_id == get.connection_id


def sigv4_headers(endpoint: S3Endpoint, method: str, path: str, body: bytes) -> dict[str, str]:
    """Headers of a request signed like botocore signs it (payload hash included)."""
    request = AWSRequest(method=method, url=endpoint.endpoint_url + path, data=body)
    credentials = Credentials(endpoint.access_key_id, endpoint.secret_access_key)
    S3SigV4Auth(credentials, "s3", endpoint.region).add_auth(request)
    return dict(request.headers.items())


def test_fail_next_503_is_retried_by_botocore(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    endpoint, proxy = faulty
    client = client_with_attempts(endpoint, 4)
    proxy.fail_next(2, 503, methods={"PUT"})

    client.put_object(Bucket=BUCKET, Key="faults/retried", Body=b"eventually")

    assert [(r.status, r.fault) for r in proxy.requests] == [
        (503, "injected"),
        (503, "injected"),
        (200, None),
    ]
    assert proxy.pending_faults() == 0
    assert client.get_object(Bucket=BUCKET, Key="faults/retried")["Body"].read() == b"eventually"


def test_fail_always_500_makes_put_fail(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    endpoint, proxy = faulty
    s3 = direct(endpoint, proxy)
    proxy.fail_always(500)

    with pytest.raises(ClientError, match="InternalError"):
        client_with_attempts(endpoint, 2).put_object(Bucket=BUCKET, Key="faults/always", Body=b"x")

    assert proxy.count(status=500, fault="injected") == 2
    assert proxy.pending_faults() == -1
    proxy.clear_faults()
    assert keys_under(s3, "faults/always") == []


def test_cut_upload_fails_put_object(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    endpoint, proxy = faulty
    s3 = direct(endpoint, proxy)
    proxy.cut_upload_after(MEGABYTE)

    with pytest.raises(ConnectionClosedError, match="Connection was closed"):
        client_with_attempts(endpoint, 1).put_object(
            Bucket=BUCKET, Key="faults/cut", Body=os.urandom(5 * MEGABYTE)
        )

    [record] = proxy.requests
    assert (record.fault, record.status, record.request_bytes) == ("cut", None, MEGABYTE)
    assert keys_under(s3, "faults/cut") == []


def test_cut_upload_fails_multipart_upload(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    endpoint, proxy = faulty
    s3 = direct(endpoint, proxy)
    proxy.cut_upload_after(MEGABYTE)

    with pytest.raises(ConnectionClosedError, match="partNumber="):
        client_with_attempts(endpoint, 1).upload_fileobj(
            io.BytesIO(os.urandom(12 * MEGABYTE)), BUCKET, "faults/cut-multipart"
        )

    assert proxy.count("PUT", fault="cut") == 1
    assert keys_under(s3, "faults/cut-multipart") == []
    assert s3.list_multipart_uploads(Bucket=BUCKET, Prefix="faults/").get("Uploads", []) == []


def test_polars_retries_503_and_fails_on_cuts(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    endpoint, proxy = faulty
    s3 = direct(endpoint, proxy)
    frame = pl.DataFrame({"id": range(50_000)})
    proxy.fail_next(2, 503)
    frame.write_parquet(
        f"s3://{BUCKET}/faults/polars-retried.parquet", storage_options=storage_options(endpoint)
    )
    assert proxy.count("PUT", status=503) == 2

    # polars repeats a failed object_store call once on top of object_store's own retries.
    proxy.cut_upload_after(10_000, count=2)
    with pytest.raises(ConnectionResetError, match="Connection reset by peer"):
        frame.write_parquet(
            f"s3://{BUCKET}/faults/polars-cut.parquet",
            storage_options=storage_options(endpoint, max_retries=0),
        )
    assert proxy.count("PUT", fault="cut") == 2
    assert keys_under(s3, "faults/polars") == ["faults/polars-retried.parquet"]


def test_start_moto_server_cleans_up(tmp_path: Path) -> None:
    with start_moto_server(tmp_path) as server:
        server.endpoint.client().list_buckets()
        process, proxy_port = server.process, urlsplit(server.endpoint.endpoint_url).port

    assert process.poll() is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy_port or 0), timeout=2).close()
    lines = read_request_log(tmp_path / "moto-requests.jsonl")
    assert [(line["method"], line["signed"]) for line in lines] == [("GET", True)]


def test_fail_requests_matching_selects_requests(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    endpoint, proxy = faulty
    s3 = direct(endpoint, proxy)
    s3.put_object(Bucket=BUCKET, Key="faults/matched", Body=b"content")
    client = client_with_attempts(endpoint, 1)
    proxy.fail_requests_matching(
        lambda method, path: method == "GET" and path.endswith("/faults/matched"), 503, count=1
    )

    assert client.head_object(Bucket=BUCKET, Key="faults/matched")["ContentLength"] == 7
    with pytest.raises(ClientError, match="SlowDown"):
        client.get_object(Bucket=BUCKET, Key="faults/matched")
    assert client.get_object(Bucket=BUCKET, Key="faults/matched")["Body"].read() == b"content"
    assert [(r.method, r.status) for r in proxy.requests] == [
        ("HEAD", 200),
        ("GET", 503),
        ("GET", 200),
    ]


def test_s3_operations_through_a_fresh_proxy(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    """What the IO manager and its tests do, through a proxy that radosgw keeps connections to
    (ListMultipartUploads for the sweep, UploadPartCopy, HEAD, a pickle GET, 404s)."""
    endpoint, proxy = faulty
    client, prefix = endpoint.client(), f"ops-{uuid.uuid4().hex[:8]}/"
    data, value = os.urandom(9 * MEGABYTE), {"rows": list(range(1000))}
    client.put_object(Bucket=BUCKET, Key=prefix + "value.pickle", Body=pickle.dumps(value))
    client.upload_fileobj(io.BytesIO(data), BUCKET, prefix + "big")  # multipart: > 8 MB
    pending = client.create_multipart_upload(Bucket=BUCKET, Key=prefix + "pending")["UploadId"]
    for _ in range(3):  # repeated on one connection: each must be answered at once
        listed = client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)["Uploads"]
        assert [upload["UploadId"] for upload in listed] == [pending]
    client.abort_multipart_upload(Bucket=BUCKET, Key=prefix + "pending", UploadId=pending)

    client.copy({"Bucket": BUCKET, "Key": prefix + "big"}, BUCKET, prefix + "copy")
    assert client.head_object(Bucket=BUCKET, Key=prefix + "copy")["ContentLength"] == len(data)
    assert client.get_object(Bucket=BUCKET, Key=prefix + "copy")["Body"].read() == data
    stored = client.get_object(Bucket=BUCKET, Key=prefix + "value.pickle")["Body"].read()
    assert pickle.loads(stored) == value
    with pytest.raises(ClientError, match="404"):
        client.head_object(Bucket=BUCKET, Key=prefix + "missing")
    with pytest.raises(ClientError, match="NoSuchKey"):
        client.get_object(Bucket=BUCKET, Key=prefix + "missing")
    client.delete_objects(
        Bucket=BUCKET,
        Delete={"Objects": [{"Key": prefix + key} for key in ["value.pickle", "big", "copy"]]},
    )
    assert client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["KeyCount"] == 0
    assert client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []

    records = proxy.requests
    copies = [r for r in records if r.method == "PUT" and "/copy?" in r.path]
    assert len(copies) == 2, "not a multipart copy"
    assert all("partNumber=" in r.path for r in copies), "not UploadPartCopy"
    assert [r for r in records if r.fault or r.status not in (200, 204, 404)] == []
    assert max(r.seconds for r in records) < 10, max(records, key=lambda r: r.seconds)
    assert len({r.connection_id for r in records}) < len(records), "no keep-alive reuse"


def test_polars_through_a_fresh_proxy(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    endpoint, proxy = faulty
    frame = pl.DataFrame({"id": range(100_000), "group": [i % 3 for i in range(100_000)]})
    options, root = storage_options(endpoint), f"s3://{BUCKET}/polars-{uuid.uuid4().hex[:8]}"

    frame.write_parquet(f"{root}/one.parquet", storage_options=options)
    frame.write_parquet(f"{root}/hive/", partition_by=["group"], storage_options=options)

    assert pl.scan_parquet(f"{root}/one.parquet", storage_options=options).collect().equals(frame)
    scanned = pl.scan_parquet(f"{root}/hive/", hive_partitioning=True, storage_options=options)
    assert scanned.filter(pl.col("group") == 2).select(pl.len()).collect().item() == 33_333
    assert proxy.count("PUT", status=200) == 4
    assert [r for r in proxy.requests if r.fault or r.status not in (200, 206)] == []


def test_refused_upload_leaves_the_connection_usable(faulty: tuple[S3Endpoint, HttpProxy]) -> None:
    """A PUT refused before its body was read, then a good request on the same connection."""
    endpoint, proxy = faulty
    address = urlsplit(endpoint.endpoint_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    body, path = os.urandom(3 * MEGABYTE), f"/{BUCKET}/refused/{uuid.uuid4().hex[:8]}"
    impostor = S3Endpoint("impostor", endpoint.endpoint_url, endpoint.access_key_id, "wrong")
    headers = {**sigv4_headers(impostor, "PUT", path, body), "Expect": "100-continue"}

    connection.request("PUT", path, body, headers)
    refused = connection.getresponse()
    assert (refused.status, b"SignatureDoesNotMatch" in refused.read()) == (403, True)
    if refused.will_close:
        connection.close()
    put_headers = sigv4_headers(endpoint, "PUT", path, b"accepted")
    connection.request("PUT", path, b"accepted", put_headers)
    assert connection.getresponse().read() == b""
    connection.request("GET", path, headers=sigv4_headers(endpoint, "GET", path, b""))
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (200, b"accepted")
    connection.close()
    assert [r.status for r in proxy.requests] == [403, 200, 200]


# ------------------------------------------------------------ framing, with a scripted upstream


class _ScriptedHandler(socketserver.StreamRequestHandler):
    """Answers GET/HEAD/PUT by path; see `ScriptedUpstream`."""

    server: ScriptedUpstream

    def handle(self) -> None:
        self.server.connections += 1
        served = 0
        while True:
            line = self.rfile.readline()
            if not line:
                return
            path = line.decode().split(" ")[1]
            headers = {}
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            if path.startswith("/race") and served:
                return  # a reused connection closed just as the request arrived: no answer
            if headers.get("expect") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.rfile.read(int(headers.get("content-length", "0")))
            self.wfile.write(self.server.answers[path.partition("?")[0]])
            self.wfile.flush()
            served += 1
            if path in ("/closes", "/eof"):
                return  # closed without a Connection: close header


class ScriptedUpstream(socketserver.ThreadingTCPServer):
    """A raw HTTP/1.1 keep-alive server on 127.0.0.1 with fixed answers, counting connections."""

    daemon_threads = True
    answers: ClassVar[dict[str, bytes]] = {
        "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        "/head": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        "/no-content": b"HTTP/1.1 204 No Content\r\n\r\n",
        "/not-modified": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        "/upload": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "/closes": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye",
        "/race": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain",
        "/eof": b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
    }

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.connections = 0


@pytest.fixture
def scripted() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _exchange(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    headers = {"Expect": "100-continue"} if body else {}
    connection.request(method, path, body, headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_proxy_frames_keep_alive_responses(scripted: ScriptedUpstream) -> None:
    """Every response framing, an upstream closing kept-alive connections silently (before
    and as the next request arrives), and an end-of-file body, on one client connection."""
    with HttpProxy(f"http://127.0.0.1:{scripted.server_address[1]}", upstream_timeout=5) as proxy:
        address = urlsplit(proxy.url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
        started = time.monotonic()
        answers = [
            _exchange(connection, "GET", "/chunked"),
            _exchange(connection, "HEAD", "/head"),
            _exchange(connection, "GET", "/no-content"),
            _exchange(connection, "GET", "/not-modified"),
            _exchange(connection, "PUT", "/upload", os.urandom(100_000)),
            _exchange(connection, "GET", "/closes"),  # then the upstream closes
            _exchange(connection, "GET", "/upload"),  # on a new upstream connection
            _exchange(connection, "GET", "/race"),  # resent on a new upstream connection
            _exchange(connection, "GET", "/eof"),  # the proxy closes the client connection
        ]
        connection.close()
        assert time.monotonic() - started < 5
        records = proxy.requests

    assert answers == [
        (200, b"hello world"),
        (200, b""),
        (204, b""),
        (304, b""),
        (200, b"ok"),
        (200, b"bye"),
        (200, b"ok"),
        (200, b"again"),
        (200, b"until the end"),
    ]
    assert {r.connection_id for r in records} == {1}
    assert [r.fault for r in records] == [None] * len(answers)
    # kept alive: /chunked to /closes, /upload and /race's first try, /race and /eof
    assert scripted.connections == 3


def test_proxy_does_not_resend_a_body_or_reuse_an_idle_connection(
    scripted: ScriptedUpstream,
) -> None:
    upstream = f"http://127.0.0.1:{scripted.server_address[1]}"
    with HttpProxy(upstream, upstream_timeout=5, upstream_idle_timeout=0.2) as proxy:
        address = urlsplit(proxy.url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
        assert _exchange(connection, "GET", "/upload") == (200, b"ok")
        time.sleep(0.4)  # idle for longer than upstream_idle_timeout: a new connection
        assert _exchange(connection, "GET", "/upload") == (200, b"ok")
        assert scripted.connections == 2
        # a body cannot be sent twice: the client gets a 502 (and retries, if it wants)
        status, _ = _exchange(connection, "PUT", "/race", b"data")
        connection.close()
        assert status == 502
        assert proxy.requests[-1].fault == "upstream-error"
