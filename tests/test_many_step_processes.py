"""What the IO manager adds per step when many step processes start at once (issue 11).

Every step on Celery, Kubernetes or the multiprocess executor builds the IO manager in a fresh
process, and each process may sweep staging. Counted at a private proxy in front of moto:
`PROCESSES` processes each materialize one partition at the same time. Each adds a HEAD of the
sweep marker; of those that find no sweep within the interval, the one whose conditional PUT of
the marker wins lists staging (two listings), the others stop. So the total grows linearly
with the steps, never with their product, and once a sweep ran a step adds exactly one HEAD.
"""

import multiprocessing
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import PartitionedParquetIOManager
from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.s3_store import S3Store
from tests.faults_support import SERVERS, private_proxy, s3_resource, server_endpoint
from tests.servers import S3Endpoint
from tests.servers.http_proxy import RequestRecord

pytestmark = [pytest.mark.s3, pytest.mark.slow]

PROCESSES = 4
HERD = 100
DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01")
STAGED = f"{uuid.uuid4().hex}.parquet"  # a staged file's name, as a killed writer leaves it
STAGING = "lake/.pq-staging/"


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "day"})
def readings(context: dg.AssetExecutionContext) -> pl.DataFrame:
    """A few rows for the partition's day."""
    return pl.DataFrame({"value": [1, 2, 3]})


def one_step(base_path: str, endpoint: S3Endpoint, proxy_url: str, day: str) -> None:
    """A step process: build the IO manager, write one partition (run in a fresh process)."""
    manager = PartitionedParquetIOManager(base_path=base_path, s3=s3_resource(endpoint, proxy_url))
    result = dg.materialize([readings], partition_key=day, resources={"io_manager": manager})
    assert result.success


def run_steps_at_once(base_path: str, endpoint: S3Endpoint, proxy_url: str, first: int) -> None:
    """`PROCESSES` step processes started together, each writing its own day."""
    context = multiprocessing.get_context("spawn")
    days = [f"2024-01-{first + offset:02d}" for offset in range(PROCESSES)]
    processes = [
        context.Process(target=one_step, args=(base_path, endpoint, proxy_url, day)) for day in days
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [process.exitcode for process in processes] == [0] * PROCESSES


def housekeeping(records: list[RequestRecord]) -> dict[str, int]:
    """The sweep's requests: marker HEADs, staging listings, upload listings, marker PUTs."""
    return {
        "head marker": sum(r.method == "HEAD" and "last-sweep" in r.path for r in records),
        "list staging": sum(
            r.method == "GET" and "list-type=2" in r.path and STAGING in unquote(r.path)
            for r in records
        ),
        "list uploads": sum(r.method == "GET" and "uploads" in r.path for r in records),
        "put marker": sum(r.method == "PUT" and "last-sweep" in r.path for r in records),
    }


def test_concurrent_step_processes_each_add_a_bounded_housekeeping_cost(
    moto_server: object, tmp_path: Path
) -> None:
    endpoint: S3Endpoint = moto_server.endpoint  # type: ignore[attr-defined]
    bucket = f"steps-{uuid.uuid4().hex[:16]}"
    endpoint.client().create_bucket(Bucket=bucket)
    base_path = f"s3://{bucket}/lake"
    with private_proxy(moto_server.direct_url) as proxy:  # type: ignore[attr-defined]
        # idle staging: every process checks, one wins the claim and lists staging
        run_steps_at_once(base_path, endpoint, proxy.url, first=1)
        first_run = housekeeping(proxy.requests)
        proxy.reset_counts()
        # within the interval: a step adds exactly one HEAD
        run_steps_at_once(base_path, endpoint, proxy.url, first=11)
        second_run = housekeeping(proxy.requests)

    assert first_run["head marker"] == PROCESSES
    assert (first_run["list staging"], first_run["list uploads"]) == (1, 1)
    assert 1 <= first_run["put marker"] <= PROCESSES  # claims tried; exactly one won
    assert second_run == {
        "head marker": PROCESSES,
        "list staging": 0,
        "list uploads": 0,
        "put marker": 0,
    }


@pytest.mark.parametrize("server", SERVERS)
def test_of_a_hundred_processes_starting_together_exactly_one_sweeps(
    request: pytest.FixtureRequest, server: str
) -> None:
    """100 step processes' sweeps at once (each its own client, as each process has): the
    claim is decided by the server alone, so one sweeps and 99 stop after a HEAD (and at most
    a refused conditional PUT), whatever their clocks say."""
    endpoint, upstream = server_endpoint(request, server)
    bucket = f"herd-{uuid.uuid4().hex[:16]}"
    endpoint.client().create_bucket(Bucket=bucket)
    endpoint.client().put_object(Bucket=bucket, Key=STAGING + STAGED, Body=b"abandoned")
    staging = f"s3://{bucket}/lake/.pq-staging"
    with private_proxy(upstream) as proxy:
        stores = [
            S3Store(connection_from_resource(s3_resource(endpoint, proxy.url))) for _ in range(HERD)
        ]
        start = threading.Barrier(HERD)

        def sweep(store: S3Store) -> int | None:
            start.wait()
            return store.sweep(staging, -3600, interval_seconds=3600)  # all of ours is old

        with ThreadPoolExecutor(HERD) as pool:
            results = list(pool.map(sweep, stores))
        counts = housekeeping(proxy.requests)

    assert sorted(results, key=str) == [1] + [None] * (HERD - 1)
    assert counts["head marker"] == HERD
    assert (counts["list staging"], counts["list uploads"]) == (1, 1)
    assert 1 <= counts["put marker"] <= HERD
    assert (
        endpoint.client().list_objects_v2(Bucket=bucket, Prefix=STAGING + STAGED)["KeyCount"] == 0
    )
