"""The demo under a real `dagster dev`: GraphQL launches, a real browser, the scheduler daemon."""

import datetime as dt
import time
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import (
    RUN_TIMEOUT_MS,
    browser_page,
    materialize_partition,
    wait_for_run_success,
)
from tests.e2e.conftest import SCHEDULE_NAME, DemoServer
from tests.e2e.graphql import (
    launch_partition_run,
    loaded_input_metadata,
    runs_with_tag,
    set_nux_seen,
    tag_value,
    wait_for_run,
)
from tests.e2e.lake_files import hive_files, read_partition

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs"
# The scheduler daemon checks once a minute; allow one missed check and the run itself.
SCHEDULE_GRACE_SECONDS = 150


def test_graphql_launch_of_one_partition_writes_it(demo_server: DemoServer) -> None:
    """What the UI's Materialize sends: one daily partition, then one date x region partition."""
    server, lake = demo_server.server, demo_server.lake
    run_id = launch_partition_run(server, [["raw_orders"], ["daily_sales"]], "2025-01-02")
    assert wait_for_run(server, run_id) == "SUCCESS", server.log_tail()
    run_id = launch_partition_run(server, [["regional_orders"]], "2025-01-02|emea")
    assert wait_for_run(server, run_id) == "SUCCESS", server.log_tail()

    # other tests of the shared server (the browser, the schedule) write other days
    assert "order_date=2025-01-02/data.parquet" in hive_files(lake, "raw_orders")
    assert hive_files(lake, "regional_orders") == ["order_date=2025-01-02/region=emea/data.parquet"]
    orders = read_partition(lake, "raw_orders", "order_date=2025-01-02")
    sales = read_partition(lake, "daily_sales", "order_date=2025-01-02")
    emea = read_partition(lake, "regional_orders", "order_date=2025-01-02", "region=emea")
    assert 2_000 <= orders.height <= 3_000
    assert "order_date" not in orders.columns  # the hive directory holds it
    assert sales["orders"].sum() == orders.height
    assert sales["revenue"].sum() == pytest.approx(orders["amount"].sum())
    assert emea.height == orders.filter(pl.col("region") == "emea").height
    assert set(emea["currency"]) == {"EUR"}


@pytest.mark.browser
def test_browser_materializes_a_partition(demo_server: DemoServer, artifacts_dir: Path) -> None:
    """Click Materialize on raw_orders, choose a day, launch, wait for the run to succeed."""
    server, lake = demo_server.server, demo_server.lake
    set_nux_seen(server)
    with browser_page() as page:
        run_url = materialize_partition(page, server.url, "raw_orders", "2025-01-03")
        wait_for_run_success(page)
        page.screenshot(path=str(artifacts_dir / "ui-run-success.png"))
        page.goto(f"{server.url}/assets/raw_orders")
        page.get_by_text("2025-01-03").first.wait_for()
        page.screenshot(path=str(artifacts_dir / "ui-asset-materialized.png"))
    run_id = run_url.rstrip("/").rsplit("/", 1)[-1]
    assert wait_for_run(server, run_id) == "SUCCESS"
    assert read_partition(lake, "raw_orders", "order_date=2025-01-03").height > 2_000
    if not (DOCS / "ui-materialized.png").exists():
        DOCS.mkdir(exist_ok=True)
        (DOCS / "ui-materialized.png").write_bytes(
            (artifacts_dir / "ui-run-success.png").read_bytes()
        )


@pytest.mark.browser
def test_browser_shows_an_assets_metadata(demo_server: DemoServer, artifacts_dir: Path) -> None:
    """daily_sales' asset page shows its column types as polars prints them and the preview its
    metadata asks for; the run's LOADED_INPUT event carries what the load read."""
    server, lake = demo_server.server, demo_server.lake
    run_id = launch_partition_run(server, [["raw_orders"], ["daily_sales"]], "2025-01-04")
    assert wait_for_run(server, run_id) == "SUCCESS", server.log_tail()
    stored = lake / "raw_orders" / "order_date=2025-01-04"
    assert loaded_input_metadata(server, run_id) == {
        "raw_orders": {
            "partitions": "1",
            "files": "1",
            "uri": str(stored),
            "size_bytes": str((stored / "data.parquet").stat().st_size),
        }
    }
    set_nux_seen(server)
    with browser_page() as page:  # pages load slowly on a busy machine: wait as for a run
        page.goto(f"{server.url}/assets/daily_sales?view=events")
        preview_note = page.get_by_text("First 5 row(s).")  # under the preview table
        expect(preview_note).to_be_visible(timeout=RUN_TIMEOUT_MS)
        expect(page.get_by_text("region (str)")).to_be_visible()
        page.screenshot(path=str(artifacts_dir / "ui-asset-metadata.png"))
        page.goto(f"{server.url}/assets/daily_sales")
        columns = page.get_by_role("table").filter(has_text="Column name")
        expect(columns.get_by_text("i64", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
        page.screenshot(path=str(artifacts_dir / "ui-asset-columns.png"))
    for name in ("ui-asset-metadata.png", "ui-asset-columns.png"):
        if not (DOCS / name).exists():  # the README's pictures: kept once taken
            DOCS.mkdir(exist_ok=True)
            (DOCS / name).write_bytes((artifacts_dir / name).read_bytes())


def test_scheduler_daemon_tick_runs_the_daily_job(demo_server: DemoServer) -> None:
    """The daily schedule, switched on at start-up, ticks at its time and its run succeeds."""
    server = demo_server.server
    assert demo_server.schedule_started < demo_server.schedule_due, (
        "dagster dev started too slowly for the schedule time chosen; raise SCHEDULE_LEAD_SECONDS"
    )
    deadline = demo_server.schedule_due + dt.timedelta(seconds=SCHEDULE_GRACE_SECONDS)
    # asked at least once: the other tests of this server may end after the deadline
    runs = runs_with_tag(server, "dagster/schedule_name", SCHEDULE_NAME)
    while not runs and dt.datetime.now(dt.UTC) < deadline:
        time.sleep(1)
        runs = runs_with_tag(server, "dagster/schedule_name", SCHEDULE_NAME)
    assert runs, f"no run from {SCHEDULE_NAME} by {deadline:%H:%M:%S}:\n{server.log_tail()}"
    run = runs[-1]
    assert wait_for_run(server, str(run["runId"])) == "SUCCESS", server.log_tail()
    partition = tag_value(run, "dagster/partition")
    # a daily schedule materializes the day that ended before its tick
    assert partition == (demo_server.schedule_due.date() - dt.timedelta(days=1)).isoformat()
    for asset in ("raw_orders", "daily_sales"):
        assert f"order_date={partition}/data.parquet" in hive_files(demo_server.lake, asset)
