"""The benchmark suite's quick mode runs end to end and writes a well-formed JSON, PNG and table.

No timing assertions: the machine is shared and timings are noise at these sizes.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
STORES = ("local", "moto")
SCENARIO_PREFIXES = ("1 ", "2 ", "3 ", "4 ", "5 ", "6 ")
ALTERNATIVE_PREFIXES = ("1 ", "2 ", "3 ", "4 ", "5 ")  # scenarios that time the alternatives
SCALE_QUERIES = ("one partition", "a month", "all, filter one day")
ROW_FIELDS = {
    "scenario",
    "store",
    "contender",
    "seconds",
    "median_s",
    "ratio_to_raw",
    "peak_rss_mb",
    "requests",
    "requests_by_method",
    "status",
    "note",
}

pytestmark = [pytest.mark.s3, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run `python -m benchmarks.run --quick` once; return its output directory and stdout."""
    output = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--stores",
            ",".join(STORES),
            "--output",
            str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return output, completed.stdout


@pytest.fixture(scope="module")
def results(quick_run: tuple[Path, str]) -> dict[str, Any]:
    """The parsed results.json."""
    document: dict[str, Any] = json.loads((quick_run[0] / "results.json").read_text())
    return document


def _rows(results: dict[str, Any], store: str, prefix: str) -> dict[str, dict[str, Any]]:
    return {
        row["contender"]: row
        for row in results["rows"]
        if row["store"] == store and row["scenario"].startswith(prefix)
    }


def test_meta_names_mode_machine_and_versions(results: dict[str, Any]) -> None:
    meta = results["meta"]
    assert meta["mode"] == "quick"
    assert meta["stores"] == list(STORES)
    assert meta["versions"]["polars"]
    assert meta["versions"]["dagster"]
    assert "cores" in meta["machine"]


def test_every_scenario_measures_ours_and_raw_on_every_store(results: dict[str, Any]) -> None:
    for row in results["rows"]:
        assert set(row) == ROW_FIELDS
    for store in STORES:
        for prefix in SCENARIO_PREFIXES:
            rows = _rows(results, store, prefix)
            for contender in ("pq_io_manager", "raw polars"):
                row = rows[contender]
                assert row["status"] == "ok", (store, prefix, contender, row["note"])
                assert row["median_s"] > 0
                assert row["ratio_to_raw"] > 0
            assert rows["raw polars"]["ratio_to_raw"] == pytest.approx(1.0)


def test_alternatives_are_reported_even_when_they_cannot_run(results: dict[str, Any]) -> None:
    for store in STORES:
        for prefix in ALTERNATIVE_PREFIXES:
            rows = _rows(results, store, prefix)
            for contender in ("pickle", "dagster-polars", "deltalake"):
                assert contender in rows, (store, prefix, contender)
                row = rows[contender]
                assert row["status"] in {"ok", "failed", "n/a"}
                assert row["status"] == "ok" or row["note"], row


def test_loads_on_s3_have_request_counts(results: dict[str, Any]) -> None:
    rows = _rows(results, "moto", "2 ")
    assert rows["pq_io_manager"]["requests"] > 0
    assert rows["raw polars"]["requests"] > 0
    small = next(row for name, row in rows.items() if "(asset of" in name)
    assert small["requests"] > 0


def test_scale_measures_every_size_and_load_against_raw(results: dict[str, Any]) -> None:
    sizes = results["meta"]["sizes"]["scale_partitions"]
    for store in STORES:
        for size in sizes:
            for query in SCALE_QUERIES:
                rows = _rows(results, store, f"7 scale {size}: {query}")
                for contender in ("pq_io_manager", "raw polars"):
                    assert rows[contender]["status"] == "ok", (store, size, query, contender)
                    assert rows[contender]["median_s"] > 0
                    if store == "moto":
                        assert rows[contender]["requests"] > 0, (size, query, contender)


def test_filtered_read_on_s3_counts_listings(results: dict[str, Any]) -> None:
    rows = _rows(results, "moto", "6 ")
    assert rows["raw polars"]["requests_by_method"]["LIST"] >= 1
    assert rows["pq_io_manager"]["requests"] > 0


def test_streaming_reports_peak_rss(results: dict[str, Any]) -> None:
    for store in STORES:
        rows = _rows(results, store, "5 ")
        assert rows["pq_io_manager"]["peak_rss_mb"] > 0
        assert rows["raw polars"]["peak_rss_mb"] > 0


def test_goals_are_checked(results: dict[str, Any]) -> None:
    goals = {(goal["goal"], goal["store"]) for goal in results["goals"]}
    for store in STORES:
        assert ("write <= 1.10x raw", store) in goals
        assert ("load one <= 1.2x raw", store) in goals
        assert ("stream peak RSS <= 1.25x raw", store) in goals


def test_chart_is_a_png(quick_run: tuple[Path, str]) -> None:
    chart = quick_run[0] / "chart.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.stat().st_size > 10_000


def test_scale_table_is_written(quick_run: tuple[Path, str]) -> None:
    table = (quick_run[0] / "results.md").read_text()
    assert "| Store | Load | Contender |" in table


def test_table_is_printed_and_written(quick_run: tuple[Path, str]) -> None:
    output, stdout = quick_run
    header = "| Scenario | Store | Contender | Median (s) |"
    assert header in stdout
    table = (output / "results.md").read_text()
    assert header in table
    assert "| Goal | Store |" in table


def test_no_secret_is_printed_or_written(quick_run: tuple[Path, str]) -> None:
    output, stdout = quick_run
    written = stdout + (output / "results.json").read_text() + (output / "results.md").read_text()
    assert "aws_secret_access_key" not in written
    assert "secret_access_key" not in written


@pytest.mark.parametrize(("repeat_short", "calls"), [(False, 1), (True, 50)])
def test_a_short_load_is_timed_over_many_calls_and_a_write_once(
    repeat_short: bool, calls: int
) -> None:
    from benchmarks.measure import run_case

    made: list[int] = []

    def case() -> Any:
        made.append(0)
        return lambda: made.append(1)

    seconds = run_case(case, repeat_short=repeat_short)

    assert made == [0] + [1] * calls  # prepared once, then called (MAX_REPEATS for a no-op)
    assert 0 <= seconds < 0.02
