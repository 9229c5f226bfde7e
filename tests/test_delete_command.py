"""`python -m pq_io_manager delete`: finds the asset in the project's Definitions, lists with
`--dry-run`, deletes exactly what the API deletes (issue 12)."""

import os
from pathlib import Path

import pytest

from demo import build_definitions
from pq_io_manager import ConfigurationError, PartitionedParquetIOManager
from pq_io_manager.__main__ import main
from tests.lake import local_lake
from tests.test_io_manager import materialize, orders, range_tags

DEFINITIONS = """
import dagster as dg
from tests.test_io_manager import orders

defs = dg.Definitions(assets=[orders])
"""


@pytest.fixture
def definitions_file(tmp_path: Path) -> str:
    """A definitions file holding the test's daily `orders`."""
    path = tmp_path / "project" / "definitions.py"
    path.parent.mkdir()
    path.write_text(DEFINITIONS)
    return str(path)


def test_dry_run_lists_then_delete_removes(
    tmp_path: Path, definitions_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = local_lake(tmp_path / "lake")
    for key in ["2024-01-05", "2024-01-06"]:
        materialize(lake, [orders], partition_key=key)
    file = lake.uri("orders/date=2024-01-05/data.parquet")
    size = os.path.getsize(file)
    command = ["delete", "-f", definitions_file, "--base-path", lake.base_path, "--asset"]
    command += ["orders", "--partition", "2024-01-05", "--partition", "2024-02-30"]

    assert main([*command, "--dry-run"]) == 0
    listed = capsys.readouterr().out
    assert f"would remove {file} ({size} bytes)" in listed
    assert "no stored data for partition '2024-02-30'" in listed
    assert "(dry run: nothing deleted)" in listed
    assert os.path.exists(file)

    assert main(command) == 0
    assert f"removed {file} ({size} bytes)" in capsys.readouterr().out
    assert lake.files() == ["orders/date=2024-01-06/data.parquet"]

    assert main([*command[:-4], "--whole-asset"]) == 0
    assert lake.files() == []


def test_an_unknown_asset_is_refused_with_the_known_ones(
    tmp_path: Path, definitions_file: str
) -> None:
    with pytest.raises(ConfigurationError, match=r"asset 'order' is not defined.*\['orders'\]"):
        main(
            [
                "delete",
                "-f",
                definitions_file,
                "--base-path",
                str(tmp_path),
                "--asset",
                "order",
                "--whole-asset",
            ]
        )


def test_the_command_finds_a_demo_asset_by_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    defs = build_definitions({"io_manager": PartitionedParquetIOManager(base_path=str(lake))})
    job = defs.resolve_job_def("daily_orders_job")
    job.execute_in_process(tags=range_tags("2025-01-01", "2025-01-02"))  # one run, two days

    # `-m definitions`: the repository's definitions.py, as `dagster ... -m definitions` runs it
    command = ["delete", "-m", "definitions", "--base-path", str(lake), "--asset", "raw_orders"]
    assert main([*command, "--partition", "2025-01-01"]) == 0

    assert "asset 'raw_orders': removed 1 file(s)" in capsys.readouterr().out
    assert sorted(p.parent.name for p in (lake / "raw_orders").rglob("*.parquet")) == [
        "order_date=2025-01-02"
    ]
    assert len(list((lake / "daily_sales").rglob("*.parquet"))) == 2
