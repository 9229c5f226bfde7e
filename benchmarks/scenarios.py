"""Scenarios 1-4 (plus the alternatives on each): write, load one, load a range, backfill.

Scenario 3 also times raw polars scanning the whole dataset with a filter on the range
(`RAW_PREFIX`): what a user without the IO manager's knowledge of the layout would write.

Every scenario returns result rows for one store; ratios are added by the runner.
"""

from collections.abc import Callable
from typing import Any

import polars as pl

from benchmarks.contenders import (
    DAGSTER_POLARS,
    DELTA,
    OURS,
    PICKLE,
    RAW,
    RAW_PREFIX,
    Contender,
    collect,
)
from benchmarks.data import dated_frame, day_date, partition_key
from benchmarks.measure import Case, Row, alternate, brief_error
from benchmarks.queries import aggregate, days_between, prefix_scan
from benchmarks.session import Session

WRITE_DAY = 60
BACKFILL_FIRST_DAY = 400  # outside the 365-partition asset's days


def load_day(session: Session) -> int:
    """The partition that scenario 2 loads (about 1/6 into the asset)."""
    return session.sizes.partitions // 6


def range_first_day(session: Session) -> int:
    """The first partition of scenario 3's range (about 1/3 into the asset)."""
    return session.sizes.partitions // 3


def attach_counts(rows: list[Row], counts: dict[str, Any]) -> None:
    """Copy each contender's request counts (total and by kind) onto its row."""
    for row in rows:
        counter = counts.get(row.contender)
        if counter is not None:
            row.requests = counter.total
            row.requests_by_method = dict(sorted(counter.by_method.items()))


def count_each(session: Session, actions: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Request counts of one run of each action (skipped for failing ones)."""
    counts: dict[str, Any] = {}
    for name, action in actions.items():
        try:
            counts[name] = session.count(action)
        except Exception as error:
            print(f"  counting {name} failed: {brief_error(error)}")
    return counts


def write_one(session: Session) -> list[Row]:
    """Scenario 1: write one partition vs raw `write_parquet` of the same frame."""
    frame = dated_frame(1, session.sizes.write_rows, first_day=WRITE_DAY)
    key = partition_key(WRITE_DAY)
    raw = session.raw_path("write_one", "data.parquet")
    options = session.storage_options()

    def raw_case() -> Callable[[], object]:
        return lambda: frame.write_parquet(raw, **options)

    cases: dict[str, Case] = {OURS: lambda: session.ours.write("write_one", key, frame)}
    cases[RAW] = raw_case
    for alternative in session.alternatives():
        cases[alternative.name] = _writer(alternative, "write_one", key, frame)
    rows = alternate("1 write one partition", session.target.name, cases, session.sizes.rounds)
    if session.counts_requests:
        counted_raw = session.storage_options(counted=True)
        counts = count_each(
            session,
            {
                OURS: session.counted[OURS].write("write_one", key, frame),
                RAW: lambda: frame.write_parquet(raw, **counted_raw),
            },
        )
        attach_counts(rows, counts)
    return rows + session.unavailable_rows(rows[0].scenario)


def _writer(contender: Contender, asset: str, keys: Any, frame: pl.DataFrame) -> Case:
    return lambda: contender.write(asset, keys, frame)


def _loader(contender: Contender, asset: str, keys: Any, typing_type: Any) -> Case:
    def case() -> Callable[[], object]:
        load = contender.load(asset, keys, typing_type)
        return lambda: collect(load())

    return case


def setup_load_assets(session: Session) -> None:
    """Write the 365-partition asset (and a small one) with ours; alternatives what they load."""
    sizes = session.sizes
    last = partition_key(sizes.partitions - 1)
    big = dated_frame(sizes.partitions, sizes.partition_rows)
    session.ours.write("events", (partition_key(0), last), big)()
    first, last_small = load_day(session), load_day(session) + sizes.small_partitions - 1
    small = big.filter(pl.col("date").is_between(day_date(first), day_date(last_small)))
    small_keys = (partition_key(first), partition_key(last_small))
    session.ours.write("events_small", small_keys, small)()
    if DELTA in session.timed:
        _try(lambda: session.timed[DELTA].write("events", (partition_key(0), last), big)())
    first = range_first_day(session)
    days = [load_day(session), *range(first, first + sizes.range_partitions)]
    for name in (PICKLE, DAGSTER_POLARS):
        if name in session.timed:
            for day in days:  # path-per-partition managers: only what is loaded matters
                part = big.filter(pl.col("date") == day_date(day))
                writer = session.timed[name].write("events", partition_key(day), part)
                _try(writer)


def _try(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as error:
        print(f"  setup step failed: {brief_error(error)}")


def _ours_file(session: Session, asset: str, day: int) -> str:
    return session.target.uri("ours", asset, f"date={partition_key(day)}", "data.parquet")


def load_one(session: Session) -> list[Row]:
    """Scenario 2: load one partition of the 365-partition asset vs raw `read_parquet`."""
    day = load_day(session)
    key, file = partition_key(day), _ours_file(session, "events", day)
    options = session.storage_options()
    cases: dict[str, Case] = {
        OURS: _loader(session.ours, "events", key, pl.DataFrame),
        RAW: lambda: lambda: pl.read_parquet(file, **options),
    }
    for alternative in session.alternatives():
        cases[alternative.name] = _loader(alternative, "events", key, pl.DataFrame)
    name = f"2 load 1 of {session.sizes.partitions} partitions"
    rows = alternate(name, session.target.name, cases, session.sizes.rounds, repeat_short=True)
    if session.counts_requests:
        rows += _load_counts(session, rows, key, file)
    return rows + session.unavailable_rows(name)


def _load_counts(session: Session, rows: list[Row], key: str, file: str) -> list[Row]:
    """Attach request counts; add a row for ours on the small asset (same key)."""
    counted_options = session.storage_options(counted=True)
    actions: dict[str, Callable[[], Any]] = {RAW: lambda: pl.read_parquet(file, **counted_options)}
    for row in rows:
        if row.status == "ok" and row.contender in session.counted:
            actions[row.contender] = session.counted[row.contender].load(
                "events", key, pl.DataFrame
            )
    attach_counts(rows, count_each(session, actions))
    small = count_each(
        session, {OURS: session.counted[OURS].load("events_small", key, pl.DataFrame)}
    )
    label = f"{OURS} (asset of {session.sizes.small_partitions})"
    extra = Row(rows[0].scenario, session.target.name, label, status="counts only")
    attach_counts([extra], {label: small.get(OURS)})
    return [extra]


def _as_frame(value: object) -> pl.LazyFrame | pl.DataFrame:
    """A LazyFrame stays lazy (aggregated with pushdown, as a user would); others collected."""
    return value if isinstance(value, pl.LazyFrame) else collect(value)


def load_range(session: Session) -> list[Row]:
    """Scenario 3: a 30-partition range as one LazyFrame, aggregated, vs raw `scan_parquet`."""
    count = session.sizes.range_partitions
    first = range_first_day(session)
    keys = (partition_key(first), partition_key(first + count - 1))
    files = [_ours_file(session, "events", first + day) for day in range(count)]
    options = session.storage_options()
    root = session.target.uri("ours", "events")
    days = (day_date(first), day_date(first + count - 1))
    cases: dict[str, Case] = {
        OURS: _aggregator(session.ours, keys, pl.LazyFrame),
        RAW: lambda: lambda: aggregate(pl.scan_parquet(files, **options)),
        RAW_PREFIX: lambda: lambda: days_between(prefix_scan(root, options), *days),
    }
    for alternative in session.alternatives():
        # path-per-partition managers return one object per partition: a dict
        wanted: Any = pl.LazyFrame if alternative.name == DELTA else dict[str, pl.DataFrame]
        cases[alternative.name] = _aggregator(alternative, keys, wanted)
    name = f"3 load {count}-partition range + aggregate"
    rows = alternate(name, session.target.name, cases, session.sizes.rounds, repeat_short=True)
    if session.counts_requests:
        counted = session.storage_options(counted=True)
        actions: dict[str, Callable[[], Any]] = {
            OURS: _aggregator(session.counted[OURS], keys, pl.LazyFrame)(),
            RAW: lambda: aggregate(pl.scan_parquet(files, **counted)),
            RAW_PREFIX: lambda: days_between(prefix_scan(root, counted), *days),
        }
        attach_counts(rows, count_each(session, actions))
    return rows + session.unavailable_rows(name)


def _aggregator(contender: Contender, keys: tuple[str, str], typing_type: Any) -> Case:
    def case() -> Callable[[], object]:
        load = contender.load("events", keys, typing_type)
        return lambda: aggregate(_as_frame(load()))

    return case


DELTA_RERUN_NOTE = (
    "table deleted before each round: re-running the backfill over an existing table fails "
    "(DeltaError: rows of every day but the first 'failed validation')"
)


def _fresh_delta_writer(session: Session, keys: tuple[str, str], frame: pl.DataFrame) -> Case:
    """Delta's backfill into a table removed (untimed) before each round."""

    def case() -> Callable[[], object]:
        session.target.remove("delta", "public", "backfill")
        return session.timed[DELTA].write("backfill", keys, frame)

    return case


def backfill(session: Session) -> list[Row]:
    """Scenario 4: one run writing 90 partitions vs raw `write_parquet(partition_by=...)`."""
    sizes = session.sizes
    count = sizes.backfill_partitions
    frame = dated_frame(count, sizes.backfill_rows, first_day=BACKFILL_FIRST_DAY)
    keys = (partition_key(BACKFILL_FIRST_DAY), partition_key(BACKFILL_FIRST_DAY + count - 1))
    directory = session.raw_path("backfill", "x")[: -len("/x")] + "/"
    options = session.storage_options()
    cases: dict[str, Case] = {
        OURS: _writer(session.ours, "backfill", keys, frame),
        RAW: lambda: lambda: frame.write_parquet(directory, partition_by="date", **options),
    }
    for alternative in session.alternatives():
        cases[alternative.name] = _writer(alternative, "backfill", keys, frame)
    if DELTA in session.timed:
        cases[DELTA] = _fresh_delta_writer(session, keys, frame)
    name = f"4 backfill {count} partitions (one run)"
    rows = alternate(name, session.target.name, cases, sizes.rounds)
    for row in rows:
        if row.contender == DELTA and row.status == "ok":
            row.note = DELTA_RERUN_NOTE
    if session.counts_requests:
        counted = session.storage_options(counted=True)
        actions: dict[str, Callable[[], Any]] = {
            OURS: session.counted[OURS].write("backfill", keys, frame),
            RAW: lambda: frame.write_parquet(directory, partition_by="date", **counted),
        }
        attach_counts(rows, count_each(session, actions))
    return rows + session.unavailable_rows(name)
