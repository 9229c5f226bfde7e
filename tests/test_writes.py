"""Replacement, ranges, splits, failures and bad outputs, through `materialize()` on every store."""

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import (
    ConfigurationError,
    PartitionValueError,
    QueryError,
    SchemaConflictError,
)
from tests.lake import Lake
from tests.test_io_manager import DAILY, materialize, orders, orders_for, range_tags


def dated_orders(keys: list[str]) -> pl.DataFrame:
    """Orders of several days, each row carrying its `date`."""
    return pl.concat(orders_for(key).with_columns(date=pl.lit(key).str.to_date()) for key in keys)


def test_single_run_backfill_writes_each_partition_from_its_rows(lake: Lake) -> None:
    @dg.asset(
        name="orders",
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        keys = context.partition_keys
        return dated_orders([key for key in keys if key != "2024-01-03"]).lazy()

    result = dg.materialize(
        [ranged],
        resources={"io_manager": lake.io_manager()},
        tags=range_tags("2024-01-01", "2024-01-04"),
    )

    assert lake.files() == [f"orders/date=2024-01-0{day}/data.parquet" for day in range(1, 5)]
    assert lake.read("orders/date=2024-01-02/data.parquet").equals(orders_for("2024-01-02"))
    empty = lake.read("orders/date=2024-01-03/data.parquet")
    assert empty.height == 0
    assert empty.schema == orders_for("2024-01-01").schema
    # each partition's materialization names its own directory; the run's output, the root
    metadata = result.asset_materializations_for_node("orders")[0].metadata
    assert metadata["dagster/uri"].value == lake.uri("orders/date=2024-01-01")
    assert handled_output_metadata(result)["dagster/uri"].value == lake.uri("orders")


def handled_output_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dg.MetadataValue]:
    """The metadata of the run's (one) handled output: totals over all its partitions."""
    [event] = [event for event in result.all_events if event.is_handled_output]
    return dict(event.event_specific_data.metadata)  # type: ignore[union-attr]


def ranged_orders() -> dg.AssetsDefinition:
    """`orders`, written for a whole range of days in one run."""

    @dg.asset(
        name="orders",
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return dated_orders(context.partition_keys)

    return ranged


def test_rewriting_partitions_never_removes_other_tools_files(lake: Lake) -> None:
    # files another tool left: inside partitions about to be rewritten, and in 2024-01-09,
    # whose path shares the range's prefix "date=2024-01-0" but is not part of the run; only
    # data.parquet is ours, so the others stay (issue 8, property 1)
    strays = [f"orders/date=2024-01-0{day}/part-0.parquet" for day in (2, 3, 5, 9)]
    for stray in strays:
        lake.put(stray, b"not ours")

    result = dg.materialize(
        [ranged_orders()],
        resources={"io_manager": lake.io_manager()},
        tags=range_tags("2024-01-01", "2024-01-04"),
    )
    materialize(lake, [orders], partition_key="2024-01-05")

    written = [f"orders/date=2024-01-0{day}/data.parquet" for day in range(1, 6)]
    assert lake.files() == sorted([*written, *strays])
    metadata = handled_output_metadata(result)
    assert metadata["size_bytes"].value == sum(lake.size(path) for path in written[:4])


def test_range_output_with_a_row_outside_the_range_writes_nothing(lake: Lake) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def ranged(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return dated_orders(["2024-01-01", "2024-01-09"])

    tags = range_tags("2024-01-01", "2024-01-02")
    with pytest.raises(PartitionValueError, match=r"outside the run's partitions.*2024-01-09"):
        dg.materialize([ranged], resources={"io_manager": lake.io_manager()}, tags=tags)
    assert lake.files() == []


def test_unpartitioned_asset_split_by_column_replaces_stale_directories(lake: Lake) -> None:
    countries = {"values": ["fr", "de", "us"]}

    @dg.asset(metadata={"partition_by": ["country"]})
    def customers() -> pl.DataFrame:
        return pl.DataFrame({"country": countries["values"], "count": [1, 2, 3]})

    @dg.asset
    def customer_copy(customers: pl.DataFrame) -> pl.DataFrame:
        return customers

    materialize(lake, [customers])
    countries["values"] = ["fr", "it", "it"]
    result = materialize(lake, [customers, customer_copy])

    assert lake.files("customers") == [
        "customers/country=fr/data.parquet",
        "customers/country=it/data.parquet",
    ]
    loaded = result.output_for_node("customer_copy").sort("count")
    assert loaded.rows() == [(1, "fr"), (2, "it"), (3, "it")]
    assert (
        result.asset_materializations_for_node("customers")[0].metadata["dagster/row_count"].value
        == 3
    )


def test_unpartitioned_asset_is_replaced_whole(lake: Lake) -> None:
    @dg.asset(name="customers", metadata={"partition_by": ["country"]})
    def split() -> pl.DataFrame:
        return pl.DataFrame({"country": ["fr", "de"], "count": [1, 2]})

    @dg.asset(name="customers")
    def whole() -> pl.LazyFrame:
        return pl.LazyFrame({"country": ["fr"], "count": [7]})

    materialize(lake, [split])
    materialize(lake, [whole])

    assert lake.files() == ["customers/data.parquet"]
    assert lake.read("customers/data.parquet").rows() == [("fr", 7)]


def test_split_by_a_column_the_output_lacks_is_refused(lake: Lake) -> None:
    @dg.asset(metadata={"partition_by": ["region"]})
    def customers() -> pl.DataFrame:
        return pl.DataFrame({"country": ["fr"]})

    with pytest.raises(
        ConfigurationError, match=r"partition_by names \['region'\].*columns: \['country'\]"
    ):
        materialize(lake, [customers])
    assert lake.files() == []


def test_lazy_output_failing_mid_stream_keeps_the_previous_version(lake: Lake) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def failing(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        rows = pl.LazyFrame({"text": [str(index) for index in range(200_000)] + ["not a number"]})
        return rows.select(order_id=pl.col("text").str.to_integer(strict=True))

    materialize(lake, [orders], partition_key="2024-01-05")
    before = lake.read("orders/date=2024-01-05/data.parquet")

    # the user's own query failed: reported as such, not as a storage problem
    with pytest.raises(
        QueryError, match=r"(?s)asset 'orders' partition '2024-01-05'.*query failed.*previous"
    ):
        materialize(lake, [failing], partition_key="2024-01-05")

    assert lake.files() == ["orders/date=2024-01-05/data.parquet"]
    assert lake.read("orders/date=2024-01-05/data.parquet").equals(before)


def test_conflicting_schema_is_refused_before_writing(lake: Lake) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def retyped(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return orders_for(context.partition_key).with_columns(pl.col("order_id").cast(pl.String))

    materialize(lake, [orders], partition_key="2024-01-05")
    with pytest.raises(SchemaConflictError, match=r"'order_id' is String in this output but Int64"):
        materialize(lake, [retyped], partition_key="2024-01-06")
    assert lake.files() == ["orders/date=2024-01-05/data.parquet"]


def test_added_nullable_column_is_allowed_and_reads_as_null(lake: Lake) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def widened(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return orders_for(context.partition_key).with_columns(note=pl.lit("new"))

    @dg.asset(
        partitions_def=dg.WeeklyPartitionsDefinition(start_date="2024-01-07"),
        metadata={"partition_by": "week"},
    )
    def week(orders: pl.LazyFrame) -> pl.DataFrame:
        return orders.collect()

    materialize(lake, [orders], partition_key="2024-01-07")
    materialize(lake, [widened], partition_key="2024-01-08")
    upstream = dg.AssetIn(metadata={"allow_missing_partitions": True})

    @dg.asset(
        name="week",
        ins={"orders": upstream},
        partitions_def=week.partitions_def,
        metadata={"partition_by": "week"},
    )
    def tolerant_week(orders: pl.LazyFrame) -> pl.DataFrame:
        return week(orders)

    result = materialize(
        lake, [widened, tolerant_week], selection=[tolerant_week], partition_key="2024-01-07"
    )
    notes = result.output_for_node("week").sort("date")["note"].to_list()
    assert notes == [None] * 4 + ["new"] * 4


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": [1]}, r"the output is a builtins\.dict, but .* polars DataFrame or LazyFrame"),
        (None, r"the output is None\. Return a polars DataFrame/LazyFrame"),
    ],
)
def test_outputs_that_are_not_polars_frames_are_refused(
    lake: Lake, value: object, message: str
) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def wrong(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
        return value

    with pytest.raises(ConfigurationError, match=message):
        materialize(lake, [wrong], partition_key="2024-01-05")
    assert lake.files() == []


def test_pandas_output_is_refused(lake: Lake) -> None:
    pandas = pytest.importorskip("pandas")

    @dg.asset
    def frame():  # type: ignore[no-untyped-def]
        return pandas.DataFrame({"a": [1]})

    with pytest.raises(ConfigurationError, match=r"pandas.*DataFrame.*pl\.from_pandas"):
        materialize(lake, [frame])
