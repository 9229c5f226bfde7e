"""Asset checks attached in one line pass on complete, well-typed data and fail otherwise
(issue 12), run through Dagster like a user runs them."""

import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from demo import build_definitions
from pq_io_manager import PartitionedParquetIOManager
from pq_io_manager.checks import EXISTENCE_CHECK, SCHEMA_CHECK, build_storage_checks
from pq_io_manager.declared_schema import schema_differences
from tests.test_io_manager import DAILY, orders_for

COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("order_id", "Int64"),
        dg.TableColumn("amount", "f64"),  # polars' short form is accepted too
        dg.TableColumn("country", "String"),
        dg.TableColumn("date", "Date"),
    ]
)


def _orders(schema: dg.TableSchema = COLUMNS) -> dg.AssetsDefinition:
    @dg.asset(
        name="orders",
        partitions_def=DAILY,
        metadata={"partition_by": "date", "dagster/column_schema": schema},
    )
    def orders(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return orders_for(context.partition_key)

    return orders


def _run(
    lake: Path,
    asset: dg.AssetsDefinition,
    instance: dg.DagsterInstance,
    partition_key: str | None,
    **options: bool,
) -> dict[str, dg.AssetCheckEvaluation]:
    """Materialize `asset` (one partition) with its storage checks; the checks' evaluations."""
    defs = dg.Definitions(
        assets=[asset],
        asset_checks=build_storage_checks(asset, **options),
        resources={"io_manager": PartitionedParquetIOManager(base_path=str(lake))},
    )
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, partition_key=partition_key)
    assert result.success
    return {check.check_name: check for check in result.get_asset_check_evaluations()}


def test_checks_pass_on_the_stored_partitions_and_declared_schema(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _run(tmp_path, _orders(), instance, "2024-01-05")
    checks = _run(tmp_path, _orders(), instance, "2024-01-06")

    assert {name: check.passed for name, check in checks.items()} == {
        EXISTENCE_CHECK: True,
        SCHEMA_CHECK: True,
    }
    assert checks[EXISTENCE_CHECK].metadata["expected_partitions"].value == 2


def test_existence_check_fails_when_a_materialized_partition_is_gone(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _run(tmp_path, _orders(), instance, "2024-01-05")
    os.remove(tmp_path / "orders/date=2024-01-05/data.parquet")  # lost behind Dagster's back

    checks = _run(tmp_path, _orders(), instance, "2024-01-06")

    assert not checks[EXISTENCE_CHECK].passed
    assert checks[EXISTENCE_CHECK].metadata["missing_keys"].value == ["2024-01-05"]
    assert checks[SCHEMA_CHECK].passed

    # told through Dagster's own API that the asset's data is gone, it expects none any more
    PartitionedParquetIOManager(base_path=str(tmp_path)).delete_asset(_orders())
    instance.wipe_assets([dg.AssetKey("orders")])
    checks = _run(tmp_path, _orders(), instance, "2024-01-07")
    assert checks[EXISTENCE_CHECK].metadata["expected_partitions"].value == 1
    assert checks[EXISTENCE_CHECK].passed


def test_existence_check_of_every_key_fails_until_all_are_stored(tmp_path: Path) -> None:
    checks = _run(
        tmp_path, _orders(), dg.DagsterInstance.ephemeral(), "2024-01-05", all_partitions=True
    )
    assert not checks[EXISTENCE_CHECK].passed
    assert checks[EXISTENCE_CHECK].metadata["missing_partitions"].value == 59  # Jan + Feb - 1


def test_schema_check_fails_when_the_stored_types_differ_from_the_declared(
    tmp_path: Path,
) -> None:
    declared = dg.TableSchema(
        columns=[
            dg.TableColumn("order_id", "Int32"),
            dg.TableColumn("amount", "Float64"),
            dg.TableColumn("date", "Date"),
            dg.TableColumn("customer", "String"),
        ]
    )
    checks = _run(tmp_path, _orders(declared), dg.DagsterInstance.ephemeral(), "2024-01-05")

    schema = checks[SCHEMA_CHECK]
    assert not schema.passed
    assert "'customer' is declared (String) but not stored" in (schema.description or "")
    assert "'country' is stored (String) but not declared" in (schema.description or "")
    assert "'order_id' is declared as 'Int32' but stored as Int64 (i64)" in (
        schema.description or ""
    )
    assert checks[EXISTENCE_CHECK].passed


def test_checks_of_an_unpartitioned_asset(tmp_path: Path) -> None:
    @dg.asset(
        metadata={
            "partition_by": ["country"],
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn("n", "Int64"), dg.TableColumn("country", "String")]
            ),
        }
    )
    def customers() -> pl.DataFrame:
        return pl.DataFrame({"country": ["fr", "de"], "n": [1, 2]})

    instance = dg.DagsterInstance.ephemeral()
    assert all(check.passed for check in _run(tmp_path, customers, instance, None).values())
    PartitionedParquetIOManager(base_path=str(tmp_path)).delete_asset(customers)

    result = dg.materialize(
        [customers, *build_storage_checks(customers)],
        selection=dg.AssetSelection.checks_for_assets(customers),
        instance=instance,
        resources={"io_manager": PartitionedParquetIOManager(base_path=str(tmp_path))},
    )
    evaluations = {check.check_name: check for check in result.get_asset_check_evaluations()}
    assert not evaluations[EXISTENCE_CHECK].passed  # materialized, then deleted
    assert not evaluations[SCHEMA_CHECK].passed  # nothing stored


def test_schema_differences_accept_both_polars_type_spellings() -> None:
    stored = {"ts": pl.Datetime("us", "UTC"), "n": pl.Int16()}
    for ts_text, n_text in [
        ("Datetime(time_unit='us', time_zone='UTC')", "Int16"),
        ("datetime[μs, UTC]", "i16"),
        ("DATETIME[μs,utc]", " INT16 "),
    ]:
        declared = dg.TableSchema(
            columns=[dg.TableColumn("ts", ts_text), dg.TableColumn("n", n_text)]
        )
        assert schema_differences(stored, declared) == [], (ts_text, n_text)
    wrong = dg.TableSchema(
        columns=[dg.TableColumn("ts", "datetime[ns, UTC]"), dg.TableColumn("n", "i16")]
    )
    assert len(schema_differences(stored, wrong)) == 1


def test_the_demo_runs_its_storage_checks_with_its_daily_job(tmp_path: Path) -> None:
    defs = build_definitions({"io_manager": PartitionedParquetIOManager(base_path=str(tmp_path))})
    job = defs.resolve_job_def("daily_orders_job")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key="2025-01-01"
    )
    checks = {check.check_name: check.passed for check in result.get_asset_check_evaluations()}
    assert checks == {EXISTENCE_CHECK: True, SCHEMA_CHECK: True}


@pytest.mark.parametrize("key", ["io_manager", "lake"])
def test_checks_read_through_the_assets_io_manager_key(tmp_path: Path, key: str) -> None:
    @dg.asset(io_manager_key=key)
    def table() -> pl.DataFrame:
        return pl.DataFrame({"n": [1]})

    defs = dg.Definitions(
        assets=[table],
        asset_checks=build_storage_checks(table),
        resources={key: PartitionedParquetIOManager(base_path=str(tmp_path))},
    )
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert [check.passed for check in result.get_asset_check_evaluations()] == [True]
