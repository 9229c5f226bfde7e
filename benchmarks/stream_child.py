"""Child process of scenario 5: stream one LazyFrame to the store, report time and peak RSS.

Reads a JSON job from stdin (it holds the store's keys, so never argv) and prints one JSON line:
`{"seconds", "baseline_rss_mb", "peak_rss_mb"}`. Every contender's child imports the same
modules before measuring, so the baselines are comparable.
"""

import contextlib
import datetime
import json
import sys
import time
from typing import Any

import dagster  # noqa: F401  (same imports in every child: comparable baselines)
import polars as pl

import pq_io_manager  # noqa: F401
from benchmarks.contenders import FACTORIES, RAW
from benchmarks.targets import Target
from tests.servers import S3Endpoint


def _max_rss_mb() -> float:
    """This process's peak RSS. Not ru_maxrss: Linux carries it over from the forking
    parent across exec, so a child of a big parent would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def _target(job: dict[str, Any]) -> Target:
    endpoint = S3Endpoint(**job["endpoint"]) if job.get("endpoint") else None
    return Target(job["store"], job["root"], endpoint)


def _source(job: dict[str, Any]) -> pl.LazyFrame:
    """The streamed frame; it carries its partition column, which Delta Lake requires."""
    day = datetime.date.fromisoformat(job["key"])
    return pl.scan_parquet([job["source"]] * job["chunks"]).with_columns(date=pl.lit(day))


def _run(job: dict[str, Any], stack: contextlib.ExitStack) -> float:
    target = _target(job)
    frame = _source(job)
    if job["contender"] == RAW:
        path = target.uri("raw", "stream", "data.parquet")
        if not target.is_s3:
            import os

            os.makedirs(os.path.dirname(path), exist_ok=True)
        options = target.storage_options()
        action: Any = lambda: frame.sink_parquet(path, storage_options=options)  # noqa: E731
    else:
        contender = FACTORIES[job["contender"]](stack, target, False)
        action = contender.write("stream", job["key"], frame)
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    """Run the job on stdin and print the measurement."""
    job = json.loads(sys.stdin.read())
    baseline = _max_rss_mb()
    with contextlib.ExitStack() as stack:
        seconds = _run(job, stack)
    result = {"seconds": seconds, "baseline_rss_mb": baseline, "peak_rss_mb": _max_rss_mb()}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
