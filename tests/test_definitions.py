"""The demo's definitions in process: structure, environment, schedule tick, sensor, data."""

import datetime as dt
import importlib
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource

from demo import build_definitions, data
from demo.jobs import SCHEDULE_TIME_VARIABLE, regional_orders_sensor, schedule_time
from demo.resources import base_path, io_manager, s3_resource
from pq_io_manager import DEFAULT_BASE_PATH, MissingPartitionError, PartitionedParquetIOManager

ASSET_NAMES = {"raw_orders", "daily_sales", "weekly_sales", "regional_orders", "customers"}
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """An empty local lake directory."""
    return tmp_path / "lake"


@pytest.fixture
def defs(lake: Path) -> dg.Definitions:
    """The demo's definitions with the IO manager on `lake`."""
    return build_definitions({"io_manager": PartitionedParquetIOManager(base_path=str(lake))})


def files(lake: Path, asset: str) -> list[str]:
    """The data files of one asset, relative to its directory."""
    root = lake / asset
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*.parquet"))


def test_definitions_py_loads_with_zero_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """`definitions.py` loads and resolves every job with no PQ_* or AWS_* variable."""
    monkeypatch.delenv("PQ_BASE_PATH", raising=False)
    loaded = importlib.reload(importlib.import_module("definitions")).defs
    dg.Definitions.validate_loadable(loaded)
    assert {job.name for job in loaded.resolve_all_job_defs()} >= {
        "daily_orders_job",
        "weekly_sales_job",
        "regional_orders_job",
    }


def test_assets_carry_owner_facing_metadata(defs: dg.Definitions) -> None:
    """Descriptions, kinds, owners, group, code version and partition_by on every asset."""
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    assert set(specs) == ASSET_NAMES
    for name, spec in specs.items():
        assert len(spec.description or "") > 40, name
        assert {"polars", "parquet"} <= spec.kinds, name
        assert spec.owners == ["team:data-platform"], name
        assert spec.group_name == "sales", name
        assert spec.code_version == "1", name
        assert "partition_by" in spec.metadata, name
    assert specs["regional_orders"].metadata["partition_by"] == {
        "date": "order_date",
        "region": "region",
    }
    assert specs["customers"].metadata["partition_by"] == ["country"]
    schema = specs["raw_orders"].metadata["dagster/column_schema"]
    assert [column.name for column in schema.columns] == list(data.ORDER_COLUMNS)


def test_local_default_needs_no_aws_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset PQ_BASE_PATH: data/lake; unset AWS_*: an S3Resource with nothing set."""
    monkeypatch.delenv("PQ_BASE_PATH", raising=False)
    assert base_path() == DEFAULT_BASE_PATH
    resource = s3_resource()
    assert resource.aws_access_key_id is None
    assert resource.region_name is None
    assert resource.endpoint_url is None


def test_s3_settings_come_from_aws_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set AWS_* variables become EnvVar references (names, not values) on the S3Resource."""
    monkeypatch.setenv("PQ_BASE_PATH", "s3://demo-bucket/lake")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    resource = s3_resource()
    assert base_path() == "s3://demo-bucket/lake"
    assert resource.aws_secret_access_key == dg.EnvVar("AWS_SECRET_ACCESS_KEY")
    assert resource.region_name == dg.EnvVar("AWS_DEFAULT_REGION")
    assert resource.endpoint_url == dg.EnvVar("AWS_ENDPOINT_URL")
    assert resource.aws_session_token is None
    assert "not-a-real-secret-value" not in repr(io_manager(resource))


def test_schedule_time_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PQ_DEMO_SCHEDULE_TIME moves the daily schedule; nonsense is refused by name."""
    monkeypatch.delenv(SCHEDULE_TIME_VARIABLE, raising=False)
    assert schedule_time() == (1, 0)
    monkeypatch.setenv(SCHEDULE_TIME_VARIABLE, "13:07")
    assert schedule_time() == (13, 7)
    for bad in ("24:00", "7", "ab:cd", "12:60"):
        monkeypatch.setenv(SCHEDULE_TIME_VARIABLE, bad)
        with pytest.raises(ValueError, match=f"PQ_DEMO_SCHEDULE_TIME='{bad}' is not a time"):
            schedule_time()


def test_schedule_tick_runs_yesterday(defs: dg.Definitions, lake: Path) -> None:
    """The daily schedule's tick asks for the previous day; its run request executes."""
    schedule = defs.resolve_schedule_def("daily_orders_schedule")
    tick_time = dt.datetime(2025, 3, 10, 1, 0, tzinfo=dt.UTC)
    context = dg.build_schedule_context(scheduled_execution_time=tick_time)
    requests = schedule.evaluate_tick(context).run_requests
    assert requests is not None
    assert len(requests) == 1
    assert requests[0].partition_key == "2025-03-09"
    job = defs.resolve_job_def("daily_orders_job")
    result = job.execute_in_process(tags=requests[0].tags, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert files(lake, "raw_orders") == ["order_date=2025-03-09/data.parquet"]
    assert files(lake, "daily_sales") == ["order_date=2025-03-09/data.parquet"]


def test_backfill_run_and_weekly_rollup(defs: dg.Definitions, lake: Path) -> None:
    """A 7-day range in one run (raw_orders' backfill policy), then the week built from it."""
    instance = dg.DagsterInstance.ephemeral()
    daily_job = defs.resolve_job_def("daily_orders_job")
    week = {RANGE_START: "2025-01-06", RANGE_END: "2025-01-12"}
    assert daily_job.execute_in_process(tags=week, instance=instance).success
    assert len(files(lake, "raw_orders")) == 7
    assert len(files(lake, "daily_sales")) == 7
    weekly_job = defs.resolve_job_def("weekly_sales_job")
    tags = {"dagster/partition": "2025-01-06"}
    assert weekly_job.execute_in_process(tags=tags, instance=instance).success
    weekly = pl.read_parquet(lake / "weekly_sales" / "week_start=2025-01-06" / "data.parquet")
    days = [data.orders_for_day(dt.date(2025, 1, day)).height for day in range(6, 13)]
    assert set(weekly["days"]) == {7}
    assert weekly["orders"].sum() == sum(days)


def test_weekly_refuses_a_missing_day(defs: dg.Definitions) -> None:
    """Without its seven days, the weekly asset fails with the IO manager's clear error."""
    weekly_job = defs.resolve_job_def("weekly_sales_job")
    with pytest.raises(MissingPartitionError, match="Materialize it first"):
        weekly_job.execute_in_process(
            tags={"dagster/partition": "2025-01-13"}, instance=dg.DagsterInstance.ephemeral()
        )


def test_sensor_requests_every_region_of_a_new_day(defs: dg.Definitions, lake: Path) -> None:
    """After raw_orders for a day lands, the sensor asks for that day in each region."""
    instance = dg.DagsterInstance.ephemeral()
    tags = {"dagster/partition": "2025-02-03"}
    assert (
        defs.resolve_job_def("daily_orders_job")
        .execute_in_process(tags=tags, instance=instance)
        .success
    )
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    requests = list(regional_orders_sensor(context) or [])
    keys = sorted(str(request.partition_key) for request in requests)
    assert keys == [f"2025-02-03|{region}" for region in sorted(data.REGIONS)]
    regional_job = defs.resolve_job_def("regional_orders_job")
    tags = {"dagster/partition": str(requests[0].partition_key)}
    result = regional_job.execute_in_process(tags=tags, instance=instance)
    assert result.success
    assert len(files(lake, "regional_orders")) == 1


def test_customers_split_by_country(defs: dg.Definitions, lake: Path) -> None:
    """The unpartitioned customers asset is stored as one directory per country."""
    result = dg.materialize(
        [spec for spec in defs.assets if getattr(spec, "key", None) == dg.AssetKey("customers")],
        resources={"io_manager": PartitionedParquetIOManager(base_path=str(lake))},
    )
    assert result.success
    assert {path.split("/")[0] for path in files(lake, "customers")} == {
        f"country={code}" for code in data.COUNTRIES
    }
    back = pl.scan_parquet(f"{lake}/customers/", hive_partitioning=True).collect()
    assert back.height == data.CUSTOMER_COUNT


def test_orders_are_deterministic_and_small() -> None:
    """The same day always gives the same few thousand rows; other days differ."""
    day = data.orders_for_day(dt.date(2025, 1, 1))
    assert day.equals(data.orders_for_day(dt.date(2025, 1, 1)))
    assert not day.equals(data.orders_for_day(dt.date(2025, 1, 2)))
    assert 2_000 <= day.height <= 3_200
    assert day["customer_id"].is_between(1, data.CUSTOMER_COUNT).all()
    assert set(day["order_date"]) == {dt.date(2025, 1, 1)}
    assert isinstance(S3Resource(), S3Resource)
