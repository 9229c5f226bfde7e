"""Input side: which files an input needs, and the Python shape it is handed in.

No Dagster context handling here: the adapter hands in an `AssetSlice`.

Shapes: a `pl.LazyFrame` by default; a `pl.DataFrame` (collected) when annotated so; a dict of
either keyed by partition key for `dict[str, ...]`; the element type of a `list[...]` fan-in.
`Optional[...]` / `X | None` inputs get None where a plain input would raise
`MissingPartitionError` (the upstream or a requested partition was never stored). An input
mapped to no upstream partition, or whose partitions are all missing under
`allow_missing_partitions` (which skips them with one warning per input), gets an empty
frame with the upstream's stored schema (data columns, then the typed partition columns) or,
if nothing is stored, the partition columns.
"""

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from pq_io_manager.asset_slice import ALLOW_MISSING_PARTITIONS, AssetSlice
from pq_io_manager.errors import ConfigurationError, MissingPartitionError
from pq_io_manager.layout import DATA_FILE_NAME, PartitionColumn, partition_file
from pq_io_manager.op_outputs import stored_files
from pq_io_manager.partitions import split_columns
from pq_io_manager.reading import (
    find_files,
    has_file,
    missing_hint,
    raise_if_removed,
    scan,
    scan_each,
    split_files,
)
from pq_io_manager.storage import Dataset

Files = list[tuple[str, str, tuple[PartitionColumn, ...]]]  # (partition key, uri, columns)
MISSING_KEYS_SHOWN = 5  # keys a missing-partitions warning names; it counts the others


@dataclass(frozen=True)
class Loaded:
    """What a load hands the input, and the files that value reads (for the input metadata;
    their listed sizes are in the dataset's `listed_sizes`)."""

    value: Any
    files: Files


def load(source: AssetSlice, dataset: Dataset, warn: Callable[[str], None]) -> Loaded:
    """The value an input is handed: see the module docstring for the shapes."""
    try:
        files = _files(source, dataset, warn)
    except MissingPartitionError as error:
        if not source.optional:
            raise
        warn(f"{source.where}: {error} The input is Optional, so it gets None.")
        return Loaded(None, [])
    if files is None:  # an op that returned None
        return Loaded(None, [])
    annotation = _element_type(source.annotation)
    if not files and _dict_value_type(annotation) is None:
        return Loaded(_as(annotation, _select([empty_frame(source, dataset)], source)[0]), [])
    try:
        return Loaded(shape_input(annotation, dataset, files, source), files)
    except Exception as error:  # listed, then read: was a file removed meanwhile?
        raise_if_removed(dataset, [uri for _, uri, _ in files], error, source.where)
        raise


def _files(source: AssetSlice, dataset: Dataset, warn: Callable[[str], None]) -> Files | None:
    if source.op_output is not None:
        return stored_files(dataset, source.where)  # type: ignore[return-value]
    if not source.partitioned:
        return unpartitioned_files(dataset, source.metadata, source.where)
    targets = {part.key: part.columns for part in source.partitions}
    found = find_files(dataset, targets, source.allow_missing, source.where)
    missing = [key for key in targets if key not in found]
    if missing:  # one warning per input, however many are missing (a sparse reader: thousands)
        warn(_missing_summary(source, dataset, missing))
    return [(key, uri, targets[key]) for key, uri in found.items()]


def _missing_summary(source: AssetSlice, dataset: Dataset, missing: list[str]) -> str:
    """One line for all the partitions an `allow_missing_partitions` input skips."""
    shown = ", ".join(repr(key) for key in missing[:MISSING_KEYS_SHOWN])
    more = len(missing) - MISSING_KEYS_SHOWN
    if more > 0:
        shown += f" and {more} more"
    names = [column.name for column in source.partitions[0].columns]
    pattern = "/".join([dataset.root, *(f"{name}=<{name}>" for name in names), DATA_FILE_NAME])
    return (
        f"{source.where}: skipping {len(missing)} of {len(source.partitions)} requested "
        f"partition(s) with no data at {pattern}: {shown} (allowed by the input's metadata "
        f"{ALLOW_MISSING_PARTITIONS!r}; materialize them to load them)"
    )


def unpartitioned_files(dataset: Dataset, metadata: Any, where: str) -> Files:
    """The files of an unpartitioned upstream: one, or one per `partition_by` split value."""
    names = split_columns(metadata, where)
    if not names:
        uri = partition_file(dataset.root, ())
        if not has_file(dataset, uri, {}):
            raise MissingPartitionError(
                f"{where}: no data at {uri}. Materialize the upstream asset first."
                + missing_hint(dataset, uri)
            )
        return [("", uri, ())]
    files = split_files(dataset, names, where)
    return [
        ("/".join(column.directory for column in columns), uri, columns) for uri, columns in files
    ]


def empty_frame(source: AssetSlice, dataset: Dataset) -> pl.LazyFrame:
    """No rows, with the stored data columns (if recorded) and the typed partition columns."""
    partition_types = source.scheme.dtypes if source.scheme is not None else {}
    stored = dataset.stored_schema()
    data_types = {
        name: dtype for name, dtype in (stored or {}).items() if name not in partition_types
    }
    return pl.LazyFrame(schema={**data_types, **partition_types})


def shape_input(annotation: Any, dataset: Dataset, files: Files, source: AssetSlice) -> Any:
    """A LazyFrame (default), DataFrame or dict of either, as the input is annotated."""
    value_type = _dict_value_type(annotation)
    if value_type is not None:
        frames = scan_each(dataset, [(uri, columns) for _, uri, columns in files])
        # one schema for all (the record's, or the one file's): `columns` is checked once
        selected = zip(files, _select(frames, source), strict=True)
        return {key: _as(value_type, frame) for (key, _, _), frame in selected}
    frame = scan(dataset, [(uri, columns) for _, uri, columns in files])
    return _as(annotation, _select([frame], source)[0])


def _select(frames: list[pl.LazyFrame], source: AssetSlice) -> list[pl.LazyFrame]:
    """Only the input's `columns` (projection pushdown: the others are never read), checked
    against the first frame's schema (known without a read: the record's, or a footer the
    existence check read), which all the frames share."""
    if source.columns is None or not frames:
        return frames
    available = frames[0].collect_schema().names()
    unknown = [name for name in source.columns if name not in available]
    if unknown:
        raise ConfigurationError(
            f"{source.where}: the input's metadata 'columns' names {unknown}, which the stored "
            f"data does not have (columns: {available}); fix the names"
        )
    return [frame.select(source.columns) for frame in frames]


def _as(annotation: Any, frame: pl.LazyFrame) -> pl.LazyFrame | pl.DataFrame:
    if _without_none(annotation) is pl.DataFrame:
        return frame.collect()
    return frame


def _without_none(annotation: Any) -> Any:
    """`Optional[X]` / `X | None` -> X; anything else unchanged."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return annotation
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    return arguments[0] if len(arguments) == 1 else annotation


def _element_type(annotation: Any) -> Any:
    """A fan-in input (`list[X]`) loads each upstream output as X."""
    bare = _without_none(annotation)
    if typing.get_origin(bare) is list:
        arguments = typing.get_args(bare)
        return arguments[0] if arguments else pl.LazyFrame
    return bare


def _dict_value_type(annotation: Any) -> Any:
    if typing.get_origin(annotation) is not dict:
        return None
    arguments = typing.get_args(annotation)
    value = arguments[1] if len(arguments) == 2 else pl.LazyFrame
    # dict[str, pl.LazyFrame | pl.DataFrame]: lazy is the cheaper choice that satisfies both
    value = _without_none(value)
    return pl.LazyFrame if typing.get_origin(value) is not None else value
