"""polars-side preparation of outputs: frame type and partition column checks, typing.

Hive datasets keep partition values in directory names, so partition columns are checked
against the partition key here and then dropped from the file contents.
"""

from collections.abc import Sequence

import polars as pl

from pq_io_manager.errors import ConfigurationError, PartitionValueError
from pq_io_manager.layout import PartitionColumn
from pq_io_manager.partition_casts import cast_column, exact_values, uncastable

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


def _check_eagerly(frame: pl.DataFrame, columns: Sequence[PartitionColumn], where: str) -> None:
    for column in columns:
        values = cast_column(frame, column, [column], where)
        expected = pl.select(column.literal()).item()
        bad = frame.filter((values.is_null() | (values != expected)).fill_null(True))
        if bad.height:
            raise PartitionValueError(
                f"{where}: {bad.height} row(s) have {column.name!r} values that are not exactly "
                f"the partition's value {column.hive_text!r} (e.g. {bad[column.name][0]!r}); "
                "every row must carry the partition key (a finer value is never truncated), "
                "or drop the column and it is added for you"
            )


def _streamed_check(column: PartitionColumn, source: pl.DataType, where: str) -> pl.Expr:
    # when/then evaluates both branches on whole chunks, so the error must come from a value
    # that only mismatching rows produce: their sentinel text fails the strict integer parse.
    try:
        cast = exact_values(pl.col(column.name), source, [column])
    except TypeError as error:
        raise uncastable(column.name, source, column.dtype, where) from error
    matches = cast.is_not_null() & (cast == column.literal())
    text = pl.format(
        f"{MISMATCH_SENTINEL} {column.name}={{}}",
        pl.col(column.name).cast(pl.String).fill_null("null"),
    )
    return pl.when(matches).then(pl.lit("1")).otherwise(text).str.to_integer(strict=True) == 1
