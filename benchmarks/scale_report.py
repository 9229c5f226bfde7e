"""Scenario 7's results: one table of time and requests against the asset's size."""

from collections.abc import Sequence

from benchmarks.contenders import OURS, RAW, RAW_PREFIX
from benchmarks.measure import Row
from benchmarks.scaling import MONTH, ONE, QUERIES, parse_name

CONTENDERS = (OURS, RAW, RAW_PREFIX)


def scale_rows(rows: Sequence[Row]) -> dict[tuple[str, str, str, int], Row]:
    """Scenario 7's rows by (store, query, contender, partitions)."""
    found: dict[tuple[str, str, str, int], Row] = {}
    for row in rows:
        parsed = parse_name(row.scenario)
        if parsed is not None:
            found[(row.store, parsed[1], row.contender, parsed[0])] = row
    return found


def sizes_of(rows: Sequence[Row]) -> list[int]:
    """The asset sizes measured, ascending."""
    return sorted({key[3] for key in scale_rows(rows)})


def _cell(row: Row | None) -> str:
    if row is None or row.median_s is None:
        return "" if row is None else f"{row.status}"
    text = f"{row.median_s * 1000:.1f} ms"
    if row.ratio_to_raw is not None and row.contender != RAW:
        text += f" ({row.ratio_to_raw:.2f}x)"
    if row.requests is not None:
        text += f", {row.requests} req"
    return text


def scale_table(rows: Sequence[Row]) -> str:
    """Median time (ratio to raw) and requests per store, load, contender and asset size."""
    found, sizes = scale_rows(rows), sizes_of(rows)
    if not found:
        return ""
    header = ["Store", "Load", "Contender", *(f"{size} partitions" for size in sizes)]
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|" + "---:|" * len(sizes)]
    stores = list(dict.fromkeys(key[0] for key in found))
    for store in stores:
        for query in QUERIES:
            for contender in CONTENDERS:
                cells = [found.get((store, query, contender, size)) for size in sizes]
                if all(cell is None for cell in cells):
                    continue
                values = [_cell(cell) for cell in cells]
                lines.append("| " + " | ".join([store, query, contender, *values]) + " |")
    return "\n".join(lines)


def request_spreads(rows: Sequence[Row], store: str) -> dict[str, float]:
    """For loads that ask for the same partitions of every asset (one partition, a month):
    ours' most minus fewest requests across asset sizes (0 = independent of the size)."""
    found = scale_rows(rows)
    spreads: dict[str, float] = {}
    for query in (ONE, MONTH):
        counts = [
            row.requests
            for (row_store, row_query, contender, _), row in found.items()
            if row_store == store and row_query == query and contender == OURS
            if row.requests is not None
        ]
        if counts:
            spreads[query] = float(max(counts) - min(counts))
    return spreads


def series(
    rows: Sequence[Row], store: str, query: str, contender: str
) -> tuple[list[int], list[float]]:
    """(sizes, median seconds) of one line of the chart."""
    found = scale_rows(rows)
    points = sorted(
        (size, row.median_s)
        for (row_store, row_query, row_contender, size), row in found.items()
        if (row_store, row_query, row_contender) == (store, query, contender)
        if row.median_s is not None
    )
    return [size for size, _ in points], [seconds for _, seconds in points]
