"""The GraphQL requests the Dagster UI sends, for driving a `dagster dev` from tests."""

import time
from collections.abc import Sequence
from typing import Any

from tests.e2e.dagster_dev import (
    ASSET_JOB,
    FINISHED_STATUSES,
    LOCATION_NAME,
    REPOSITORY_NAME,
    RUN_TIMEOUT_SECONDS,
    DagsterDev,
)

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status tags { key value } }
    ... on PythonError { message }
  }
}
"""
START_SCHEDULE = """
mutation StartSchedule($scheduleSelector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $scheduleSelector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
  }
}
"""
RUNS_BY_TAG = """
query RunsByTag($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""
SET_NUX_SEEN = "mutation { setNuxSeen }"


def launch_partition_run(
    server: DagsterDev, asset_paths: Sequence[Sequence[str]], partition_key: str
) -> str:
    """Launch what the UI's Materialize sends for one partition of some assets; the run id."""
    params = {
        "selector": {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": REPOSITORY_NAME,
            "jobName": ASSET_JOB,
            "assetSelection": [{"path": list(path)} for path in asset_paths],
            "assetCheckSelection": [],
        },
        "mode": "default",
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition_key}]},
    }
    result = server.graphql(LAUNCH_RUN, {"executionParams": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise AssertionError(f"launchRun failed: {result}")
    run_id: str = result["run"]["runId"]
    return run_id


def wait_for_run(server: DagsterDev, run_id: str, timeout: float = RUN_TIMEOUT_SECONDS) -> str:
    """Poll a run until it finishes; its final status (SUCCESS, FAILURE or CANCELED)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]
        if run.get("status") in FINISHED_STATUSES:
            status: str = run["status"]
            return status
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {timeout:.0f} s:\n{server.log_tail()}")


def start_schedule(server: DagsterDev, schedule_name: str) -> None:
    """Switch a schedule on, as the UI's toggle does."""
    selector = {
        "repositoryLocationName": LOCATION_NAME,
        "repositoryName": REPOSITORY_NAME,
        "scheduleName": schedule_name,
    }
    result = server.graphql(START_SCHEDULE, {"scheduleSelector": selector})["startSchedule"]
    if result["__typename"] != "ScheduleStateResult":
        raise AssertionError(f"startSchedule failed: {result}")


def runs_with_tag(server: DagsterDev, key: str, value: str) -> list[dict[str, Any]]:
    """Every run carrying the tag `key=value`, newest first."""
    variables = {"filter": {"tags": [{"key": key, "value": value}]}}
    runs: list[dict[str, Any]] = server.graphql(RUNS_BY_TAG, variables)["runsOrError"]["results"]
    return runs


def tag_value(run: dict[str, Any], key: str) -> str | None:
    """The value of one tag of a run returned by `runs_with_tag`, or None."""
    return next((tag["value"] for tag in run["tags"] if tag["key"] == key), None)


def set_nux_seen(server: DagsterDev) -> None:
    """Dismiss the first-visit modal that would otherwise cover the UI."""
    server.graphql(SET_NUX_SEEN)
