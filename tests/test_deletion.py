"""Deleting stored data removes exactly what it names, on every store (issue 12)."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import (
    ConfigurationError,
    PartitionedParquetIOManager,
    SchemaConflictError,
    WriteError,
)
from pq_io_manager.checks import build_storage_checks
from pq_io_manager.writer_lock import LOCK_NAME, writer_lock
from tests.lake import Lake, local_lake
from tests.test_asset_independence import extended
from tests.test_io_manager import DAILY, materialize, orders, orders_for, range_tags
from tests.test_schema_safety import _store
from tests.test_writes import ranged_orders

pytestmark = pytest.mark.every_s3_server

KEYS = ["2024-01-05", "2024-01-06", "2024-01-07"]


def test_deletes_remove_exactly_what_they_name(lake: Lake) -> None:
    # three days of `orders` (one run), the asset `orders/clean` below it, other tools' files
    dg.materialize(
        [ranged_orders()],
        resources={"io_manager": lake.io_manager()},
        tags=range_tags(KEYS[0], KEYS[-1]),
    )
    materialize(lake, [extended("clean", pl.DataFrame({"order_id": ["a"]}))])
    lake.put("orders/date=2024-01-05/_SUCCESS", b"")
    lake.put("orders/README.md", b"written by hand")
    before = lake.files(records=True)
    sizes = {key: lake.size(f"orders/date={key}/data.parquet") for key in KEYS}
    asked = ["2024-01-05", "not-a-date", "2024-01-06", "2024-01-09"]

    planned = lake.io_manager().delete_partitions(orders, asked, dry_run=True)
    assert lake.files(records=True) == before
    deleted = lake.io_manager().delete_partitions(orders, asked)

    gone = [f"orders/date={key}/data.parquet" for key in KEYS[:2]]
    assert planned.uris == deleted.uris == tuple(lake.uri(path) for path in gone)
    assert deleted.size_bytes == sizes[KEYS[0]] + sizes[KEYS[1]]
    assert deleted.absent_keys == ("not-a-date", "2024-01-09")
    assert deleted.left == (lake.uri("orders/date=2024-01-05/_SUCCESS"),)
    assert (planned.dry_run, deleted.dry_run) == (True, False)
    assert lake.files(records=True) == [path for path in before if path not in gone]

    last, record = f"orders/date={KEYS[2]}/data.parquet", ".pq-meta/orders/_schema.json"
    record_size = lake.size(record)
    whole = lake.io_manager().delete_asset(orders)

    assert whole.uris == (lake.uri(last), lake.uri(record))
    assert whole.size_bytes == sizes[KEYS[2]] + record_size
    # the writer lock object is released, never deleted (see deletion.delete_asset)
    kept = [path for path in before if path not in [*gone, last, record]]
    assert lake.files(records=True) == sorted([*kept, f".pq-meta/orders/{LOCK_NAME}"])
    assert lake.io_manager().delete_asset(orders).removed == ()


def test_a_deleted_asset_starts_afresh_with_new_column_types(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    materialize(lake, [orders], partition_key=KEYS[0])

    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def retyped(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return orders_for(context.partition_key).with_columns(pl.col("amount").cast(pl.String))

    with pytest.raises(SchemaConflictError, match="column 'amount' is String"):
        materialize(lake, [retyped], partition_key=KEYS[1])
    lake.io_manager().delete_asset(orders)
    materialize(lake, [retyped], partition_key=KEYS[1])
    assert lake.files() == [f"orders/date={KEYS[1]}/data.parquet"]


def test_multi_partition_and_time_window_keys_map_as_writes_map_them(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    hourly = dg.HourlyPartitionsDefinition("2025-11-01-00:00", timezone="America/New_York")
    multi = dg.MultiPartitionsDefinition(
        {"hour": hourly, "region": dg.StaticPartitionsDefinition(["emea", "apac"])}
    )

    @dg.asset(partitions_def=multi, metadata={"partition_by": {"hour": "hour", "region": "r"}})
    def events(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"n": [1]})

    # the repeated autumn hour: two keys, one instant apart (field notes)
    keys = [
        f"{hour}|{region}"
        for hour in ["2025-11-02-01:00", "2025-11-02-01:00-0500"]
        for region in ["apac", "emea"]
    ]
    written_by: dict[str, str] = {}  # key -> the file its write published
    for key in keys:
        before = set(lake.files())
        materialize(lake, [events], partition_key=key)
        (written_by[key],) = set(lake.files()) - before

    key = dg.MultiPartitionKey({"hour": "2025-11-02-01:00-0500", "region": "emea"})
    with pytest.raises(ConfigurationError, match=r"must be a list of partition keys, e\.g\. \["):
        lake.io_manager().delete_partitions(events, key)  # one key, not a list of them
    deleted = lake.io_manager().delete_partitions(events, [key, "2025-11-02-01:00|nowhere|x"])

    assert deleted.absent_keys == ("2025-11-02-01:00|nowhere|x",)
    assert deleted.uris == (lake.uri(written_by[str(key)]),)
    assert lake.files() == sorted(path for k, path in written_by.items() if k != str(key))


def test_unpartitioned_assets_are_deleted_whole_only(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")

    @dg.asset(name="customers", metadata={"partition_by": ["country"]})
    def customers() -> pl.DataFrame:
        return pl.DataFrame({"country": ["fr", "de"], "n": [1, 2]})

    materialize(lake, [customers])
    with pytest.raises(
        ConfigurationError, match=r"asset 'customers' is not partitioned.*delete_asset"
    ):
        lake.io_manager().delete_partitions(customers, ["fr"])
    deleted = lake.io_manager().delete_asset(customers)
    assert len(deleted.removed) == 3  # two countries and the schema record
    assert lake.files() == []


def test_delete_asset_is_refused_while_a_replacement_holds_the_writer_lock(
    tmp_path: Path,
) -> None:
    lake = local_lake(tmp_path / "lake")
    materialize(lake, [orders], partition_key=KEYS[0])
    uri = lake.uri(f".pq-meta/orders/{LOCK_NAME}")
    with (
        writer_lock(_store(lake), uri, "a replacement"),
        pytest.raises(WriteError, match=r"deleting asset 'orders'.*another run"),
    ):
        lake.io_manager().delete_asset(orders)
    assert lake.files() == [f"orders/date={KEYS[0]}/data.parquet"]


def test_an_op_deletes_partitions_through_the_io_manager_resource(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    for key in KEYS[:2]:
        materialize(lake, [orders], partition_key=key)

    @dg.op
    def forget_day(
        context: dg.OpExecutionContext, io_manager: dg.ResourceParam[PartitionedParquetIOManager]
    ) -> None:
        deleted = io_manager.delete_partitions(orders, [KEYS[0]])
        context.log.info(f"deleted {deleted.uris} ({deleted.size_bytes} bytes)")

    @dg.job(resource_defs={"io_manager": lake.io_manager()})
    def retention() -> None:
        forget_day()

    assert retention.execute_in_process().success
    assert lake.files() == [f"orders/date={KEYS[1]}/data.parquet"]


SHOPS = dg.DynamicPartitionsDefinition(name="shops")


@dg.asset(partitions_def=SHOPS, metadata={"partition_by": "shop"})
def shop_sales(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"amount": [float(len(context.partition_key))]})


@dg.sensor(minimum_interval_seconds=60)
def removed_shops(
    context: dg.SensorEvaluationContext, io_manager: dg.ResourceParam[PartitionedParquetIOManager]
) -> dg.SkipReason:
    """Delete the stored data of shops removed from the dynamic partitions since last time."""
    current = set(context.instance.get_dynamic_partitions(SHOPS.name or ""))
    known = set(context.cursor.split(",")) if context.cursor else set()
    removed = sorted(known - current)
    if removed:
        io_manager.delete_partitions(shop_sales, removed)
    context.update_cursor(",".join(sorted(current)))
    return dg.SkipReason(f"deleted the data of {removed}")


def test_a_sensor_deletes_the_data_of_a_removed_dynamic_partition(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shops", ["paris", "lyon"])
    for shop in ["paris", "lyon"]:
        materialize(lake, [shop_sales], partition_key=shop, instance=instance)
    resources = {"io_manager": lake.io_manager()}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        removed_shops(context)  # learns the current shops
        cursor = context.cursor

    instance.delete_dynamic_partition("shops", "lyon")
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = removed_shops(context)

    assert isinstance(result, dg.SkipReason)
    assert "['lyon']" in (result.skip_message or "")
    assert lake.files() == ["shop_sales/shop=paris/data.parquet"]
    # the removed shop is no longer expected by the storage checks: they pass
    result = dg.materialize(
        [shop_sales, *build_storage_checks(shop_sales)],
        selection=dg.AssetSelection.checks_for_assets(shop_sales),
        instance=instance,
        resources=resources,
    )
    assert [check.passed for check in result.get_asset_check_evaluations()] == [True]
    # keys no file could ever be stored under: reserved for nulls, too long for any store
    never = ["__HIVE_DEFAULT_PARTITION__", "x" * 300]
    assert lake.io_manager().delete_partitions(shop_sales, never).absent_keys == tuple(never)
