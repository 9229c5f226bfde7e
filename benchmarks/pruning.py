"""Scenario 6: an unpartitioned reader of a whole daily asset that filters one day.

Dagster hands an unpartitioned downstream asset every upstream partition, so ours loads the
365-partition range as one LazyFrame; the reader then filters the partition column and
aggregates. Raw polars scans the asset's directory (`hive_partitioning=True`, types inferred
from the paths) with the same filter. Both should open one file only.
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

import dagster as dg
import polars as pl

from benchmarks.contenders import OURS, PARTITIONS, RAW, Contender, Keys
from benchmarks.data import day_date, partition_key
from benchmarks.measure import Case, Row, alternate
from benchmarks.queries import one_day, prefix_scan
from benchmarks.scenarios import attach_counts, count_each, load_day
from benchmarks.session import Session


def filtered_case(
    contender: Contender,
    asset: str,
    keys: Keys,
    day: dt.date,
    partitions: dg.PartitionsDefinition = PARTITIONS,
) -> Case:
    """Ours: the input as a LazyFrame, then the reader's one-day filter and aggregate."""

    def case() -> Callable[[], object]:
        load = contender.load(asset, keys, pl.LazyFrame, partitions)
        return lambda: one_day(_lazy(load()), day)

    return case


def _lazy(value: object) -> pl.LazyFrame:
    if not isinstance(value, pl.LazyFrame):
        raise TypeError(f"expected a LazyFrame input, got {type(value).__name__}")
    return value


def filter_day(session: Session) -> list[Row]:
    """Scenario 6: an unpartitioned reader of all 365 partitions filters one day vs raw."""
    sizes = session.sizes
    day = day_date(load_day(session))
    keys = (partition_key(0), partition_key(sizes.partitions - 1))
    root = session.target.uri("ours", "events")
    options = session.storage_options()
    cases: dict[str, Case] = {
        OURS: filtered_case(session.ours, "events", keys, day),
        RAW: lambda: lambda: one_day(prefix_scan(root, options), day),
    }
    name = f"6 read all {sizes.partitions} partitions, filter one day"
    rows = alternate(name, session.target.name, cases, sizes.rounds, repeat_short=True)
    if session.counts_requests:
        counted = session.storage_options(counted=True)
        actions: dict[str, Callable[[], Any]] = {
            OURS: filtered_case(session.counted[OURS], "events", keys, day)(),
            RAW: lambda: one_day(prefix_scan(root, counted), day),
        }
        attach_counts(rows, count_each(session, actions))
    return rows
