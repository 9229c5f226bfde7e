"""Splitting an unpartitioned asset's output by the values of its `partition_by` columns.

The split happens in polars' partitioned sink (see `streamed_writes`); this module says what
the sink keys on and what each key means. Rows are keyed by the typed value of each column,
except datetimes, which are keyed by the hive text of their exact value, computed by polars,
so values Python would confuse (the two 01:00 of a DST change, nanoseconds) never share a
directory. No I/O and no Dagster import.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from pq_io_manager.errors import ConfigurationError
from pq_io_manager.hive_values import (
    PartitionValue,
    datetime_text_expression,
    decode_hive_value,
    dtype_for_values,
)
from pq_io_manager.layout import PartitionColumn

_TEXT_PREFIX = "__pq_io_manager_text_"


@dataclass(frozen=True)
class SplitKeys:
    """How an output is keyed for its split: the keyed frame, its key columns' names, and
    the type of each partition column."""

    frame: pl.LazyFrame
    key_names: list[str]
    dtypes: dict[str, pl.DataType]

    def columns(self, values: Sequence[PartitionValue | None]) -> tuple[PartitionColumn, ...]:
        """The partition columns of one key (a row of the key columns' values)."""
        return tuple(
            _column(name, dtype, value)
            for (name, dtype), value in zip(self.dtypes.items(), values, strict=True)
        )

    def data(self) -> pl.LazyFrame:
        """The frame as stored in each file (without the key columns)."""
        return self.frame.drop(self.key_names)


def split_keys(frame: pl.LazyFrame, names: Sequence[str], where: str) -> SplitKeys:
    """Key an unpartitioned asset's output by its `partition_by` columns (lazily)."""
    schema = frame.collect_schema()
    missing = [name for name in names if name not in schema]
    if missing:
        raise ConfigurationError(
            f"{where}: partition_by names {missing}, which the output does not have "
            f"(columns: {schema.names()}); add the column or fix the partition_by metadata"
        )
    dtypes = {name: dtype_for_values(schema[name], f"{where}, column {name!r}") for name in names}
    keys = {name: _group_key(name, dtypes[name]) for name in names}
    keyed = frame.with_columns(keys.values()).drop(
        [name for name in names if keys[name].meta.output_name() != name]
    )
    return SplitKeys(keyed, [key.meta.output_name() for key in keys.values()], dtypes)


def _group_key(name: str, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        return datetime_text_expression(pl.col(name), dtype).alias(_TEXT_PREFIX + name)
    return pl.col(name)


def _column(name: str, dtype: pl.DataType, value: PartitionValue | None) -> PartitionColumn:
    if isinstance(dtype, pl.Datetime) and isinstance(value, str):
        return PartitionColumn(name, dtype, decode_hive_value(value, dtype), text=value)
    return PartitionColumn(name, dtype, value)
