"""Dagster input and output shapes through `materialize()`: empty inputs, Optional annotations."""

from typing import Any, Optional

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import ConfigurationError, MissingPartitionError
from tests.lake import Lake
from tests.test_io_manager import DAILY, materialize, orders, orders_for

ORDERS_SCHEMA = pl.Schema(
    {"order_id": pl.Int64, "amount": pl.Float64, "country": pl.String, "date": pl.Date}
)
PREVIOUS_DAY = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def previous_day_asset(received: dict[str, Any], annotation: Any = pl.LazyFrame) -> Any:
    """An asset reading yesterday's orders; it records what its input was handed."""

    def compute(context: dg.AssetExecutionContext, orders: Any) -> pl.DataFrame:
        received["orders"] = orders
        return pl.DataFrame({"n": [0]})

    compute.__annotations__["orders"] = annotation
    return dg.asset(
        name="previous_day",
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        ins={"orders": dg.AssetIn(partition_mapping=PREVIOUS_DAY)},
    )(compute)


def test_input_mapped_to_no_partition_gets_the_stored_schema(lake: Lake) -> None:
    received: dict[str, Any] = {}
    materialize(lake, [orders], partition_key="2024-01-01")

    # the first day has no previous day: Dagster maps the input to zero partitions
    materialize(
        lake,
        [orders, previous_day_asset(received)],
        selection=["previous_day"],
        partition_key="2024-01-01",
    )

    loaded = received["orders"]
    assert isinstance(loaded, pl.LazyFrame)
    assert loaded.collect_schema() == ORDERS_SCHEMA
    assert loaded.collect().height == 0


def test_input_mapped_to_no_partition_of_an_empty_dataset_gets_its_partition_columns(
    lake: Lake,
) -> None:
    received: dict[str, Any] = {}
    downstream = previous_day_asset(received, pl.DataFrame)

    materialize(lake, [orders, downstream], selection=["previous_day"], partition_key="2024-01-01")

    loaded = received["orders"]
    assert isinstance(loaded, pl.DataFrame)
    assert loaded.schema == pl.Schema({"date": pl.Date})
    assert loaded.height == 0


def test_dict_input_mapped_to_no_partition_is_empty(lake: Lake) -> None:
    received: dict[str, Any] = {}
    downstream = previous_day_asset(received, dict[str, pl.DataFrame])

    materialize(lake, [orders, downstream], selection=["previous_day"], partition_key="2024-01-01")

    assert received["orders"] == {}


def test_all_partitions_missing_under_allow_missing_gets_the_stored_schema(lake: Lake) -> None:
    received: dict[str, Any] = {}

    @dg.asset(
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        ins={"orders": dg.AssetIn(metadata={"allow_missing_partitions": True})},
    )
    def tolerant(orders: pl.DataFrame) -> pl.DataFrame:
        received["orders"] = orders
        return pl.DataFrame({"n": [orders.height]})

    materialize(lake, [orders], partition_key="2024-01-02")
    materialize(lake, [orders, tolerant], selection=[tolerant], partition_key="2024-01-05")

    assert received["orders"].schema == ORDERS_SCHEMA
    assert received["orders"].height == 0


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (Optional[pl.DataFrame], pl.DataFrame),  # noqa: UP045 (the spelling under test)
        (pl.DataFrame | None, pl.DataFrame),
        (Optional[pl.LazyFrame], pl.LazyFrame),  # noqa: UP045
        (pl.LazyFrame | None, pl.LazyFrame),
    ],
    ids=["Optional-DataFrame", "DataFrame-or-None", "Optional-LazyFrame", "LazyFrame-or-None"],
)
def test_optional_input_annotations_are_honoured(
    lake: Lake, annotation: Any, expected: type
) -> None:
    received: dict[str, Any] = {}

    def compute(orders: Any) -> pl.DataFrame:
        received["orders"] = orders
        return pl.DataFrame({"n": [1]})

    compute.__annotations__["orders"] = annotation
    reader = dg.asset(name="reader", partitions_def=DAILY, metadata={"partition_by": "date"})(
        compute
    )

    materialize(lake, [orders], partition_key="2024-01-05")
    materialize(lake, [orders, reader], selection=[reader], partition_key="2024-01-05")

    loaded = received["orders"]
    assert type(loaded) is expected
    frame = received["orders"]
    frame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    assert frame.drop("date").equals(orders_for("2024-01-05"))


def test_optional_input_of_a_missing_upstream_gets_none(lake: Lake) -> None:
    received: dict[str, Any] = {}

    @dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
    def reader(orders: Optional[pl.DataFrame]) -> pl.DataFrame:  # noqa: UP045
        received["orders"] = orders
        return pl.DataFrame({"n": [0 if orders is None else orders.height]})

    materialize(lake, [orders, reader], selection=[reader], partition_key="2024-01-05")

    assert received == {"orders": None}


def test_plain_input_of_a_missing_upstream_still_raises(lake: Lake) -> None:
    @dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
    def reader(orders: pl.DataFrame) -> pl.DataFrame:
        return orders

    with pytest.raises(MissingPartitionError, match=r"asset 'orders'.*2024-01-05"):
        materialize(lake, [orders, reader], selection=[reader], partition_key="2024-01-05")


def test_optional_output_none_writes_nothing_and_plain_none_is_refused(lake: Lake) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def maybe(context: dg.AssetExecutionContext) -> pl.DataFrame | None:
        return None

    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def always(context: dg.AssetExecutionContext) -> Any:
        return None

    materialize(lake, [maybe], partition_key="2024-01-05")
    assert lake.files("orders") == []
    with pytest.raises(ConfigurationError, match=r"asset 'orders'.*the output is None"):
        materialize(lake, [always], partition_key="2024-01-05")
    assert lake.files("orders") == []
