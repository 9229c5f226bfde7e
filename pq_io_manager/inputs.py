"""Input side helpers: which files an input needs, and the Python shape it is handed in.

No Dagster context handling here: the adapter passes in the annotation and upstream metadata.
"""

import typing
from typing import Any

import polars as pl

from pq_io_manager.errors import MissingPartitionError
from pq_io_manager.layout import PartitionColumn, partition_file
from pq_io_manager.partitions import split_columns
from pq_io_manager.storage import Dataset

Files = list[tuple[str, str, tuple[PartitionColumn, ...]]]  # (partition key, uri, columns)


def unpartitioned_files(dataset: Dataset, metadata: Any, where: str) -> Files:
    """The files of an unpartitioned upstream: one, or one per `partition_by` split value."""
    names = split_columns(metadata, where)
    if not names:
        uri = partition_file(dataset.root, ())
        if not dataset.has_file(uri):
            raise MissingPartitionError(
                f"{where}: no data at {uri}. Materialize the upstream asset first."
            )
        return [("", uri, ())]
    files = dataset.split_files(names, where)
    return [
        ("/".join(column.directory for column in columns), uri, columns) for uri, columns in files
    ]


def shape_input(annotation: Any, dataset: Dataset, files: Files) -> Any:
    """A LazyFrame (default), DataFrame or dict of either, as the input is annotated."""
    value_type = _dict_value_type(annotation)
    if value_type is not None:
        return {key: _as(value_type, dataset.scan([(uri, columns)])) for key, uri, columns in files}
    if not files:
        return _as(annotation, pl.LazyFrame())
    return _as(annotation, dataset.scan([(uri, columns) for _, uri, columns in files]))


def _as(annotation: Any, frame: pl.LazyFrame) -> pl.LazyFrame | pl.DataFrame:
    if annotation is pl.DataFrame:
        return frame.collect()
    return frame


def _dict_value_type(annotation: Any) -> Any:
    if typing.get_origin(annotation) is not dict:
        return None
    arguments = typing.get_args(annotation)
    value = arguments[1] if len(arguments) == 2 else pl.LazyFrame
    # dict[str, pl.LazyFrame | pl.DataFrame]: lazy is the cheaper choice that satisfies both
    return pl.LazyFrame if typing.get_origin(value) is not None else value
