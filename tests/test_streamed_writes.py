"""Outputs covering several partitions are streamed once into staging, then published (issue 10).

A single-run backfill and a split asset are sunk in one pass with polars' partitioned sink,
never collected; every partition of the range is published whole (empty with the schema when
it got no rows); failures leave every previous version whole and no staging behind.
"""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import PartitionValueError, QueryError
from pq_io_manager.partitioned_sink import PartitionedSink
from pq_io_manager.stores import STAGED_NAME, LocalStore
from tests.faults_support import (
    MULTIPART_ROWS,
    REPO,
    etags,
    failing_at_the_end,
    leftovers,
    wait_for,
    worker_environment,
    worker_spec,
)
from tests.lake import Lake, s3_lake
from tests.servers import S3Endpoint
from tests.test_faults import SETTLE_SECONDS, sweep_store_now
from tests.test_io_manager import range_tags

pytestmark = pytest.mark.every_s3_server

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-04-01")
PROBE = "streamed_probe_column"


def days(first: int, count: int) -> list[str]:
    """`count` daily keys from 2024-01-`first`."""
    start = dt.date(2024, 1, first)
    return [(start + dt.timedelta(days=offset)).isoformat() for offset in range(count)]


def events(keys: list[str], rows: int, tag: str = "v") -> pl.LazyFrame:
    """`rows` rows per day of `keys`, each carrying its `date`, lazily."""
    dates = pl.Series("date", [dt.date.fromisoformat(key) for key in keys])
    return (
        pl.LazyFrame({"n": pl.int_range(0, rows * len(keys), eager=True)})
        .with_columns(date=pl.lit(dates).get(pl.col("n") // rows))
        .select("date", id=pl.col("n"), value=pl.col("n") * 3 % 1009, tag=pl.lit(tag))
    )


def ranged_asset(make: Any) -> dg.AssetsDefinition:
    """`events`, written for a whole range of days in one run; its output is `make(keys)`."""

    @dg.asset(
        name="events",
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged(context: dg.AssetExecutionContext) -> Any:
        return make(context.partition_keys)

    return ranged


def split_asset(frame: pl.LazyFrame) -> dg.AssetsDefinition:
    """`events` unpartitioned, split into one directory per day by its `date` column."""

    @dg.asset(name="events", metadata={"partition_by": ["date"]})
    def split() -> pl.LazyFrame:
        return frame

    return split


def materialize_split(lake: Lake, frame: pl.LazyFrame) -> dg.ExecuteInProcessResult:
    """One run replacing the split `events` by `frame`."""
    return dg.materialize([split_asset(frame)], resources={"io_manager": lake.io_manager()})


def backfill(lake: Lake, make: Any, keys: list[str]) -> dg.ExecuteInProcessResult:
    """One run writing `keys` of `events`."""
    return dg.materialize(
        [ranged_asset(make)],
        resources={"io_manager": lake.io_manager()},
        tags=range_tags(keys[0], keys[-1]),
    )


def partition_files(keys: list[str]) -> list[str]:
    return [f"events/date={key}/data.parquet" for key in keys]


def record_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which of collect / sink_parquet / DataFrame.partition_by / a read of a staged file
    touch the probed output (or staging) while it is written."""
    calls: list[str] = []
    collect, sink = pl.LazyFrame.collect, pl.LazyFrame.sink_parquet
    split, scan = pl.DataFrame.partition_by, pl.scan_parquet

    def probed(frame: pl.LazyFrame | pl.DataFrame) -> bool:
        return PROBE in frame.collect_schema()

    def recording_collect(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> Any:
        calls.extend(["collect"] if probed(self) else [])
        return collect(self, *args, **kwargs)

    def recording_sink(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> Any:
        # (DataFrame.write_parquet sinks too: an empty partition's file is written so)
        target = "partitioned" if isinstance(args[0], pl.PartitionBy) else "one file"
        calls.extend([f"sink_parquet {target}"] if probed(self) else [])
        return sink(self, *args, **kwargs)

    def recording_split(self: pl.DataFrame, *args: Any, **kwargs: Any) -> Any:
        calls.extend(["partition_by"] if probed(self) else [])
        return split(self, *args, **kwargs)

    def recording_scan(source: Any, *args: Any, **kwargs: Any) -> Any:
        calls.extend(["read staged"] if ".pq-staging" in str(source) else [])
        return scan(source, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", recording_collect)
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", recording_sink)
    monkeypatch.setattr(pl.DataFrame, "partition_by", recording_split)
    monkeypatch.setattr(pl, "scan_parquet", recording_scan)
    return calls


@pytest.mark.parametrize("kind", ["lazy", "eager"])
def test_a_backfill_is_sunk_once_and_every_partition_of_the_range_published(
    lake: Lake, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = days(1, 5)
    with_rows = [key for key in keys if key not in ("2024-01-02", "2024-01-05")]

    lazy = events(with_rows, 1000).with_columns(pl.lit(1).alias(PROBE))
    output = lazy if kind == "lazy" else lazy.collect()

    calls = record_calls(monkeypatch)
    result = backfill(lake, lambda run_keys: output, keys)
    monkeypatch.undo()

    # one streaming pass, nothing collected or split in memory, no staged file read back;
    # the two partitions without rows are written from an empty frame
    assert calls == ["sink_parquet partitioned", "sink_parquet one file", "sink_parquet one file"]
    assert lake.files() == partition_files(keys)
    stored = lake.read("events/date=2024-01-03/data.parquet")
    assert stored.columns == ["id", "value", "tag", PROBE]
    assert stored["id"].to_list() == list(range(1000, 2000))
    for empty_key in ("2024-01-02", "2024-01-05"):  # no rows: written empty with the schema
        empty = lake.read(f"events/date={empty_key}/data.parquet")
        assert (empty.height, empty.schema) == (0, stored.schema)
    # each partition's row count and size: what polars reported and the store holds
    materialized = {
        event.partition: event.metadata
        for event in result.asset_materializations_for_node("events")
    }
    assert {key: m["dagster/partition_row_count"].value for key, m in materialized.items()} == {
        key: 1000 if key in with_rows else 0 for key in keys
    }
    assert {key: m["size_bytes"].value for key, m in materialized.items()} == {
        key: lake.size(f"events/date={key}/data.parquet") for key in keys
    }
    assert leftovers(lake) == ([], [])


@pytest.mark.s3
def test_publishing_a_backfill_on_s3_asks_no_size_and_deletes_staging_at_once(
    moto_endpoint: S3Endpoint,
) -> None:
    moto_endpoint.client().create_bucket(Bucket="streamed-requests")
    lake = s3_lake(moto_endpoint, "streamed-requests")
    keys = days(1, 6)
    start = len(Path(str(moto_endpoint.request_log)).read_text().splitlines())

    backfill(lake, lambda run_keys: events(keys, 100), keys)

    lines = Path(str(moto_endpoint.request_log)).read_text().splitlines()[start:]
    records = [json.loads(line) for line in lines]
    staged_heads = [
        record
        for record in records
        if record["method"] == "HEAD" and str(record["path"]).endswith(".parquet")
    ]
    assert staged_heads == []  # polars reported each staged file's size: no HEAD per partition
    deletes = [r for r in records if r["method"] == "POST" and "delete" in str(r["path"])]
    assert len(deletes) == 1  # the published partitions' staged copies go in one DeleteObjects
    assert lake.files() == partition_files(keys)
    assert leftovers(lake) == ([], [])


def test_a_backfill_with_rows_outside_the_range_publishes_nothing(lake: Lake) -> None:
    keys = days(1, 3)
    backfill(lake, lambda run_keys: events(run_keys, 100, "old"), keys)
    before = etags(lake)

    with pytest.raises(
        PartitionValueError,
        match=r"rows carry partition values outside the run's partitions, e\.g\. "
        r"\{'date': '2024-01-09'\}; nothing was written",
    ):
        backfill(lake, lambda run_keys: events([*run_keys, "2024-01-09"], 100, "new"), keys)

    assert etags(lake) == before
    assert leftovers(lake) == ([], [])
    assert lake.read("events/date=2024-01-02/data.parquet")["tag"].unique().to_list() == ["old"]


def test_rows_of_many_days_outside_the_range_share_one_staged_file(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a refused key finishes the stream (see partitioned_sink): an output holding a year of
    # history must not open one staged file per foreign day
    named: list[object] = []
    name = PartitionedSink._name

    def counting(self: PartitionedSink, arguments: Any) -> str:
        named.append(arguments)
        return name(self, arguments)

    monkeypatch.setattr(PartitionedSink, "_name", counting)
    keys = days(1, 2)
    history = [*keys, *days(3, 200)]

    with pytest.raises(
        PartitionValueError, match=r"outside the run's partitions, e\.g\. \{'date': '2024-01-03'\}"
    ):
        backfill(lake, lambda run_keys: events(history, 10), keys)

    assert len(named) == 3  # the two days of the run, and one file for all the others
    assert leftovers(lake) == ([], [])
    assert lake.files() == []


def test_a_backfill_failing_mid_stream_keeps_every_previous_version(lake: Lake) -> None:
    keys = days(1, 4)
    backfill(lake, lambda run_keys: events(run_keys, 100, "old"), keys)
    before = etags(lake)
    rows = 400_000  # several row groups: the first partitions' files are written when it fails

    with pytest.raises(QueryError, match=r"(?s)polars query failed.*not a number.*nothing"):
        backfill(lake, lambda run_keys: failing_at_the_end(events(run_keys, rows), rows), keys)

    time.sleep(SETTLE_SECONDS)  # polars may complete a failed sink's upload in the background
    assert etags(lake) == before
    assert leftovers(lake) == ([], [])


@pytest.mark.parametrize("kind", ["lazy", "eager"])
def test_a_split_asset_with_typed_columns_is_sunk_once_and_replaced_whole(
    lake: Lake, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = "America/New_York"
    # the two 01:00 of the autumn DST change are different instants: never one directory
    first = dt.datetime(2025, 11, 2, 5, tzinfo=dt.UTC)
    second = dt.datetime(2025, 11, 2, 6, tzinfo=dt.UTC)

    def asset(hours: list[dt.datetime], shards: list[int]) -> dg.AssetsDefinition:
        frame = pl.LazyFrame(
            {"hour": pl.Series(hours).dt.convert_time_zone(zone), "shard": shards}
        ).with_columns(n=pl.int_range(pl.len()), **{PROBE: pl.lit(True)})
        output = frame if kind == "lazy" else frame.collect()

        @dg.asset(name="visits", metadata={"partition_by": ["hour", "shard"]})
        def visits() -> Any:
            return output

        return visits

    manager = lake.io_manager()
    dg.materialize([asset([first], [9])], resources={"io_manager": manager})
    rewritten = asset([first, second, second], [1, 1, 2])
    calls = record_calls(monkeypatch)
    dg.materialize([rewritten], resources={"io_manager": manager})
    monkeypatch.undo()

    assert calls == ["sink_parquet partitioned"]
    hours = ["2025-11-02T05%3A00%3A00Z", "2025-11-02T06%3A00%3A00Z"]
    expected = [
        f"visits/hour={hours[0]}/shard=1/data.parquet",  # shard=9 of the last version: gone
        f"visits/hour={hours[1]}/shard=1/data.parquet",
        f"visits/hour={hours[1]}/shard=2/data.parquet",
    ]
    assert lake.files() == expected
    assert [lake.read(path)["n"].to_list() for path in expected] == [[0], [1], [2]]
    loaded = pl.scan_parquet(
        lake.uri("visits") + "/", hive_partitioning=True, **lake.storage_options()
    ).collect()
    assert loaded.height == 3
    assert leftovers(lake) == ([], [])


# Peak memory is read from VmHWM, which exec resets (ru_maxrss would carry the forking pytest
# process's own peak over).
BACKFILL = r"""
import datetime as dt, json, sys, time
import dagster as dg
import polars as pl
from pq_io_manager import PartitionedParquetIOManager

source, lake, copies, days = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
DAILY = dg.DailyPartitionsDefinition("2024-01-01")

@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"},
          backfill_policy=dg.BackfillPolicy.single_run())
def big() -> pl.LazyFrame:
    return pl.concat(
        pl.scan_parquet(source).with_columns(copy=pl.lit(copy)) for copy in range(copies)
    ).with_columns(date=pl.lit(dt.date(2024, 1, 1)) + pl.duration(days=pl.col("id") % days))

def status_bytes(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)

baseline = status_bytes("VmHWM")
started = time.monotonic()
last = (dt.date(2024, 1, 1) + dt.timedelta(days=days - 1)).isoformat()
dg.materialize([big], resources={"io_manager": PartitionedParquetIOManager(base_path=lake)},
               tags={"dagster/asset_partition_range_start": "2024-01-01",
                     "dagster/asset_partition_range_end": last})
print(json.dumps({"baseline": baseline, "seconds": time.monotonic() - started,
                  "peak": status_bytes("VmHWM")}))
"""


@pytest.mark.slow
def test_a_backfill_far_larger_than_memory_is_written_with_bounded_peak_rss(
    tmp_path: Path,
) -> None:
    rows, copies, day_count = 2_000_000, 32, 60
    source = pl.select(id=pl.int_range(0, rows)).with_columns(
        value=(pl.col("id") * 2654435761 % 1_000_003).cast(pl.Float64),
        other=(pl.col("id") * 40503 % 65_521).cast(pl.Float64),
    )
    collected_bytes = (source.estimated_size() + rows * 12) * copies  # + copy and date columns
    source.write_parquet(tmp_path / "source.parquet", row_group_size=200_000)
    del source
    lake = tmp_path / "lake"

    arguments = [str(tmp_path / "source.parquet"), str(lake), str(copies), str(day_count)]
    completed = subprocess.run(
        [sys.executable, "-c", BACKFILL, *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    measured = json.loads(completed.stdout.strip().splitlines()[-1])

    files = sorted(str(path.relative_to(lake)) for path in lake.rglob("*.parquet"))
    assert len(files) == day_count
    total = pl.scan_parquet(str(lake / "big") + "/").select(pl.len()).collect().item()
    assert total == rows * copies
    growth = measured["peak"] - measured["baseline"]
    print(
        f"collected {collected_bytes / 2**20:.0f} MiB, peak RSS {measured['peak'] / 2**20:.0f}"
        f" MiB (+{growth / 2**20:.0f} MiB during the write), {measured['seconds']:.1f} s"
    )
    assert collected_bytes > 2 * 2**30
    assert measured["peak"] < collected_bytes / 3
    assert growth < 900 * 2**20


KILLED_WRITER = r"""
import json, os, sys
import dagster as dg
from dagster_aws.s3 import S3Resource
from pq_io_manager import PartitionedParquetIOManager
from tests.test_streamed_writes import events, ranged_asset, split_asset

spec = json.loads(sys.argv[1])
resource = None
if "endpoint_url" in spec:
    resource = S3Resource(
        aws_access_key_id=os.environ["PQ_TEST_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["PQ_TEST_SECRET_ACCESS_KEY"],
        endpoint_url=spec["endpoint_url"], region_name=spec["region"],
    )
manager = PartitionedParquetIOManager(base_path=spec["base_path"], s3=resource)
keys = spec["keys"]
# all rows in the first day: its file outgrows a part soonest
if spec["kind"] == "split":
    dg.materialize([split_asset(events(keys[:1], spec["rows"], "killed"))],
                   resources={"io_manager": manager})
else:
    dg.materialize([ranged_asset(lambda run_keys: events(run_keys[:1], spec["rows"], "killed"))],
                   resources={"io_manager": manager},
                   tags={"dagster/asset_partition_range_start": keys[0],
                         "dagster/asset_partition_range_end": keys[-1]})
"""


def staging_in_progress(lake: Lake) -> bool:
    """Whether the killed writer has put anything into staging yet (a file, or an upload)."""
    if lake.endpoint is None:
        staging = Path(lake.base_path, ".pq-staging")
        return any(path.stat().st_size > 1 << 20 for path in staging.glob("*.parquet"))
    staged, uploads = leftovers(lake)
    return bool(staged or uploads)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["backfill", "split"])
def test_a_killed_multi_partition_write_keeps_every_previous_version_and_its_staging_is_swept(
    lake: Lake, tmp_path: Path, kind: str
) -> None:
    keys = days(1, 2)
    if kind == "split":
        materialize_split(lake, events(keys, 100, "old"))
    else:
        backfill(lake, lambda run_keys: events(run_keys, 100, "old"), keys)
    before = etags(lake)
    # on S3, polars uploads a file in parts once it outgrows 32 MiB: 16M rows make 43 MB
    rows = MULTIPART_ROWS if lake.endpoint else 4_000_000
    spec = worker_spec(lake, keys, rows=rows, kind=kind)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, json.dumps(spec)],
            cwd=REPO,
            env=worker_environment(lake),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        reached = wait_for(lambda: staging_in_progress(lake), timeout=120, interval=0.05)
        assert reached, log_path.read_text()[-2000:]
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait()
    assert worker.returncode == -signal.SIGKILL

    assert etags(lake) == before  # nothing published
    staged, uploads = leftovers(lake)
    # everything left is the sink's own staging: flat staged names, which the sweep knows
    assert staged or uploads
    assert all(STAGED_NAME.fullmatch(path.removeprefix(".pq-staging/")) for path in staged)
    assert all(STAGED_NAME.fullmatch(key.rpartition("/")[2]) for key in uploads)
    if lake.endpoint is None:
        old = time.time() - 120
        for path in staged:
            os.utime(Path(lake.base_path, path), (old, old))
        store = LocalStore(lake.base_path)
        assert store.sweep(f"{lake.base_path}/.pq-staging", 60, 0) == len(staged)
    else:
        time.sleep(2.5)
        assert sweep_store_now(lake, 1) == len(staged) + len(uploads)
    assert leftovers(lake) == ([], [])
