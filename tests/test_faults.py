"""Faults during writes: nothing lost, nothing partial, nothing duplicated, a clear error.

Mid-stream failures and SIGKILL run against both real S3 implementations (moto and Ceph
radosgw) and local disk; network faults (cuts, 5xx) go through a fault-injecting proxy of the
test's own (`HttpProxy` in front of the server itself, so moto's shared logging proxy never
carries faults), also against both servers; key expiry and revocation use a private moto with
IAM.

After each fault the test checks that the previous
version of the partition is byte-identical, that no other partition changed, that nothing
appeared in the asset's directory, and that no staged object or incomplete multipart upload
was left behind (after letting polars' background upload settle).
"""

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import PartitionedParquetIOManager, QueryError, WriteError
from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.housekeeping import forget_sweeps
from pq_io_manager.s3_store import S3Store
from tests.faults_support import (
    DAILY,
    MULTIPART_ROWS,
    SERVERS,
    etags,
    expected,
    failing_at_the_end,
    leftovers,
    payload,
    private_proxy,
    proxied_lake,
    s3_resource,
    server_endpoint,
    start_worker,
    wait_for,
    worker_spec,
)
from tests.lake import Lake, local_lake, s3_lake
from tests.servers import S3Endpoint
from tests.servers.http_proxy import HttpProxy
from tests.servers.iam_moto import IamMoto, start_iam_moto

pytestmark = pytest.mark.every_s3_server

STORES = [pytest.param("local"), *SERVERS]
OLD, OTHER = "2024-01-05", "2024-01-04"
# Long enough for polars' background completion of a failed sink to land if it is going to.
SETTLE_SECONDS = 3.0


def events_asset(make: Callable[[str], Any]) -> dg.AssetsDefinition:
    """The partitioned asset `events`, whose output for a key is `make(key)`."""

    @dg.asset(name="events", partitions_def=DAILY, metadata={"partition_by": "date"})
    def events(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
        return make(context.partition_key)

    return events


def write(lake: Lake, key: str, make: Callable[[str], Any], **kwargs: Any) -> Any:
    """Materialize one partition of `events` into `lake`."""
    manager = kwargs.pop("manager", None) or lake.io_manager()
    return dg.materialize(
        [events_asset(make)], partition_key=key, resources={"io_manager": manager}, **kwargs
    )


def small(key: str) -> pl.LazyFrame:
    return payload(key, 1000, "old")


def remote_lake(request: pytest.FixtureRequest, server: str) -> tuple[Lake, str]:
    """A fresh lake on `server` and the URL of the server itself (to put a proxy in front)."""
    if server == "local":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        return local_lake(tmp_path / "lake"), ""
    endpoint, upstream = server_endpoint(request, server)
    bucket = f"faults-{uuid.uuid4().hex[:16]}"
    endpoint.client().create_bucket(Bucket=bucket)
    return s3_lake(endpoint, bucket), upstream


def seeded(lake: Lake) -> dict[str, str]:
    """Write the old version of OLD and another partition; return their fingerprints."""
    write(lake, OLD, small)
    write(lake, OTHER, small)
    return etags(lake)


def assert_untouched(lake: Lake, before: dict[str, str]) -> None:
    """The lake holds exactly the files it held before, unchanged, and no staging."""
    assert etags(lake) == before
    assert lake.read(f"events/date={OLD}/data.parquet").equals(expected(OLD, 1000, "old"))


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_lazy_output_failing_mid_stream_leaves_no_upload_or_staging(
    request: pytest.FixtureRequest, server: str
) -> None:
    lake, _ = remote_lake(request, server)
    before = seeded(lake)

    def failing(key: str) -> pl.LazyFrame:
        # ~43 MB: polars has uploaded the first 32 MiB part when the last row group fails
        return failing_at_the_end(payload(key, MULTIPART_ROWS), MULTIPART_ROWS)

    with pytest.raises(
        QueryError, match=r"(?s)partition '2024-01-05'.*polars query failed.*not a number.*nothing"
    ):
        write(lake, OLD, failing)

    time.sleep(SETTLE_SECONDS)
    assert leftovers(lake) == ([], [])
    assert_untouched(lake, before)


def frames_of(kind: str) -> Callable[[pl.LazyFrame], Any]:
    """Lazy outputs are staged then copied; eager ones are uploaded straight to their key."""
    return (lambda frame: frame) if kind == "lazy" else (lambda frame: frame.collect())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lazy", "eager"])
@pytest.mark.parametrize("server", SERVERS)
def test_connection_cut_mid_upload_is_retried_or_fails_cleanly(
    request: pytest.FixtureRequest, server: str, kind: str
) -> None:
    shape = frames_of(kind)
    direct, upstream = remote_lake(request, server)
    with private_proxy(upstream) as proxy:
        lake = proxied_lake(direct, proxy.url, max_attempts=2)
        before = seeded(lake)

        # one cut: the request is retried and the partition is written whole
        proxy.cut_upload_after(1 << 20, count=1)
        write(lake, OTHER, lambda key: shape(payload(key, 3_000_000, "new")))
        assert proxy.count(fault="cut") == 1
        stored = lake.read(f"events/date={OTHER}/data.parquet")
        assert stored.equals(expected(OTHER, 3_000_000, "new"))
        before = etags(lake)

        # every upload cut: the multipart upload is aborted and nothing changes
        proxy.reset_counts()
        proxy.cut_upload_after(1 << 20, count=1000)
        with pytest.raises(WriteError, match=r"(?is)partition '2024-01-05'.*connection.*untouched"):
            write(lake, OLD, lambda key: shape(payload(key, MULTIPART_ROWS, "new")))
        proxy.clear_faults()
        assert proxy.count(fault="cut") >= 2
        assert any("partNumber=" in record.path for record in proxy.requests), "not multipart"

    time.sleep(SETTLE_SECONDS)
    assert leftovers(direct) == ([], [])
    assert_untouched(direct, before)


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_transient_server_errors_are_retried_and_persistent_ones_fail_cleanly(
    request: pytest.FixtureRequest, server: str
) -> None:
    direct, upstream = remote_lake(request, server)
    with private_proxy(upstream) as proxy:
        lake = proxied_lake(direct, proxy.url, max_attempts=3)
        before = seeded(lake)

        # 503 and 500 "for a while": every client involved retries, the write succeeds
        proxy.fail_next(2, 503)
        proxy.fail_next(2, 500, methods={"PUT"})
        write(lake, OTHER, lambda key: payload(key, 5000, "retried"))
        assert proxy.count(fault="injected") == 4
        assert lake.read(f"events/date={OTHER}/data.parquet").equals(
            expected(OTHER, 5000, "retried")
        )
        before = etags(lake)

        # uploads always refused: a clear error, in bounded time, nothing changed
        proxy.fail_always(503, methods={"PUT"})
        started = time.monotonic()
        with pytest.raises(WriteError, match=r"(?s)partition '2024-01-05'.*(503|SlowDown)"):
            write(lake, OLD, lambda key: payload(key, 5000, "new"))
        assert time.monotonic() - started < 90
        proxy.clear_faults()
        time.sleep(SETTLE_SECONDS)
        assert leftovers(lake) == ([], [])
        assert_untouched(lake, before)

        # the server down for everything: fails before writing anything
        proxy.fail_always(500)
        with pytest.raises(WriteError, match=r"(?s)partition '2024-01-05'.*(500|InternalError)"):
            write(lake, OLD, lambda key: payload(key, 5000, "new"))
        proxy.clear_faults()
    assert leftovers(direct) == ([], [])
    assert_untouched(direct, before)


def shift_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This process's clock `seconds` ahead; the store's own clock is untouched."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + seconds)


def sweep_store_now(lake: Lake, abandoned_seconds: float) -> int | None:
    """One sweep of the lake's staging by the store, with a short threshold."""
    store = S3Store(connection_from_resource(lake.resource))
    return store.sweep(f"{lake.base_path}/.pq-staging", abandoned_seconds, interval_seconds=0)


def _completes_an_upload(method: str, path: str) -> bool:
    return method == "POST" and "uploadId=" in path


def _kill_mid_upload(lake: Lake, upstream: str, kind: str, log_path: Path) -> None:
    """Run a worker rewriting OLD and SIGKILL it with its upload half done.

    On S3 the worker goes through a proxy that holds its CompleteMultipartUpload: the kill
    lands after every part is uploaded and before the upload completes, whatever the speed
    of the machine. On disk it lands once the staged file has grown past 8 MiB.
    """
    eager = kind == "eager"
    if lake.endpoint is None:
        spec = worker_spec(lake, [OLD], rows=80_000_000, tag="killed", eager=eager)
        worker = start_worker(lake, spec, log_path)
        staged = Path(lake.base_path, ".pq-staging")
        _kill_when(
            worker, lambda: any(p.stat().st_size > 8 << 20 for p in staged.glob("*")), log_path
        )
        return
    with private_proxy(upstream) as proxy:
        proxy.hold_requests_matching(_completes_an_upload)
        spec = worker_spec(
            proxied_lake(lake, proxy.url), [OLD], rows=MULTIPART_ROWS, tag="killed", eager=eager
        )
        worker = start_worker(lake, spec, log_path)
        _kill_when(worker, proxy.held.is_set, log_path)
        assert proxy.count("PUT", status=200) >= 2, "the upload was not multipart"


def _kill_when(
    worker: subprocess.Popen[bytes], condition: Callable[[], bool], log_path: Path
) -> None:
    """SIGKILL `worker` once `condition()` holds (failing with its log if it never does)."""
    try:
        reached = wait_for(condition, timeout=120, interval=0.05)
        assert reached, log_path.read_text()[-2000:]
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait()
    assert worker.returncode == -signal.SIGKILL


def sweeping_manager(lake: Lake) -> PartitionedParquetIOManager:
    """An IO manager that sweeps staging older than 60 s when it starts."""
    return PartitionedParquetIOManager(
        base_path=lake.base_path, s3=lake.resource, abandoned_staging_seconds=60
    )


def _sweep_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [record.getMessage() for record in caplog.records]
    caplog.clear()
    return [message[message.index("removed") :] for message in messages if "abandoned" in message]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("server", "kind"),
    [
        *(pytest.param(store.values[0], "lazy", marks=store.marks) for store in STORES),
        *(pytest.param(server.values[0], "eager", marks=server.marks) for server in SERVERS),
    ],
)
def test_sigkill_mid_upload_keeps_the_old_version_and_a_later_run_sweeps_the_leftover(
    request: pytest.FixtureRequest,
    server: str,
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    lake, upstream = remote_lake(request, server)
    before = seeded(lake)
    # an eager frame is uploaded straight to the partition's key: its unfinished upload sits
    # under the asset, not in staging, and the sweep must still find it
    _kill_mid_upload(lake, upstream, kind, tmp_path / "worker.log")

    staged, uploads = leftovers(lake)
    assert_untouched(lake, before)
    if lake.endpoint is None:
        assert len(staged) == 1  # the partial file, outside the asset, never published
        young = Path(lake.base_path, staged[0])
    else:
        # an incomplete multipart upload; an eager frame's upload (our own, straight to its
        # key) is registered in staging so that the sweep can find exactly it
        registered = [".pq-staging/uploads/"] if kind == "eager" else []
        assert ([path[:20] for path in staged], len(uploads)) == (registered, 1)

    # The next run, with this process's clock two minutes ahead: the killed write made
    # progress seconds ago by the store's own clock, so it may be a live write: kept.
    forget_sweeps()
    shift_clock(monkeypatch, 120)
    caplog.clear()
    write(lake, "2024-01-06", small, manager=sweeping_manager(lake))
    assert _sweep_messages(caplog) == []
    assert leftovers(lake) == (staged, uploads)
    monkeypatch.undo()

    # No progress for longer than the threshold, by the store's clock: removed.
    if lake.endpoint is None:
        old = time.time() - 120
        os.utime(young, (old, old))
        Path(lake.base_path, ".pq-staging", ".last-sweep").unlink()  # as if an hour passed
        forget_sweeps()  # a new process
        caplog.clear()
        write(lake, "2024-01-07", small, manager=sweeping_manager(lake))
        assert _sweep_messages(caplog) == ["removed 1 abandoned staged file(s) or upload(s)"]
    else:  # thresholds below a minute only at the store level
        time.sleep(2.5)
        assert sweep_store_now(lake, 1) == 1
    assert leftovers(lake) == ([], [])
    assert lake.read(f"events/date={OLD}/data.parquet").equals(expected(OLD, 1000, "old"))


# ---------------------------------------------------------------- credentials (moto's IAM)


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamMoto]:
    """Its own moto: IAM changes (deleting keys) must not disturb the shared server."""
    with start_iam_moto(tmp_path_factory.mktemp("iam-moto")) as server:
        yield server


class KeyTrackingProxy(HttpProxy):
    """A proxy that also notes which access key id signed each request (ids are not secret)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signed_by: list[tuple[float, str, int | None]] = []

    def _record(self, exchange: Any) -> None:
        if not exchange.recorded:
            authorization = exchange.head.header("Authorization") or ""
            key = authorization.partition("Credential=")[2].partition("/")[0]
            self.signed_by.append((time.time(), key, exchange.status))
        super()._record(exchange)


def slow_stream(key: str, rows: int, seconds: float) -> pl.LazyFrame:
    """`payload` streamed over about `seconds` (a sleep per morsel of 100k rows)."""
    pause = seconds / max(1, rows // 100_000)

    def slowly(batch: pl.Series) -> pl.Series:
        time.sleep(pause)
        return batch

    return payload(key, rows, "rotated").with_columns(
        pl.col("id").map_batches(slowly, return_dtype=pl.Int64, is_elementwise=True)
    )


ROTATE_SECONDS = 3.0
ISSUER = """
import json, sys
state = json.load(open(sys.argv[1]))
print(json.dumps({"Version": 1, "AccessKeyId": state["id"], "SecretAccessKey": state["secret"],
                  "Expiration": state["expiration"]}))
"""


@pytest.mark.slow
@pytest.mark.s3
def test_keys_that_expire_and_rotate_mid_run_are_refreshed(
    iam_moto: IamMoto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A credential_process hands out short-lived keys; a rotator creates a new key every 3 s
    and deletes each key 3 s after its advertised expiry, so a client that ignored expiry
    would be refused (moto refuses deleted keys; it does not enforce 'Inactive' status)."""
    import sys
    import threading

    iam, user = iam_moto.iam(), "rotating"
    iam_moto.user(user)
    state_path, issued = tmp_path / "issued.json", []

    def rotate() -> None:
        keys = [
            key["AccessKeyId"] for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        ]
        if len(keys) == 2:
            oldest = next(entry for entry in issued if entry["id"] in keys)
            iam.delete_access_key(UserName=user, AccessKeyId=oldest["id"])
            oldest["deleted"] = time.time()
        key_id, secret = iam_moto.key(user)
        now = dt.datetime.now(dt.UTC)
        expiration = (now + dt.timedelta(seconds=ROTATE_SECONDS + 1.5)).isoformat()
        issued.append({"id": key_id, "issued": time.time()})
        staging = state_path.with_suffix(".tmp")
        staging.write_text(json.dumps({"id": key_id, "secret": secret, "expiration": expiration}))
        staging.replace(state_path)

    rotate()
    (tmp_path / "issuer.py").write_text(ISSUER)
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile rotating]\n"
        f"credential_process = {sys.executable} {tmp_path / 'issuer.py'} {state_path}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    stop = threading.Event()

    def rotator() -> None:
        while not stop.wait(ROTATE_SECONDS):
            rotate()

    bucket = "rotation"
    iam_moto.admin_endpoint().client().create_bucket(Bucket=bucket)
    with KeyTrackingProxy(iam_moto.server.direct_url) as proxy:
        resource = s3_resource(
            iam_moto.admin_endpoint(),
            proxy.url,
            aws_access_key_id=None,
            aws_secret_access_key=None,
            profile_name="rotating",
        )
        manager = PartitionedParquetIOManager(base_path=f"s3://{bucket}/lake", s3=resource)
        thread = threading.Thread(target=rotator, daemon=True)
        thread.start()
        try:
            rows = 3 * MULTIPART_ROWS
            write(
                Lake("moto", f"s3://{bucket}/lake"),
                OLD,
                lambda key: slow_stream(key, rows, 12.0),
                manager=manager,
            )
        finally:
            stop.set()
            thread.join()
        used = proxy.signed_by

    refused = [(at, key, status) for at, key, status in used if status in (401, 403)]
    assert refused == []
    distinct = list(dict.fromkeys(key for _, key, _ in used))
    assert len(distinct) >= 3, distinct
    deleted = {entry["id"]: entry["deleted"] for entry in issued if "deleted" in entry}
    assert deleted, "no key expired during the run"
    assert any(at > min(deleted.values()) for at, _, _ in used), "the run ended at the expiry"
    late = [(at, key) for at, key, _ in used if key in deleted and at > deleted[key]]
    assert late == []
    admin = iam_moto.admin_endpoint()
    reader = Lake("moto", f"s3://{bucket}/lake", admin, bucket)
    assert reader.files() == [f"events/date={OLD}/data.parquet"]
    stored = pl.scan_parquet(
        reader.uri(f"events/date={OLD}/data.parquet"), **reader.storage_options()
    )
    assert stored.select(pl.len()).collect().item() == rows
    assert leftovers(reader) == ([], [])


@pytest.mark.slow
@pytest.mark.s3
def test_access_key_revoked_mid_upload_fails_cleanly(
    iam_moto: IamMoto, monkeypatch: pytest.MonkeyPatch
) -> None:
    iam, user = iam_moto.iam(), "revoked"
    iam_moto.user(user)
    key_id, secret = iam_moto.key(user)
    bucket = "revocation"
    admin = iam_moto.admin_endpoint()
    admin.client().create_bucket(Bucket=bucket)
    reader = Lake("moto", f"s3://{bucket}/lake", admin, bucket)
    with private_proxy(iam_moto.server.direct_url) as proxy:
        endpoint = S3Endpoint("moto", proxy.url, key_id, secret)
        lake = s3_lake(endpoint, bucket)
        before = seeded(lake)
        revoked: list[float] = []

        def revoke_at_second_part(method: str, path: str) -> bool:
            if not revoked and method == "PUT" and "partNumber=2" in path:
                iam.delete_access_key(UserName=user, AccessKeyId=key_id)
                revoked.append(time.time())
            return False

        proxy.fail_requests_matching(revoke_at_second_part, 500)
        with pytest.raises(
            WriteError, match=r"(?s)partition '2024-01-05'.*(InvalidAccessKeyId|403).*untouched"
        ) as raised:
            write(lake, OLD, lambda key: payload(key, 2 * MULTIPART_ROWS, "new"))
        assert revoked
        assert secret not in str(raised.value)
        assert secret not in repr(raised.value)

    time.sleep(SETTLE_SECONDS)
    assert etags(reader) == before
    staged, uploads = leftovers(reader)
    # the revoked key could not abort its own upload: it waits for the next run's sweep
    assert (staged, len(uploads)) == ([], 1)
    # a sweep (by the store's clock, once the upload made no progress for a second)
    time.sleep(2.5)
    assert sweep_store_now(Lake("moto", reader.base_path, resource=s3_resource(admin)), 1) == 1
    fresh = PartitionedParquetIOManager(
        base_path=reader.base_path, s3=s3_resource(admin), abandoned_staging_seconds=60
    )
    write(reader, "2024-01-08", small, manager=fresh)
    assert leftovers(reader) == ([], [])
    assert reader.read(f"events/date={OLD}/data.parquet").equals(expected(OLD, 1000, "old"))
