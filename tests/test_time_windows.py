"""One time window = one directory, in every timezone; partition columns typed exactly.

Through `materialize()` on local disk, moto and radosgw: DST transitions, cron-based and
`fmt`-based definitions, columns finer than their partition, and outputs that carry the
partition key as Dagster formats it.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import MissingPartitionError, PartitionValueError
from tests.lake import Lake
from tests.test_io_manager import materialize, range_tags

AUTUMN_NY = dg.HourlyPartitionsDefinition(
    start_date="2025-11-01-00:00", end_date="2025-11-04-00:00", timezone="America/New_York"
)
SPRING_NY = dg.HourlyPartitionsDefinition(
    start_date="2025-03-08-00:00", end_date="2025-03-11-00:00", timezone="America/New_York"
)
# the hour 01:00 repeats on 2025-11-02: EDT (fold 0) then EST (fold 1), two Dagster keys
REPEATED = ["2025-11-02-01:00", "2025-11-02-01:00-0500"]
AUTUMN = ["2025-11-02-00:00", *REPEATED, "2025-11-02-02:00"]
# 02:00 does not exist on 2025-03-09: Dagster has no key for it
SPRING = ["2025-03-09-00:00", "2025-03-09-01:00", "2025-03-09-03:00", "2025-03-09-04:00"]


def start_of(definition: dg.TimeWindowPartitionsDefinition, key: str) -> dt.datetime:
    return definition.time_window_for_partition_key(key).start


def meter_assets(definition: dg.HourlyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """An hourly asset, a copy of one partition and a reader of all of it."""

    @dg.asset(partitions_def=definition, metadata={"partition_by": "hour"})
    def meter(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"key": [context.partition_key]})

    @dg.asset(partitions_def=definition, metadata={"partition_by": "hour"})
    def meter_copy(meter: pl.DataFrame) -> pl.DataFrame:
        return meter

    @dg.asset(ins={"meter": dg.AssetIn(metadata={"allow_missing_partitions": True})})
    def all_meters(meter: pl.DataFrame) -> pl.DataFrame:
        return meter.sort("hour")

    return [meter, meter_copy, all_meters]


def everything(lake: Lake, assets: list[dg.AssetsDefinition]) -> pl.DataFrame:
    result = materialize(lake, assets, selection=[assets[-1]])
    return result.output_for_node("all_meters")  # type: ignore[no-any-return]


def test_the_repeated_autumn_hour_has_two_directories_and_reads_back_two_instants(
    lake: Lake,
) -> None:
    meter, meter_copy, _ = assets = meter_assets(AUTUMN_NY)
    for key in AUTUMN:
        materialize(lake, [meter], partition_key=key)

    assert lake.files("meter/") == [
        "meter/hour=2025-11-02T04%3A00%3A00Z/data.parquet",
        "meter/hour=2025-11-02T05%3A00%3A00Z/data.parquet",
        "meter/hour=2025-11-02T06%3A00%3A00Z/data.parquet",
        "meter/hour=2025-11-02T07%3A00%3A00Z/data.parquet",
    ]
    for key in REPEATED:
        result = materialize(lake, [meter, meter_copy], selection=[meter_copy], partition_key=key)
        loaded = result.output_for_node("meter_copy")
        assert loaded.schema["hour"] == pl.Datetime("us", "America/New_York")
        assert loaded.rows() == [(key, start_of(AUTUMN_NY, key))]
    assert everything(lake, assets)["key"].to_list() == AUTUMN


def test_a_single_run_over_the_dst_change_splits_rows_by_instant(lake: Lake) -> None:
    @dg.asset(
        name="meter",
        partitions_def=AUTUMN_NY,
        metadata={"partition_by": "hour"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged(context: dg.AssetExecutionContext) -> pl.DataFrame:
        window = context.partition_time_window
        hours = pl.datetime_range(window.start, window.end, "1h", closed="left", eager=True)
        return pl.DataFrame({"hour": hours.dt.convert_time_zone("America/New_York")}).with_columns(
            key=pl.col("hour").dt.to_string("%H:%M %Z")
        )

    materialize(lake, [ranged], tags=range_tags(AUTUMN[0], AUTUMN[-1]))

    assert len(lake.files("meter/")) == len(AUTUMN)
    loaded = everything(lake, meter_assets(AUTUMN_NY))
    assert loaded["key"].to_list() == ["00:00 EDT", "01:00 EDT", "01:00 EST", "02:00 EST"]
    assert loaded["hour"].to_list() == [start_of(AUTUMN_NY, key) for key in AUTUMN]


def test_the_skipped_spring_hour_breaks_nothing(lake: Lake) -> None:
    assets = meter_assets(SPRING_NY)
    for key in SPRING:
        materialize(lake, assets[:1], partition_key=key)

    loaded = everything(lake, assets)
    assert loaded["key"].to_list() == SPRING
    gaps = loaded["hour"].dt.convert_time_zone("UTC").diff().drop_nulls().unique().to_list()
    assert gaps == [dt.timedelta(hours=1)]


@pytest.mark.parametrize(
    ("definition", "key", "directory"),
    [
        # 6-hourly windows whose keys print as dates and hours: the schedule decides the type
        (
            dg.TimeWindowPartitionsDefinition(
                cron_schedule="0 */6 * * *", start="2025-01-01-00:00", fmt="%Y-%m-%d-%H:%M"
            ),
            "2025-01-01-06:00",
            "t=2025-01-01T06%3A00%3A00Z",
        ),
        # daily windows starting at 06:00 are instants, not dates
        (
            dg.DailyPartitionsDefinition(
                start_date="2025-01-01", hour_offset=6, timezone="Asia/Kolkata"
            ),
            "2025-01-02",
            "t=2025-01-02T00%3A30%3A00Z",
        ),
        (
            dg.TimeWindowPartitionsDefinition(
                cron_schedule="*/15 * * * *", start="202501010000", fmt="%Y%m%d%H%M"
            ),
            "202501010015",
            "t=2025-01-01T00%3A15%3A00Z",
        ),
        (
            dg.MonthlyPartitionsDefinition(start_date="2025-01", fmt="%Y-%m"),
            "2025-02",
            "t=2025-02-01",
        ),
    ],
)
def test_cron_and_fmt_based_definitions_store_the_window_start(
    lake: Lake, definition: dg.TimeWindowPartitionsDefinition, key: str, directory: str
) -> None:
    @dg.asset(name="series", partitions_def=definition, metadata={"partition_by": "t"})
    def series(context: dg.AssetExecutionContext) -> pl.DataFrame:
        # the column holds the key as Dagster formats it: accepted and stored typed
        return pl.DataFrame({"t": [context.partition_key], "v": [1]})

    @dg.asset(name="series_copy", partitions_def=definition, metadata={"partition_by": "t"})
    def series_copy(series: pl.DataFrame) -> pl.DataFrame:
        return series

    materialize(lake, [series], partition_key=key)
    loaded = materialize(
        lake, [series, series_copy], selection=[series_copy], partition_key=key
    ).output_for_node("series_copy")

    assert lake.files("series/") == [f"series/{directory}/data.parquet"]
    start = start_of(definition, key)
    expected = start.date() if directory.count("T") == 0 else start
    assert loaded["t"].to_list() == [expected]


def test_a_datetime_column_finer_than_a_daily_partition_is_refused_never_truncated(
    lake: Lake,
) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="Europe/Berlin")

    def asset_with(times: list[dt.datetime]) -> dg.AssetsDefinition:
        @dg.asset(name="visits", partitions_def=daily, metadata={"partition_by": "date"})
        def visits() -> pl.DataFrame:
            column = pl.Series("date", times, dtype=pl.Datetime("us", "Europe/Berlin"))
            return pl.DataFrame({"date": column, "n": list(range(len(times)))})

        return visits

    berlin = ZoneInfo("Europe/Berlin")
    finer = [dt.datetime(2025, 1, 5, tzinfo=berlin), dt.datetime(2025, 1, 5, 10, tzinfo=berlin)]
    with pytest.raises(PartitionValueError, match=r"1 row\(s\) have 'date' values that are not"):
        materialize(lake, [asset_with(finer)], partition_key="2025-01-05")
    assert lake.files() == []

    midnight = [dt.datetime(2025, 1, 5, tzinfo=berlin)] * 2  # equals the window: accepted
    materialize(lake, [asset_with(midnight)], partition_key="2025-01-05")
    assert lake.files() == ["visits/date=2025-01-05/data.parquet"]


def test_a_range_run_refuses_a_finer_value_instead_of_truncating_it(lake: Lake) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2025-01-01")

    @dg.asset(
        name="visits",
        partitions_def=daily,
        metadata={"partition_by": "date"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def visits() -> pl.DataFrame:
        times = [dt.datetime(2025, 1, 5), dt.datetime(2025, 1, 6, 0, 0, 1)]
        return pl.DataFrame({"date": times, "n": [1, 2]})

    with pytest.raises(PartitionValueError, match=r"names no partition exactly"):
        materialize(lake, [visits], tags=range_tags("2025-01-05", "2025-01-06"))
    assert lake.files() == []


def test_dagster_formatted_keys_in_a_multi_partition_range_are_stored_typed(lake: Lake) -> None:
    multi = dg.MultiPartitionsDefinition(
        {
            "hour": dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00"),
            "site": dg.StaticPartitionsDefinition(["a", "b"]),
        }
    )

    @dg.asset(partitions_def=multi, metadata={"partition_by": {"hour": "hour", "site": "site"}})
    def probes(context: dg.AssetExecutionContext) -> pl.DataFrame:
        keys = context.partition_key.keys_by_dimension
        return pl.DataFrame({"hour": [keys["hour"]], "site": [keys["site"]], "v": [1]})

    key = dg.MultiPartitionKey({"hour": "2025-01-01-05:00", "site": "b"})
    materialize(lake, [probes], partition_key=key)

    assert lake.files() == ["probes/hour=2025-01-01T05%3A00%3A00Z/site=b/data.parquet"]
    assert lake.read("probes/hour=2025-01-01T05%3A00%3A00Z/site=b/data.parquet").columns == ["v"]


def test_split_datetime_values_keep_full_precision_and_years_before_1000(lake: Lake) -> None:
    epoch = pl.datetime(2024, 10, 4, time_unit="ns", time_zone="UTC")
    nanos = pl.select(epoch + pl.duration(nanoseconds=pl.Series([0, 1, 1_000, 10**9]))).to_series()
    ancient = pl.Series([dt.datetime(999, 1, 1, 0, 0, 0, 1), dt.datetime(999, 1, 1)])

    @dg.asset(metadata={"partition_by": ["at"]})
    def ticks() -> pl.DataFrame:
        return pl.DataFrame({"at": nanos, "n": [0, 1, 2, 3]})

    @dg.asset(metadata={"partition_by": ["era"]})
    def history() -> pl.DataFrame:
        return pl.DataFrame({"era": ancient, "n": [1, 2]})

    @dg.asset
    def ticks_copy(ticks: pl.DataFrame) -> pl.DataFrame:
        return ticks.sort("n")

    @dg.asset
    def history_copy(history: pl.DataFrame) -> pl.DataFrame:
        return history.sort("n")

    result = materialize(lake, [ticks, history, ticks_copy, history_copy])

    assert len(lake.files("ticks/")) == 4
    assert "history/era=0999-01-01T00%3A00%3A00.000001/data.parquet" in lake.files("history/")
    loaded = result.output_for_node("ticks_copy")["at"]
    assert loaded.dtype == pl.Datetime("ns", "UTC")
    assert loaded.to_list() == nanos.to_list()
    assert loaded.dt.nanosecond().to_list() == [0, 1, 1_000, 0]  # nanosecond-exact
    assert result.output_for_node("history_copy")["era"].to_list() == ancient.to_list()


UNSTORABLE = "k" * 300  # one path level longer than any store accepts
KEYS = dg.StaticPartitionsDefinition(["ok", UNSTORABLE, "__HIVE_DEFAULT_PARTITION__"])


@dg.asset(partitions_def=KEYS, metadata={"partition_by": "key"})
def keyed(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"key": [context.partition_key], "v": [1]})


@pytest.mark.parametrize(
    ("key", "message"),
    [(UNSTORABLE, "at most 255 bytes per level"), ("__HIVE_DEFAULT_PARTITION__", "reserved")],
)
def test_keys_that_cannot_be_stored_are_refused_before_anything_is_written(
    lake: Lake, key: str, message: str
) -> None:
    with pytest.raises(PartitionValueError, match=message):
        materialize(lake, [keyed], partition_key=key)
    assert lake.files() == []


def test_a_range_with_one_unstorable_key_writes_nothing(lake: Lake) -> None:
    @dg.asset(
        name="keyed",
        partitions_def=KEYS,
        metadata={"partition_by": "key"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged() -> pl.DataFrame:
        return pl.DataFrame({"key": ["ok", UNSTORABLE], "v": [1, 2]})

    with pytest.raises(PartitionValueError, match="at most 255 bytes per level"):
        materialize(lake, [ranged], tags=range_tags("ok", UNSTORABLE))
    assert lake.files() == []


def test_a_load_treats_a_key_that_can_never_be_stored_as_missing(lake: Lake) -> None:
    materialize(lake, [keyed], partition_key="ok")
    tolerant = dg.AssetIn(metadata={"allow_missing_partitions": True})

    @dg.asset(ins={"keyed": tolerant})
    def every_key(keyed: pl.DataFrame) -> pl.DataFrame:
        return keyed

    @dg.asset(name="every_key")
    def strict(keyed: pl.DataFrame) -> pl.DataFrame:
        return keyed

    loaded = materialize(lake, [keyed, every_key], selection=[every_key])
    assert loaded.output_for_node("every_key")["key"].to_list() == ["ok"]
    with pytest.raises(MissingPartitionError, match="partition value cannot be stored"):
        materialize(lake, [keyed, strict], selection=[strict])
