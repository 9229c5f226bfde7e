"""From Dagster partitions and `partition_by` metadata to typed hive columns."""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from dagster import (
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

from pq_io_manager.errors import ConfigurationError
from pq_io_manager.layout import PartitionColumn, check_column_name

PARTITION_BY = "partition_by"
_ISO_DATE = "%Y-%m-%d"


@dataclass(frozen=True)
class ColumnSpec:
    """One hive level of a partitioned asset: its column, Dagster dimension and type."""

    name: str
    dimension: str | None
    partitions_def: PartitionsDefinition
    dtype: pl.DataType

    def column(self, key: str) -> PartitionColumn:
        """The typed hive column of a partition key of this dimension.

        Time windows are their start instant: a `Date` where every window starts at local
        midnight, else a time-zone-aware `Datetime`, so two windows never share a value.
        """
        if not isinstance(self.partitions_def, TimeWindowPartitionsDefinition):
            return PartitionColumn(self.name, self.dtype, key, key=key)
        value: dt.date | dt.datetime
        if self.dtype == pl.Date and self.partitions_def.fmt == _ISO_DATE:
            # windows starting at midnight, keyed by their start date: no calendar stepping
            # (Dagster's per-key lookup costs ~20 us, which a 3650-partition load pays each)
            value = dt.date.fromisoformat(key)
        else:
            start = self.partitions_def.time_window_for_partition_key(key).start
            value = start.date() if self.dtype == pl.Date else start
        return PartitionColumn(
            self.name, self.dtype, value, key=key, zone=self.partitions_def.timezone
        )


@dataclass(frozen=True)
class PartitionScheme:
    """How every partition key of one asset maps to hive columns."""

    specs: tuple[ColumnSpec, ...]
    partitions_def: PartitionsDefinition

    @property
    def dtypes(self) -> dict[str, pl.DataType]:
        """Column name to type, in directory order."""
        return {spec.name: spec.dtype for spec in self.specs}

    def columns(self, key: str) -> tuple[PartitionColumn, ...]:
        """The typed hive columns of one partition key."""
        if len(self.specs) == 1 and self.specs[0].dimension is None:
            return (self.specs[0].column(key),)
        by_dimension = self._dimension_keys(key)
        return tuple(spec.column(by_dimension[spec.dimension or ""]) for spec in self.specs)

    def _dimension_keys(self, key: str) -> Mapping[str, str]:
        if isinstance(key, MultiPartitionKey):
            return key.keys_by_dimension
        assert isinstance(self.partitions_def, MultiPartitionsDefinition)
        return self.partitions_def.get_partition_key_from_str(key).keys_by_dimension


def partition_scheme(
    partitions_def: PartitionsDefinition, metadata: Mapping[str, Any], where: str
) -> PartitionScheme:
    """Read `partition_by` for a partitioned asset, refusing it with a fix when it is wrong."""
    partition_by = metadata.get(PARTITION_BY)
    if isinstance(partitions_def, MultiPartitionsDefinition):
        return PartitionScheme(_multi_specs(partitions_def, partition_by, where), partitions_def)
    if not isinstance(partition_by, str):
        raise ConfigurationError(
            f"{where} is partitioned ({type(partitions_def).__name__}) but its metadata "
            f"'partition_by' is {partition_by!r}: add metadata={{'partition_by': 'column_name'}} "
            "to the asset, naming the column that holds the partition key"
        )
    name = check_column_name(partition_by, f"{where}, metadata 'partition_by'")
    spec = ColumnSpec(name, None, partitions_def, _dtype(partitions_def))
    return PartitionScheme((spec,), partitions_def)


def split_columns(metadata: Mapping[str, Any], where: str) -> list[str]:
    """The optional `partition_by` column list of an unpartitioned asset."""
    partition_by = metadata.get(PARTITION_BY)
    if partition_by is None:
        return []
    if isinstance(partition_by, str):
        partition_by = [partition_by]
    if not isinstance(partition_by, list | tuple) or not partition_by:
        raise ConfigurationError(
            f"{where} is not partitioned, so its metadata 'partition_by' must be a list of "
            f"column names to split the dataset by (e.g. ['country']), not {partition_by!r}"
        )
    names = [check_column_name(name, f"{where}, metadata 'partition_by'") for name in partition_by]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{where}: metadata 'partition_by' repeats a column: {names}")
    return names


def _multi_specs(
    partitions_def: MultiPartitionsDefinition, partition_by: object, where: str
) -> tuple[ColumnSpec, ...]:
    dimensions = [dimension.name for dimension in partitions_def.partitions_defs]
    example = {name: name for name in dimensions}
    if not isinstance(partition_by, Mapping) or set(partition_by) != set(dimensions):
        raise ConfigurationError(
            f"{where} is multi-partitioned by {dimensions} but its metadata 'partition_by' is "
            f"{partition_by!r}: add metadata={{'partition_by': {example!r}}} mapping every "
            "dimension to the column that holds its key"
        )
    names = [check_column_name(partition_by[name], f"{where}, partition_by") for name in dimensions]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{where}: partition_by maps two dimensions to one column")
    return tuple(
        ColumnSpec(name, dimension.name, dimension.partitions_def, _dtype(dimension.partitions_def))
        for name, dimension in zip(names, partitions_def.partitions_defs, strict=True)
    )


def _dtype(partitions_def: PartitionsDefinition) -> pl.DataType:
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return pl.String()
    if _starts_at_midnight(partitions_def.cron_schedule):
        return pl.Date()
    return pl.Datetime("us", partitions_def.timezone)


def _starts_at_midnight(cron_schedule: str | Sequence[str]) -> bool:
    # The schedule, not `fmt`, decides: a 6-hourly definition may format keys as dates, and a
    # daily one shifted by `hour_offset` starts its windows at 06:00.
    schedules = [cron_schedule] if isinstance(cron_schedule, str) else list(cron_schedule)
    return all(schedule.split()[:2] == ["0", "0"] for schedule in schedules)


def keys_description(keys: Sequence[str]) -> str:
    """A short human description of a set of partition keys for messages."""
    if len(keys) == 1:
        return f"partition {keys[0]!r}"
    return f"{len(keys)} partitions {keys[0]!r}..{keys[-1]!r}"
