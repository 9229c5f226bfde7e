"""Scenario 5: a lazy output streamed to the store; time and peak RSS, one child per run."""

import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.contenders import DAGSTER_POLARS, DELTA, OURS, PICKLE, RAW
from benchmarks.data import partition_key, stream_source
from benchmarks.measure import Row, mark_unsupported
from benchmarks.session import Session

CHUNKS = 10
STREAM_DAY = 300
CHILD_TIMEOUT_S = 600
REPO = Path(__file__).resolve().parents[1]


def _job(session: Session, contender: str, source: str) -> dict[str, Any]:
    target = session.target
    endpoint = dataclasses.asdict(target.endpoint) if target.endpoint else None
    return {
        "store": target.name,
        "root": target.root,
        "endpoint": endpoint,
        "contender": contender,
        "source": source,
        "chunks": CHUNKS,
        "key": partition_key(STREAM_DAY),
    }


def run_child(job: dict[str, Any], module: str = "benchmarks.stream_child") -> dict[str, float]:
    """Run one measurement in a fresh interpreter; raise with its stderr tail on failure."""
    completed = subprocess.run(
        [sys.executable, "-m", module],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=CHILD_TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        lines = completed.stderr.strip().splitlines() or ["no output"]
        raise RuntimeError(f"child exited {completed.returncode}: {lines[-1][-400:]}")
    return dict(json.loads(lines[-1]))


def _finish(row: Row, results: list[dict[str, float]]) -> None:
    row.seconds = [result["seconds"] for result in results]
    row.median_s = statistics.median(row.seconds)
    row.peak_rss_mb = statistics.median(result["peak_rss_mb"] for result in results)
    baseline = statistics.median(result["baseline_rss_mb"] for result in results)
    row.note = (row.note + " " if row.note else "") + f"baseline RSS {baseline:.0f} MB"


def stream(session: Session) -> list[Row]:
    """Alternate child processes of ours, raw `sink_parquet` and the alternatives."""
    rows_n = session.sizes.stream_rows
    source = str(session.workdir / "stream-source.parquet")
    if not os.path.exists(source):
        stream_source(rows_n, source, CHUNKS)
    name = f"5 stream {rows_n / 1e6:g}M-row LazyFrame"
    contenders = [OURS, RAW, *(c for c in (DAGSTER_POLARS, DELTA) if c in session.timed)]
    rows = {contender: Row(name, session.target.name, contender) for contender in contenders}
    results: dict[str, list[dict[str, float]]] = {contender: [] for contender in contenders}
    for round_index in range(session.sizes.stream_rounds):
        shift = round_index % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            if rows[contender].status != "ok" or (round_index and contender not in (OURS, RAW)):
                continue  # alternatives: one round (they collect the whole frame first)
            try:
                results[contender].append(run_child(_job(session, contender, source)))
            except Exception as error:
                rows[contender].status, rows[contender].note = "failed", str(error)[:300]
                logging.getLogger(__name__).warning("%s failed: %s", contender, error)
    for contender, row in rows.items():
        if results[contender] and row.status == "ok":
            _finish(row, results[contender])
    pickle_row = mark_unsupported(
        name, session.target.name, PICKLE, "pickles the LazyFrame's query plan, not its data"
    )
    return [*rows.values(), pickle_row, *session.unavailable_rows(name)]
