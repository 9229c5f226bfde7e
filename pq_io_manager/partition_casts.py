"""An output's own partition column, converted exactly to the partition's typed values.

Outputs may carry the partition column in any reasonable form: the typed value, a finer or
coarser temporal type, or the Dagster key as Dagster formats it (`2025-01-01-05:00`, `2025-01`).
A value converts only when it names exactly one partition value: never truncated (a datetime
that is not the window's start does not become its date), never merged (the two hours a DST
change repeats stay apart). What does not convert becomes null, which callers refuse.
"""

import datetime as dt
from collections.abc import Sequence

import polars as pl

from pq_io_manager.errors import PartitionValueError
from pq_io_manager.layout import PartitionColumn

_MIDNIGHT = dt.time(0)
# Text forms accepted besides the Dagster keys: ISO with `Z` (an instant) or without (wall time).
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
_WALL_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M")


def exact_values(
    expression: pl.Expr, source: pl.DataType, targets: Sequence[PartitionColumn]
) -> pl.Expr:
    """`expression` (of type `source`) as values of the targets' type, null where inexact.

    Raises:
        TypeError: when no value of `source` can ever name a partition of this type.
    """
    target = targets[0]
    if source == pl.Null:
        return pl.lit(None, dtype=target.dtype)
    if source == pl.String and target.key is not None:
        return _from_keys_or_text(expression, targets)
    if target.dtype == pl.Date:
        return _to_date(expression, source, target.zone)
    if isinstance(target.dtype, pl.Datetime):
        return _to_datetime(expression, source, target.dtype)
    if source.is_temporal() and not target.dtype.is_temporal():
        raise TypeError(f"{source} values are not {target.dtype} keys")
    return expression.cast(target.dtype, strict=True)


def _from_keys_or_text(expression: pl.Expr, targets: Sequence[PartitionColumn]) -> pl.Expr:
    dtype = targets[0].dtype
    values = pl.select(pl.concat([target.literal() for target in targets])).to_series()
    keyed = expression.replace_strict(
        [target.key for target in targets], values, default=None, return_dtype=dtype
    )
    if dtype == pl.Date:
        parsed = expression.str.to_date("%Y-%m-%d", strict=False)
    elif isinstance(dtype, pl.Datetime):
        parsed = _parse_datetime_text(expression, dtype)
    else:
        return keyed
    return pl.coalesce(keyed, parsed)


def _parse_datetime_text(expression: pl.Expr, dtype: pl.Datetime) -> pl.Expr:
    zone = dtype.time_zone or "UTC"
    instant = expression.str.to_datetime(
        _UTC_FORMAT, time_unit=dtype.time_unit, strict=False
    ).dt.replace_time_zone("UTC")
    walls = [
        expression.str.to_datetime(form, time_unit=dtype.time_unit, strict=False)
        for form in _WALL_FORMATS
    ]
    wall = pl.coalesce(walls).dt.replace_time_zone(zone, ambiguous="null", non_existent="null")
    value = pl.coalesce(instant.dt.convert_time_zone(zone), wall)
    return value if dtype.time_zone is not None else value.dt.replace_time_zone(None)


def _to_date(expression: pl.Expr, source: pl.DataType, zone: str | None) -> pl.Expr:
    if source == pl.Date:
        return expression
    if not isinstance(source, pl.Datetime):
        raise TypeError(f"{source} values are not dates")
    local = expression
    if source.time_zone is not None:
        local = expression.dt.convert_time_zone(zone or "UTC")
    # a datetime names a day only if it is that day's (local) midnight: never truncate
    return pl.when(local.dt.time() == _MIDNIGHT).then(local.dt.date())


def _to_datetime(expression: pl.Expr, source: pl.DataType, target: pl.Datetime) -> pl.Expr:
    if not isinstance(source, pl.Datetime):
        raise TypeError(f"{source} values are not instants of {target}")
    if target.time_zone is None:
        aware = expression.dt.replace_time_zone(None) if source.time_zone else expression
    elif source.time_zone is None:
        # wall-clock time: the repeated DST hour is ambiguous, the skipped one does not exist
        aware = expression.dt.replace_time_zone(
            target.time_zone, ambiguous="null", non_existent="null"
        )
    else:
        aware = expression.dt.convert_time_zone(target.time_zone)
    if source.time_unit == target.time_unit:
        return aware
    converted = aware.dt.cast_time_unit(target.time_unit)
    exact = converted.dt.cast_time_unit(source.time_unit) == aware
    return pl.when(exact).then(converted)


def cast_column(
    frame: pl.DataFrame, column: PartitionColumn, targets: Sequence[PartitionColumn], where: str
) -> pl.Series:
    """The frame's `column` as exact partition values (null where inexact), evaluated now."""
    source = frame.schema[column.name]
    try:
        return frame.select(exact_values(pl.col(column.name), source, targets)).to_series()
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError, TypeError) as error:
        raise uncastable(column.name, source, column.dtype, where) from error


def uncastable(
    name: str, source: pl.DataType, target: pl.DataType, where: str
) -> PartitionValueError:
    """The error for a partition column whose type can never name a partition."""
    return PartitionValueError(
        f"{where}: column {name!r} of type {source} cannot name a partition of type {target}; "
        f"make it {target} (or the Dagster partition key as text), or drop it and it is added "
        "for you"
    )
