"""Which partition of a run's range each row belongs to, decided in the stream.

A run over several partitions streams its output once, keyed by each row's exact typed
partition values (null where a value names no partition exactly: never truncated, the two
01:00 of a DST change kept apart; null too where it names a partition outside the run, so
that however many such values an output holds, they share one key and one staged file).
polars' partitioned sink asks for a file name once per distinct key, in the stream, before
writing any of its rows; `RangeIndex.locate` answers with the key's partition of the range or
refuses the key (see `partitioned_sink`). Per row this costs the typed conversion and one
membership test. No I/O and no Dagster import.
"""

from collections.abc import Sequence

import polars as pl

from pq_io_manager.errors import PartitionValueError, brief
from pq_io_manager.hive_values import datetime_text_expression
from pq_io_manager.layout import PartitionColumn
from pq_io_manager.partition_casts import exact_values, uncastable

KEY_PREFIX = "__pq_io_manager_key_"
"""The key columns (each partition column's exact values) are this prefix + the name."""
_EXAMPLE = "__pq_io_manager_example_"
_OUTSIDE = "__pq_io_manager_outside_"

Targets = Sequence[tuple[PartitionColumn, ...]]


class RefusedKeyError(Exception):
    """A key of the stream names no partition of the run (raised inside polars' sink)."""

    def __init__(self, texts: tuple[str | None, ...]) -> None:
        super().__init__(f"partition key {texts} is outside the run's range")
        self.texts = texts


class RangeIndex:
    """The run's targets by the hive text of their values."""

    def __init__(self, targets: Targets) -> None:
        self.targets = list(targets)
        self.names = [column.name for column in targets[0]]
        self._texts = [_text_expression(column) for column in targets[0]]
        self._by_texts = {
            tuple(column.hive_text for column in target): index
            for index, target in enumerate(targets)
        }

    def key_columns(self, schema: pl.Schema, where: str) -> list[pl.Expr]:
        """The key columns: each partition column's exact values, null where inexact or
        naming no partition of the run."""
        return [
            pl.when(exact.is_in(allowed.implode())).then(exact).alias(KEY_PREFIX + name)
            for name, (exact, allowed) in self._exact_columns(schema, where).items()
        ]

    def _exact_columns(self, schema: pl.Schema, where: str) -> dict[str, tuple[pl.Expr, pl.Series]]:
        """Each partition column's exact values, and the run's values of that column."""
        found = {}
        for position, column in enumerate(self.targets[0]):
            values = [target[position] for target in self.targets]
            allowed = pl.select(pl.concat([value.literal() for value in values])).to_series()
            found[column.name] = (_exact(column, schema, values, where), allowed)
        return found

    def locate(self, keys: pl.DataFrame) -> int:
        """The index in the targets of the key in `keys` (one row of the key columns).

        Raises:
            RefusedKeyError: when the key names no partition of the run (or holds a null).
        """
        texts: tuple[str | None, ...] = keys.select(self._texts).row(0)
        found = None if None in texts else self._by_texts.get(texts)
        if found is None:
            raise RefusedKeyError(texts)
        return found

    def refusal(
        self, frame: pl.LazyFrame, refused: RefusedKeyError, where: str
    ) -> PartitionValueError:
        """The error for an output that holds the `refused` key."""
        if None not in refused.texts:  # each value is in the run, their combination is not
            return _outside_error(dict(zip(self.names, refused.texts, strict=True)), where)
        return self._unplaced(frame, where)

    def _unplaced(self, frame: pl.LazyFrame, where: str) -> PartitionValueError:
        # asked on this failure path only: the partition columns are read again, in one
        # streaming aggregation, to count the rows and show one as the output holds it
        exact_columns = self._exact_columns(frame.collect_schema(), where)
        inexact = {name: exact.is_null() for name, (exact, _) in exact_columns.items()}
        outside = {
            name: exact.is_not_null() & ~exact.is_in(allowed.implode())
            for name, (exact, allowed) in exact_columns.items()
        }
        any_outside = pl.any_horizontal(list(outside.values()))
        found = frame.select(
            *[null.sum().alias(name) for name, null in inexact.items()],
            *[
                pl.col(name).filter(null).first().alias(_EXAMPLE + name)
                for name, null in inexact.items()
            ],
            *[
                _text_expression(column, exact_columns[column.name][0])
                .filter(any_outside)
                .first()
                .alias(_OUTSIDE + column.name)
                for column in self.targets[0]
            ],
        )
        try:
            row = found.collect(engine="streaming").row(0, named=True)
        except Exception as error:  # the output's query failed on this second read
            return PartitionValueError(
                f"{where}: rows have partition values that name no partition of the run "
                f"(finding an example failed: {brief(error)}); nothing was written"
            )
        if any(row[_OUTSIDE + name] is not None for name in self.names):
            return _outside_error({name: row[_OUTSIDE + name] for name in self.names}, where)
        name = next((name for name in self.names if row[name]), self.names[0])
        return PartitionValueError(
            f"{where}: {row[name]} row(s) have a {name!r} value that names no partition exactly "
            f"(e.g. {row[_EXAMPLE + name]!r}); partition columns cannot be null, finer than the "
            "partition (they are never truncated) or ambiguous; nothing was written"
        )


def _outside_error(example: dict[str, str | None], where: str) -> PartitionValueError:
    return PartitionValueError(
        f"{where}: rows carry partition values outside the run's partitions, e.g. "
        f"{example}; nothing was written"
    )


def missing_columns(schema: pl.Schema, targets: Targets, where: str) -> None:
    """Refuse an output without the partition columns that say which row goes where."""
    missing = [column.name for column in targets[0] if column.name not in schema]
    if missing:
        raise PartitionValueError(
            f"{where}: the run covers {len(targets)} partitions, so the output must carry the "
            f"partition column(s) {missing} to say which rows belong to which partition"
        )


def _text_expression(column: PartitionColumn, values: pl.Expr | None = None) -> pl.Expr:
    """The hive text of exact values (by default the key column's), as `hive_text`."""
    values = pl.col(KEY_PREFIX + column.name) if values is None else values
    if isinstance(column.dtype, pl.Datetime):
        return datetime_text_expression(values, column.dtype)
    if column.dtype == pl.Date:
        return values.dt.to_string("%Y-%m-%d")
    return values.cast(pl.String)


def _exact(
    column: PartitionColumn, schema: pl.Schema, values: Sequence[PartitionColumn], where: str
) -> pl.Expr:
    source = schema[column.name]
    try:
        return exact_values(pl.col(column.name), source, values)
    except TypeError as error:
        raise uncastable(column.name, source, column.dtype, where) from error
