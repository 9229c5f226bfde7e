"""Outputs covering several partitions: streamed once into staging, then published.

A run over a range of partitions (a single-run backfill) and an unpartitioned asset split by
its `partition_by` columns are written alike: the output (a DataFrame too, through `.lazy()`,
so it is never copied once per partition) is sunk in one streaming pass with polars'
partitioned sink into staging, each row's partition decided in the stream (a key naming no
partition of the range stops it: see `range_keys`). Only when the whole stream succeeded and
every partition of the range without rows is staged
as an empty file with the schema, is anything published: a range partition by partition, each
atomically like a single-partition write; a split asset replaced whole under its writer lock
(`replacement`). Any failure before that removes every staged file. No Dagster import.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from pq_io_manager.dataset_files import PARTITION_TYPES_KEY
from pq_io_manager.errors import PqIOManagerError, WriteError, brief
from pq_io_manager.frames import Frame
from pq_io_manager.layout import PartitionColumn, check_storable, staging_directory
from pq_io_manager.partitioned_sink import PartitionedSink, SinkedFile
from pq_io_manager.range_keys import KEY_PREFIX, RangeIndex, RefusedKeyError, missing_columns
from pq_io_manager.replacement import replace_staged
from pq_io_manager.splits import split_keys
from pq_io_manager.staged_files import Staged, discard_all, publish_all, run_all
from pq_io_manager.storage import Dataset, WrittenFile
from pq_io_manager.write_errors import storage_error, write_error

Target = tuple[PartitionColumn, ...]


def write_range(
    dataset: Dataset,
    frame: Frame,
    targets: Sequence[Target],
    descriptions: Sequence[str],
    where: str,
) -> list[WrittenFile]:
    """Write a run's partitions (`targets`) from one output carrying the partition columns;
    each partition is published whole or keeps its previous version."""
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    missing_columns(schema, targets, where)
    for target, description in zip(targets, descriptions, strict=True):
        check_storable(dataset.file_for(target), description)  # all, before writing any
    index = RangeIndex(targets)
    keyed = lazy.with_columns(index.key_columns(schema, where)).drop(index.names)
    key_names = [KEY_PREFIX + name for name in index.names]
    data_schema = keyed.drop(key_names).collect_schema()
    casts = dataset.schema_casts(targets[0], data_schema, where)
    keyed = keyed.with_columns(pl.col(name).cast(dtype) for name, dtype in casts.items())
    types = {column.name: column.dtype for column in targets[0]}
    try:
        sinked = _sink(dataset, keyed, key_names, index.locate, types, where)
    except RefusedKeyError as refused:  # a key outside the range: nothing was published
        raise index.refusal(lazy, refused, where) from refused
    staged = [_staged(dataset, targets[file.label], file) for file in sinked]
    found = {file.label for file in sinked}
    empty = pl.DataFrame(schema=keyed.drop(key_names).collect_schema())
    without_rows = [target for position, target in enumerate(targets) if position not in found]
    staged += _stage_empty(dataset, without_rows, empty, staged, where)
    return _publish_each(dataset, staged, where)


def replace_split(
    dataset: Dataset, frame: Frame, names: Sequence[str], where: str
) -> list[WrittenFile]:
    """Replace an unpartitioned asset by its output split by the values of `names`."""
    keys = split_keys(frame.lazy(), names, where)
    data_schema = keys.data().collect_schema()
    sinked = _sink(dataset, keys.frame, keys.key_names, _first_row, keys.dtypes, where)
    staged = [_staged(dataset, keys.columns(file.label), file) for file in sinked]
    if not staged:  # an empty output still records its schema, as one empty null partition
        nulls = keys.columns([None] * len(names))
        staged = _stage_empty(dataset, [nulls], pl.DataFrame(schema=data_schema), [], where)
    try:
        for file in staged:
            check_storable(file.final, where)
    except PqIOManagerError:
        discard_all(dataset.store, [file.staged for file in staged])
        raise
    return replace_staged(dataset, staged, data_schema, where)


def _sink(
    dataset: Dataset,
    frame: pl.LazyFrame,
    key_names: Sequence[str],
    label: Callable[[pl.DataFrame], Any],
    types: Mapping[str, pl.DataType],
    where: str,
) -> list[SinkedFile]:
    sink = PartitionedSink(
        dataset.store,
        staging_directory(dataset.base_path),
        label,
        dataset.write_options.polars_arguments(),
    )
    metadata = {PARTITION_TYPES_KEY: json.dumps({name: str(t) for name, t in types.items()})}
    try:
        return sink.run(frame, key_names, metadata)  # it removes its files when it raises
    except (PqIOManagerError, RefusedKeyError):
        raise
    except Exception as error:
        raise write_error(error, where, dataset.root) from error


def _first_row(keys: pl.DataFrame) -> tuple[Any, ...]:
    return keys.row(0)


def _staged(dataset: Dataset, columns: Target, file: SinkedFile) -> Staged:
    return Staged(columns, file.staged, dataset.file_for(columns), file.row_count, file.size_bytes)


def _stage_empty(
    dataset: Dataset,
    targets: Sequence[Target],
    empty: pl.DataFrame,
    staged: Sequence[Staged],
    where: str,
) -> list[Staged]:
    """Stage an empty file with the schema for each of `targets`; on failure remove these and
    `staged` (the sink's files)."""

    def stage(columns: Target) -> Staged:
        uri, _ = dataset.stage(columns, empty, where)
        return Staged(columns, uri, dataset.file_for(columns), 0)

    done, errors = run_all(stage, targets)
    if errors:
        discard_all(dataset.store, [file.staged for file in [*staged, *done]])
        raise errors[0]
    return done


def _publish_each(dataset: Dataset, staged: Sequence[Staged], where: str) -> list[WrittenFile]:
    """Publish every staged partition (each atomically, 32 at a time)."""

    published_files, errors = publish_all(dataset.store, staged)
    written = [
        WrittenFile(file.final, file.columns, file.row_count, size)
        for file, size in published_files
    ]
    if not errors:
        return written
    published = {file.uri for file in written}
    discard_all(dataset.store, [file.staged for file in staged if file.final not in published])
    if written:
        raise WriteError(
            f"{where}: {len(written)} of {len(staged)} partitions were published (each whole, "
            f"e.g. {written[0].uri}); {len(errors)} failed and keep their previous version. "
            f"First failure: {brief(errors[0])}. Re-run the failed partitions."
        ) from errors[0]
    raise storage_error(errors[0], where, dataset.root) from errors[0]
