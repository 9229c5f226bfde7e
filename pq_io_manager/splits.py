"""Splitting one output into its partitions: by the run's partition keys, or by value.

Rows are grouped by the hive text of their exact partition value, computed by polars, so values
Python would confuse (the two 01:00 of a DST change, nanoseconds) never share a directory.
"""

from collections.abc import Sequence

import polars as pl

from pq_io_manager.errors import ConfigurationError, PartitionValueError
from pq_io_manager.hive_values import (
    PartitionValue,
    datetime_text_expression,
    decode_hive_value,
    dtype_for_values,
)
from pq_io_manager.layout import PartitionColumn
from pq_io_manager.partition_casts import cast_column

Parts = list[tuple[tuple[PartitionColumn, ...], pl.DataFrame]]
_TEXT_PREFIX = "__pq_io_manager_text_"


def split_by_partitions(
    frame: pl.DataFrame, targets: Sequence[tuple[PartitionColumn, ...]], where: str
) -> Parts:
    """Split the output of a run covering several partitions into one frame per partition.

    Every target gets a frame (empty with the schema when no row carries its key); a row whose
    value names no partition of the run exactly is an error.
    """
    names = [column.name for column in targets[0]]
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise PartitionValueError(
            f"{where}: the run covers {len(targets)} partitions, so the output must carry the "
            f"partition column(s) {missing} to say which rows belong to which partition"
        )
    dimensions = list(zip(*targets, strict=True))  # each column's values across the run
    typed = frame.with_columns(
        cast_column(frame, dimension[0], dimension, where) for dimension in dimensions
    )
    _refuse_inexact(typed, frame, names, where)
    # Group on the typed values (polars compares instants, so the two 01:00 of a DST change
    # stay apart), then name each group by the hive text of its first row: 90 texts, not one
    # per row.
    text_of = [
        _text_expression(dimension[0].dtype, pl.col(dimension[0].name)) for dimension in dimensions
    ]
    groups: dict[tuple[str | None, ...], pl.DataFrame] = {}
    for group in typed.partition_by(names, maintain_order=True):
        groups[group.head(1).select(text_of).row(0)] = group.drop(names)
    by_texts = {tuple(column.hive_text for column in target): target for target in targets}
    unknown = [values for values in groups if values not in by_texts]
    if unknown:
        raise PartitionValueError(
            f"{where}: {len(unknown)} group(s) of rows carry partition values outside the run's "
            f"partitions, e.g. {dict(zip(names, unknown[0], strict=True))}"
        )
    empty = frame.clear().drop(names)
    return [(target, groups.get(values, empty)) for values, target in by_texts.items()]


def split_by_values(frame: pl.DataFrame, names: Sequence[str], where: str) -> Parts:
    """Split an unpartitioned asset's output by the values of its `partition_by` columns."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"{where}: partition_by names {missing}, which the output does not have "
            f"(columns: {frame.columns}); add the column or fix the partition_by metadata"
        )
    dtypes = {
        name: dtype_for_values(frame.schema[name], f"{where}, column {name!r}") for name in names
    }
    keys = {name: _group_key(name, dtypes[name]) for name in names}
    keyed = frame.with_columns(keys.values()).drop(
        [name for name in names if keys[name].meta.output_name() != name]
    )
    key_names = [key.meta.output_name() for key in keys.values()]
    groups = keyed.partition_by(key_names, as_dict=True, include_key=False, maintain_order=True)
    if not groups:
        # An empty output still records its schema, as one empty null partition.
        groups = {tuple(None for _ in names): frame.drop(names)}
    return [
        (tuple(_column(n, dtypes[n], v) for n, v in zip(names, values, strict=True)), group)
        for values, group in groups.items()
    ]


def _group_key(name: str, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        return datetime_text_expression(pl.col(name), dtype).alias(_TEXT_PREFIX + name)
    return pl.col(name)


def _column(name: str, dtype: pl.DataType, value: PartitionValue | None) -> PartitionColumn:
    if isinstance(dtype, pl.Datetime) and isinstance(value, str):
        return PartitionColumn(name, dtype, decode_hive_value(value, dtype), text=value)
    return PartitionColumn(name, dtype, value)


def _text_expression(dtype: pl.DataType, values: pl.Expr) -> pl.Expr:
    """The hive text of exact partition values."""
    if isinstance(dtype, pl.Datetime):
        return datetime_text_expression(values, dtype)
    if dtype == pl.Date:
        return values.dt.to_string("%Y-%m-%d")
    return values.cast(pl.String)


def _refuse_inexact(
    typed: pl.DataFrame, frame: pl.DataFrame, names: Sequence[str], where: str
) -> None:
    for name in names:
        bad = typed[name].is_null()
        if bad.any():
            example = frame.filter(bad)[name][0]
            raise PartitionValueError(
                f"{where}: {int(bad.sum())} row(s) have a {name!r} value that names no partition "
                f"exactly (e.g. {example!r}); partition columns cannot be null, finer than the "
                "partition (they are never truncated) or ambiguous"
            )
