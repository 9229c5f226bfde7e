"""Spark, the engine most hive lakes are read with, reads what the IO manager writes.

Each dataset is written through `dagster.materialize()`, loaded back through the IO manager by a
downstream asset, and read by pyspark in local mode as a Spark user would: `basePath` set to the
asset's root, partition columns typed by inference where Spark can (dates) and by an explicit
schema where it cannot (ISO 8601 `...Z` instants, values that look like numbers). Spark must see
the same rows, the same types and the same instants as polars and as the frames written.
"""

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as spark_types

from tests.lake import Lake, local_lake
from tests.spark_session import (
    expected_spark_types,
    local_spark,
    polars_rows,
    read_hive,
    spark_rows,
    spark_types_of,
)
from tests.test_io_manager import materialize, range_tags

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    # pyspark 4.3 warns on import that it is not yet tested with pandas 3; no pandas is used here
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

NEW_YORK = "America/New_York"
DAILY = dg.DailyPartitionsDefinition(
    start_date="2025-01-01", end_date="2025-01-04", timezone=NEW_YORK
)
HOURLY = dg.HourlyPartitionsDefinition(
    start_date="2025-03-09-00:00", end_date="2025-11-03-00:00", timezone=NEW_YORK
)
# The hourly data is read back one New York day at a time, as a daily downstream asset would.
HOURLY_DAYS = dg.DailyPartitionsDefinition(
    start_date="2025-03-09", end_date="2025-11-03", timezone=NEW_YORK
)
# Spring forward (02:00 never happens: 23 hours) and fall back (01:00 twice: 25 hours).
DST_DAYS = ["2025-03-09", "2025-11-02"]
SPLIT_COLUMNS = ["country", "batch", "day", "at", "local_at"]
SPLIT_TYPES: dict[str, spark_types.DataType] = {
    "country": spark_types.StringType(),
    "batch": spark_types.LongType(),
    "day": spark_types.DateType(),
    "at": spark_types.TimestampType(),
    "local_at": spark_types.TimestampNTZType(),
}


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One local Spark session for the module (its start-up is most of the module's time)."""
    with local_spark(tmp_path_factory.mktemp("spark")) as session:
        yield session


def measurements(column: str, values: list[Any]) -> pl.DataFrame:
    """Two rows per partition value, with data columns of the types Spark maps one-to-one."""
    rows = [
        {
            column: value,
            "sensor": sensor,
            "reading": index + (0.25 if sensor == "a" else 0.75),
            "count": index * 10 + offset,
            "ok": sensor == "a",
            "seen_at": dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC) + dt.timedelta(minutes=index),
            "logged_at": dt.datetime(2025, 6, 1, 8, 0, 0, 123456) + dt.timedelta(hours=index),
            "label": "Zürich café" if sensor == "b" else None,
        }
        for index, value in enumerate(values)
        for offset, sensor in enumerate(["a", "b"])
    ]
    schema = {
        "seen_at": pl.Datetime("us", "UTC"),
        "logged_at": pl.Datetime("us"),
        "label": pl.String(),
    }
    return pl.DataFrame(rows, schema_overrides=schema)


def window_starts(
    partitions_def: dg.TimeWindowPartitionsDefinition, keys: Sequence[str]
) -> list[Any]:
    """The start instant of each key's time window (time-zone-aware)."""
    return [partitions_def.time_window_for_partition_key(key).start for key in keys]


def day_frame(keys: Sequence[str]) -> pl.DataFrame:
    """The daily asset's output for `keys`: `date` is each window's local start date."""
    return measurements("date", [start.date() for start in window_starts(DAILY, keys)])


def hour_frame(keys: Sequence[str]) -> pl.DataFrame:
    """The hourly asset's output for `keys`: `hour` is each window's start instant."""
    frame = measurements("hour", window_starts(HOURLY, keys))
    return frame.with_columns(pl.col("hour").dt.convert_time_zone(NEW_YORK))


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def daily_readings(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return day_frame(context.partition_keys)


@dg.asset(partitions_def=HOURLY, metadata={"partition_by": "hour"})
def hourly_readings(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return hour_frame(context.partition_keys)


def split_frame() -> pl.DataFrame:
    """An unpartitioned dataset split by string, integer, date and both kinds of Datetime.

    Instants with no, milli- and microsecond fractions and a year before 1000; none finer
    (Spark's TIMESTAMP holds microseconds). The column's zone is Asia/Kolkata (+05:30), so its
    UTC directory values are no whole-hour shift of its wall-clock times.
    """
    utc = dt.UTC
    frame = pl.DataFrame(
        {
            "country": ["fr", "fr", "a b:c/d", "007", "100%=x"],
            "batch": [1, 1, 2, -3, 40_000_000_000],
            "day": [
                dt.date(2025, 1, 1),
                dt.date(2025, 1, 1),
                dt.date(2024, 2, 29),
                dt.date(1999, 12, 31),
                dt.date(2025, 11, 2),
            ],
            "at": [
                dt.datetime(2025, 1, 1, tzinfo=utc),
                dt.datetime(2025, 1, 1, tzinfo=utc),
                dt.datetime(2025, 1, 1, 6, 30, 0, 250000, utc),
                dt.datetime(2024, 12, 31, 18, 29, 59, 999999, utc),
                dt.datetime(999, 6, 1, tzinfo=utc),
            ],
            "local_at": [
                dt.datetime(2025, 3, 30, 2, 30),
                dt.datetime(2025, 3, 30, 2, 30),
                dt.datetime(2025, 1, 1, 0, 0, 0, 500000),
                dt.datetime(2024, 12, 31, 23, 59, 59, 999999),
                dt.datetime(999, 6, 1, 0, 0, 0, 1000),
            ],
            "amount": [0.5, 1.5, 2.5, 3.5, 4.5],
        },
        schema_overrides={"at": pl.Datetime("us", "UTC"), "local_at": pl.Datetime("us")},
    )
    return frame.with_columns(pl.col("at").dt.convert_time_zone("Asia/Kolkata"))


@dg.asset(metadata={"partition_by": SPLIT_COLUMNS})
def split_readings() -> pl.DataFrame:
    return split_frame()


def io_manager_load(
    lake: Lake,
    upstream: dg.AssetsDefinition,
    partitions_def: dg.PartitionsDefinition | None = None,
    partition_keys: list[str | None] | None = None,
) -> pl.DataFrame:
    """What a downstream asset is handed by the IO manager (one run per downstream key)."""
    loaded: list[pl.DataFrame] = []

    @dg.asset(
        name=f"{upstream.key.path[-1]}_reader",
        ins={"upstream": dg.AssetIn(upstream.key)},
        partitions_def=partitions_def,
    )
    def reader(upstream: pl.DataFrame) -> None:
        loaded.append(upstream)

    for key in partition_keys or [None]:
        materialize(lake, [upstream, reader], selection=[reader], partition_key=key)
    return pl.concat(loaded)


def assert_same_as_polars(
    spark_frame: DataFrame, loaded: pl.DataFrame, written: pl.DataFrame
) -> list[dict[str, Any]]:
    """Spark, the IO manager's load and the written frames agree on rows, types and instants;
    returns Spark's rows."""
    assert spark_types_of(spark_frame) == expected_spark_types(loaded.schema)
    assert set(loaded.columns) == set(written.columns)
    from_spark = spark_rows(spark_frame)
    assert len(from_spark) == loaded.height == written.height
    assert from_spark == polars_rows(loaded)
    assert from_spark == polars_rows(written)
    return from_spark


def test_spark_reads_a_daily_dataset_with_typed_dates(tmp_path: Path, spark: SparkSession) -> None:
    lake = local_lake(tmp_path / "lake")
    keys = DAILY.get_partition_keys()
    materialize(lake, [daily_readings], tags=range_tags(keys[0], keys[-1]))
    loaded = io_manager_load(lake, daily_readings)

    # no schema given: Spark infers `date=2025-01-01` as a DATE, as it does for its own lakes
    frame = read_hive(spark, lake.uri("daily_readings"), {})

    assert loaded.schema["date"] == pl.Date
    assert frame.schema["date"].dataType == spark_types.DateType()
    rows = assert_same_as_polars(frame, loaded, day_frame(keys))
    # each New York day is its local start date, not the UTC date of its start instant
    assert {row["date"] for row in rows} == {
        dt.date(2025, 1, 1),
        dt.date(2025, 1, 2),
        dt.date(2025, 1, 3),
    }


def test_spark_reads_an_hourly_new_york_dataset_as_distinct_instants_across_dst(
    tmp_path: Path, spark: SparkSession
) -> None:
    lake = local_lake(tmp_path / "lake")
    keys_by_day = {day: hours_of_day(day) for day in DST_DAYS}
    for keys in keys_by_day.values():
        materialize(lake, [hourly_readings], tags=range_tags(keys[0], keys[-1]))
    loaded = io_manager_load(lake, hourly_readings, HOURLY_DAYS, list(DST_DAYS))
    written = pl.concat(hour_frame(keys) for keys in keys_by_day.values())

    # Spark does not infer ISO 8601 `...Z` values: a user names the column's type
    frame = read_hive(spark, lake.uri("hourly_readings"), {"hour": spark_types.TimestampType()})

    assert [len(keys) for keys in keys_by_day.values()] == [23, 25]
    assert "2025-11-02-01:00-0500" in keys_by_day["2025-11-02"]
    assert loaded.schema["hour"] == pl.Datetime("us", NEW_YORK)
    rows = assert_same_as_polars(frame, loaded, written)
    all_keys = [key for keys in keys_by_day.values() for key in keys]
    expected = {start.astimezone(dt.UTC) for start in window_starts(HOURLY, all_keys)}
    assert {row["hour"] for row in rows} == expected
    assert len(expected) == 48
    # the repeated autumn hour: two keys, two directories, two instants an hour apart, each
    # with its own two rows (a merged directory would hold four rows under one instant)
    for hour in [5, 6]:
        instant = dt.datetime(2025, 11, 2, hour, tzinfo=dt.UTC)
        assert len([row for row in rows if row["hour"] == instant]) == 2


def test_spark_reads_a_split_dataset_with_typed_split_columns(
    tmp_path: Path, spark: SparkSession
) -> None:
    lake = local_lake(tmp_path / "lake")
    materialize(lake, [split_readings])
    loaded = io_manager_load(lake, split_readings)

    # "007" would be inferred as the integer 7 and the instants as strings: a user says the types
    frame = read_hive(spark, lake.uri("split_readings"), SPLIT_TYPES)

    rows = assert_same_as_polars(frame, loaded, split_frame())
    assert {row["country"] for row in rows} == {"fr", "a b:c/d", "007", "100%=x"}


def test_spark_reads_non_ascii_split_values(tmp_path: Path, spark: SparkSession) -> None:
    @dg.asset(metadata={"partition_by": ["city"]})
    def cities() -> pl.DataFrame:
        return pl.DataFrame({"city": ["Zürich", "Kraków", "東京", "plain"], "rank": [1, 2, 3, 4]})

    lake = local_lake(tmp_path / "lake")
    materialize(lake, [cities])
    loaded = io_manager_load(lake, cities)

    frame = read_hive(spark, lake.uri("cities"), {"city": spark_types.StringType()})

    assert sorted(loaded["city"].to_list()) == sorted(["Zürich", "Kraków", "東京", "plain"])
    # Spark decodes each %XX escape as one Latin-1 character, so UTF-8 bytes escaped one by one
    # come back as mojibake ("KrakÃ³w"); Spark's own writer leaves non-ASCII characters as is
    assert spark_rows(frame) == polars_rows(loaded)


def hours_of_day(day: str) -> list[str]:
    """Every hourly key whose window starts on the New York day `day`, in order."""
    window = HOURLY_DAYS.time_window_for_partition_key(day)
    return list(HOURLY.get_partition_keys_in_time_window(window))
