"""Run a real `dagster dev` for the end-to-end tests and talk to it over GraphQL.

`run_dagster_dev(workdir, env)` starts `dagster dev -w workspace.yaml` from the repository root
on 127.0.0.1 and a free port, in its own session (process group) with a fresh `DAGSTER_HOME`
(telemetry off, queued runs dequeued every second), waits until the code location is loaded
and yields a `DagsterDev`. On exit it sends SIGINT to its process group, waits for the group to
drain, and escalates to SIGTERM/SIGKILL on that group only.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCATION_NAME = "pq_io_manager_demo"
REPOSITORY_NAME = "__repository__"
ASSET_JOB = "__ASSET_JOB"
START_TIMEOUT_SECONDS = 90.0
RUN_TIMEOUT_SECONDS = 120.0
# SIGINT is dagster dev's clean shutdown (its code server exits ~3 s later); then escalate.
STOP_SIGNALS = ((signal.SIGINT, 25.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))
FINISHED_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


class GraphQLError(RuntimeError):
    """The webserver answered a GraphQL request with errors."""


@dataclass(frozen=True)
class DagsterDev:
    """A running `dagster dev`: its URL, home, log file and process."""

    url: str
    dagster_home: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST one GraphQL request and return its `data`, raising on `errors`."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload: dict[str, Any] = json.loads(response.read())
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"])[:2000])
        data: dict[str, Any] = payload["data"]
        return data

    def log_tail(self, lines: int = 60) -> str:
        """The end of the server's combined stdout/stderr, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_dagster_home(path: Path, dagster_yaml: str = DAGSTER_YAML) -> Path:
    """A fresh DAGSTER_HOME with telemetry off and a fast queued run coordinator (or the
    instance settings in `dagster_yaml`)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(dagster_yaml)
    return path


def dagster_environment(dagster_home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The current environment plus an isolated DAGSTER_HOME, telemetry off, and `extra`."""
    environment = dict(os.environ)
    environment.update(DAGSTER_HOME=str(dagster_home), DAGSTER_DISABLE_TELEMETRY="1")
    environment.update(extra)
    return environment


LOCATIONS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def location_state(server: DagsterDev) -> tuple[str, str | None]:
    """(loadStatus, error message or None) of the demo's code location."""
    data = server.graphql(LOCATIONS_QUERY)["workspaceOrError"]
    for entry in data.get("locationEntries", []):
        if entry["name"] == LOCATION_NAME:
            loaded = entry["locationOrLoadError"] or {}
            return entry["loadStatus"], loaded.get("message")
    return "MISSING", None


def _wait_until_loaded(server: DagsterDev) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"dagster dev exited early:\n{server.log_tail()}")
        with contextlib.suppress(OSError, urllib.error.URLError, GraphQLError):
            status, error = location_state(server)
            if error is not None:
                raise RuntimeError(f"definitions.py failed to load:\n{error}")
            if status == "LOADED":
                return
        time.sleep(0.25)
    raise RuntimeError(
        f"dagster dev not ready in {START_TIMEOUT_SECONDS:.0f} s:\n{server.log_tail()}"
    )


def _default_sigint() -> None:
    """In the child: take SIGINT's default action even if the test runner ignores it (a shell
    starts background jobs with SIGINT ignored, and exec keeps that), so SIGINT stops it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _group_alive(pgid: int) -> bool:
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT the group `process` leads, wait for all of it to exit, then escalate."""
    pgid = process.pid  # start_new_session=True: the child leads its own group
    for signal_number, timeout in STOP_SIGNALS:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal_number)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is None:
                time.sleep(0.1)
                continue
            if not _group_alive(pgid):
                return
            time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@contextlib.contextmanager
def run_dagster_dev(
    workdir: Path, env: Mapping[str, str], dagster_yaml: str = DAGSTER_YAML
) -> Iterator[DagsterDev]:
    """Start `dagster dev` from the repository root and yield it once the location is loaded."""
    dagster_home = make_dagster_home(workdir / "dagster_home", dagster_yaml)
    log_path = workdir / "dagster-dev.log"
    port = free_port()
    command = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dagster_environment(dagster_home, env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,  # before exec: undo an inherited SIG_IGN
        )
    server = DagsterDev(f"http://127.0.0.1:{port}", dagster_home, log_path, process)
    try:
        _wait_until_loaded(server)
        yield server
    finally:
        stop_process_group(process)
