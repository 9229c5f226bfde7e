"""Scale benchmark: partition writes per second with 1, 2 and 4 Celery workers, and the S3
requests the IO manager adds per step.

    python -m benchmarks.cluster                 # 1, 2, 4 workers, 2 timed runs each
    python -m benchmarks.cluster --workers 1,2 --rounds 1 --output /tmp/cluster.json

Everything runs on this machine, started here and stopped by PID: moto (SigV4 enforced, behind
the counting proxy the tests use), Redis, PostgreSQL (as the `postgres` user) and N
dagster-celery workers with one slot each. One run of `bench_job`
(benchmarks/cluster_definitions.py) is `STEPS` independent steps, each writing one partition;
a warm-up run first lets every worker's pool process import the code. Each timed run is
launched with `execute_job` on the PostgreSQL instance; writes/s = steps / wall time. The same
job on Dagster's multiprocess executor (steps as subprocesses, at most N at once) is measured in
the same session as the baseline. Requests per step come from the proxy's log of the timed
runs: every request except the partitions' own data PUTs, divided by the steps.
"""

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

from benchmarks.cluster_definitions import STEPS
from tests.e2e.cluster_servers import run_postgres, run_redis, start_worker, wait_until_ready
from tests.servers.http_proxy import RequestRecord
from tests.servers.moto_server import MotoServer, start_moto_server

DEFINITIONS = Path(__file__).with_name("cluster_definitions.py")
REPO_ROOT = DEFINITIONS.parents[1]
BUCKET = "cluster-bench"
DAGSTER_YAML = """\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url: {postgres_url}
"""


def environment(server: MotoServer, redis_url: str, executor: str) -> dict[str, str]:
    """What every process of the benchmark needs: the lake on moto, the executor, the broker."""
    endpoint = server.endpoint
    return {
        "PQ_BASE_PATH": f"s3://{BUCKET}/lake",
        "AWS_ACCESS_KEY_ID": endpoint.access_key_id,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_access_key,
        "AWS_REGION": endpoint.region,
        "AWS_ENDPOINT_URL": endpoint.endpoint_url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "PQ_EXECUTOR": executor,
        "PQ_CELERY_BROKER": f"{redis_url}/0",
        "PQ_CELERY_BACKEND": f"{redis_url}/1",
    }


@contextlib.contextmanager
def patched_environment(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in this process (the launcher resolves EnvVars too) and restore after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_once(instance: dg.DagsterInstance, day: str, run_config: dict[str, Any]) -> float:
    """Execute `bench_job` (Celery) or, with a multiprocess run config, `bench_local_job` for
    one day; its wall time in seconds (raises if it failed)."""
    repository = ReconstructableRepository.for_file(str(DEFINITIONS), "defs", str(REPO_ROOT))
    name = "bench_local_job" if run_config else "bench_job"
    job = repository.get_reconstructable_job(name)
    started = time.perf_counter()
    result = dg.execute_job(
        job, instance=instance, tags={"dagster/partition": day}, run_config=run_config
    )
    seconds = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"{name} failed for {day} (run {result.run_id})")
    return seconds


def added_requests(records: list[RequestRecord]) -> Counter[str]:
    """The requests other than the partitions' data PUTs, by kind (method and what it hits)."""
    kinds: Counter[str] = Counter()
    for record in records:
        if record.method == "PUT" and "/data.parquet" in record.path:
            continue
        # a listing names its prefix in the query, any other request in the path
        prefix = parse_qs(urlsplit(record.path).query).get("prefix", [""])[0]
        target = (prefix or unquote(record.path.split("?")[0])).split("lake/", 1)[-1]
        what = target.split("/")[0] if target.startswith(".pq") else "dataset"
        query = record.path.partition("?")[2].split("=")[0]
        kinds[f"{record.method} {what}{' ?' + query if query else ''}"] += 1
    return kinds


def measure(
    instance: dg.DagsterInstance,
    server: MotoServer,
    days: Iterator[str],
    rounds: int,
    run_config: dict[str, Any],
) -> dict[str, Any]:
    """A warm-up run, then `rounds` timed runs: writes/s and requests per step."""
    run_once(instance, next(days), run_config)
    server.proxy.reset_counts()
    seconds = [run_once(instance, next(days), run_config) for _ in range(rounds)]
    kinds = added_requests(server.proxy.requests)
    steps = STEPS * rounds
    return {
        "seconds": seconds,
        "writes_per_second": STEPS / statistics.median(seconds),
        "added_requests_per_step": sum(kinds.values()) / steps,
        "added_by_kind_per_step": {kind: count / steps for kind, count in sorted(kinds.items())},
    }


def celery_case(
    workdir: Path,
    count: int,
    env: dict[str, str],
    instance: dg.DagsterInstance,
    server: MotoServer,
    days: Iterator[str],
    rounds: int,
) -> dict[str, Any]:
    """`count` workers with one slot each, for the duration of one measurement."""
    workers = [
        start_worker(f"bench{count}-{n}", workdir / f"celery{count}-{n}", env)
        for n in range(1, count + 1)
    ]
    try:
        wait_until_ready(workers)
        return measure(instance, server, days, rounds, {})
    finally:
        for worker in workers:
            worker.stop()


def day_keys() -> Iterator[str]:
    """A fresh partition for every run (so no run replaces another's files)."""
    import datetime as dt

    day = dt.date(2025, 1, 1)
    while True:
        yield day.isoformat()
        day += dt.timedelta(days=1)


def benchmark(
    worker_counts: list[int], baseline_counts: list[int], rounds: int, workdir: Path
) -> dict[str, Any]:
    """Every case in one session of servers; the results as a dict."""
    results: dict[str, Any] = {"steps_per_run": STEPS, "rounds": rounds, "cases": {}}
    days = day_keys()
    with (
        start_moto_server(workdir / "moto") as server,
        run_redis(workdir / "redis") as redis_url,
        run_postgres() as postgres_url,
    ):
        server.endpoint.client().create_bucket(Bucket=BUCKET)
        home = workdir / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(DAGSTER_YAML.format(postgres_url=postgres_url))
        for executor in ("celery", "multiprocess"):
            env = {**os.environ, **environment(server, redis_url, executor)}
            env["DAGSTER_HOME"] = str(home)
            with patched_environment(env), dg.DagsterInstance.get() as instance:
                for count in worker_counts if executor == "celery" else baseline_counts:
                    if executor == "celery":
                        case = celery_case(workdir, count, env, instance, server, days, rounds)
                    else:
                        config = {"execution": {"config": {"max_concurrent": count}}}
                        case = measure(instance, server, days, rounds, config)
                    results["cases"][f"{executor} x{count}"] = case
                    print(
                        f"{executor} x{count}: {case['writes_per_second']:.2f} writes/s, "
                        f"{case['added_requests_per_step']:.2f} added requests/step",
                        flush=True,
                    )
    return results


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| executor x slots | run (s, median) | partition writes/s | added requests/step |",
        "|---|---|---|---|",
    ]
    for name, case in results["cases"].items():
        lines.append(
            f"| {name} | {statistics.median(case['seconds']):.1f} | "
            f"{case['writes_per_second']:.2f} | {case['added_requests_per_step']:.2f} |"
        )
    first = next(iter(results["cases"].values()))
    kinds = ", ".join(f"{k}: {v:.2f}" for k, v in first["added_by_kind_per_step"].items())
    lines.append(f"\nAdded requests per step by kind (first case): {kinds}")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument(
        "--baseline", default="2", help="comma-separated slot counts of the multiprocess baseline"
    )
    parser.add_argument("--rounds", type=int, default=2, help="timed runs per case")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "benchmarks/results/cluster.json"
    )
    arguments = parser.parse_args()
    counts = [int(text) for text in arguments.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="pq-cluster-bench-") as scratch:
        baseline = [int(text) for text in arguments.baseline.split(",")]
        results = benchmark(counts, baseline, arguments.rounds, Path(scratch))
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
