"""A clean first run: the README's first command, run as written in a fresh copy of the demo,
prints no Python warning and no WARNING log line, and `dagster dev` no Python warning, except
Dagster's notice that its own CLI command is superseded by `dg` (emitted before any code of this
project is loaded, so nothing here can filter it; the README's command stays as it is)."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cli import CLI_TIMEOUT_SECONDS, DAGSTER
from tests.e2e.conftest import DemoServer
from tests.e2e.dagster_dev import REPO_ROOT, dagster_environment, make_dagster_home
from tests.e2e.lake_files import hive_files

pytestmark = pytest.mark.e2e

# `path:line: SomethingWarning: message`, as Python prints a warning (also inside a log line)
WARNING_LINE = re.compile(r"(?P<path>\S+):\d+: (?P<category>\w*Warning): (?P<message>.*)")
LOG_WARNING = re.compile(r" - (WARNING|ERROR|CRITICAL) - ")
CLI_NOTICE = re.compile(r"SupersessionWarning: Function `(asset_materialize|dev)_command` is")
DEMO_FILES = ("definitions.py", "workspace.yaml", "demo")


def readme_first_command() -> list[str]:
    """The `dagster asset materialize ...` part of the README's first shell command."""
    readme = (REPO_ROOT / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    [dagster_part] = [part for part in first_block.split("&&") if "dagster asset" in part]
    arguments = shlex.split(dagster_part)
    assert arguments[0] == ".venv/bin/dagster", arguments
    return [DAGSTER, *arguments[1:]]


def fresh_copy(workdir: Path) -> Path:
    """The demo's files in an empty directory, as a user's checkout before the first run."""
    project = workdir / "project"
    project.mkdir()
    for name in DEMO_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    return project


def test_readme_first_command_prints_no_warning_of_ours(tmp_path: Path) -> None:
    project = fresh_copy(tmp_path)
    environment = dagster_environment(make_dagster_home(tmp_path / "dagster_home"), {})
    for name in ("PQ_BASE_PATH", "PYTHONWARNINGS"):  # the README's command, as a user runs it
        environment.pop(name, None)
    result = subprocess.run(
        readme_first_command(),
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "RUN_SUCCESS" in output
    lake = project / "data" / "lake"
    assert hive_files(lake, "daily_sales") == ["order_date=2025-01-01/data.parquet"]
    warnings = [
        line
        for line in output.splitlines()
        if (WARNING_LINE.search(line) or LOG_WARNING.search(line)) and not CLI_NOTICE.search(line)
    ]
    assert warnings == [], "\n".join(warnings)


def test_dagster_dev_prints_no_warning_of_ours(demo_server: DemoServer) -> None:
    # the shared server has loaded the demo in its code server (and may have run it)
    log = demo_server.server.log_path.read_text(errors="replace")
    warnings = [
        line
        for line in log.splitlines()
        if WARNING_LINE.search(line) and not CLI_NOTICE.search(line)
    ]
    assert warnings == [], "\n".join(warnings)
