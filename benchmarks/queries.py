"""The queries the load scenarios run on what they load, and raw polars' prefix scan."""

import datetime as dt
from typing import Any

import polars as pl


def aggregate(frame: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """A group-by over three columns (lazily: only those columns are read)."""
    return (
        frame.lazy()
        .group_by("region")
        .agg(pl.col("amount").sum(), pl.col("qty").mean(), pl.len())
        .collect()
    )


def one_day(frame: pl.LazyFrame | pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The aggregate of one day, filtered on the partition column (prunes files)."""
    return aggregate(frame.lazy().filter(pl.col("date") == day))


def days_between(frame: pl.LazyFrame | pl.DataFrame, first: dt.date, last: dt.date) -> pl.DataFrame:
    """The aggregate of the days from `first` to `last` (inclusive)."""
    return aggregate(frame.lazy().filter(pl.col("date").is_between(first, last)))


def prefix_scan(root: str, options: dict[str, Any]) -> pl.LazyFrame:
    """Raw polars over a whole hive dataset: types inferred from the paths, every file listed."""
    return pl.scan_parquet(root.rstrip("/") + "/", hive_partitioning=True, **options)
