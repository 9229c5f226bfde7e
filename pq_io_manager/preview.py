"""An optional preview of an output's first rows: a Markdown table of bounded size.

Off by default. The rows come from what is already at hand: a DataFrame's own first rows, or,
for a LazyFrame, the first rows of the first file just written (a `head` that polars pushes into
the Parquet reader: the footer and the first row group's pages, never the whole file). The
LazyFrame itself is never evaluated again: its `head` may cost its whole query (a sort, a join,
an aggregation), and evaluating it twice may not even give the same rows. No Dagster import.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from pq_io_manager.errors import ConfigurationError, brief
from pq_io_manager.frames import Frame
from pq_io_manager.storage import Dataset, WrittenFile

PREVIEW_ROWS = "preview_rows"  # definition metadata key overriding the IO manager's field
MAX_PREVIEW_ROWS = 100
MAX_PREVIEW_COLUMNS = 20
MAX_CELL_CHARACTERS = 40
MAX_PREVIEW_CHARACTERS = 8_000


def short_dtype(dtype: pl.DataType) -> str:
    """A polars type as polars prints it in a frame's header: `datetime[μs, UTC]`, `i64`."""
    represent = getattr(dtype, "_string_repr", None)  # polars' own (private) formatter
    return str(represent()) if callable(represent) else str(dtype)


def preview_rows(metadata: Mapping[str, Any], default: int, where: str) -> int:
    """How many rows to preview: the output's `preview_rows` metadata, else the IO manager's
    `preview_rows`; refused (before anything is written) unless 0 to MAX_PREVIEW_ROWS."""
    rows = metadata.get(PREVIEW_ROWS, default)
    if isinstance(rows, bool) or not isinstance(rows, int) or not 0 <= rows <= MAX_PREVIEW_ROWS:
        raise ConfigurationError(
            f"{where}: metadata {PREVIEW_ROWS!r} must be a whole number of rows from 0 (no "
            f"preview) to {MAX_PREVIEW_ROWS}, not {rows!r}; e.g. metadata={{'preview_rows': 5}}"
        )
    return rows


def preview_markdown(
    frame: Frame, dataset: Dataset, written: Sequence[WrittenFile], rows: int
) -> str | None:
    """The first `rows` rows of an output as a Markdown table; None when `rows` is 0."""
    if rows == 0 or not written:
        return None
    try:
        first = _first_rows(frame, dataset, written[0], rows)
    except Exception as error:  # the data is published: a preview must never fail the write
        return f"_No preview: reading the first rows of {written[0].uri} failed ({brief(error)})_"
    table = markdown_table(first, MAX_PREVIEW_CHARACTERS)
    if len(written) > 1:  # e.g. a run over several partitions: each shows the run's first rows
        table += f"\n\n_The first rows of this run's output, which wrote {len(written)} files._"
    return table


def markdown_table(frame: pl.DataFrame, max_characters: int) -> str:
    """A Markdown table of the frame's first columns, with as many rows as fit in
    `max_characters` (cells cut to MAX_CELL_CHARACTERS)."""
    names = frame.columns[:MAX_PREVIEW_COLUMNS]
    header = [_cell(f"{name} ({short_dtype(frame.schema[name])})") for name in names]
    lines = [_line(header), _line(["---"] * len(names))]
    length = sum(len(line) + 1 for line in lines)
    shown = 0
    for row in frame.select(names).iter_rows():
        line = _line([_cell(value) for value in row])
        if length + len(line) + 1 > max_characters:
            break
        lines.append(line)
        length += len(line) + 1
        shown += 1
    hidden = frame.width - len(names)
    note = f"First {shown} row(s)" + (f"; {hidden} more column(s) not shown" if hidden else "")
    return "\n".join([*lines, "", f"_{note}._"])


def _first_rows(frame: Frame, dataset: Dataset, file: WrittenFile, rows: int) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame.head(rows)
    hive = {column.name: column.dtype for column in file.columns}
    options: dict[str, Any] = {"hive_partitioning": bool(hive), **dataset.store.polars_options()}
    if hive:
        options["hive_schema"] = hive
    names = frame.collect_schema().names()  # planning only: the column order of the output
    stored = pl.scan_parquet(file.uri, **options).head(rows).collect()
    return stored.select([name for name in names if name in stored.columns])


def _cell(value: object) -> str:
    text = " ".join(("null" if value is None else str(value)).split())  # one line
    if len(text) > MAX_CELL_CHARACTERS:
        text = text[: MAX_CELL_CHARACTERS - 1] + "…"
    return text.replace("|", "\\|")  # a bare pipe would end the cell


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
