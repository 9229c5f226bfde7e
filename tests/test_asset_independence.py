"""Assets whose keys extend one another never see or touch each other's files, and files other
tools drop into a dataset never break a load, a schema check or a write, and are never deleted
(issue 8, property 1, storage side), on every store."""

from typing import Any

import dagster as dg
import polars as pl
import pytest

from tests.lake import Lake
from tests.test_io_manager import DAILY, materialize, orders, orders_for

OTHER_TOOLS = [
    "_SUCCESS",
    ".part-0.parquet.crc",
    ".hidden",
    "README.md",
    "part-0.parquet",
]


def split_orders(rows: dict[str, Any]) -> dg.AssetsDefinition:
    """An unpartitioned `orders` split by country."""

    @dg.asset(name="orders", metadata={"partition_by": ["country"]})
    def split() -> pl.DataFrame:
        return pl.DataFrame(rows)

    return split


def extended(name: str, frame: pl.DataFrame, **metadata: Any) -> dg.AssetsDefinition:
    """An asset keyed `orders/{name}` (its files live below `orders/`)."""

    @dg.asset(key=["orders", name], metadata=metadata)
    def clean() -> pl.DataFrame:
        return frame

    return clean


def test_replacing_a_split_asset_keeps_assets_whose_keys_extend_it(lake: Lake) -> None:
    materialize(lake, [extended("clean", pl.DataFrame({"order_id": ["a"]}))])
    x_rows = pl.DataFrame({"country": ["fr"], "n": [1]})
    materialize(lake, [extended("x", x_rows, partition_by=["country"])])
    others = lake.files("orders/clean") + lake.files("orders/x")

    materialize(lake, [split_orders({"country": ["fr", "de"], "n": [1, 2]})])
    materialize(lake, [split_orders({"country": ["us"], "n": [3]})])

    assert lake.files("orders/clean") + lake.files("orders/x") == others
    assert lake.files("orders/country") == ["orders/country=us/data.parquet"]
    assert lake.read("orders/clean/data.parquet").rows() == [("a",)]


def test_loading_a_split_asset_ignores_other_assets_and_other_tools_files(lake: Lake) -> None:
    materialize(lake, [split_orders({"country": ["fr", "de"], "n": [1, 2]})])
    materialize(lake, [extended("clean", pl.DataFrame({"order_id": ["a"]}))])
    for name in OTHER_TOOLS:
        lake.put(f"orders/{name}", b"not parquet")
        lake.put(f"orders/country=fr/{name}", b"not parquet")
    lake.put("orders/country=fr/extra=1/data.parquet", b"not ours either")

    @dg.asset(deps=[], ins={"orders": dg.AssetIn()})
    def downstream(orders: pl.DataFrame) -> None:
        seen.append(orders.sort("n"))

    seen: list[pl.DataFrame] = []
    materialize(lake, [split_orders({}), downstream], selection=[downstream])
    assert seen[0].rows() == [(1, "fr"), (2, "de")]

    # a rewrite leaves every file that is not one of its data files alone
    strays = [path for path in lake.files("orders") if not path.endswith("/data.parquet")]
    materialize(lake, [split_orders({"country": ["de"], "n": [5]})])
    assert set(strays) <= set(lake.files("orders"))
    assert "orders/country=fr/data.parquet" not in lake.files("orders")
    assert "orders/country=fr/extra=1/data.parquet" in lake.files("orders")


def test_schema_checks_of_a_partitioned_asset_ignore_an_asset_extending_its_key(
    lake: Lake,
) -> None:
    # `orders/clean/data.parquet` sorts before `orders/date=...` and has order_id as String
    materialize(lake, [extended("clean", pl.DataFrame({"order_id": ["a"]}))])
    for name in OTHER_TOOLS:
        lake.put(f"orders/{name}", b"not parquet")

    materialize(lake, [orders], partition_key="2024-01-05")
    materialize(lake, [orders], partition_key="2024-01-06")

    assert lake.read("orders/date=2024-01-06/data.parquet").equals(orders_for("2024-01-06"))
    assert lake.files("orders/clean") == ["orders/clean/data.parquet"]


@pytest.mark.parametrize("kind", ["split", "whole"])
def test_an_unpartitioned_asset_is_replaced_without_touching_partitions_of_others(
    lake: Lake, kind: str
) -> None:
    @dg.asset(key=["orders", "daily"], partitions_def=DAILY, metadata={"partition_by": "date"})
    def daily(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return orders_for(context.partition_key)

    materialize(lake, [daily], partition_key="2024-01-05")
    metadata = {"partition_by": ["country"]} if kind == "split" else {}

    @dg.asset(name="orders", metadata=metadata)
    def whole() -> pl.DataFrame:
        return pl.DataFrame({"country": ["fr"], "n": [1]})

    materialize(lake, [whole])
    materialize(lake, [whole])

    assert lake.files("orders/daily") == ["orders/daily/date=2024-01-05/data.parquet"]
