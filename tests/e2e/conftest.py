"""One `dagster dev` shared by the UI, GraphQL and scheduler tests (package scope: it stops
when the end-to-end tests are done, not at the end of the whole session).

The daily schedule's time is set through `PQ_DEMO_SCHEDULE_TIME` to the first full minute at
least `SCHEDULE_LEAD_SECONDS` after start-up, and the schedule is switched on as soon as the
server is ready, so the scheduler daemon's tick comes while the other UI tests run.
"""

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.dagster_dev import DagsterDev, run_dagster_dev
from tests.e2e.graphql import start_schedule

SCHEDULE_NAME = "daily_orders_schedule"
# Start-up takes 5-9 s; the schedule must be switched on before its time comes.
SCHEDULE_LEAD_SECONDS = 30
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass(frozen=True)
class DemoServer:
    """The shared `dagster dev`, where it writes the lake, and when the schedule ticks."""

    server: DagsterDev
    lake: Path
    schedule_due: dt.datetime
    schedule_started: dt.datetime


def next_minute_after(seconds: float) -> dt.datetime:
    """The first whole UTC minute at least `seconds` from now."""
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return soon.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """test-artifacts/ at the repository root (git-ignored), for screenshots and logs."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="package")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """`dagster dev` on a temporary lake, with the daily schedule running."""
    workdir = tmp_path_factory.mktemp("dagster-dev")
    lake = workdir / "lake"
    due = next_minute_after(SCHEDULE_LEAD_SECONDS)
    env = {"PQ_BASE_PATH": str(lake), "PQ_DEMO_SCHEDULE_TIME": f"{due:%H:%M}"}
    started = time.monotonic()
    with run_dagster_dev(workdir, env) as server:
        print(f"dagster dev ready in {time.monotonic() - started:.1f} s at {server.url}")
        start_schedule(server, SCHEDULE_NAME)
        yield DemoServer(server, lake, due, dt.datetime.now(dt.UTC))
