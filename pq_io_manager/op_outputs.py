"""Op outputs (outputs without an asset key): one Parquet file per run, step and output.

An op may return None where its output is typed `Any` or `Optional[...]` (Dagster's type
check refuses it elsewhere). That None is stored as a marker beside the output's file, so a
downstream op (also in a re-execution that loads this run's outputs) gets None back, and a
removed output is still told apart from one that was None. No Dagster import.
"""

import polars as pl

from pq_io_manager.errors import ConfigurationError, MissingPartitionError
from pq_io_manager.frames import Frame
from pq_io_manager.reading import has_file
from pq_io_manager.storage import Dataset, WrittenFile

# Output names and mapping keys never contain ".", so the marker cannot be an output's file.
NONE_MARKER_DIRECTORY = ".none"
OpFiles = list[tuple[str, str, tuple[()]]]  # the input side's (key, uri, columns) entries


def write_frame(dataset: Dataset, frame: Frame, where: str) -> list[WrittenFile]:
    """Store an op's frame output; remove a None marker left by an earlier attempt."""
    written = dataset.write_many([((), frame)], [where], replace_directories=True)
    _marker(dataset).remove_except(set())
    return written


def write_none(dataset: Dataset, where: str) -> None:
    """Record that the op returned None (a zero-column file under the marker directory)."""
    marker = _marker(dataset)
    marker.write((), pl.DataFrame(), where)
    dataset.store.delete([dataset.file_for(())])  # a frame stored by an earlier attempt


def stored_files(dataset: Dataset, where: str) -> OpFiles | None:
    """The output's file, or None if the op returned None; missing raises."""
    uri = dataset.file_for(())
    if has_file(dataset, uri, {}):
        return [("", uri, ())]
    marker = _marker(dataset)
    if has_file(marker, marker.file_for(()), {}):
        return None
    raise MissingPartitionError(
        f"{where}: no stored output at {uri}. Op outputs are kept per run; if this run's "
        "files were removed, re-execute the producing step too."
    )


def _marker(dataset: Dataset) -> Dataset:
    return Dataset(dataset.store, dataset.base_path, f"{dataset.root}/{NONE_MARKER_DIRECTORY}")


def refuse_non_frame(value: object, where: str) -> None:
    """Refuse an op output that is not a polars frame, with the two ways out."""
    if isinstance(value, pl.DataFrame | pl.LazyFrame):
        return
    raise ConfigurationError(
        f"{where}: the op returned a {type(value).__module__}.{type(value).__name__}, but "
        "PartitionedParquetIOManager stores only polars DataFrame/LazyFrame outputs (as "
        "Parquet; it never pickles). Return a polars frame, or give this output an IO manager "
        "for Python objects: Out(io_manager_key='objects') with e.g. dagster.FilesystemIOManager "
        "or dagster_aws.s3.S3PickleIOManager under the resource key 'objects'."
    )
