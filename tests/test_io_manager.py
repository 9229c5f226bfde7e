"""The IO manager through `dagster.materialize()`, as a user runs it, on every store."""

import datetime as dt
import os
import re

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import MissingPartitionError
from tests.lake import Lake

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")


def orders_for(key: str, rows: int = 4) -> pl.DataFrame:
    """Deterministic orders of one day."""
    seed = int(key.replace("-", ""))
    return pl.DataFrame(
        {
            "order_id": [seed * 100 + index for index in range(rows)],
            "amount": [float(index) + 0.5 for index in range(rows)],
            "country": ["fr", "de", "fr", "us"][:rows] if rows <= 4 else ["fr"] * rows,
        }
    )


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def orders(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return orders_for(context.partition_key)


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def daily_totals(context: dg.AssetExecutionContext, orders: pl.LazyFrame) -> pl.LazyFrame:
    return orders.group_by("date").agg(pl.col("amount").sum().alias("total"))


def materialize(lake: Lake, assets: list, **kwargs: object) -> dg.ExecuteInProcessResult:
    """Materialize with this lake's IO manager; raise on failure."""
    return dg.materialize(assets, resources={"io_manager": lake.io_manager()}, **kwargs)


def range_tags(first: str, last: str) -> dict[str, str]:
    """The run tags of a single run covering the partitions `first`..`last`."""
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


def test_daily_partition_lands_in_its_hive_directory(lake: Lake) -> None:
    materialize(lake, [orders], partition_key="2024-01-05")

    assert lake.files() == ["orders/date=2024-01-05/data.parquet"]
    stored = lake.read("orders/date=2024-01-05/data.parquet")
    # hive datasets keep the partition value in the path, not in the file
    assert stored.columns == ["order_id", "amount", "country"]
    assert stored.equals(orders_for("2024-01-05"))


def test_downstream_reads_its_partition_lazily_with_typed_column(lake: Lake) -> None:
    for key in ["2024-01-05", "2024-01-06"]:
        materialize(lake, [orders, daily_totals], partition_key=key)

    result = materialize(
        lake, [orders, daily_totals], selection=[daily_totals], partition_key="2024-01-06"
    )

    totals = result.output_for_node("daily_totals").collect()
    assert totals.schema == pl.Schema({"date": pl.Date, "total": pl.Float64})
    assert totals.rows() == [(dt.date(2024, 1, 6), 8.0)]


def test_rematerializing_replaces_exactly_that_partition(lake: Lake) -> None:
    rows = {"count": 4}

    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def changing(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return orders_for(context.partition_key, rows["count"])

    materialize(lake, [changing], partition_key="2024-01-01")
    materialize(lake, [changing], partition_key="2024-01-02")
    before = lake.read("orders/date=2024-01-01/data.parquet")
    rows["count"] = 2
    materialize(lake, [changing], partition_key="2024-01-02")

    assert lake.files() == [
        "orders/date=2024-01-01/data.parquet",
        "orders/date=2024-01-02/data.parquet",
    ]
    assert lake.read("orders/date=2024-01-02/data.parquet").height == 2
    assert lake.read("orders/date=2024-01-01/data.parquet").equals(before)


def test_output_metadata_and_log(lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(lake, [orders], partition_key="2024-01-05", instance=instance)

    metadata = result.asset_materializations_for_node("orders")[0].metadata
    assert metadata["dagster/partition_row_count"].value == 4
    schema = metadata["dagster/column_schema"].value
    assert [(column.name, column.type) for column in schema.columns] == [
        ("order_id", "i64"),
        ("amount", "f64"),
        ("country", "str"),
    ]
    assert metadata["dagster/uri"].value == lake.uri("orders/date=2024-01-05")
    assert metadata["size_bytes"].value > 0
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    written = [message for message in messages if message.startswith("wrote 4 rows")]
    assert len(written) == 1
    assert lake.uri("orders/date=2024-01-05/data.parquet") in written[0]


@dg.asset(
    name="orders",
    partitions_def=DAILY,
    metadata={"partition_by": "date"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def ranged_orders(context: dg.AssetExecutionContext) -> pl.DataFrame:
    """The orders of every day of the run's range, with their `date`."""
    return pl.concat(
        orders_for(key).with_columns(date=pl.lit(key).str.to_date())
        for key in context.partition_keys
    )


def test_a_run_over_several_partitions_logs_one_line_for_its_files(lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    tags = range_tags("2024-01-05", "2024-01-07")
    result = materialize(lake, [ranged_orders], tags=tags, instance=instance)

    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    written = [message for message in messages if message.startswith("wrote ")]
    assert len(written) == 1  # each log line is an event Dagster stores: not one per partition
    assert re.fullmatch(
        rf"wrote 12 rows \(\d+ bytes\) in 3 files under {re.escape(lake.uri('orders'))}, e\.g\. "
        r"4 rows to \S+/date=2024-01-0\d/data\.parquet; each partition's rows and size are in "
        r"its materialization's metadata",
        written[0],
    )
    rows = [
        m.metadata["dagster/partition_row_count"].value
        for m in result.asset_materializations_for_node("orders")
    ]
    assert rows == [4, 4, 4]


def test_missing_upstream_partition_names_asset_key_and_path(lake: Lake) -> None:
    materialize(lake, [orders], partition_key="2024-01-05")

    with pytest.raises(
        MissingPartitionError, match=r"asset 'orders'.*'2024-01-07'.*date=2024-01-07/data\.parquet"
    ):
        materialize(
            lake, [orders, daily_totals], selection=[daily_totals], partition_key="2024-01-07"
        )
    assert issubclass(MissingPartitionError, FileNotFoundError)


def test_empty_frame_keeps_schema(lake: Lake) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def empty(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return orders_for(context.partition_key).clear()

    materialize(lake, [empty], partition_key="2024-01-03")
    result = materialize(
        lake, [empty, daily_totals], selection=[daily_totals], partition_key="2024-01-03"
    )

    stored = lake.read("orders/date=2024-01-03/data.parquet")
    assert stored.height == 0
    assert stored.schema == orders_for("2024-01-01").schema
    assert result.output_for_node("daily_totals").collect().height == 0


def test_no_local_staging_files(
    lake: Lake, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = os.path.join(str(tmp_path), "cwd")
    temporary = os.path.join(str(tmp_path), "tmpdir")
    os.makedirs(work)
    os.makedirs(temporary)
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", temporary)

    materialize(lake, [orders, daily_totals], partition_key="2024-01-05")

    assert os.listdir(work) == []
    assert os.listdir(temporary) == []
    assert not [path for path in lake.files() if ".pq-staging" in path]
