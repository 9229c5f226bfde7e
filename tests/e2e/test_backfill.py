"""A backfill launched as the UI launches one, run by `dagster dev`'s own daemons.

The backfill daemon splits 16 days of `raw_orders` into runs of 7 days (the asset's
`BackfillPolicy.multi_run(max_partitions_per_run=7)`); the queued run coordinator launches them
side by side, each in its own process with Dagster's default multiprocess executor, and each
run writes its 7 partitions concurrently.
"""

import datetime as dt
import itertools

import pytest

from demo.data import orders_for_day
from tests.e2e.conftest import DemoServer
from tests.e2e.graphql import (
    launch_backfill,
    run_messages,
    runs_with_tag,
    wait_for_backfill,
    wait_for_run,
)
from tests.e2e.lake_files import hive_files, read_partition

pytestmark = pytest.mark.e2e

# Days no other end-to-end test writes.
DAYS = [dt.date(2025, 2, 1) + dt.timedelta(days=offset) for offset in range(16)]
# The backfill daemon wakes every ~30 s; three runs share two cores.
BACKFILL_TIMEOUT_SECONDS = 300


def overlapping(runs: list[dict[str, float]]) -> bool:
    """Whether any two runs were in progress at the same time (if any two overlap, two
    consecutive ones by start time do)."""
    spans = sorted((run["startTime"], run["endTime"]) for run in runs)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def test_backfill_of_16_days_runs_side_by_side_and_writes_each_day(
    demo_server: DemoServer,
) -> None:
    server, lake = demo_server.server, demo_server.lake
    backfill_id = launch_backfill(server, [["raw_orders"]], [day.isoformat() for day in DAYS])

    status = wait_for_backfill(server, backfill_id, BACKFILL_TIMEOUT_SECONDS)

    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}, server.log_tail()
    runs = runs_with_tag(server, "dagster/backfill", backfill_id)
    assert len(runs) == 3  # 7 + 7 + 2 days
    assert all(wait_for_run(server, run["runId"]) == "SUCCESS" for run in runs)
    assert overlapping(runs), [(run["startTime"], run["endTime"]) for run in runs]
    for run in runs:
        messages = run_messages(server, run["runId"])
        assert any("using multiprocess executor" in message for message in messages)
    written = set(hive_files(lake, "raw_orders"))
    for day in DAYS:
        assert f"order_date={day}/data.parquet" in written
        stored = read_partition(lake, "raw_orders", f"order_date={day}")
        assert stored.equals(orders_for_day(day).drop("order_date"))
