"""Scenario 7's chart panel: load time against the asset's partitions (log-log), one store."""

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib.axes import Axes

from benchmarks.contenders import OURS, RAW, RAW_PREFIX
from benchmarks.measure import Row
from benchmarks.scale_report import series, sizes_of
from benchmarks.scaling import QUERIES

QUERY_COLORS = ("#1f77b4", "#2ca02c", "#d62728")
STYLES = {OURS: "-", RAW: "--", RAW_PREFIX: ":"}
MARKERS = {OURS: "o", RAW: "s", RAW_PREFIX: "^"}


def draw_scale(axis: Axes, rows: Sequence[Row], store: str, legend: bool) -> None:
    """One line per load and contender: solid ours, dashed raw (file list or, for the
    filtered read, the prefix scan), dotted raw prefix scan with a range filter."""
    for color, query in zip(QUERY_COLORS, QUERIES, strict=True):
        for contender, style in STYLES.items():
            sizes, seconds = series(rows, store, query, contender)
            if not sizes:
                continue
            label = f"{query}, {'ours' if contender == OURS else contender}"
            axis.plot(
                sizes,
                [value * 1000 for value in seconds],
                linestyle=style,
                marker=MARKERS[contender],
                color=color,
                markersize=3,
                linewidth=1,
                label=label,
            )
    axis.set_xscale("log")
    axis.set_yscale("log")
    sizes = sizes_of(rows)
    axis.set_xticks(sizes, [str(size) for size in sizes])
    axis.set_xlabel("partitions in the asset", fontsize=7)
    axis.set_ylabel("median ms", fontsize=7)
    axis.tick_params(labelsize=6)
    axis.set_title(f"7 scale, {store}", fontsize=8)
    if legend:
        axis.legend(fontsize=5, loc="upper left")
