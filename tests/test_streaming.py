"""LazyFrame outputs are streamed to storage with `sink_parquet`, never collected."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.faults_support import REPO, leftovers, payload
from tests.lake import Lake
from tests.test_faults import events_asset

# Peak memory is read from VmHWM, which exec resets; ru_maxrss would carry over the forking
# pytest process's own peak (often larger than the budget after other tests).
MEASURE = r"""
import json, sys, time
import dagster as dg
import polars as pl
from pq_io_manager import PartitionedParquetIOManager

source, lake, copies, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

DAILY = dg.DailyPartitionsDefinition("2024-01-01")

@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def big() -> pl.LazyFrame:
    return pl.concat(
        pl.scan_parquet(source).with_columns(id=pl.col("id") + copy * rows, copy=pl.lit(copy))
        for copy in range(copies)
    )

def status_bytes(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)

baseline = status_bytes("VmHWM")
started = time.monotonic()
dg.materialize([big], partition_key="2024-01-05",
               resources={"io_manager": PartitionedParquetIOManager(base_path=lake)})
print(json.dumps({"baseline": baseline, "seconds": time.monotonic() - started,
                  "peak": status_bytes("VmHWM")}))
"""


@pytest.mark.slow
def test_lazy_output_far_larger_than_memory_budget_streams_with_bounded_peak_rss(
    tmp_path: Path,
) -> None:
    rows, copies = 4_000_000, 24
    source = payload("2024-01-01", rows).with_columns(value2=pl.col("value") * 3).collect()
    collected_bytes = source.estimated_size() * copies  # ~2.3 GB if collected
    source.write_parquet(tmp_path / "source.parquet", row_group_size=250_000)
    del source
    lake = tmp_path / "lake"

    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE,
            str(tmp_path / "source.parquet"),
            str(lake),
            str(copies),
            str(rows),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    measured = json.loads(completed.stdout.strip().splitlines()[-1])

    stored = lake / "big" / "date=2024-01-05" / "data.parquet"
    assert pl.scan_parquet(stored).select(pl.len()).collect().item() == rows * copies
    files = sorted(str(path.relative_to(lake)) for path in lake.rglob("*") if path.is_file())
    assert files == [".pq-meta/big/_schema.json", "big/date=2024-01-05/data.parquet"]
    growth = measured["peak"] - measured["baseline"]
    print(
        f"collected {collected_bytes / 2**20:.0f} MiB, peak RSS {measured['peak'] / 2**20:.0f}"
        f" MiB (+{growth / 2**20:.0f} MiB during the write), {measured['seconds']:.1f} s"
    )
    assert collected_bytes > 2 * 2**30
    assert measured["peak"] < collected_bytes / 3
    assert growth < 600 * 2**20


def test_lazy_output_is_sunk_and_never_collected(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asset's plan only ever reaches `sink_parquet`, never `collect` (whose streaming
    engine would still build the whole frame in memory)."""
    marker = "streaming_probe_column"
    calls: list[str] = []
    original_collect, original_sink = pl.LazyFrame.collect, pl.LazyFrame.sink_parquet

    def collect(self: pl.LazyFrame, *args: object, **kwargs: object) -> pl.DataFrame:
        if marker in self.collect_schema():
            calls.append("collect")
        return original_collect(self, *args, **kwargs)

    def sink(self: pl.LazyFrame, *args: object, **kwargs: object) -> object:
        if marker in self.collect_schema():
            calls.append("sink_parquet")
        return original_sink(self, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", collect)
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", sink)
    asset = events_asset(lambda key: payload(key, 50_000).with_columns(pl.lit(1).alias(marker)))

    dg.materialize([asset], partition_key="2024-01-05", resources={"io_manager": lake.io_manager()})

    assert calls == ["sink_parquet"]
    assert lake.files() == ["events/date=2024-01-05/data.parquet"]
    assert lake.read("events/date=2024-01-05/data.parquet").height == 50_000
    assert leftovers(lake) == ([], [])
