"""Benchmark sizes and the synthetic frames (6 mixed columns, deterministic)."""

import datetime as dt
from dataclasses import dataclass

import polars as pl

START = dt.date(2024, 1, 1)


@dataclass(frozen=True)
class Sizes:
    """Row counts and rounds of one benchmark mode."""

    mode: str
    write_rows: int  # scenario 1: one partition
    partition_rows: int  # scenarios 2-3: rows per partition of the 365-partition asset
    partitions: int  # scenario 2: partitions of the big asset
    small_partitions: int  # scenario 2: the small asset compared for request counts
    range_partitions: int  # scenario 3
    backfill_partitions: int  # scenario 4
    backfill_rows: int  # scenario 4: rows per partition
    stream_rows: int  # scenario 5
    rounds: int
    stream_rounds: int
    scale_partitions: tuple[int, ...]  # scenario 7: sizes of the small-file assets
    scale_rows: int  # scenario 7: rows per partition
    scale_month: int  # scenario 7: partitions in "a month"
    scale_rounds: int


FULL = Sizes(
    "full",
    5_000_000,
    50_000,
    365,
    30,
    30,
    90,
    50_000,
    50_000_000,
    5,
    3,
    (30, 365, 3650),
    200,
    30,
    3,
)
# quick: one timed round after the warm-up (a smoke test of the code, not a measurement)
QUICK = Sizes("quick", 20_000, 500, 40, 10, 10, 12, 500, 200_000, 1, 1, (10, 20, 40), 20, 10, 1)


def day_date(day: int) -> dt.date:
    """The date `day` days after START."""
    return START + dt.timedelta(days=day)


def partition_key(day: int) -> str:
    """The daily partition key `day` days after START."""
    return day_date(day).isoformat()


def mixed_frame(rows: int, seed: int = 0) -> pl.DataFrame:
    """Six columns: int64 id, float64, low-cardinality string, datetime, bool, int32."""
    index = pl.int_range(0, rows, dtype=pl.Int64)
    return pl.select(
        id=index + seed * rows,
        amount=((index * 7919 + seed) % 100_003).cast(pl.Float64) / 100.0,
        region=pl.lit(pl.Series(["north", "south", "east", "west", "central"])).gather(index % 5),
        ts=pl.lit(dt.datetime(2024, 1, 1)) + pl.duration(seconds=index),
        flag=(index % 3) == 0,
        qty=((index * 31 + seed) % 1000).cast(pl.Int32),
    )


def dated_frame(partitions: int, rows_per_partition: int, first_day: int = 0) -> pl.DataFrame:
    """`partitions` consecutive days of `rows_per_partition` rows, with a `date` column."""
    days = pl.int_range(0, partitions * rows_per_partition) // rows_per_partition + first_day
    return mixed_frame(partitions * rows_per_partition).with_columns(
        date=(pl.lit(START) + pl.duration(days=days)).cast(pl.Date)
    )


def stream_source(rows: int, path: str, chunks: int = 10) -> pl.LazyFrame:
    """A lazy frame of `rows` rows: one local file of rows/chunks rows scanned `chunks` times."""
    per_file = max(rows // chunks, 1)
    mixed_frame(per_file).write_parquet(path, row_group_size=100_000)
    return pl.scan_parquet([path] * chunks)
