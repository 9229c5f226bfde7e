"""The one command: `python -m benchmarks.run [--quick] [--stores ...] [--output DIR]`.

`--scenarios 2,3` runs only those (numbered as in the table; for profiling a change).
Runs every scenario on every store, prints the results and goal tables, and writes
`results.json`, `chart.png` and `results.md` to the output directory.
"""

import argparse
import contextlib
import dataclasses
import datetime as dt
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import chart, report
from benchmarks.backfill_rss import backfill_rss
from benchmarks.contenders import RAW
from benchmarks.data import FULL, QUICK, Sizes
from benchmarks.measure import Row, add_ratios
from benchmarks.pruning import filter_day
from benchmarks.scale_report import scale_table
from benchmarks.scaling import parse_name, scale
from benchmarks.scenarios import backfill, load_one, load_range, setup_load_assets, write_one
from benchmarks.session import Session, open_session
from benchmarks.streaming import stream
from benchmarks.targets import available_stores, open_target

SCENARIOS: tuple[Callable[[Session], list[Row]], ...] = (
    write_one,
    load_one,
    load_range,
    backfill,
    stream,
    filter_day,
    scale,
    backfill_rss,
)
REPO = Path(__file__).resolve().parents[1]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    parser.add_argument(
        "--stores",
        default=",".join(available_stores()),
        help="comma-separated stores to run: local, moto, radosgw (default: all available)",
    )
    parser.add_argument("--output", type=Path, default=None, help="results directory")
    parser.add_argument(
        "--scenarios",
        default=",".join(str(number) for number in range(1, len(SCENARIOS) + 1)),
        help="comma-separated scenario numbers to run (default: all)",
    )
    parser.add_argument(
        "--stream-rounds",
        type=int,
        default=None,
        help="rounds of the fresh-interpreter scenarios 5 and 8 (default 3; more when noisy)",
    )
    return parser.parse_args(argv)


def run_store(name: str, sizes: Sizes, workdir: Path, scenarios: tuple[int, ...] = ()) -> list[Row]:
    """Start one store, run every scenario on it, stop it."""
    rows: list[Row] = []
    started = time.monotonic()
    with open_target(name, workdir / name) as target, contextlib.ExitStack() as stack:
        session = open_session(stack, target, sizes, workdir / name)
        print(f"[{name}] setting up load assets", flush=True)
        setup_load_assets(session)
        for number, scenario in enumerate(SCENARIOS, start=1):
            if scenarios and number not in scenarios:
                continue
            print(f"[{name}] {(scenario.__doc__ or scenario.__name__).splitlines()[0]}", flush=True)
            rows.extend(scenario(session))
    print(f"[{name}] done in {time.monotonic() - started:.0f} s", flush=True)
    return rows


def _meta(sizes: Sizes, stores: list[str], seconds: float) -> dict[str, Any]:
    return {
        "date": dt.date.today().isoformat(),
        "machine": report.machine(),
        "versions": report.versions(),
        "mode": sizes.mode,
        "sizes": sizes.__dict__,
        "stores": stores,
        "seconds": round(seconds, 1),
        "command": "python -m benchmarks.run" + (" --quick" if sizes.mode == "quick" else ""),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write the results; returns the exit status."""
    arguments = parse_arguments(argv)
    logging.getLogger("dagster").setLevel(logging.WARNING)
    sizes = QUICK if arguments.quick else FULL
    if arguments.stream_rounds:
        sizes = dataclasses.replace(sizes, stream_rounds=arguments.stream_rounds)
    output = arguments.output or REPO / "benchmarks" / "results" / (
        "quick" if arguments.quick else ""
    )
    output.mkdir(parents=True, exist_ok=True)
    stores = [store.strip() for store in arguments.stores.split(",") if store.strip()]
    scenarios = tuple(int(number) for number in arguments.scenarios.split(",") if number)
    started = time.monotonic()
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="pq-bench-"))
    try:
        for store in stores:
            rows.extend(run_store(store, sizes, workdir, scenarios))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    add_ratios(rows, RAW)
    publish(output, rows, _meta(sizes, stores, time.monotonic() - started))
    return 0


def publish(output: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    """Write `results.json`, `chart.png` and `results.md` (goals checked on `rows`)."""
    stores: list[str] = meta["stores"]
    checks = report.goals(rows, stores)
    main_rows = [row for row in rows if parse_name(row.scenario) is None]
    tables = [report.markdown_table(main_rows), scale_table(rows), report.goals_table(checks)]
    text = "\n\n".join(table for table in tables if table)
    report.write_json(output / "results.json", meta, rows, checks)
    chart.draw(output / "chart.png", rows, stores, f"{meta['mode']} mode, {meta['date']}")
    (output / "results.md").write_text(f"{text}\n")
    print(f"\n{text}\n\nwrote {output}/results.json, chart.png, results.md")


if __name__ == "__main__":
    sys.exit(main())
