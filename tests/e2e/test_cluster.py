"""The demo on a cluster, configured only by the environment: dagster-celery workers fed by
Redis, Dagster's storage on PostgreSQL, the lake on S3 (moto and radosgw).

Redis and PostgreSQL (Debian packages) run on free loopback ports, PostgreSQL as the `postgres`
user; two Celery workers each have their own working directory and TMPDIR. A 14-day backfill
of the daily assets is launched as the UI launches one, through a real `dagster dev` and its
daemons. On moto, one worker is SIGKILLed while its step is held mid-write (a proxy stops
answering that step's upload): the run is failed by run monitoring (`dagster/max_runtime`) and
re-executed by run retries on the surviving worker; every partition must end up whole and no
staging may be left behind.
"""

import contextlib
import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from demo.data import orders_for_day
from pq_io_manager.stores import STAGED_NAME
from tests.e2e.cluster_servers import (
    CeleryWorker,
    install_cluster_packages,
    run_postgres,
    run_redis,
    start_worker,
    wait_until_ready,
)
from tests.e2e.dagster_dev import DagsterDev, run_dagster_dev
from tests.e2e.graphql import (
    launch_backfill,
    run_messages,
    runs_with_tag,
    tag_value,
    wait_for_backfill,
    wait_for_run,
)
from tests.e2e.test_s3 import RedactedEnv, aws_environment, object_keys, read_s3
from tests.lake import s3_lake
from tests.servers import S3Endpoint
from tests.servers.http_proxy import HttpProxy
from tests.test_faults import sweep_store_now

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.s3]

DAYS = [dt.date(2025, 4, 1) + dt.timedelta(days=offset) for offset in range(14)]
ASSETS = [["raw_orders"], ["daily_sales"]]
WORKERS = 2
# A run whose step was lost is failed after this long (a healthy 7-day run takes ~20 s on an
# idle 2-core machine; one slowed past it by load is failed and retried, and still passes).
MAX_RUNTIME_SECONDS = 45
BACKFILL_TIMEOUT_SECONDS = 300
CLUSTER_YAML = """\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url: {postgres_url}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 2
run_retries:
  enabled: true
  max_retries: 2
"""


@dataclass(frozen=True)
class Services:
    """The Redis and PostgreSQL the test started."""

    redis_url: str
    postgres_url: str


@dataclass(frozen=True)
class Cluster:
    """A `dagster dev` on PostgreSQL, its Celery workers and where the lake is."""

    server: DagsterDev
    workers: list[CeleryWorker]
    broker: str
    endpoint: S3Endpoint
    bucket: str


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Redis and PostgreSQL for every cluster test, Dagster's schema created once."""
    install_cluster_packages()
    with run_redis(tmp_path_factory.mktemp("redis")) as redis_url, run_postgres() as postgres:
        yield Services(redis_url, postgres)


def cluster_environment(
    endpoint: S3Endpoint, bucket: str, services: Services, database: int
) -> RedactedEnv:
    """What a user exports on every host: the lake, the S3 keys, the executor and broker."""
    env = aws_environment(endpoint, bucket)
    env.update(
        PQ_EXECUTOR="celery",
        PQ_CELERY_BROKER=f"{services.redis_url}/{database}",
        PQ_CELERY_BACKEND=f"{services.redis_url}/{database + 1}",
    )
    return env


@contextlib.contextmanager
def running_cluster(
    workdir: Path, endpoint: S3Endpoint, services: Services, database: int
) -> Iterator[Cluster]:
    """Workers first (they wait for tasks), then `dagster dev`; all stopped on exit."""
    bucket = f"cluster-{uuid.uuid4().hex[:12]}"
    endpoint.client().create_bucket(Bucket=bucket)
    env = cluster_environment(endpoint, bucket, services, database)
    workers: list[CeleryWorker] = []
    try:
        for number in range(1, WORKERS + 1):
            workers.append(start_worker(f"w{number}", workdir / f"worker{number}", env))
        wait_until_ready(workers)
        yaml = CLUSTER_YAML.format(postgres_url=services.postgres_url)
        started = time.monotonic()
        with run_dagster_dev(workdir / "dev", env, yaml) as server:
            print(f"workers and dagster dev ready in {time.monotonic() - started:.1f} s")
            yield Cluster(server, workers, env["PQ_CELERY_BROKER"], endpoint, bucket)
    finally:
        for worker in workers:
            worker.stop()


def backfill_and_wait(cluster: Cluster, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Launch the 14-day backfill as the UI does; its runs (retries included), each finished."""
    days = [day.isoformat() for day in DAYS]
    started = time.monotonic()
    backfill_id = launch_backfill(cluster.server, ASSETS, days, tags)
    status = wait_for_backfill(cluster.server, backfill_id, BACKFILL_TIMEOUT_SECONDS)
    print(f"backfill {status} in {time.monotonic() - started:.1f} s")
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}, cluster.server.log_tail()
    runs = runs_with_tag(cluster.server, "dagster/backfill", backfill_id)
    for run in runs:
        run["status"] = wait_for_run(cluster.server, run["runId"])
    return runs


def run_groups(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs by their root run (a run and its retries), oldest first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in sorted(runs, key=lambda run: run["startTime"] or 0.0):
        root = tag_value(run, "dagster/root_run_id") or run["runId"]
        groups.setdefault(root, []).append(run)
    return groups


def assert_lake_whole(cluster: Cluster) -> None:
    """Every day of both assets stored and equal to what the demo generates; no staging."""
    keys = object_keys(cluster.endpoint, cluster.bucket)
    staged = [key for key in keys if key.startswith("lake/.pq-staging/")]
    assert staged in ([], ["lake/.pq-staging/.last-sweep"]), staged
    prefix = f"s3://{cluster.bucket}/lake"
    for day in DAYS:
        stored = read_s3(cluster.endpoint, f"{prefix}/raw_orders/order_date={day}/data.parquet")
        assert stored.equals(orders_for_day(day).drop("order_date")), day
        sales = read_s3(cluster.endpoint, f"{prefix}/daily_sales/order_date={day}/data.parquet")
        assert sales["orders"].sum() == stored.height, day


def assert_steps_ran_on_celery(cluster: Cluster, run_ids: list[str]) -> None:
    """Every run executed its steps with the Celery executor."""
    for run_id in run_ids:
        messages = run_messages(cluster.server, run_id)
        assert any("celery" in message.lower() for message in messages), messages[:20]


@pytest.mark.radosgw
def test_backfill_on_celery_workers_on_radosgw(
    radosgw_endpoint: S3Endpoint, services: Services, tmp_path: Path
) -> None:
    with running_cluster(tmp_path, radosgw_endpoint, services, database=2) as cluster:
        runs = backfill_and_wait(cluster)

        assert len(run_groups(runs)) == 2  # 7 + 7 days (BackfillPolicy.multi_run(7))
        assert [run["status"] for run in runs] == ["SUCCESS", "SUCCESS"], runs
        assert_steps_ran_on_celery(cluster, [run["runId"] for run in runs])
        assert_lake_whole(cluster)


def held_day_path(method: str, path: str) -> bool:
    """The upload of the backfill's first day of raw_orders (its step then hangs there)."""
    return method == "PUT" and f"raw_orders/order_date={DAYS[0]}/" in unquote(path)


def worker_running(cluster: Cluster, run_id: str) -> CeleryWorker:
    """The worker whose active task belongs to `run_id`, asked over the broker."""
    from celery import Celery

    app = Celery(broker=cluster.broker)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        active: dict[str, list[dict[str, Any]]] = app.control.inspect(timeout=2).active() or {}
        for name, tasks in active.items():
            if any(run_id in repr(task) for task in tasks):
                return next(w for w in cluster.workers if name.startswith(f"{w.name}@"))
        time.sleep(0.5)
    raise AssertionError(f"no worker reports a task of run {run_id}")


def kill_held(cluster: Cluster, proxy: HttpProxy) -> CeleryWorker:
    """Wait for the held upload, then SIGKILL the worker whose step sent it."""
    assert proxy.held.wait(BACKFILL_TIMEOUT_SECONDS), cluster.server.log_tail()
    held_run = next(
        run
        for run in runs_with_tag(
            cluster.server, "dagster/asset_partition_range_start", str(DAYS[0])
        )
        if tag_value(run, "dagster/parent_run_id") is None
    )
    worker = worker_running(cluster, held_run["runId"])
    worker.kill()
    proxy.clear_faults()  # the retry's upload of that day goes through
    return worker


def test_backfill_on_celery_workers_survives_a_killed_worker(
    moto_server: Any, services: Services, tmp_path: Path
) -> None:
    with HttpProxy(moto_server.direct_url, upstream_timeout=60.0) as proxy:
        endpoint = replace(moto_server.endpoint, endpoint_url=proxy.url, request_log=None)
        proxy.hold_requests_matching(held_day_path)
        with running_cluster(tmp_path, endpoint, services, database=4) as cluster:
            killed: list[CeleryWorker] = []
            killer = threading.Thread(target=lambda: killed.append(kill_held(cluster, proxy)))
            killer.start()
            runs = backfill_and_wait(cluster, {"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)})
            killer.join(timeout=60)

    assert killed, "no worker was killed"
    groups = run_groups(runs)
    assert len(groups) == 2, runs
    # every run (or its last retry) succeeded; the killed worker's run failed and was retried
    assert all(group[-1]["status"] == "SUCCESS" for group in groups.values()), runs
    assert any(group[0]["status"] == "FAILURE" for group in groups.values()), runs
    # read back through the shared, logging endpoint (not the proxy that held the upload)
    direct = replace(cluster, endpoint=moto_server.endpoint)
    sweep_what_the_kill_left(direct)
    assert_lake_whole(direct)


def sweep_what_the_kill_left(cluster: Cluster) -> None:
    """A SIGKILLed step cannot clean up after itself: what it left in staging is only our own
    flat staged files (its range was sunk there before the held publish), which the sweep of
    abandoned staging removes (here with a 1 s threshold instead of hours)."""
    keys = object_keys(cluster.endpoint, cluster.bucket)
    staged = [
        key.removeprefix("lake/.pq-staging/")
        for key in keys
        if key.startswith("lake/.pq-staging/") and not key.endswith("/.last-sweep")
    ]
    assert all(STAGED_NAME.fullmatch(name) for name in staged), staged
    time.sleep(2)
    sweep_store_now(s3_lake(cluster.endpoint, cluster.bucket), 1)
