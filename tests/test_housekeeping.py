"""Housekeeping touches only what is ours (issue 8, property 8).

The sweep looks only at our staged files and our own uploads (never at other keys or uploads
in the bucket, even with `base_path` at the bucket root), decides liveness on the store's own
clock from the last progress of an upload (never from its age alone, never from this
machine's clock), runs at most once per process and once per interval; and a failed upload
aborts only its own UploadId, never another writer's upload of the same key.
"""

import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import PartitionedParquetIOManager, WriteError
from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.housekeeping import forget_sweeps
from pq_io_manager.s3_store import S3Store
from pq_io_manager.stores import LocalStore
from tests.faults_support import (
    DAILY,
    MULTIPART_ROWS,
    SERVERS,
    payload,
    private_proxy,
    s3_resource,
    server_endpoint,
)
from tests.servers import S3Endpoint

OURS = f"{uuid.uuid4().hex}.parquet"  # a staged file's name: the only kind a sweep removes
FOREIGN_OBJECTS = [
    "other-tool/report.csv",
    "data.parquet",
    ".pq-staging/lock.json",  # someone else's file below our staging directory
    ".pq-staging/notes/readme.txt",
]
FOREIGN_UPLOADS = ["other-tool/big.bin", "orders/date=2024-01-05/data.parquet", ".pq-staging/x"]
FIVE_MIB = b"x" * (5 * 1024 * 1024)


def s3_store(endpoint: S3Endpoint, url: str | None = None) -> S3Store:
    return S3Store(connection_from_resource(s3_resource(endpoint, url)))


def uploads_of(client: Any, bucket: str) -> dict[str, str]:
    listed = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return {upload["UploadId"]: upload["Key"] for upload in listed}


def keys_of(client: Any, bucket: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def start_upload(client: Any, bucket: str, key: str, parts: int = 1) -> str:
    upload_id = str(client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
    for number in range(1, parts + 1):
        client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=FIVE_MIB
        )
    return upload_id


@pytest.mark.parametrize("server", SERVERS)
def test_sweep_at_the_bucket_root_touches_only_our_staging(
    request: pytest.FixtureRequest, server: str
) -> None:
    endpoint, _ = server_endpoint(request, server)
    client, bucket = endpoint.client(), f"root-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    for key in FOREIGN_OBJECTS:
        client.put_object(Bucket=bucket, Key=key, Body=b"not ours")
    foreign = {start_upload(client, bucket, key): key for key in FOREIGN_UPLOADS}
    client.put_object(Bucket=bucket, Key=f".pq-staging/{OURS}", Body=b"staged")
    ours = start_upload(client, bucket, f".pq-staging/{uuid.uuid4().hex}.parquet")

    # a cutoff in the future: everything of ours counts as abandoned, nothing else is looked at
    store = s3_store(endpoint)
    removed = store.sweep(f"s3://{bucket}/.pq-staging", -3600, interval_seconds=0)

    assert removed == 2
    assert uploads_of(client, bucket) == foreign
    assert ours not in uploads_of(client, bucket)
    assert keys_of(client, bucket) == sorted([*FOREIGN_OBJECTS, ".pq-staging/.last-sweep"])


def test_local_sweep_touches_only_our_staged_files(tmp_path: Path) -> None:
    staging = tmp_path / "lake" / ".pq-staging"
    (staging / "notes").mkdir(parents=True)
    for name in ["lock.json", "notes/readme.txt", "0123.parquet"]:
        (staging / name).write_text("not ours")
    (staging / OURS).write_text("staged")

    removed = LocalStore(str(tmp_path / "lake")).sweep(str(staging), -3600, interval_seconds=0)

    assert removed == 1
    found = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    assert found == [".last-sweep", "0123.parquet", "lock.json", "notes/readme.txt"]


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def orders(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"amount": [1.0, 2.0]})


@pytest.mark.parametrize("server", SERVERS)
def test_a_run_at_the_bucket_root_leaves_foreign_uploads_alone(
    request: pytest.FixtureRequest, server: str
) -> None:
    """moto reports every upload as started in 2010: the old sweep aborted them all."""
    endpoint, _ = server_endpoint(request, server)
    client, bucket = endpoint.client(), f"root-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    foreign = {start_upload(client, bucket, key): key for key in FOREIGN_UPLOADS}
    manager = PartitionedParquetIOManager(
        base_path=f"s3://{bucket}", s3=s3_resource(endpoint), abandoned_staging_seconds=60
    )

    dg.materialize([orders], partition_key="2024-01-06", resources={"io_manager": manager})

    assert uploads_of(client, bucket) == foreign


@pytest.mark.parametrize("server", SERVERS)
def test_liveness_is_progress_on_the_servers_clock(
    request: pytest.FixtureRequest, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, _ = server_endpoint(request, server)
    client, bucket = endpoint.client(), f"live-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    staged_key = f".pq-staging/{uuid.uuid4().hex}.parquet"
    upload_id = start_upload(client, bucket, staged_key)
    store = s3_store(endpoint)
    # this machine's clock a day ahead (or behind): the sweep must not care
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86400)

    time.sleep(3.5)  # started more than 2 s ago by the server's clock...
    client.upload_part(
        Bucket=bucket, Key=staged_key, UploadId=upload_id, PartNumber=2, Body=FIVE_MIB
    )  # ...but still progressing
    assert store.sweep(f"s3://{bucket}/.pq-staging", 2, interval_seconds=0) == 0
    assert upload_id in uploads_of(client, bucket)

    monkeypatch.setattr(time, "time", lambda: real_time() - 86400)
    assert store.sweep(f"s3://{bucket}/.pq-staging", 3600, interval_seconds=0) == 0

    time.sleep(3.5)  # no progress for longer than the threshold: abandoned
    assert store.sweep(f"s3://{bucket}/.pq-staging", 2, interval_seconds=0) == 1
    assert uploads_of(client, bucket) == {}


def test_local_liveness_is_the_files_own_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = tmp_path / ".pq-staging"
    staging.mkdir()
    (staging / OURS).write_bytes(b"growing")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86400)
    store = LocalStore(str(tmp_path))
    assert store.sweep(str(staging), 60, interval_seconds=0) == 0
    old = real_time() - 120
    import os

    os.utime(staging / OURS, (old, old))
    assert store.sweep(str(staging), 60, interval_seconds=0) == 1


@pytest.mark.parametrize("server", [pytest.param("local"), *SERVERS])
def test_sweeps_run_at_most_once_per_interval(
    request: pytest.FixtureRequest, server: str, tmp_path: Path
) -> None:
    if server == "local":
        store: Any = LocalStore(str(tmp_path))
        staging = str(tmp_path / ".pq-staging")
        Path(staging).mkdir()
        Path(staging, OURS).write_bytes(b"staged")
    else:
        endpoint, _ = server_endpoint(request, server)
        bucket = f"once-{uuid.uuid4().hex[:16]}"
        endpoint.client().create_bucket(Bucket=bucket)
        endpoint.client().put_object(Bucket=bucket, Key=f"lake/.pq-staging/{OURS}", Body=b"s")
        store, staging = s3_store(endpoint), f"s3://{bucket}/lake/.pq-staging"

    assert store.sweep(staging, 3600, interval_seconds=3600) == 0  # young: kept
    assert store.sweep(staging, -3600, interval_seconds=3600) is None  # another process ran
    assert store.sweep(staging, -3600, interval_seconds=0) == 1


@pytest.mark.parametrize("server", SERVERS)
def test_one_sweep_per_process_and_base_path(
    request: pytest.FixtureRequest, server: str, tmp_path: Path
) -> None:
    endpoint, upstream = server_endpoint(request, server)
    bucket = f"once-{uuid.uuid4().hex[:16]}"
    endpoint.client().create_bucket(Bucket=bucket)
    forget_sweeps()
    with private_proxy(upstream) as proxy:
        manager = PartitionedParquetIOManager(
            base_path=f"s3://{bucket}/lake", s3=s3_resource(endpoint, proxy.url)
        )
        for key in ["2024-01-05", "2024-01-06", "2024-01-07"]:
            dg.materialize([orders], partition_key=key, resources={"io_manager": manager})
        listings = [r for r in proxy.requests if r.method == "GET" and "uploads" in r.path]
        heads = [r for r in proxy.requests if r.method == "HEAD" and "last-sweep" in r.path]
    assert (len(listings), len(heads)) == (1, 1)


def big_orders() -> pl.DataFrame:
    """About 43 MB of Parquet: above the 32 MiB single-PUT limit."""
    return payload("2024-01-05", MULTIPART_ROWS).collect()


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_a_failed_upload_never_aborts_another_writers_upload_of_the_key(
    request: pytest.FixtureRequest, server: str
) -> None:
    endpoint, upstream = server_endpoint(request, server)
    client, bucket = endpoint.client(), f"twice-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    key = "lake/events/date=2024-01-05/data.parquet"
    # the other writer: its upload of the same key is in progress
    theirs = start_upload(client, bucket, key)

    @dg.asset(name="events", partitions_def=DAILY, metadata={"partition_by": "date"})
    def events() -> pl.DataFrame:
        return big_orders()  # > 32 MiB: a multipart upload of our own

    with private_proxy(upstream) as proxy:
        proxy.fail_requests_matching(
            lambda method, path: method == "PUT" and "partNumber=2" in path, 500
        )
        manager = PartitionedParquetIOManager(
            base_path=f"s3://{bucket}/lake", s3=s3_resource(endpoint, proxy.url, max_attempts=1)
        )
        with pytest.raises(WriteError, match=r"(?s)partition '2024-01-05'.*nothing was published"):
            dg.materialize([events], partition_key="2024-01-05", resources={"io_manager": manager})
        assert any("partNumber=1" in r.path and r.status == 200 for r in proxy.requests)

    assert uploads_of(client, bucket) == {theirs: key}
    etag = client.upload_part(Bucket=bucket, Key=key, UploadId=theirs, PartNumber=2, Body=b"end")[
        "ETag"
    ]
    parts = client.list_parts(Bucket=bucket, Key=key, UploadId=theirs)["Parts"]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=theirs,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": parts[0]["ETag"]}, {"PartNumber": 2, "ETag": etag}]
        },
    )
    stored = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == FIVE_MIB + b"end"
    assert [k for k in keys_of(client, bucket) if "uploads/" in k] == []  # registration gone


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_own_multipart_upload_writes_the_whole_frame(
    request: pytest.FixtureRequest, server: str
) -> None:
    endpoint, _ = server_endpoint(request, server)
    client, bucket = endpoint.client(), f"big-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    frame = big_orders()

    @dg.asset(name="events", partitions_def=DAILY, metadata={"partition_by": "date"})
    def events() -> pl.DataFrame:
        return frame

    manager = PartitionedParquetIOManager(base_path=f"s3://{bucket}/lake", s3=s3_resource(endpoint))
    dg.materialize([events], partition_key="2024-01-05", resources={"io_manager": manager})
    key = "lake/events/date=2024-01-05/data.parquet"
    assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] > 32 * 1024**2
    stored = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert pl.read_parquet(stored).equals(frame)
    staged = [k for k in keys_of(client, bucket) if ".pq-staging" in k]
    assert staged == ["lake/.pq-staging/.last-sweep"]  # the start-of-run sweep's claim only
    assert uploads_of(client, bucket) == {}
