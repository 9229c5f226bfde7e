"""Scenario 8: a single-run backfill of a LazyFrame over many daily partitions, 1x and 4x.

The IO manager (one streaming pass into staging, then each partition published) against raw
polars' `sink_parquet(pl.PartitionBy(...))` of the same frame, and against that sink inside the
same Dagster run (Dagster's share of the time, which no IO manager can avoid); one fresh
interpreter per measurement, peak RSS from VmHWM (as scenario 5). The goal: peak RSS <= 1.25x
raw and flat from 1x to 4x, time <= 1.15x raw.

Standalone: `python -m benchmarks.backfill_rss [--rows N] [--stores local,moto] [--rounds R]`.
`python -m benchmarks.run` runs it in full mode only (10M and 40M rows, 90 partitions).
"""

import argparse
import dataclasses
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.contenders import OURS, RAW, RAW_IN_DAGSTER
from benchmarks.data import mixed_frame
from benchmarks.measure import Row, add_ratios
from benchmarks.session import Session
from benchmarks.streaming import run_child
from benchmarks.targets import Target, open_target

PARTITIONS = 60
COPIES = 10  # the source file is scanned this many times (1x); 4x scans it 4 times as often
FACTORS = (1, 4)
CONTENDERS = (OURS, RAW, RAW_IN_DAGSTER)
DIRECTORIES = {OURS: "backfill_rss", RAW: "raw", RAW_IN_DAGSTER: "raw_in_dagster"}


def _job(
    target: Target, contender: str, source: str, copies: int, partitions: int
) -> dict[str, Any]:
    endpoint = dataclasses.asdict(target.endpoint) if target.endpoint else None
    return {
        "store": target.name,
        "root": target.root,
        "endpoint": endpoint,
        "contender": contender,
        "source": source,
        "copies": copies,
        "partitions": partitions,
    }


def measure(
    target: Target, workdir: Path, rows: int, rounds: int, partitions: int = PARTITIONS
) -> list[Row]:
    """Rows for both contenders at 1x and 4x `rows`, alternating children."""
    source = str(workdir / "backfill-source.parquet")
    mixed_frame(max(rows // COPIES, 1)).write_parquet(source, row_group_size=100_000)
    found: list[Row] = []
    for factor in FACTORS:
        name = f"8 backfill {rows * factor / 1e6:g}M rows x {partitions} partitions"
        results: dict[str, list[dict[str, float]]] = {contender: [] for contender in CONTENDERS}
        rows_by = {contender: Row(name, target.name, contender) for contender in results}
        for round_index in range(rounds):
            shift = round_index % len(CONTENDERS)  # each contender goes first in turn
            for contender in CONTENDERS[shift:] + CONTENDERS[:shift]:
                target.remove(DIRECTORIES[contender])
                job = _job(target, contender, source, COPIES * factor, partitions)
                try:
                    results[contender].append(run_child(job, module="benchmarks.backfill_child"))
                except Exception as error:
                    rows_by[contender].status, rows_by[contender].note = "failed", str(error)[:300]
                    logging.getLogger(__name__).warning("%s failed: %s", contender, error)
        for contender, row in rows_by.items():
            if results[contender] and row.status == "ok":
                _finish(row, results[contender])
        found.extend(rows_by.values())
    return found


def _finish(row: Row, results: list[dict[str, float]]) -> None:
    row.seconds = [result["seconds"] for result in results]
    row.median_s = statistics.median(row.seconds)
    row.peak_rss_mb = statistics.median(result["peak_rss_mb"] for result in results)
    baseline = statistics.median(result["baseline_rss_mb"] for result in results)
    row.note = f"baseline RSS {baseline:.0f} MB"


def backfill_rss(session: Session) -> list[Row]:
    """8 backfill RSS: a LazyFrame over 90 daily partitions, 1x and 4x, vs raw PartitionBy."""
    sizes = session.sizes
    if sizes.mode == "quick":  # 8 fresh interpreters would double the CI smoke run's time
        return []
    rows = sizes.stream_rows // 5  # 10M rows, 4x: 40M
    return measure(
        session.target, session.workdir, rows, sizes.stream_rounds, sizes.backfill_partitions
    )


def goals(rows: list[Row], store: str) -> list[dict[str, Any]]:
    """The issue's goals for scenario 8 on one store (judged at the 4x size)."""
    found = {
        (row.scenario.split(" ")[2], row.contender): row
        for row in rows
        if row.store == store and row.scenario.startswith("8 ") and row.status == "ok"
    }
    sizes = sorted({size for size, _ in found}, key=lambda size: float(size.rstrip("M")))
    if len(sizes) < 2:
        return []
    small, large = sizes[0], sizes[-1]

    def ratio(field: str, first: tuple[str, str], second: tuple[str, str]) -> float | None:
        top, bottom = found.get(first), found.get(second)
        if top is None or bottom is None:
            return None
        values = getattr(top, field), getattr(bottom, field)
        return None if None in values or not values[1] else values[0] / values[1]

    return [
        _goal(
            "backfill peak RSS <= 1.25x raw",
            store,
            ratio("peak_rss_mb", (large, OURS), (large, RAW)),
            1.25,
        ),
        _goal(
            "backfill RSS 4x size <= 1.25x 1x",
            store,
            ratio("peak_rss_mb", (large, OURS), (small, OURS)),
            1.25,
        ),
        _goal(
            "backfill time <= 1.15x raw",
            store,
            ratio("median_s", (large, OURS), (large, RAW)),
            1.15,
        ),
        _goal(  # not the goal: the same limit without Dagster's share, which we can't cut
            "(shown) backfill time <= 1.15x raw in the same Dagster run",
            store,
            ratio("median_s", (large, OURS), (large, RAW_IN_DAGSTER)),
            1.15,
        ),
    ]


def _goal(name: str, store: str, value: float | None, limit: float) -> dict[str, Any]:
    met = value is not None and value <= limit
    shown = "n/a" if value is None else f"{value:.2f}x"
    return {"goal": name, "store": store, "value": shown, "limit": f"{limit:g}x", "met": met}


def main() -> None:
    """Run scenario 8 alone and print its table."""
    from benchmarks.report import goals_table, markdown_table  # the report imports this module

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--stores", default="local,moto")
    parser.add_argument("--rounds", type=int, default=1)
    arguments = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    found: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="pq-bench-8-") as directory:
        for store in arguments.stores.split(","):
            workdir = Path(directory, store)
            with open_target(store, workdir) as target:
                found.extend(measure(target, workdir, arguments.rows, arguments.rounds))
                print(f"[{store}] done", flush=True)
    add_ratios(found, RAW)
    checks = [check for store in arguments.stores.split(",") for check in goals(found, store)]
    print(markdown_table(found))
    print(goals_table(checks))
    print(f"polars {pl.__version__}")


if __name__ == "__main__":
    main()
