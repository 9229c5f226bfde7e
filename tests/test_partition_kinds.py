"""Every kind of Dagster partition mapped to typed hive columns, and back, on every store."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import ConfigurationError
from tests.lake import Lake
from tests.test_io_manager import DAILY, materialize, orders, orders_for

TRICKY_KEYS = ["a/b", "k=v", "two words", "100%", "café ☕", "..", "../escape", "007"]
STATIC = dg.StaticPartitionsDefinition(TRICKY_KEYS)
HOURLY = dg.HourlyPartitionsDefinition(start_date="2024-01-01-00:00", end_date="2024-01-03-00:00")
REGIONS = dg.StaticPartitionsDefinition(["eu", "us"])
MULTI = dg.MultiPartitionsDefinition({"date": DAILY, "region": REGIONS})
DYNAMIC = dg.DynamicPartitionsDefinition(name="customers")


@dg.asset(partitions_def=STATIC, metadata={"partition_by": "label"})
def labelled(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"value": [len(context.partition_key)]})


@dg.asset
def all_labels(labelled: pl.DataFrame) -> pl.DataFrame:
    return labelled


@dg.asset(partitions_def=HOURLY, metadata={"partition_by": "hour"})
def readings(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"reading": [1.5]})


@dg.asset(partitions_def=HOURLY, metadata={"partition_by": "hour"})
def hourly_copy(readings: pl.DataFrame) -> pl.DataFrame:
    return readings


@dg.asset(partitions_def=MULTI, metadata={"partition_by": {"date": "day", "region": "region"}})
def sales(context: dg.AssetExecutionContext) -> pl.DataFrame:
    keys = context.partition_key.keys_by_dimension
    return pl.DataFrame({"region": [keys["region"]], "units": [3]})


@dg.asset
def all_sales(sales: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    return pl.concat([frame.collect() for frame in sales.values()]).sort("region")


@dg.asset(partitions_def=DYNAMIC, metadata={"partition_by": "customer"})
def accounts(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"balance": [10]})


@dg.asset(partitions_def=DYNAMIC, metadata={"partition_by": "customer"})
def account_copy(accounts: pl.DataFrame) -> pl.DataFrame:
    return accounts


def test_static_keys_with_special_characters_round_trip_inside_the_asset(lake: Lake) -> None:
    for key in TRICKY_KEYS:
        materialize(lake, [labelled], partition_key=key)

    files = lake.files()
    assert len(files) == len(TRICKY_KEYS)
    assert all(path.startswith("labelled/label=") and path.count("/") == 2 for path in files)
    result = materialize(lake, [labelled, all_labels], selection=[all_labels])
    loaded = result.output_for_node("all_labels")
    assert loaded.schema["label"] == pl.String
    assert sorted(loaded["label"].to_list()) == sorted(TRICKY_KEYS)
    assert all(length == len(label) for label, length in loaded.select("label", "value").rows())


def test_hourly_keys_become_datetime_columns(lake: Lake) -> None:
    materialize(lake, [readings], partition_key="2024-01-02-05:00")
    result = materialize(
        lake, [readings, hourly_copy], selection=[hourly_copy], partition_key="2024-01-02-05:00"
    )

    assert lake.files("readings") == ["readings/hour=2024-01-02T05%3A00%3A00Z/data.parquet"]
    loaded = result.output_for_node("hourly_copy")
    assert loaded.schema["hour"] == pl.Datetime("us", "UTC")
    assert loaded["hour"][0] == dt.datetime(2024, 1, 2, 5, tzinfo=dt.UTC)


def test_multi_partitions_make_one_level_per_dimension(lake: Lake) -> None:
    for date, region in [("2024-01-01", "eu"), ("2024-01-01", "us"), ("2024-01-02", "eu")]:
        key = dg.MultiPartitionKey({"date": date, "region": region})
        materialize(lake, [sales], partition_key=key)

    assert lake.files() == [
        "sales/day=2024-01-01/region=eu/data.parquet",
        "sales/day=2024-01-01/region=us/data.parquet",
        "sales/day=2024-01-02/region=eu/data.parquet",
    ]
    upstream = dg.AssetIn(metadata={"allow_missing_partitions": True})

    @dg.asset(ins={"sales": upstream}, name="all_sales")
    def all_sales_tolerant(sales: dict[str, pl.LazyFrame]) -> pl.DataFrame:
        return all_sales(sales)

    result = materialize(lake, [sales, all_sales_tolerant], selection=[all_sales_tolerant])
    loaded = result.output_for_node("all_sales")
    assert loaded.schema == pl.Schema({"units": pl.Int64, "day": pl.Date, "region": pl.String})
    assert loaded.height == 3


def test_dynamic_partitions(lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("customers", ["acme/eu", "globex"])
    resources = {"io_manager": lake.io_manager()}
    dg.materialize([accounts], partition_key="acme/eu", instance=instance, resources=resources)
    result = dg.materialize(
        [accounts, account_copy], partition_key="acme/eu", instance=instance, resources=resources
    )

    assert "accounts/customer=acme%2Feu/data.parquet" in lake.files()
    assert result.output_for_node("account_copy")["customer"].to_list() == ["acme/eu"]


def test_weekly_asset_reads_seven_daily_partitions_as_one_frame(lake: Lake) -> None:
    weekly = dg.WeeklyPartitionsDefinition(start_date="2024-01-07", end_date="2024-03-01")

    @dg.asset(partitions_def=weekly, metadata={"partition_by": "week"})
    def weekly_orders(orders: pl.LazyFrame) -> pl.DataFrame:
        return orders.group_by("date").agg(pl.len()).sort("date").collect()

    days = [f"2024-01-{day:02d}" for day in range(7, 14)]
    for key in days:
        materialize(lake, [orders], partition_key=key)
    result = materialize(
        lake, [orders, weekly_orders], selection=[weekly_orders], partition_key="2024-01-07"
    )

    loaded = result.output_for_node("weekly_orders")
    assert loaded["date"].to_list() == [dt.date.fromisoformat(day) for day in days]
    assert lake.files("weekly_orders") == ["weekly_orders/week=2024-01-07/data.parquet"]


def test_partitioned_asset_without_partition_by_is_refused_with_the_fix(lake: Lake) -> None:
    @dg.asset(partitions_def=DAILY)
    def unlabelled() -> pl.DataFrame:
        return orders_for("2024-01-01")

    with pytest.raises(ConfigurationError, match=r"add metadata=\{'partition_by': 'column_name'\}"):
        materialize(lake, [unlabelled], partition_key="2024-01-01")
    assert lake.files() == []


def test_multi_partitioned_asset_with_wrong_partition_by_names_the_dimensions(lake: Lake) -> None:
    @dg.asset(partitions_def=MULTI, metadata={"partition_by": "date"})
    def wrong() -> pl.DataFrame:
        return orders_for("2024-01-01")

    key = dg.MultiPartitionKey({"date": "2024-01-01", "region": "eu"})
    with pytest.raises(
        ConfigurationError, match=r"'partition_by': \{'date': 'date', 'region': 'region'\}"
    ):
        materialize(lake, [wrong], partition_key=key)


def test_existing_partition_column_must_equal_the_key(lake: Lake) -> None:
    from pq_io_manager import PartitionValueError

    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def carrying(context: dg.AssetExecutionContext) -> pl.DataFrame:
        dates = [dt.date(2024, 1, 5)] * 3 + [dt.date(2024, 1, 6)]
        return orders_for(context.partition_key).with_columns(date=pl.Series(dates))

    with pytest.raises(
        PartitionValueError,
        match=r"1 row\(s\) have 'date' values that are not exactly the partition's value '2024",
    ):
        materialize(lake, [carrying], partition_key="2024-01-05")
    assert lake.files() == []


def test_lazy_output_with_mismatching_row_writes_nothing(lake: Lake) -> None:
    from pq_io_manager import PartitionValueError

    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def carrying(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        return orders_for(context.partition_key).lazy().with_columns(date=pl.lit("2024-01-06"))

    materialize(lake, [orders], partition_key="2024-01-05")
    before = lake.read("orders/date=2024-01-05/data.parquet")
    with pytest.raises(
        PartitionValueError, match=r"does not match the partition key.*date=2024-01-06"
    ):
        materialize(lake, [carrying], partition_key="2024-01-05")
    assert lake.files() == ["orders/date=2024-01-05/data.parquet"]
    assert lake.read("orders/date=2024-01-05/data.parquet").equals(before)


def test_matching_partition_column_is_accepted_and_cast(lake: Lake) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def carrying(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        return (
            orders_for(context.partition_key)
            .lazy()
            .with_columns(date=pl.lit(context.partition_key))
        )

    materialize(lake, [carrying], partition_key="2024-01-05")
    assert lake.read("orders/date=2024-01-05/data.parquet").columns == [
        "order_id",
        "amount",
        "country",
    ]
