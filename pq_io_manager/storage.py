"""Writing one asset's hive dataset with polars: stage, publish, keep its schema record.

A LazyFrame, and every local file, is written to a staging location outside the asset and only
then published atomically (rename or server-side copy), because polars commits truncated files
when a query fails mid-stream; a DataFrame on S3 is serialized in memory and uploaded by the
store in one atomic PUT or multipart completion. No Dagster import.
"""

import dataclasses
import io
import json
import posixpath
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from polars.io.partition import SinkedPathsCallbackArgs

from pq_io_manager.dataset_files import PARTITION_TYPES_KEY, data_files, legacy_record
from pq_io_manager.errors import (
    ReadError,
    WriteError,
    brief,
)
from pq_io_manager.frames import Frame
from pq_io_manager.layout import (
    PartitionColumn,
    check_storable,
    metadata_uri,
    partition_file,
    staging_directory,
    staging_uri,
)
from pq_io_manager.replacement import Parts, replace_whole
from pq_io_manager.schema_record import RECORD_NAME, SchemaRecord, merged, null_casts
from pq_io_manager.schema_record import read as read_record
from pq_io_manager.schema_record import update as update_record
from pq_io_manager.staged_files import discard_all, discard_in_flight, run_all
from pq_io_manager.stores import Store
from pq_io_manager.write_errors import storage_error, write_error
from pq_io_manager.write_options import ParquetWriteOptions


@dataclass(frozen=True)
class WrittenFile:
    """What one published file holds."""

    uri: str
    columns: tuple[PartitionColumn, ...]
    row_count: int
    size_bytes: int | None  # None until listed (an upload straight to its key returns none)


@dataclass(frozen=True)
class Dataset:
    """One asset's directory of hive partitions on a store."""

    store: Store
    base_path: str
    root: str
    # Compression, row groups, statistics and page size of every file this dataset writes.
    write_options: ParquetWriteOptions = dataclasses.field(default_factory=ParquetWriteOptions)
    # Scans whose footer was already read (existence check), reused when building the input.
    _opened: dict[str, pl.LazyFrame] = dataclasses.field(default_factory=dict, compare=False)
    # Files S3 answered 403 for (missing to a role without s3:ListBucket, or denied).
    denied: set[str] = dataclasses.field(default_factory=set, compare=False)
    # The schema record as one load read it (a Dataset lives for one load or write).
    loaded_records: dict[str, SchemaRecord | None] = dataclasses.field(
        default_factory=dict, compare=False
    )
    # Sizes of the files a load's listing saw (reported in the input metadata at no cost).
    listed_sizes: dict[str, int] = dataclasses.field(default_factory=dict, compare=False)

    def file_for(self, columns: Sequence[PartitionColumn]) -> str:
        """The data file of the partition with these column values."""
        return partition_file(self.root, columns)

    def opened(self, uri: str, options: dict[str, Any]) -> pl.LazyFrame:
        """One scan per file and options: the footer it reads once is reused by later uses."""
        key = f"{uri} {sorted((name, str(value)) for name, value in options.items())}"
        if key not in self._opened:
            self._opened[key] = pl.scan_parquet(uri, **options)
        return self._opened[key]

    def forget(self, uri: str) -> None:
        """Drop the scans of a file that turned out missing or unreadable."""
        for key in [key for key in self._opened if key.startswith(uri + " ")]:
            del self._opened[key]

    def write(self, columns: tuple[PartitionColumn, ...], frame: Frame, where: str) -> WrittenFile:
        """Write one partition's file so that it appears whole or not at all."""
        final = self.file_for(columns)
        metadata = {PARTITION_TYPES_KEY: json.dumps({c.name: str(c.dtype) for c in columns})}
        if isinstance(frame, pl.DataFrame) and self.store.atomic_uploads:
            # An in-memory frame cannot fail mid-stream and an S3 object appears only when its
            # PUT or CompleteMultipartUpload succeeds, so no staging (and no copy) is needed.
            # The store uploads the bytes itself so that it knows its own UploadId: a failure
            # aborts exactly that upload, never a concurrent writer's upload of the same key.
            buffer = io.BytesIO()
            arguments = self.write_options.polars_arguments()
            frame.write_parquet(buffer, metadata=metadata, **arguments)  # in memory: no storage
            try:
                size = self.store.upload(
                    buffer.getvalue(), final, staging_directory(self.base_path)
                )
            except BaseException as error:
                raise storage_error(error, where, final) from error
            return WrittenFile(final, columns, frame.height, size_bytes=size)
        return self._write_through_staging(columns, frame, final, metadata, where)

    def write_many(
        self,
        parts: Sequence[tuple[tuple[PartitionColumn, ...], Frame]],
        descriptions: Sequence[str],
        replace_directories: bool,
    ) -> list[WrittenFile]:
        """Write several partitions concurrently (polars releases the GIL; S3 latency overlaps).

        Each partition is written whole or not at all; when one fails, the others still
        finish and the first error is raised. With `replace_directories`, sizes the upload did
        not return come from one listing of the written directories (on S3); other files in
        those directories are never removed: only `data.parquet` is ours, and it was replaced.
        """

        for (columns, _), description in zip(parts, descriptions, strict=True):
            check_storable(self.file_for(columns), description)  # all, before writing any

        def write_one(index: int) -> WrittenFile:
            columns, frame = parts[index]
            return self.write(columns, frame, descriptions[index])

        written, errors = run_all(write_one, range(len(parts)))
        if replace_directories and written:
            written = self.with_sizes(written)
        if errors and written:
            raise WriteError(
                f"{len(written)} of {len(parts)} partitions were published (each whole, e.g. "
                f"{written[0].uri}); {len(errors)} failed and keep their previous version. "
                f"First failure: {brief(errors[0])}. Re-run the failed partitions."
            ) from errors[0]
        if errors:
            raise errors[0]
        return written

    def with_sizes(self, written: list[WrittenFile]) -> list[WrittenFile]:
        """Fill in the sizes an upload did not return (one listing of their directories)."""
        if all(file.size_bytes is not None for file in written):
            return written
        directories = sorted({posixpath.dirname(file.uri) for file in written})
        listed = self.store.list_directories(directories)
        return [
            dataclasses.replace(file, size_bytes=listed.get(file.uri, file.size_bytes))
            for file in written
        ]

    def _write_through_staging(
        self,
        columns: tuple[PartitionColumn, ...],
        frame: Frame,
        final: str,
        metadata: dict[str, str],
        where: str,
    ) -> WrittenFile:
        # polars commits a truncated file when a LazyFrame fails mid-stream, and local files
        # are written in place: stage outside the asset, then publish atomically.
        staged = staging_uri(self.base_path, uuid.uuid4().hex)
        try:
            row_count = self._write_staged(frame, staged, metadata)
        except BaseException as error:  # also on KeyboardInterrupt: never leave staging behind
            discard_in_flight(self.store, lambda: [staged])
            raise write_error(error, where, final) from error
        try:
            size = self.store.publish(staged, final)
        except BaseException as error:
            discard_all(self.store, [staged])
            raise storage_error(error, where, final) from error
        return WrittenFile(final, columns, row_count, size)

    def remove_except(self, keep: set[str], names: Sequence[str] = ()) -> dict[str, int]:
        """Delete the asset's own data files (of the layout split by `names`) not in `keep`;
        return the sizes of the kept files found. Other files are never touched."""
        listed = data_files(self.store, self.root, names)
        self.store.delete([uri for uri in listed if uri not in keep])
        return {uri: size for uri, size in listed.items() if uri in keep}

    @property
    def record_uri(self) -> str:
        """Where the dataset's schema record lives."""
        return metadata_uri(self.base_path, self.root, RECORD_NAME)

    def stored_schema(self) -> pl.Schema | None:
        """The stored data columns, then the partition columns, with their types, from the
        schema record (one read); None when nothing is recorded."""
        record = read_record(self.store, self.record_uri)
        return None if record is None else record.schema()

    def current_record(self, names: Sequence[str]) -> SchemaRecord | None:
        """The schema record; for a dataset stored before records existed, built from its
        files' footers (not stored here)."""
        record = read_record(self.store, self.record_uri)
        if record is not None:
            return record
        return legacy_record(self.store, self.root, names, self._footer)

    def check_schema(self, parts: Parts, where: str) -> Parts:
        """Refuse an output whose column types conflict with any stored partition, before
        anything is written, and record its columns (one read; one conditional write when a
        column is new). All-null columns are returned cast to the recorded types."""
        columns, frame = parts[0]
        casts = self.schema_casts(columns, frame.collect_schema(), where)
        if not casts:
            return parts
        expressions = [pl.col(name).cast(dtype) for name, dtype in casts.items()]
        return [(part_columns, part.with_columns(expressions)) for part_columns, part in parts]

    def schema_casts(
        self, columns: tuple[PartitionColumn, ...], schema: pl.Schema, where: str
    ) -> dict[str, pl.DataType]:
        """Refuse data columns (`schema`) whose types conflict with any stored partition and
        record them (see `check_schema`); the casts that give all-null columns their recorded
        types."""
        layout = {column.name: column.dtype for column in columns}
        origin = self.file_for(columns)[len(self.root) + 1 :]
        names = list(layout)
        built: list[SchemaRecord | None] = []

        def extend(record: SchemaRecord | None) -> SchemaRecord:
            if record is None:  # first write, or a dataset stored before records existed
                built[:] = built or [legacy_record(self.store, self.root, names, self._footer)]
                record = built[0]
            return merged(record, schema, layout, origin, where)

        record = update_record(self.store, self.record_uri, extend)
        return null_casts(record, schema) if record is not None else {}

    def replace_whole(self, parts: Parts, where: str) -> list[WrittenFile]:
        """Replace the whole asset: all files staged, then published under the writer lock;
        the previous version's other data files removed (see `replacement`)."""
        return replace_whole(self, parts, where)

    def stage(
        self, columns: tuple[PartitionColumn, ...], frame: Frame, where: str
    ) -> tuple[str, int]:
        """Write one file to a fresh staging location; its URI and row count."""
        final = self.file_for(columns)
        metadata = {PARTITION_TYPES_KEY: json.dumps({c.name: str(c.dtype) for c in columns})}
        staged = staging_uri(self.base_path, uuid.uuid4().hex)
        try:
            return staged, self._write_staged(frame, staged, metadata)
        except BaseException as error:
            discard_in_flight(self.store, lambda: [staged])
            raise write_error(error, where, final) from error

    def _footer(self, uri: str) -> tuple[pl.Schema, dict[str, str]]:
        try:
            options = self.store.polars_options()
            metadata = pl.read_parquet_metadata(uri, **options)
            return self.opened(uri, options).collect_schema(), metadata
        except Exception as error:
            raise ReadError(
                f"reading the Parquet footer of {uri} failed: {brief(error)}"
            ) from error

    def _write_staged(self, frame: Frame, staged: str, metadata: dict[str, str]) -> int:
        self.store.prepare(staged)
        options = self.store.polars_options()
        arguments = {**self.write_options.polars_arguments(), **options}
        if isinstance(frame, pl.DataFrame):
            frame.write_parquet(staged, metadata=metadata, **arguments)
            return frame.height
        reported: list[SinkedPathsCallbackArgs] = []  # polars' own count of what it wrote
        frame.sink_parquet(
            staged, metadata=metadata, sinked_paths_callback=reported.append, **arguments
        )
        return sum(path.num_rows for report in reported for path in report.paths)
