"""Scenario 7: how load time and requests grow with the asset (30, 365, 3650 daily partitions).

Each asset has small files (`scale_rows` rows a day) so that what grows is listing and
metadata, not data. Three loads per asset, each against raw polars in the same run:
one partition (`read_parquet` of its file), a month (the same first `scale_month` days of
every asset: a file list, and the prefix scan with a range filter), and an unpartitioned reader
of every partition filtering one day (the prefix scan with the same filter).

Seeding: the first partition is written through the IO manager (so the dataset's schema record
exists, exactly as ours writes it); the others are written directly, in parallel, as the same
files ours writes (data columns only, the partition types in the footer's metadata).
"""

import datetime as dt
import io
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dagster as dg
import polars as pl

from benchmarks.contenders import OURS, RAW, RAW_PREFIX
from benchmarks.data import START, dated_frame, day_date, partition_key
from benchmarks.measure import Case, Row, alternate
from benchmarks.pruning import filtered_case
from benchmarks.queries import aggregate, days_between, one_day, prefix_scan
from benchmarks.scenarios import attach_counts, count_each
from benchmarks.session import Session
from benchmarks.targets import BUCKET
from pq_io_manager.dataset_files import PARTITION_TYPES_KEY

NAME = re.compile(r"^7 scale (\d+): (.+)$")
ONE, MONTH, FILTERED = "one partition", "a month", "all, filter one day"
QUERIES = (ONE, MONTH, FILTERED)
SEED_THREADS = 16
FOOTER_METADATA = {PARTITION_TYPES_KEY: json.dumps({"date": "Date"})}


def scenario_name(partitions: int, query: str) -> str:
    """`7 scale {partitions}: {query}` (parsed back by `parse_name`)."""
    return f"7 scale {partitions}: {query}"


def parse_name(scenario: str) -> tuple[int, str] | None:
    """(partitions, query) of a scale scenario's name; None for other scenarios."""
    match = NAME.match(scenario)
    return None if match is None else (int(match.group(1)), match.group(2))


def partitions_def(count: int) -> dg.DailyPartitionsDefinition:
    """Exactly `count` daily partitions from START (all of them are materialized)."""
    end = START + dt.timedelta(days=count)
    return dg.DailyPartitionsDefinition(start_date=START.isoformat(), end_date=end.isoformat())


def asset_name(count: int) -> str:
    """The asset of `count` partitions."""
    return f"scale_{count}"


def seed(session: Session, count: int) -> None:
    """Write the asset: day 0 through ours, the other days directly (in parallel)."""
    frame = dated_frame(count, session.sizes.scale_rows)
    first = frame.filter(pl.col("date") == START)
    session.ours.write(asset_name(count), partition_key(0), first, partitions_def(count))()
    parts = frame.filter(pl.col("date") > START).partition_by("date", include_key=False)
    keys = [partition_key(day) for day in range(1, count)]
    root = session.target.uri("ours", asset_name(count))
    write = _s3_writer(session) if session.target.is_s3 else _local_writer()
    files = [f"{root}/date={key}/data.parquet" for key in keys]
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(write, files, parts))


def _local_writer() -> Callable[[str, pl.DataFrame], None]:
    def write(path: str, part: pl.DataFrame) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        part.write_parquet(path, metadata=FOOTER_METADATA)

    return write


def _s3_writer(session: Session) -> Callable[[str, pl.DataFrame], None]:
    client = session.target.s3_endpoint().client()
    prefix = f"s3://{BUCKET}/"

    def write(uri: str, part: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        part.write_parquet(buffer, metadata=FOOTER_METADATA)
        client.put_object(Bucket=BUCKET, Key=uri.removeprefix(prefix), Body=buffer.getvalue())

    return write


def scale(session: Session) -> list[Row]:
    """Scenario 7: one partition, a month and a filtered full read of assets of growing size."""
    rows: list[Row] = []
    for count in session.sizes.scale_partitions:
        seed(session, count)
        for query in QUERIES:
            rows.extend(_measure(session, count, query))
    return rows


def _measure(session: Session, count: int, query: str) -> list[Row]:
    sizes = session.sizes
    name = scenario_name(count, query)
    cases = _cases(session, count, query, counted=False)
    rows = alternate(name, session.target.name, cases, sizes.scale_rounds, repeat_short=True)
    if session.counts_requests:
        counted = _cases(session, count, query, counted=True)
        attach_counts(rows, count_each(session, {key: case() for key, case in counted.items()}))
    return rows


def _cases(session: Session, count: int, query: str, counted: bool) -> dict[str, Case]:
    """Ours and raw polars for one query on the asset of `count` partitions."""
    asset, definition = asset_name(count), partitions_def(count)
    ours = session.counted[OURS] if counted else session.ours
    options = session.storage_options(counted)
    root = session.target.uri("ours", asset)
    month = session.sizes.scale_month
    day = month // 2  # inside the month, so inside every asset

    def file(index: int) -> str:
        return f"{root}/date={partition_key(index)}/data.parquet"

    if query == ONE:
        one = file(day)
        return {
            OURS: _loaded(lambda: ours.load(asset, partition_key(day), pl.DataFrame, definition)),
            RAW: _action(lambda: pl.read_parquet(one, **options)),
        }
    if query == MONTH:
        keys, files = (partition_key(0), partition_key(month - 1)), [file(i) for i in range(month)]
        return {
            OURS: _loaded(lambda: ours.load(asset, keys, pl.LazyFrame, definition), aggregate),
            RAW: _action(lambda: aggregate(pl.scan_parquet(files, **options))),
            RAW_PREFIX: _action(
                lambda: days_between(prefix_scan(root, options), START, day_date(month - 1))
            ),
        }
    everything = (partition_key(0), partition_key(count - 1))
    return {
        OURS: filtered_case(ours, asset, everything, day_date(day), definition),
        RAW: _action(lambda: one_day(prefix_scan(root, options), day_date(day))),
    }


def _action(action: Callable[[], object]) -> Case:
    return lambda: action


def _loaded(
    make: Callable[[], Callable[[], Any]], then: Callable[[Any], object] = lambda value: value
) -> Case:
    """A fresh input context per round (built untimed), then `then` on the loaded value."""

    def case() -> Callable[[], object]:
        load = make()
        return lambda: then(load())

    return case
