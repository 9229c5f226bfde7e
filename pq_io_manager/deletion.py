"""Deleting an asset's stored partitions, or the whole asset: only its own files, by exact shape.

A partition is deleted by removing its one data file, `{root}/{col=value/...}/data.parquet`,
the file a write of that partition publishes (`Dataset.file_for` of the same `AssetSlice`).
Other files in that directory (another tool's `_SUCCESS`, a README) are left where they are and
reported; a local directory left empty is removed. A whole asset is its data files of the
current layout and of the recorded one (`dataset_files.data_files`: never another asset's,
never another tool's) and its schema record; its writer lock object stays, marked free (see
`delete_asset`). No Dagster import.
"""

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from pq_io_manager.asset_slice import AssetSlice, PartitionSlice
from pq_io_manager.dataset_files import data_files
from pq_io_manager.errors import PartitionValueError, WriteError, brief
from pq_io_manager.layout import metadata_uri, storage_problem
from pq_io_manager.partitions import split_columns
from pq_io_manager.schema_record import read as read_record
from pq_io_manager.storage import Dataset
from pq_io_manager.writer_lock import LOCK_NAME, writer_lock


@dataclass(frozen=True)
class RemovedFile:
    """One file a delete removed (or, in a dry run, would remove)."""

    uri: str
    size_bytes: int


@dataclass(frozen=True)
class Deletion:
    """What `delete_partitions` / `delete_asset` removed, or would remove in a dry run.

    Attributes:
        asset: The asset key, slash-separated.
        removed: The data files (and, for a whole asset, its schema record) removed.
        absent_keys: Requested partition keys that had no stored data (including keys that
            could never be stored: no hive value exists for them).
        left: Files of other tools found in the removed partitions' directories and left there.
        dry_run: Whether nothing was actually deleted.
    """

    asset: str
    removed: tuple[RemovedFile, ...]
    absent_keys: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    dry_run: bool = False

    @property
    def uris(self) -> tuple[str, ...]:
        """The removed files' URIs."""
        return tuple(file.uri for file in self.removed)

    @property
    def size_bytes(self) -> int:
        """The removed files' total size."""
        return sum(file.size_bytes for file in self.removed)


def delete_partitions(
    dataset: Dataset, target: AssetSlice, unmapped: Sequence[str], dry_run: bool
) -> Deletion:
    """Remove the data file of each partition of `target` (one listing of their directories).

    The schema record stays: the remaining partitions still have those column types (delete
    the whole asset to start afresh with new types).
    """
    wanted: dict[str, list[str]] = {}  # data file -> its partition keys
    absent = list(unmapped)
    for part in target.partitions:
        uri = _storable_file(dataset, part)
        if uri is None:
            absent.append(part.key)
        else:
            wanted.setdefault(uri, []).append(part.key)
    directories = sorted({posixpath.dirname(uri) for uri in wanted})
    listed = dataset.store.list_directories(directories) if directories else {}
    removed = tuple(RemovedFile(uri, listed[uri]) for uri in sorted(wanted) if uri in listed)
    absent += [key for uri, keys in wanted.items() if uri not in listed for key in keys]
    left = tuple(sorted(uri for uri in listed if uri not in wanted))
    if not dry_run:
        _remove(dataset, removed, target.where)
    name = "/".join(target.asset_path)
    return Deletion(name, removed, tuple(absent), left, dry_run)


def delete_asset(dataset: Dataset, target: AssetSlice, dry_run: bool) -> Deletion:
    """Remove every data file of the asset and its schema record, holding the asset's writer
    lock so that a concurrent whole replacement is refused rather than mixed with the delete.

    The lock object itself is released (marked free), never deleted: a delete of it could
    remove a lock another writer took meanwhile, and radosgw ignores conditional deletes.
    A partitioned write running meanwhile takes no lock: a partition it publishes after the
    listing survives (pause the asset's jobs and sensors first).
    """
    name = "/".join(target.asset_path)
    found = _asset_files(dataset, target)
    if dry_run or not found:  # nothing stored: no lock object is created for nothing
        return Deletion(name, found, dry_run=dry_run)
    lock = metadata_uri(dataset.base_path, dataset.root, LOCK_NAME)
    with writer_lock(dataset.store, lock, f"deleting {target.where}") as lease:
        found = _asset_files(dataset, target)  # again: a replacement may have finished
        lease.check(f"deleting {target.where}")
        _remove(dataset, found, target.where)
    return Deletion(name, found)


def data_files_of(dataset: Dataset, target: AssetSlice) -> dict[str, int]:
    """Every data file of the asset, of its current layout and of the recorded one (URI to
    size, sorted): only files of exactly those shapes, never another asset's or tool's."""
    names = (
        list(target.scheme.dtypes)
        if target.scheme
        else split_columns(target.metadata, target.where)
    )
    layouts = {tuple(names)}
    record = read_record(dataset.store, dataset.record_uri)
    if record is not None:
        layouts.add(tuple(record.partition_columns))
    files: dict[str, int] = {}
    for layout in sorted(layouts):
        files.update(data_files(dataset.store, dataset.root, layout))
    return dict(sorted(files.items()))


def _asset_files(dataset: Dataset, target: AssetSlice) -> tuple[RemovedFile, ...]:
    """The asset's data files, then its schema record."""
    files = data_files_of(dataset, target)
    listed = dataset.store.list_prefix(dataset.record_uri)
    records = {uri: size for uri, size in listed.items() if uri == dataset.record_uri}
    return tuple(RemovedFile(uri, size) for uri, size in [*files.items(), *records.items()])


def _storable_file(dataset: Dataset, part: PartitionSlice) -> str | None:
    try:
        uri = dataset.file_for(part.columns)
    except PartitionValueError:  # a reserved value (null, empty): never stored under any name
        return None
    return uri if storage_problem(uri) is None else None


def _remove(dataset: Dataset, files: Sequence[RemovedFile], where: str) -> None:
    # data files first, the schema record last: a failure part-way leaves the record, so the
    # next write is still checked against what remains
    uris = [file.uri for file in files]
    try:
        dataset.store.delete([uri for uri in uris if uri != dataset.record_uri])
        dataset.store.delete([uri for uri in uris if uri == dataset.record_uri])
    except Exception as error:
        raise WriteError(
            f"{where}: deleting {len(files)} file(s) below {dataset.root} failed "
            f"({brief(error)}); some may be deleted already, each whole. Check the "
            "credentials' s3:DeleteObject permission (or the directory's permissions) and "
            "run the delete again: it removes what is left."
        ) from error
