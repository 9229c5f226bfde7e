"""The GraphQL requests the Dagster UI sends, for driving a `dagster dev` from tests."""

import time
from collections.abc import Mapping, Sequence
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
    ... on Runs { results { runId status startTime endTime tags { key value } } }
  }
}
"""
SET_NUX_SEEN = "mutation { setNuxSeen }"
LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL_STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""
RUN_MESSAGES = """
query RunMessages($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""
LOADED_INPUTS = """
query LoadedInputs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on LoadedInputEvent {
          inputName
          metadataEntries {
            label
            ... on IntMetadataEntry { intRepr }
            ... on PathMetadataEntry { path }
          }
        }
      }
    }
  }
}
"""
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


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
    result = _mutate(server, LAUNCH_RUN, {"executionParams": params}, "LaunchRunSuccess")
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
    _mutate(server, START_SCHEDULE, {"scheduleSelector": selector}, "ScheduleStateResult")


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


def launch_backfill(
    server: DagsterDev,
    asset_paths: Sequence[Sequence[str]],
    partition_keys: Sequence[str],
    tags: Mapping[str, str] | None = None,
) -> str:
    """Launch what the UI's "Launch backfill" sends for these partitions of some assets (with
    the tags a user adds in the dialog, given to every run)."""
    params = {
        "partitionNames": list(partition_keys),
        "assetSelection": [{"path": list(path)} for path in asset_paths],
        "fromFailure": False,
        "tags": [{"key": key, "value": value} for key, value in (tags or {}).items()],
    }
    result = _mutate(server, LAUNCH_BACKFILL, {"backfillParams": params}, "LaunchBackfillSuccess")
    backfill_id: str = result["backfillId"]
    return backfill_id


def wait_for_backfill(server: DagsterDev, backfill_id: str, timeout: float) -> str:
    """Poll a backfill until the backfill daemon finishes it; its final status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backfill = server.graphql(BACKFILL_STATUS, {"backfillId": backfill_id})
        status: str | None = backfill["partitionBackfillOrError"].get("status")
        if status in BACKFILL_DONE:
            return status
        time.sleep(1)
    raise AssertionError(
        f"backfill {backfill_id} not done in {timeout:.0f} s:\n{server.log_tail()}"
    )


def run_messages(server: DagsterDev, run_id: str) -> list[str]:
    """The messages of a run's event log."""
    logs = server.graphql(RUN_MESSAGES, {"runId": run_id})["logsForRun"]
    return [event.get("message", "") for event in logs.get("events", [])]


def loaded_input_metadata(server: DagsterDev, run_id: str) -> dict[str, dict[str, str]]:
    """The metadata of each LOADED_INPUT event of a run by input name (ints and paths as text)."""
    logs = server.graphql(LOADED_INPUTS, {"runId": run_id})["logsForRun"]
    return {
        event["inputName"]: {
            entry["label"]: entry.get("intRepr", entry.get("path", ""))
            for entry in event["metadataEntries"]
        }
        for event in logs.get("events", [])
        if event["__typename"] == "LoadedInputEvent"
    }


def _mutate(
    server: DagsterDev, mutation: str, variables: dict[str, Any], success: str
) -> dict[str, Any]:
    """Send a mutation; its one result field, or fail with it unless it is a `success`."""
    data = server.graphql(mutation, variables)
    name, result = next(iter(data.items()))
    if result["__typename"] != success:
        raise AssertionError(f"{name} failed: {result}")
    outcome: dict[str, Any] = result
    return outcome
