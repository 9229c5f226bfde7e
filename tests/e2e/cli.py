"""Run the `dagster` CLI of the venv on the demo, in a subprocess with an isolated home."""

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.e2e.dagster_dev import REPO_ROOT, dagster_environment, make_dagster_home

DAGSTER = str(Path(sys.executable).parent / "dagster")
CLI_TIMEOUT_SECONDS = 180
IN_PROCESS = '{"execution": {"config": {"in_process": {}}}}'


def run_dagster(
    arguments: Sequence[str], workdir: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`dagster ARGUMENTS` from the repository root; output captured, never raising."""
    environment = dagster_environment(make_dagster_home(workdir / "dagster_home"), env or {})
    return subprocess.run(
        [DAGSTER, *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """The end of a CLI run's output, for assertion messages."""
    return f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
