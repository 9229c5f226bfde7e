"""The demo through the dagster CLI: validation and materializing a partition to a local lake."""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from demo.data import COUNTRIES
from tests.e2e.cli import IN_PROCESS, describe, run_dagster
from tests.e2e.lake_files import hive_files, read_partition

pytestmark = pytest.mark.e2e


def test_definitions_validate(tmp_path: Path) -> None:
    """`dagster definitions validate -w workspace.yaml` passes."""
    result = run_dagster(["definitions", "validate", "-w", "workspace.yaml"], tmp_path)
    assert result.returncode == 0, describe(result)
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_validate_reports_a_bad_schedule_time(tmp_path: Path) -> None:
    """A malformed PQ_DEMO_SCHEDULE_TIME fails loading with a message naming the variable."""
    env = {"PQ_DEMO_SCHEDULE_TIME": "25:00"}
    result = run_dagster(["definitions", "validate", "-w", "workspace.yaml"], tmp_path, env)
    assert result.returncode != 0
    assert "PQ_DEMO_SCHEDULE_TIME='25:00' is not a time of day" in result.stdout + result.stderr


def test_asset_materialize_writes_hive_directories(tmp_path: Path) -> None:
    """The README's main command, on a temporary PQ_BASE_PATH."""
    lake = tmp_path / "lake"
    command = ["asset", "materialize", "-f", "definitions.py"]
    command += ["--select", "raw_orders,daily_sales", "--partition", "2025-01-01"]
    result = run_dagster(command, tmp_path, {"PQ_BASE_PATH": str(lake)})
    assert result.returncode == 0, describe(result)
    assert "RUN_SUCCESS" in result.stdout + result.stderr
    assert sorted(p.name for p in lake.iterdir() if not p.name.startswith(".")) == [
        "daily_sales",
        "raw_orders",
    ]
    assert hive_files(lake, "raw_orders") == ["order_date=2025-01-01/data.parquet"]
    assert hive_files(lake, "daily_sales") == ["order_date=2025-01-01/data.parquet"]
    scanned = pl.scan_parquet(
        f"{lake}/daily_sales/", hive_partitioning=True, hive_schema={"order_date": pl.Date}
    ).collect()
    assert scanned["order_date"].unique().to_list() == [dt.date(2025, 1, 1)]
    assert (
        scanned["orders"].sum()
        == read_partition(lake, "raw_orders", "order_date=2025-01-01").height
    )


def test_multi_partitioned_and_split_assets_from_the_cli(tmp_path: Path) -> None:
    """A date x region partition and the country-split customers, in one in-process run each."""
    lake = tmp_path / "lake"
    env = {"PQ_BASE_PATH": str(lake)}
    for select, partition in (("raw_orders", "2025-02-01"), ("regional_orders", "2025-02-01|apac")):
        command = ["asset", "materialize", "-f", "definitions.py", "--select", select]
        command += ["--partition", partition, "--config-json", IN_PROCESS]
        result = run_dagster(command, tmp_path, env)
        assert result.returncode == 0, describe(result)
    command = ["asset", "materialize", "-f", "definitions.py", "--select", "customers"]
    result = run_dagster([*command, "--config-json", IN_PROCESS], tmp_path, env)
    assert result.returncode == 0, describe(result)

    assert hive_files(lake, "regional_orders") == ["order_date=2025-02-01/region=apac/data.parquet"]
    apac = read_partition(lake, "regional_orders", "order_date=2025-02-01", "region=apac")
    assert set(apac["currency"]) == {"JPY"}
    countries = {path.split("/")[0] for path in hive_files(lake, "customers")}
    assert countries == {f"country={code}" for code in COUNTRIES}
