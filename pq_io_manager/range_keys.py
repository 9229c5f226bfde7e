"""Which partition of a run's range each row belongs to, computed in the stream.

A run over several partitions streams its output once; every row gets the index of its
partition in the run's list of targets, from the exact typed partition values (so the two
01:00 of a DST change and nanoseconds stay apart). Rows whose values name no partition of the
range get a null index: the partitioned sink gathers them into one staged file, which the
writer refuses before anything is published (`refusal` then says which values were wrong).
No I/O and no Dagster import.
"""

from collections.abc import Sequence

import polars as pl

from pq_io_manager.errors import PartitionValueError, brief
from pq_io_manager.layout import PartitionColumn
from pq_io_manager.partition_casts import exact_values, uncastable

KEY = "__pq_io_manager_partition"
"""The column holding each row's index in the run's targets (never stored)."""
_INEXACT = "__pq_io_manager_inexact_"
_EXAMPLE = "__pq_io_manager_example_"

Targets = Sequence[tuple[PartitionColumn, ...]]


def missing_columns(schema: pl.Schema, targets: Targets, where: str) -> None:
    """Refuse an output without the partition columns that say which row goes where."""
    missing = [column.name for column in targets[0] if column.name not in schema]
    if missing:
        raise PartitionValueError(
            f"{where}: the run covers {len(targets)} partitions, so the output must carry the "
            f"partition column(s) {missing} to say which rows belong to which partition"
        )


def range_key(schema: pl.Schema, targets: Targets, where: str) -> pl.Expr:
    """Each row's index in `targets` (UInt32, named `KEY`); null when its values name none of
    them (null, inexact or outside the range)."""
    code: pl.Expr = pl.lit(0, dtype=pl.UInt64)
    target_codes = [0] * len(targets)
    for position, column in enumerate(targets[0]):
        values = _distinct([target[position] for target in targets])
        texts = [value.hive_text for value in values]
        literals = pl.select(pl.concat([value.literal() for value in values])).to_series()
        index = _exact(column, schema, values, where).replace_strict(
            literals, range(len(values)), default=None, return_dtype=pl.UInt64
        )
        code = code * len(values) + index
        target_codes = [
            previous * len(values) + texts.index(target[position].hive_text)
            for previous, target in zip(target_codes, targets, strict=True)
        ]
    matched = code.replace_strict(
        target_codes, range(len(targets)), default=None, return_dtype=pl.UInt32
    )
    return matched.alias(KEY)


def refusal(
    frame: pl.LazyFrame, targets: Targets, refused_rows: int, where: str
) -> PartitionValueError:
    """The error for an output whose `refused_rows` rows name no partition of the run, with
    an example. Asked only on this failure path: it reads the output's partition columns
    again, in one streaming aggregation."""
    schema = frame.collect_schema()
    names = [column.name for column in targets[0]]
    flags = {
        name: _exact(column, schema, [t[i] for t in targets], where).is_null()
        for i, (name, column) in enumerate(zip(names, targets[0], strict=True))
    }
    refused = frame.select(names).filter(range_key(schema, targets, where).is_null())
    found = refused.select(
        pl.len(),
        *[flag.sum().alias(_INEXACT + name) for name, flag in flags.items()],
        *[pl.col(name).filter(flag).first().alias(_EXAMPLE + name) for name, flag in flags.items()],
        *[pl.col(name).first() for name in names],
    )
    try:
        row = found.collect(engine="streaming").row(0, named=True)
    except Exception as error:  # the output's query failed on this second read
        return PartitionValueError(
            f"{where}: {refused_rows} row(s) carry partition values that name no partition of "
            f"the run exactly (reading an example failed: {brief(error)}); nothing was written"
        )
    for name in names:
        if row[_INEXACT + name]:
            return PartitionValueError(
                f"{where}: {row[_INEXACT + name]} row(s) have a {name!r} value that names no "
                f"partition exactly (e.g. {row[_EXAMPLE + name]!r}); partition columns cannot "
                "be null, finer than the partition (they are never truncated) or ambiguous"
            )
    example = {name: str(row[name]) for name in names}
    return PartitionValueError(
        f"{where}: {row['len'] or refused_rows} row(s) carry partition values outside the "
        f"run's partitions, e.g. {example}; nothing was written"
    )


def _distinct(values: Sequence[PartitionColumn]) -> list[PartitionColumn]:
    by_text = {value.hive_text: value for value in reversed(values)}
    return [by_text[text] for text in dict.fromkeys(value.hive_text for value in values)]


def _exact(
    column: PartitionColumn, schema: pl.Schema, values: Sequence[PartitionColumn], where: str
) -> pl.Expr:
    source = schema[column.name]
    try:
        return exact_values(pl.col(column.name), source, values)
    except TypeError as error:
        raise uncastable(column.name, source, column.dtype, where) from error
