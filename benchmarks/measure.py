"""Timing contenders alternately, and the result rows every scenario produces."""

import gc
import statistics
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# A case prepares untimed state (contexts, cleanup) and returns the action to time.
Case = Callable[[], Callable[[], object]]
ERROR_LIMIT = 300
SHORT_ACTION_SECONDS = 0.02
REPEAT_BUDGET_SECONDS = 0.1
MAX_REPEATS = 50


@dataclass
class Row:
    """One contender in one scenario on one store."""

    scenario: str
    store: str
    contender: str
    seconds: list[float] = field(default_factory=list)
    median_s: float | None = None
    ratio_to_raw: float | None = None
    peak_rss_mb: float | None = None
    requests: int | None = None
    requests_by_method: dict[str, int] | None = None
    status: str = "ok"
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """The row as JSON-ready data."""
        return asdict(self)


def brief_error(error: BaseException) -> str:
    """`Type: message`, shortened, from the innermost frame's exception."""
    text = f"{type(error).__name__}: {error}".replace("\n", " ").strip()
    return text if len(text) <= ERROR_LIMIT else text[:ERROR_LIMIT] + "..."


def run_case(case: Case, repeat_short: bool = False) -> float:
    """Prepare, then time the action in seconds (garbage collected beforehand).

    An action of a few milliseconds timed once is mostly scheduler noise, so with
    `repeat_short` (for actions that can run twice, i.e. loads) a short one is repeated (up to
    about 0.1 s in all) and the median of its calls is returned.
    """
    action = case()
    gc.collect()
    timings = [_timed(action)]
    while (
        repeat_short
        and timings[0] < SHORT_ACTION_SECONDS
        and sum(timings) < REPEAT_BUDGET_SECONDS
        and len(timings) < MAX_REPEATS
    ):
        timings.append(_timed(action))
    return statistics.median(timings)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def alternate(
    scenario: str,
    store: str,
    cases: Mapping[str, Case],
    rounds: int,
    warmup: bool = True,
    repeat_short: bool = False,
) -> list[Row]:
    """Time every case once per round, rotating the order each round; failures are recorded.

    A case that raises is marked failed with its error and not run again.
    """
    rows = {name: Row(scenario, store, name) for name in cases}
    names = list(cases)
    for round_index in range(-1 if warmup else 0, rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            row = rows[name]
            if row.status != "ok":
                continue
            try:
                seconds = run_case(cases[name], repeat_short)
            except Exception as error:
                row.status = "failed"
                row.note = brief_error(error)
                traceback.print_exc(limit=-3)
                continue
            if round_index >= 0:  # round -1 warms caches and connections up
                row.seconds.append(seconds)
    for row in rows.values():
        if row.seconds:
            row.median_s = statistics.median(row.seconds)
    return list(rows.values())


def add_ratios(rows: list[Row], baseline: str) -> None:
    """Set each row's ratio to the baseline row's median (same scenario and store)."""
    medians = {
        (row.scenario, row.store): row.median_s
        for row in rows
        if row.contender == baseline and row.median_s
    }
    for row in rows:
        base = medians.get((row.scenario, row.store))
        if base and row.median_s is not None:
            row.ratio_to_raw = row.median_s / base


def mark_unsupported(scenario: str, store: str, contender: str, reason: str) -> Row:
    """A row for a contender that cannot run this scenario (not a failure of ours)."""
    return Row(scenario, store, contender, status="n/a", note=reason)
