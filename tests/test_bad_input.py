"""Bad input gives a clear error and writes nothing (the previous version stays whole)."""

import datetime as dt
import re
import time
import uuid

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import (
    ConfigurationError,
    PartitionedParquetIOManager,
    PartitionValueError,
    WriteError,
)
from tests.faults_support import DAILY, etags, expected, leftovers, payload, s3_resource
from tests.lake import Lake
from tests.servers import S3Endpoint
from tests.test_faults import events_asset
from tests.test_io_manager import range_tags


def write(lake: Lake, asset: dg.AssetsDefinition, **kwargs: object) -> None:
    dg.materialize([asset], resources={"io_manager": lake.io_manager()}, **kwargs)


def seed(lake: Lake) -> dict[str, str]:
    write(lake, events_asset(lambda key: payload(key, 100)), partition_key="2024-01-05")
    return etags(lake)


def unchanged(lake: Lake, before: dict[str, str]) -> None:
    assert etags(lake) == before
    assert lake.read("events/date=2024-01-05/data.parquet").equals(expected("2024-01-05", 100))
    assert leftovers(lake) == ([], [])


@pytest.mark.parametrize(
    ("partition_by", "message"),
    [
        (42, r"'partition_by' is 42: add metadata=\{'partition_by': 'column_name'\}"),
        (["date"], r"'partition_by' is \['date'\]"),
        ({"date": "date"}, r"'partition_by' is \{'date': 'date'\}"),
        ("", r"'' is not a usable partition column name"),
        ("a/b", r"'a/b' is not a usable partition column name"),
        ("x=y", r"'x=y' is not a usable partition column name"),
        ("..", r"'\.\.' is not a usable partition column name"),
    ],
)
def test_malformed_partition_by_of_a_partitioned_asset(
    lake: Lake, partition_by: object, message: str
) -> None:
    before = seed(lake)

    @dg.asset(name="events", partitions_def=DAILY, metadata={"partition_by": partition_by})
    def events(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return expected(context.partition_key, 10)

    with pytest.raises(ConfigurationError, match=message):
        write(lake, events, partition_key="2024-01-05")
    unchanged(lake, before)


@pytest.mark.parametrize(
    ("partition_by", "message"),
    [
        ([], r"must be a list of column names .* not \[\]"),
        ({"country": "country"}, r"must be a list of column names"),
        (7, r"must be a list of column names .* not 7"),
        (["country", "country"], r"repeats a column"),
        (["a/b"], r"'a/b' is not a usable partition column name"),
        ([None], r"None is not a usable partition column name"),
    ],
)
def test_malformed_partition_by_of_an_unpartitioned_asset(
    lake: Lake, partition_by: object, message: str
) -> None:
    @dg.asset(metadata={"partition_by": partition_by})
    def customers() -> pl.DataFrame:
        return pl.DataFrame({"country": ["fr"], "a/b": [1]})

    with pytest.raises(ConfigurationError, match=message):
        write(lake, customers)
    assert lake.files() == []


def with_dates(key: str, dates: list[dt.date | None]) -> pl.DataFrame:
    return expected(key, len(dates)).with_columns(date=pl.Series(dates, dtype=pl.Date))


def test_null_partition_column_in_a_single_partition_write(lake: Lake) -> None:
    before = seed(lake)
    day = dt.date(2024, 1, 5)
    eager = events_asset(lambda key: with_dates(key, [day, None, day]))
    lazy = events_asset(lambda key: with_dates(key, [day, None, day]).lazy())

    with pytest.raises(PartitionValueError, match=r"1 row\(s\) have 'date' values .*None"):
        write(lake, eager, partition_key="2024-01-05")
    with pytest.raises(PartitionValueError, match=r"does not match the partition key.*date=null"):
        write(lake, lazy, partition_key="2024-01-05")
    unchanged(lake, before)


def test_null_partition_column_in_a_range_write(lake: Lake) -> None:
    before = seed(lake)

    @dg.asset(
        name="events",
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        return with_dates("2024-01-05", [dt.date(2024, 1, 5), None, dt.date(2024, 1, 6)]).lazy()

    tags = range_tags("2024-01-05", "2024-01-06")
    with pytest.raises(
        PartitionValueError,
        match=r"1 row\(s\) have a 'date' value that names no partition exactly \(e.g. None\)",
    ):
        write(lake, ranged, tags=tags)
    unchanged(lake, before)


def test_partition_column_of_the_wrong_type_in_a_range_write(lake: Lake) -> None:
    @dg.asset(
        name="events",
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"date": ["2024-01-05", "yesterday"], "value": [1, 2]})

    tags = range_tags("2024-01-05", "2024-01-06")
    with pytest.raises(
        PartitionValueError,
        match=r"1 row\(s\) have a 'date' value that names no partition exactly \(e.g. 'yester",
    ):
        write(lake, ranged, tags=tags)
    assert lake.files() == []


@pytest.mark.s3
def test_bucket_that_does_not_exist(s3_endpoint: S3Endpoint) -> None:
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    manager = PartitionedParquetIOManager(
        base_path=f"s3://{missing}/lake", s3=s3_resource(s3_endpoint)
    )
    asset = events_asset(lambda key: payload(key, 10))
    started = time.monotonic()
    with pytest.raises(WriteError, match=rf"(?s)s3://{missing}/lake/events.*NoSuchBucket"):
        dg.materialize([asset], partition_key="2024-01-05", resources={"io_manager": manager})
    assert time.monotonic() - started < 30
    listed = s3_endpoint.client().list_buckets()["Buckets"]
    assert missing not in [bucket["Name"] for bucket in listed]


@pytest.mark.parametrize(
    ("base_path", "message"),
    [
        ("s3://Not_A_Bucket/lake", r"does not name a valid S3 bucket \('Not_A_Bucket'\)"),
        ("s3:///lake", r"does not name a valid S3 bucket"),
        ("s3://bucket/../escape", r"has the path segment '\.\.'"),
        ("gs://bucket/lake", r"unsupported scheme"),
        ("   ", r"base_path is empty"),
    ],
)
def test_base_path_that_is_not_a_valid_uri(base_path: str, message: str) -> None:
    manager = PartitionedParquetIOManager(base_path=base_path)
    asset = events_asset(lambda key: payload(key, 10))
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        dg.materialize([asset], partition_key="2024-01-05", resources={"io_manager": manager})
    cause = raised.value.__cause__
    assert isinstance(cause, ConfigurationError)
    assert re.search(message, str(cause)), str(cause)
