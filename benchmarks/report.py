"""Results: goal checks, the Markdown table, the JSON file and the PNG chart."""

import json
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import scale_report
from benchmarks.backfill_rss import goals as backfill_goals
from benchmarks.contenders import ALTERNATIVES, OURS, RAW, RAW_PREFIX
from benchmarks.measure import Row

PACKAGES = (
    "polars",
    "dagster",
    "dagster-aws",
    "dagster-polars",
    "dagster-deltalake-polars",
    "deltalake",
    "boto3",
    "moto",
)
NOTE_LIMIT = 90


def versions() -> dict[str, str]:
    """Installed versions of the packages the benchmarks exercise."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def machine() -> str:
    """CPU count and memory of this machine."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{os.cpu_count()} cores, {memory:.0f} GB RAM, {platform.system()} {platform.machine()}"


def _find(rows: Sequence[Row], prefix: str, store: str, contender: str) -> Row | None:
    return next(
        (
            r
            for r in rows
            if r.scenario.startswith(prefix) and r.store == store and r.contender == contender
        ),
        None,
    )


def _goal(name: str, store: str, value: float | None, limit: float, unit: str) -> dict[str, Any]:
    met = value is not None and value <= limit
    shown = "n/a" if value is None else f"{value:.2f}{unit}"
    return {"goal": name, "store": store, "value": shown, "limit": f"{limit:g}{unit}", "met": met}


def goals(rows: Sequence[Row], stores: Sequence[str]) -> list[dict[str, Any]]:
    """Each goal of the issue, per store, with the measured value and whether it is met."""
    checks: list[dict[str, Any]] = []
    for store in stores:
        write = _ratio(rows, "1 ", store)
        checks.append(_goal("write <= 1.10x raw", store, write, 1.10, "x"))
        checks.extend(load_goals(rows, store))
        ours, raw = _find(rows, "5 ", store, OURS), _find(rows, "5 ", store, RAW)
        ratio = None
        if ours and raw and ours.peak_rss_mb and raw.peak_rss_mb:
            ratio = ours.peak_rss_mb / raw.peak_rss_mb
        checks.append(_goal("stream peak RSS <= 1.25x raw", store, ratio, 1.25, "x"))
        checks.extend(_ahead(rows, store))
        checks.extend(backfill_goals(list(rows), store))
    return checks


def _ratio(rows: Sequence[Row], prefix: str, store: str, baseline: str = RAW) -> float | None:
    """Ours' median over the baseline's in one scenario and store."""
    ours, base = _find(rows, prefix, store, OURS), _find(rows, prefix, store, baseline)
    if ours is None or base is None or ours.median_s is None or not base.median_s:
        return None
    return ours.median_s / base.median_s


def _extra_requests(rows: Sequence[Row], prefix: str, store: str, other: str) -> float | None:
    """Ours' requests minus another contender's (same scenario and store)."""
    ours, base = _find(rows, prefix, store, OURS), _find(rows, prefix, store, other)
    if ours is None or base is None or ours.requests is None or base.requests is None:
        return None
    return float(ours.requests - base.requests)


def load_goals(rows: Sequence[Row], store: str) -> list[dict[str, Any]]:
    """Issue 9's load goals (scenarios 2, 3, 6 and 7) on one store."""
    s3 = any(row.store == store and row.requests is not None for row in rows)
    checks = [_goal("load one <= 1.2x raw", store, _ratio(rows, "2 ", store), 1.2, "x")]
    range_limit, filter_limit = (1.0, 1.0) if s3 else (1.2, 1.5)
    checks.append(
        _goal(f"range <= {range_limit:g}x raw", store, _ratio(rows, "3 ", store), range_limit, "x")
    )
    if s3:
        versus_prefix = _ratio(rows, "3 ", store, RAW_PREFIX)
        checks.append(_goal("range <= 1x raw prefix scan", store, versus_prefix, 1.0, "x"))
    label = f"filter one day of all <= {filter_limit:g}x raw"
    checks.append(_goal(label, store, _ratio(rows, "6 ", store), filter_limit, "x"))
    if not s3:
        return checks
    small = next((r.contender for r in rows if "(asset of" in r.contender), "")
    comparisons: tuple[tuple[str, str, str], ...] = (
        ("load one requests = raw", "2 ", RAW),
        ("load one requests, asset of 30 vs 365", "2 ", small),
        ("filter one day requests <= raw", "6 ", RAW),
    )
    for goal, prefix, other in comparisons:
        checks.append(_goal(goal, store, _extra_requests(rows, prefix, store, other), 0, " extra"))
    for query, spread in scale_report.request_spreads(rows, store).items():
        checks.append(_goal(f"scale: {query} requests constant", store, spread, 0, " extra"))
    return checks


def _ahead(rows: Sequence[Row], store: str) -> list[dict[str, Any]]:
    """Ours faster than every alternative that ran, per scenario (ratio ours/alternative)."""
    checks = []
    for row in rows:
        if row.store != store or row.contender not in ALTERNATIVES or row.median_s is None:
            continue
        ours = _find(rows, row.scenario[:2], store, OURS)
        value = None if ours is None or ours.median_s is None else ours.median_s / row.median_s
        label = f"ahead of {row.contender} in {row.scenario[:1]}"
        checks.append(_goal(label, store, value, 1.0, "x"))
    return checks


def _cell(value: float | int | None, text: str = "{:.3f}") -> str:
    return "" if value is None else text.format(value)


def markdown_table(rows: Sequence[Row]) -> str:
    """The results as one Markdown table."""
    lines = [
        "| Scenario | Store | Contender | Median (s) | x raw | Peak RSS (MB) | Requests | Notes |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        note = row.note if len(row.note) <= NOTE_LIMIT else row.note[:NOTE_LIMIT] + "…"
        if row.status not in ("ok", "counts only"):
            note = f"**{row.status}**: {note}"
        methods = ", ".join(f"{m} {n}" for m, n in (row.requests_by_method or {}).items())
        requests = f"{row.requests} ({methods})" if row.requests is not None else ""
        cells = [
            row.scenario,
            row.store,
            row.contender,
            _cell(row.median_s, "{:.4f}"),
            _cell(row.ratio_to_raw, "{:.2f}x"),
            _cell(row.peak_rss_mb, "{:.0f}"),
            requests,
            note.replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals_table(checks: Sequence[dict[str, Any]]) -> str:
    """The goal checks as a Markdown table."""
    lines = ["| Goal | Store | Measured | Limit | Met |", "|---|---|---:|---:|---|"]
    for check in checks:
        met = "yes" if check["met"] else "**no**"
        lines.append(
            f"| {check['goal']} | {check['store']} | {check['value']} | {check['limit']} | {met} |"
        )
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], rows: Sequence[Row], checks: list[Any]) -> None:
    """The full results (every round's timings) as JSON."""
    document = {"meta": meta, "rows": [row.to_json() for row in rows], "goals": checks}
    path.write_text(json.dumps(document, indent=2) + "\n")
