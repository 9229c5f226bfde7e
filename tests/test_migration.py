"""Datasets written by 0.1 (wall-clock datetime directories) migrate once to UTC instants."""

import io

import dagster as dg
import polars as pl
import pytest

from pq_io_manager.__main__ import main
from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.migration import DatetimeColumn, apply_moves, plan_moves
from pq_io_manager.s3_store import S3Store
from pq_io_manager.stores import LocalStore, Store
from tests.lake import Lake
from tests.test_io_manager import materialize

HOURLY = dg.HourlyPartitionsDefinition(
    start_date="2025-11-01-00:00", end_date="2025-11-03-00:00", timezone="America/New_York"
)
LEGACY = {
    "2025-11-02%2000%3A00%3A00": "2025-11-02T04%3A00%3A00Z",  # EDT
    "2025-11-02%2001%3A00%3A00": None,  # 01:00 happened twice: unknowable, left alone
    "2025-11-02%2002%3A00%3A00": "2025-11-02T07%3A00%3A00Z",  # EST
}


@dg.asset(partitions_def=HOURLY, metadata={"partition_by": "hour"})
def meter() -> pl.DataFrame:
    raise AssertionError("only loaded here")


@dg.asset(partitions_def=HOURLY, metadata={"partition_by": "hour"})
def meter_copy(meter: pl.DataFrame) -> pl.DataFrame:
    return meter


def parquet(value: int) -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"v": [value]}).write_parquet(buffer)
    return buffer.getvalue()


def store_of(lake: Lake) -> Store:
    if lake.resource is None:
        return LocalStore(lake.base_path)
    return S3Store(connection_from_resource(lake.resource))


def test_legacy_hourly_directories_move_to_instants_and_load(lake: Lake) -> None:
    for index, legacy in enumerate(LEGACY):
        lake.put(f"meter/hour={legacy}/data.parquet", parquet(index))
    store = store_of(lake)

    moves = plan_moves(store, lake.uri("meter"), [DatetimeColumn("hour", "America/New_York")])
    assert apply_moves(store, moves) == 2

    assert lake.files("meter/") == [
        "meter/hour=2025-11-02%2001%3A00%3A00/data.parquet",
        "meter/hour=2025-11-02T04%3A00%3A00Z/data.parquet",
        "meter/hour=2025-11-02T07%3A00%3A00Z/data.parquet",
    ]
    (left,) = [move for move in moves if move.target is None]
    assert "happens twice in America/New_York" in str(left.problem)
    loaded = materialize(
        lake, [meter, meter_copy], selection=[meter_copy], partition_key="2025-11-02-02:00"
    ).output_for_node("meter_copy")
    assert loaded["v"].to_list() == [2]


def test_the_command_line_dry_run_changes_nothing_and_reports(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = Lake("local", str(tmp_path))
    for index, legacy in enumerate(LEGACY):
        lake.put(f"raw/meter/hour={legacy}/data.parquet", parquet(index))
    before = lake.files()
    arguments = ["migrate-layout", "--base-path", lake.base_path, "--asset", "raw/meter"]
    arguments += ["--datetime-column", "hour:America/New_York"]

    assert main([*arguments, "--dry-run"]) == 1
    assert lake.files() == before
    assert "3 legacy file(s): 0 moved, 1 left for you to decide" in capsys.readouterr().out

    assert main(arguments) == 1
    assert len([path for path in lake.files() if "Z/" in path]) == 2


def test_escaped_non_ascii_directories_move_to_raw_characters(lake: Lake) -> None:
    lake.put("cities/city=Krak%C3%B3w/data.parquet", parquet(1))
    lake.put("cities/city=Paris/data.parquet", parquet(2))
    lake.put("cities/city=Paris/_SUCCESS", b"")  # another tool's file: never moved
    store = store_of(lake)

    assert apply_moves(store, plan_moves(store, lake.uri("cities"), [])) == 1

    assert lake.files("cities/") == [
        "cities/city=Kraków/data.parquet",
        "cities/city=Paris/_SUCCESS",
        "cities/city=Paris/data.parquet",
    ]
