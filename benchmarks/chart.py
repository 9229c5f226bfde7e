"""The PNG chart: per scenario, each contender's time as a multiple of raw polars, per store."""

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from benchmarks.contenders import (
    DAGSTER_POLARS,
    DELTA,
    OURS,
    PICKLE,
    RAW,
    RAW_IN_DAGSTER,
    RAW_PREFIX,
)
from benchmarks.measure import Row
from benchmarks.scale_chart import draw_scale
from benchmarks.scale_report import sizes_of
from benchmarks.scaling import parse_name

ORDER = (OURS, RAW, RAW_PREFIX, RAW_IN_DAGSTER, PICKLE, DAGSTER_POLARS, DELTA)
COLORS = {
    OURS: "#1f77b4",
    RAW: "#7f7f7f",
    RAW_PREFIX: "#bcbd22",
    RAW_IN_DAGSTER: "#9467bd",
    PICKLE: "#ff7f0e",
    DAGSTER_POLARS: "#2ca02c",
    DELTA: "#d62728",
}
WIDTH = 0.11


def _draw_scenario(axis: Axes, rows: Sequence[Row], stores: Sequence[str]) -> None:
    """Grouped bars (one group per store) of ratio to raw; x marks contenders that failed."""
    for index, contender in enumerate(ORDER):
        for position, store in enumerate(stores):
            row = next((r for r in rows if r.store == store and r.contender == contender), None)
            x = position + (index - len(ORDER) / 2 + 0.5) * WIDTH
            if row is None:
                continue
            if row.ratio_to_raw is None:
                if row.status in ("failed", "n/a"):
                    axis.plot(x, 1.0, marker="x", color=COLORS[contender], markersize=7)
                continue
            axis.bar(x, row.ratio_to_raw, WIDTH, color=COLORS[contender])
            axis.text(
                x, row.ratio_to_raw, f"{row.ratio_to_raw:.2g}", ha="center", va="bottom", fontsize=6
            )
    axis.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
    axis.set_xticks(range(len(stores)), stores)
    axis.set_yscale("log")
    axis.set_ylabel("time / raw polars")
    axis.set_title(rows[0].scenario, fontsize=9)


def draw(path: Path, rows: Sequence[Row], stores: Sequence[str], subtitle: str) -> None:
    """Write the chart: one panel per scenario (lower is better, 1 = raw polars), then one
    panel per store of scenario 7's time against the asset's size."""
    bars = [row for row in rows if parse_name(row.scenario) is None]
    scenarios = list(dict.fromkeys(row.scenario for row in bars))
    scaled = bool(sizes_of(rows))
    height = 2.6 * len(scenarios) + (3.2 if scaled else 0)
    figure = plt.figure(figsize=(9, max(height, 3.0)))
    grid = figure.add_gridspec(len(scenarios) + int(scaled), len(stores) if scaled else 1)
    for index, scenario in enumerate(scenarios):
        axis = figure.add_subplot(grid[index, :])
        _draw_scenario(axis, [row for row in bars if row.scenario == scenario], stores)
    if scaled:
        for position, store in enumerate(stores):
            axis = figure.add_subplot(grid[len(scenarios), position])
            draw_scale(axis, rows, store, legend=position == 0)
    handles = [Rectangle((0, 0), 1, 1, color=COLORS[name]) for name in ORDER]
    figure.legend(
        handles, ORDER, loc="upper center", ncol=len(ORDER), fontsize=8, bbox_to_anchor=(0.5, 0.975)
    )
    figure.suptitle(
        f"Median time relative to raw polars (log scale; x = cannot run) — {subtitle}",
        fontsize=9,
        y=0.998,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.955))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def redraw(results: Path, path: Path) -> None:
    """Draw the chart again from a results.json (e.g. after changing the chart's layout)."""
    import json

    document = json.loads(results.read_text())
    rows = [Row(**row) for row in document["rows"]]
    meta = document["meta"]
    draw(path, rows, meta["stores"], f"{meta['mode']} mode, {meta['date']}")


if __name__ == "__main__":
    import sys

    redraw(Path(sys.argv[1]), Path(sys.argv[2]))
