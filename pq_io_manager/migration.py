"""One-off migration of datasets written by pq_io_manager 0.1 to the 0.2 layout.

0.1 wrote datetime values as wall-clock text (`hour=2025-11-02%2001%3A00%3A00`), which cannot
tell apart the two hours a DST change repeats, and percent-encoded every non-ASCII byte (which
Spark decodes as Latin-1). 0.2 writes UTC instants (`hour=2025-11-02T05%3A00%3A00Z`) and leaves
non-ASCII characters as they are. This moves each data file whose directory names differ from
the 0.2 form; a wall-clock time that names two instants (or none) in the zone is reported and
left where it is, because no rule can tell which hour it held. No Dagster import.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from pq_io_manager.hive_values import datetime_text, encode_text
from pq_io_manager.layout import DATA_FILE_NAME
from pq_io_manager.stores import Store

_LEGACY_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Move:
    """One data file to move, or to leave (with the reason) when its instant is unknowable."""

    source: str
    target: str | None
    problem: str | None = None


@dataclass(frozen=True)
class DatetimeColumn:
    """A partition column whose 0.1 values are wall-clock times in `time_zone` (None: naive)."""

    name: str
    time_zone: str | None


def plan_moves(store: Store, root: str, datetimes: list[DatetimeColumn]) -> list[Move]:
    """The moves that bring every data file below `root` to the 0.2 directory names."""
    return list(_moves(store, root, {column.name: column for column in datetimes}))


def apply_moves(store: Store, moves: list[Move]) -> int:
    """Publish each file under its new name (atomic per file); how many moved."""
    moved = 0
    for move in moves:
        if move.target is not None:
            store.publish(move.source, move.target)
            moved += 1
    return moved


def _moves(store: Store, root: str, datetimes: dict[str, DatetimeColumn]) -> Iterator[Move]:
    for uri in store.list_files(root):
        levels = uri[len(root) + 1 :].split("/")
        if levels[-1] != DATA_FILE_NAME or not all("=" in level for level in levels[:-1]):
            continue  # not one of our data files
        renamed: list[str] = []
        problem = None
        for level in levels[:-1]:
            name, _, encoded = level.partition("=")
            text, problem = _text(unquote(encoded), datetimes.get(name))
            if text is None:
                break
            renamed.append(f"{name}={encode_text(text)}")
        if problem is not None:
            yield Move(uri, None, problem)
        elif renamed != levels[:-1]:
            yield Move(uri, "/".join([root, *renamed, DATA_FILE_NAME]))


def _text(text: str, column: DatetimeColumn | None) -> tuple[str | None, str | None]:
    if column is None or "T" in text:
        return text, None
    try:
        wall = dt.datetime.strptime(text, _LEGACY_FORMAT)
    except ValueError:
        return None, f"{column.name}={text!r} is not a 0.1 datetime value"
    if column.time_zone is None:
        return datetime_text(wall), None
    zone = ZoneInfo(column.time_zone)
    first, second = (wall.replace(tzinfo=zone, fold=fold) for fold in (0, 1))
    if first.utcoffset() != second.utcoffset():
        return (
            None,
            f"{text} happens twice in {column.time_zone} (a DST change): which is unknowable",
        )
    if first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None, f"{text} does not exist in {column.time_zone} (skipped by a DST change)"
    return datetime_text(first), None
