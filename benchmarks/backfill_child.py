"""Child process of scenario 8: one single-run backfill of a LazyFrame over many daily
partitions, by the IO manager or by raw polars' partitioned sink; time and peak RSS.

Reads a JSON job from stdin (it holds the store's keys, so never argv) and prints one JSON line:
`{"seconds", "baseline_rss_mb", "peak_rss_mb"}`. Both contenders import the same modules
before measuring, so the baselines are comparable.
"""

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import dagster as dg
import polars as pl

from benchmarks.contenders import RAW, RAW_IN_DAGSTER
from benchmarks.data import START
from benchmarks.targets import Target
from pq_io_manager import PartitionedParquetIOManager
from tests.servers import S3Endpoint


def _max_rss_mb() -> float:
    """This process's peak RSS (VmHWM: exec resets it, unlike ru_maxrss)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def frame(job: dict[str, Any]) -> pl.LazyFrame:
    """The backfill's output: the source scanned `copies` times, rows spread over the days."""
    copies = [
        pl.scan_parquet(job["source"]).with_columns(copy=pl.lit(c)) for c in range(job["copies"])
    ]
    days = pl.duration(days=pl.col("id") % job["partitions"])
    return pl.concat(copies).with_columns(date=(pl.lit(START) + days).cast(pl.Date))


def _backfill(compute: Callable[[], Any], metadata: dict[str, str] | None = None) -> Any:
    """`compute` as the daily asset `backfill_rss`, written for a range in one run."""
    return dg.asset(
        name="backfill_rss",
        partitions_def=dg.DailyPartitionsDefinition(start_date=START.isoformat()),
        metadata=metadata,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )(compute)


def _run(
    asset: dg.AssetsDefinition, partitions: int, resources: dict[str, Any]
) -> Callable[[], object]:
    """One run of `asset` over the first `partitions` days (a single-run backfill)."""
    last = (START + dt.timedelta(days=partitions - 1)).isoformat()
    tags = {
        "dagster/asset_partition_range_start": START.isoformat(),
        "dagster/asset_partition_range_end": last,
    }
    return lambda: dg.materialize([asset], resources=resources, tags=tags)


def _ours(job: dict[str, Any], target: Target) -> Callable[[], object]:
    output = frame(job)

    def backfill_rss() -> pl.LazyFrame:
        return output

    manager = PartitionedParquetIOManager(base_path=target.root, s3=target.s3_resource())
    asset = _backfill(backfill_rss, {"partition_by": "date"})
    return _run(asset, job["partitions"], {"io_manager": manager})


def _raw_in_dagster(job: dict[str, Any], target: Target) -> Callable[[], object]:
    """The same run whose asset sinks the frame itself (`-> None`: no IO manager is called,
    and none of ours is even set up: Dagster's default stands in), so it pays Dagster's part
    (the run, one materialization event per partition) and nothing of ours: the IO manager's
    own cost is ours minus this."""
    sink = _raw(job, target, "raw_in_dagster")

    def backfill_rss() -> None:
        sink()

    return _run(_backfill(backfill_rss), job["partitions"], {})


def _raw(job: dict[str, Any], target: Target, directory: str = "raw") -> Callable[[], object]:
    base = target.uri(directory, "backfill_rss")
    if not target.is_s3:
        os.makedirs(base, exist_ok=True)
    sink = pl.PartitionBy(base, key=["date"], include_key=False)
    output = frame(job)
    return lambda: output.sink_parquet(sink, storage_options=target.storage_options())


CONTENDERS: dict[str, Callable[[dict[str, Any], Target], Callable[[], object]]] = {
    RAW: _raw,
    RAW_IN_DAGSTER: _raw_in_dagster,
}


def main() -> None:
    """Run the job on stdin and print the measurement."""
    job = json.loads(sys.stdin.read())
    endpoint = S3Endpoint(**job["endpoint"]) if job.get("endpoint") else None
    target = Target(job["store"], job["root"], endpoint)
    baseline = _max_rss_mb()
    action = CONTENDERS.get(job["contender"], _ours)(job, target)
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "baseline_rss_mb": baseline, "peak_rss_mb": _max_rss_mb()}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
