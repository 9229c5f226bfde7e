"""polars-side preparation of outputs: partition column checks, typing and splitting.

Hive datasets keep partition values in directory names, so partition columns are checked
against the partition key here and then dropped from the file contents.
"""

from collections.abc import Sequence

import polars as pl

from pq_io_manager.errors import ConfigurationError, PartitionValueError
from pq_io_manager.layout import PartitionColumn, dtype_for_values

Frame = pl.DataFrame | pl.LazyFrame
# Text of the error a streamed LazyFrame raises on its first mismatching row (see below).
MISMATCH_SENTINEL = "pq_io_manager partition mismatch"


def check_frame_type(value: object, where: str) -> Frame:
    """Refuse anything that is not a polars DataFrame or LazyFrame."""
    if isinstance(value, pl.DataFrame | pl.LazyFrame):
        return value
    raise ConfigurationError(
        f"{where}: the output is a {type(value).__module__}.{type(value).__name__}, but "
        "PartitionedParquetIOManager stores only polars DataFrame or LazyFrame outputs. "
        "Return a polars frame (e.g. pl.from_pandas(...)) or use another IO manager."
    )


def prepare_partition(frame: Frame, columns: Sequence[PartitionColumn], where: str) -> Frame:
    """Check existing partition columns against the key, then drop them from the file contents.

    A DataFrame is checked now; a LazyFrame carries the check into its stream so the data is
    read once, and the first mismatching row fails the write (which is then discarded).
    """
    schema = frame.collect_schema()
    present = [column for column in columns if column.name in schema]
    if not present:
        return frame
    if isinstance(frame, pl.DataFrame):
        _check_eagerly(frame, present, where)
    else:
        checks = [_streamed_check(column, schema[column.name], where) for column in present]
        frame = frame.filter(*checks)
    return frame.drop([column.name for column in present])


def split_by_partitions(
    frame: pl.DataFrame, targets: Sequence[tuple[PartitionColumn, ...]], where: str
) -> list[tuple[tuple[PartitionColumn, ...], pl.DataFrame]]:
    """Split the output of a run covering several partitions into one frame per partition.

    Every target gets a frame (empty with the schema when no row carries its key); a row whose
    key is outside the targets is an error.
    """
    names = [column.name for column in targets[0]]
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise PartitionValueError(
            f"{where}: the run covers {len(targets)} partitions, so the output must carry the "
            f"partition column(s) {missing} to say which rows belong to which partition"
        )
    typed = frame.with_columns(
        _cast(frame, column.name, column.dtype, where) for column in targets[0]
    )
    _refuse_nulls(typed, names, where)
    groups = typed.partition_by(names, as_dict=True, include_key=False, maintain_order=True)
    by_values = {tuple(column.value for column in target): target for target in targets}
    unknown = [values for values in groups if values not in by_values]
    if unknown:
        raise PartitionValueError(
            f"{where}: {len(unknown)} group(s) of rows carry partition values outside the run's "
            f"partitions, e.g. {dict(zip(names, unknown[0], strict=True))}"
        )
    empty = typed.clear().drop(names)
    return [(target, groups.get(values, empty)) for values, target in by_values.items()]


def split_by_values(
    frame: pl.DataFrame, names: Sequence[str], where: str
) -> list[tuple[tuple[PartitionColumn, ...], pl.DataFrame]]:
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
    groups = frame.partition_by(list(names), as_dict=True, include_key=False, maintain_order=True)
    if not groups:
        # An empty output still records its schema, as one empty null partition.
        groups = {tuple(None for _ in names): frame.drop(names)}
    return [
        (
            tuple(
                PartitionColumn(name, dtypes[name], value)
                for name, value in zip(names, values, strict=True)
            ),
            group,
        )
        for values, group in groups.items()
    ]


def _check_eagerly(frame: pl.DataFrame, columns: Sequence[PartitionColumn], where: str) -> None:
    for column in columns:
        values = _cast(frame, column.name, column.dtype, where)
        bad = values.filter(values.is_null() | (values != column.value))
        if bad.len():
            raise PartitionValueError(
                f"{where}: {bad.len()} row(s) have {column.name!r} values that are not the "
                f"partition's value {column.value!r} (e.g. {bad[0]!r}); every row "
                "must carry the partition key, or drop the column and it is added for you"
            )


def _streamed_check(column: PartitionColumn, source: pl.DataType, where: str) -> pl.Expr:
    # when/then evaluates both branches on whole chunks, so the error must come from a value
    # that only mismatching rows produce: their sentinel text fails the strict integer parse.
    try:
        cast = _cast_expression(pl.col(column.name), source, column.dtype)
    except TypeError as error:
        raise _uncastable(column.name, source, column.dtype, where) from error
    matches = cast.is_not_null() & (cast == _literal(column))
    text = pl.format(
        f"{MISMATCH_SENTINEL} {column.name}={{}}",
        cast.cast(pl.String).fill_null("null"),
    )
    return pl.when(matches).then(pl.lit("1")).otherwise(text).str.to_integer(strict=True) == 1


def _literal(column: PartitionColumn) -> pl.Expr:
    return pl.lit(column.value, dtype=column.dtype)


def _cast_expression(expression: pl.Expr, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    if target.is_temporal() and not (source == pl.String or source.is_temporal()):
        # e.g. Boolean or integers would silently become 1970 dates
        raise TypeError(f"{source} values are not dates")
    # polars 2 no longer casts strings to temporal types; parse them (ISO formats) instead.
    if source == pl.String and target == pl.Date:
        return expression.str.to_date(strict=True)
    if source == pl.String and isinstance(target, pl.Datetime):
        parsed = expression.str.to_datetime(time_unit=target.time_unit, strict=True)
        return parsed.dt.replace_time_zone(target.time_zone)
    return expression.cast(target, strict=True)


def _cast(frame: pl.DataFrame, name: str, dtype: pl.DataType, where: str) -> pl.Series:
    try:
        expression = _cast_expression(pl.col(name), frame.schema[name], dtype)
        return frame.select(expression).to_series()
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError, TypeError) as error:
        raise _uncastable(name, frame.schema[name], dtype, where) from error


def _uncastable(
    name: str, source: pl.DataType, target: pl.DataType, where: str
) -> PartitionValueError:
    return PartitionValueError(
        f"{where}: column {name!r} of type {source} cannot be cast to the partition type "
        f"{target}; make it {target} or drop it and it is added for you"
    )


def _refuse_nulls(frame: pl.DataFrame, names: Sequence[str], where: str) -> None:
    for name in names:
        nulls = frame[name].null_count()
        if nulls:
            raise PartitionValueError(
                f"{where}: {nulls} row(s) have a null {name!r}; partition columns cannot be null"
            )
