"""What the IO manager adds per step when many step processes start at once (issue 11).

Every step on Celery, Kubernetes or the multiprocess executor builds the IO manager in a fresh
process, and each process may sweep staging. Counted at a private proxy in front of moto:
`PROCESSES` processes each materialize one partition at the same time. The housekeeping each
adds is bounded per process (a HEAD of the sweep marker, plus the two listings of the staging
prefix only while no sweep ran within the interval), so the total grows linearly with the
steps, never with their product; and once a sweep ran, a step adds exactly one HEAD.
"""

import multiprocessing
import uuid
from pathlib import Path
from urllib.parse import unquote

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import PartitionedParquetIOManager
from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.s3_store import S3Store
from tests.faults_support import private_proxy, s3_resource
from tests.servers import S3Endpoint
from tests.servers.http_proxy import RequestRecord

pytestmark = [pytest.mark.s3, pytest.mark.slow]

PROCESSES = 4
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
        # idle staging: every process checks, none writes a marker, nothing is removed
        run_steps_at_once(base_path, endpoint, proxy.url, first=1)
        idle = housekeeping(proxy.requests)
        proxy.reset_counts()
        # a killed writer's staged file: a sweep (young: kept) records when it ran
        endpoint.client().put_object(Bucket=bucket, Key=f"{STAGING}{STAGED}", Body=b"x")
        store = S3Store(connection_from_resource(s3_resource(endpoint)))
        assert store.sweep(f"{base_path}/.pq-staging", 3600, interval_seconds=3600) == 0
        proxy.reset_counts()
        run_steps_at_once(base_path, endpoint, proxy.url, first=11)
        after_sweep = housekeeping(proxy.requests)

    assert idle == {
        "head marker": PROCESSES,
        "list staging": PROCESSES,
        "list uploads": PROCESSES,
        "put marker": 0,
    }
    assert after_sweep == {
        "head marker": PROCESSES,
        "list staging": 0,
        "list uploads": 0,
        "put marker": 0,
    }
