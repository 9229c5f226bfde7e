"""Helpers for the fault, concurrency, streaming and security tests.

Also a worker entry point, so tests can materialize in separate OS processes (to kill them,
or to run several at once)::

    python -m tests.faults_support SPEC_JSON

SPEC_JSON names the lake (`base_path`, and for S3 `endpoint_url`/`region`; the keys come from
the environment variables PQ_TEST_ACCESS_KEY_ID / PQ_TEST_SECRET_ACCESS_KEY so that they never
appear in a command line), the partition keys to write in turn, the payload (`rows`, `tag`),
how many `rounds`, and an optional `barrier` directory: the worker creates `ready-PID` there
once imported, then waits for a file `go`, so that several workers write at the same moment.
It prints one JSON line per materialization.
"""

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource

from pq_io_manager import PartitionedParquetIOManager
from tests.lake import Lake
from tests.servers import S3Endpoint
from tests.servers.http_proxy import HttpProxy

REPO = Path(__file__).resolve().parents[1]
DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")
STAGING = ".pq-staging/"
SWEEP_MARKER = STAGING + ".last-sweep"  # when the last sweep ran: housekeeping, not a leftover
SERVERS = [
    pytest.param("moto", marks=pytest.mark.s3),
    pytest.param("radosgw", marks=[pytest.mark.s3, pytest.mark.radosgw]),
]
"""Both real S3 implementations, for `@pytest.mark.parametrize("server", SERVERS)`."""
# polars uploads a file in one PUT up to 32 MiB and with multipart uploads above that.
MULTIPART_ROWS = 16_000_000
ROWS = 20_000


def payload(key: str, rows: int, tag: str = "v") -> pl.LazyFrame:
    """A deterministic lazy frame for one partition: `rows` rows of ids, a value and a tag.

    The values barely compress, so 16M rows make a ~43 MB file (a multipart upload).
    """
    offset = int(key.replace("-", "")) * 10**9
    return pl.LazyFrame({"n": pl.int_range(0, rows, eager=True)}).select(
        id=pl.col("n") + offset,
        value=(pl.col("n") * 2654435761 % 1_000_003).cast(pl.Float64),
        tag=pl.lit(tag),
    )


def failing_at_the_end(frame: pl.LazyFrame, rows: int) -> pl.LazyFrame:
    """`frame` with a strict cast that fails on its last rows only (its last row group)."""
    text = pl.when(pl.col("n") < rows - 3).then(pl.lit("0")).otherwise(pl.lit("not a number"))
    # the parsed text is added to a stored column, so the optimizer cannot drop the check
    return (
        frame.with_row_index("n")
        .with_columns(value=pl.col("value") + text.str.to_integer(strict=True))
        .drop("n")
    )


def expected(key: str, rows: int, tag: str = "v") -> pl.DataFrame:
    """What `payload` stores (partition column not included)."""
    return payload(key, rows, tag).collect()


def s3_resource(endpoint: S3Endpoint, url: str | None = None, **overrides: Any) -> S3Resource:
    """An S3Resource for `endpoint`, optionally reached through `url` (a private proxy)."""
    settings: dict[str, Any] = {
        "aws_access_key_id": endpoint.access_key_id,
        "aws_secret_access_key": endpoint.secret_access_key,
        "endpoint_url": url or endpoint.endpoint_url,
        "region_name": endpoint.region,
    }
    settings.update(overrides)
    return S3Resource(**settings)


def upstream_url(endpoint: S3Endpoint, moto_direct_url: str | None) -> str:
    """The URL of the server itself (moto without its shared logging proxy)."""
    return moto_direct_url if endpoint.name == "moto" and moto_direct_url else endpoint.endpoint_url


@contextlib.contextmanager
def private_proxy(upstream: str, log_path: Path | None = None) -> Iterator[HttpProxy]:
    """A fault-injecting proxy of this test's own, so the shared one never carries faults."""
    with HttpProxy(upstream, log_path=log_path, upstream_timeout=60.0) as proxy:
        yield proxy


def server_endpoint(request: pytest.FixtureRequest, server: str) -> tuple[S3Endpoint, str]:
    """The session's endpoint of `server` ("moto" or "radosgw") and the server's own URL."""
    endpoint: S3Endpoint = request.getfixturevalue(f"{server}_endpoint")
    direct = request.getfixturevalue("moto_server").direct_url if server == "moto" else None
    return endpoint, upstream_url(endpoint, direct)


@contextlib.contextmanager
def proxied_server(
    request: pytest.FixtureRequest, server: str, log_path: Path | None = None
) -> Iterator[tuple[S3Endpoint, HttpProxy]]:
    """`(endpoint, proxy)`: a fresh `HttpProxy` of the test's own in front of the server
    itself (moto or radosgw), and the server's endpoint reached through it.

    For a fixture: `with proxied_server(request, request.param) as pair: yield pair`.
    """
    endpoint, upstream = server_endpoint(request, server)
    with private_proxy(upstream, log_path) as proxy:
        yield dataclasses.replace(endpoint, endpoint_url=proxy.url, request_log=None), proxy


def proxied_lake(lake: Lake, proxy_url: str, **resource_overrides: Any) -> Lake:
    """The same lake, reached through `proxy_url`, with resource overrides (e.g. max_attempts)."""
    assert lake.endpoint is not None
    endpoint = dataclasses.replace(lake.endpoint, endpoint_url=proxy_url, request_log=None)
    resource = s3_resource(lake.endpoint, proxy_url, **resource_overrides)
    return dataclasses.replace(lake, endpoint=endpoint, resource=resource)


def leftovers(lake: Lake) -> tuple[list[str], list[str]]:
    """Staged files and incomplete multipart uploads anywhere in the lake's bucket/directory."""
    staged = [path for path in lake.files() if path.startswith(STAGING) and path != SWEEP_MARKER]
    if lake.endpoint is None:
        return staged, []
    client = lake.endpoint.client()
    uploads = client.list_multipart_uploads(Bucket=lake.bucket).get("Uploads", [])
    return staged, [upload["Key"] for upload in uploads]


def etags(lake: Lake) -> dict[str, str]:
    """Every file of the lake with a fingerprint that changes when it is rewritten."""
    if lake.endpoint is None:
        root = Path(lake.base_path)
        return {
            path: f"{(root / path).stat().st_mtime_ns}-{(root / path).stat().st_size}"
            for path in lake.files()
            if not path.startswith(STAGING)
        }
    client = lake.endpoint.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket)
    return {
        item["Key"].removeprefix("lake/"): item["ETag"]
        for page in pages
        for item in page.get("Contents", [])
        if not item["Key"].removeprefix("lake/").startswith(STAGING)
    }


def wait_for(condition: Any, timeout: float, interval: float = 0.05) -> Any:
    """Poll `condition()` until it is truthy (returned) or `timeout` seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return None


def worker_environment(lake: Lake) -> dict[str, str]:
    """The environment of a worker process writing to `lake` (keys only in the environment)."""
    environment = {name: value for name, value in os.environ.items()}
    environment["PYTHONPATH"] = str(REPO)
    if lake.endpoint is not None:
        environment["PQ_TEST_ACCESS_KEY_ID"] = lake.endpoint.access_key_id
        environment["PQ_TEST_SECRET_ACCESS_KEY"] = lake.endpoint.secret_access_key
    return environment


def worker_spec(lake: Lake, keys: list[str], **options: Any) -> dict[str, Any]:
    """A worker's JSON spec for `lake` (see the module docstring)."""
    spec: dict[str, Any] = {"base_path": lake.base_path, "keys": keys, **options}
    if lake.endpoint is not None:
        spec["endpoint_url"] = lake.endpoint.endpoint_url
        spec["region"] = lake.endpoint.region
    return spec


def start_worker(lake: Lake, spec: dict[str, Any], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `python -m tests.faults_support SPEC` in its own session; output to `log_path`."""
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults_support", json.dumps(spec)],
            cwd=REPO,
            env=worker_environment(lake),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def finish_worker(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> list[Any]:
    """Wait for a worker; return its JSON result lines or fail with its output."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        output = log_path.read_text()[-3000:]
        raise AssertionError(f"worker {process.pid} timed out:\n{output}") from None
    output = log_path.read_text(errors="replace")
    assert code == 0, f"worker {process.pid} exited {code}:\n{output[-3000:]}"
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _worker_manager(spec: dict[str, Any]) -> PartitionedParquetIOManager:
    resource = None
    if "endpoint_url" in spec:
        resource = S3Resource(
            aws_access_key_id=os.environ["PQ_TEST_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["PQ_TEST_SECRET_ACCESS_KEY"],
            endpoint_url=spec["endpoint_url"],
            region_name=spec["region"],
        )
    return PartitionedParquetIOManager(base_path=spec["base_path"], s3=resource)


def run_worker(spec: dict[str, Any]) -> None:
    """Materialize `spec["keys"]` in turn, `rounds` times, printing one JSON line each."""
    rows, tag = int(spec.get("rows", 1000)), str(spec.get("tag", "v"))

    eager = bool(spec.get("eager", False))

    @dg.asset(
        name=spec.get("asset", "events"), partitions_def=DAILY, metadata={"partition_by": "date"}
    )
    def events(context: dg.AssetExecutionContext) -> Any:
        frame = payload(context.partition_key, rows, tag)
        # eager: a DataFrame, which goes straight to its final key on S3 (no staging)
        return frame.collect() if eager else frame

    manager = _worker_manager(spec)
    if "barrier" in spec:  # say we are ready, then wait for the go
        barrier = Path(spec["barrier"])
        (barrier / f"ready-{os.getpid()}").touch()
        while not (barrier / "go").exists():
            time.sleep(0.01)
    print(json.dumps({"started": time.time(), "pid": os.getpid()}), flush=True)
    for round_number in range(int(spec.get("rounds", 1))):
        for key in spec["keys"]:
            started = time.time()
            dg.materialize([events], partition_key=key, resources={"io_manager": manager})
            record = {"key": key, "round": round_number, "start": started, "end": time.time()}
            print(json.dumps(record), flush=True)


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def first(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return expected(context.partition_key, ROWS)


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def second(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return expected(context.partition_key, ROWS)


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def third(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return expected(context.partition_key, ROWS)


def multiprocess_definitions() -> dg.Definitions:
    """Three assets written by three step processes of one run (multiprocess executor)."""
    return dg.Definitions(
        assets=[first, second, third],
        jobs=[dg.define_asset_job("three", selection=[first, second, third], partitions_def=DAILY)],
        resources={
            "io_manager": PartitionedParquetIOManager(base_path=os.environ["PQ_TEST_BASE_PATH"])
        },
    )


def three_job() -> dg.JobDefinition:
    return multiprocess_definitions().resolve_job_def("three")


if __name__ == "__main__":
    run_worker(json.loads(sys.argv[1]))
