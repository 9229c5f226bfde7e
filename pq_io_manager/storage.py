"""Reading and writing one asset's hive dataset with polars: stage, publish, clean, scan.

Every file is written to a staging location outside the asset and only then published
atomically (rename or server-side copy), because polars commits truncated files when a query
fails mid-stream. No Dagster import.
"""

import dataclasses
import json
import posixpath
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from pq_io_manager.errors import (
    MissingPartitionError,
    PartitionValueError,
    ReadError,
    SchemaConflictError,
    WriteError,
    brief,
)
from pq_io_manager.frames import MISMATCH_SENTINEL, Frame
from pq_io_manager.layout import (
    DATA_FILE_NAME,
    PartitionColumn,
    parse_dtype,
    parse_partition_path,
    partition_file,
    staging_uri,
)
from pq_io_manager.stores import LocalStore, Store

# Parquet key-value metadata naming the partition columns' types, so that readers can restore
# the types of `partition_by` split columns, which hive paths only hold as text.
PARTITION_TYPES_KEY = "pq_io_manager.partition_types"
# Above this many wanted files, one listing of the asset beats a footer read per file.
_EXISTENCE_CHECK_LIMIT = 32
_WRITE_THREADS = 8
_DISCARD_QUIET_SECONDS = 2.0
_DISCARD_DEADLINE_SECONDS = 20.0
_DISCARD_INTERVAL_SECONDS = 0.1
# How many listed files to look through for a stored partition to compare schemas with.
_SCHEMA_PROBE_FILES = 50


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
    # Scans whose footer was already read (existence check), reused when building the input.
    _opened: dict[str, pl.LazyFrame] = dataclasses.field(default_factory=dict, compare=False)

    def file_for(self, columns: Sequence[PartitionColumn]) -> str:
        """The data file of the partition with these column values."""
        return partition_file(self.root, columns)

    def write(self, columns: tuple[PartitionColumn, ...], frame: Frame, where: str) -> WrittenFile:
        """Write one partition's file so that it appears whole or not at all."""
        final = self.file_for(columns)
        metadata = {PARTITION_TYPES_KEY: json.dumps({c.name: str(c.dtype) for c in columns})}
        if isinstance(frame, pl.DataFrame) and self.store.atomic_uploads:
            # An in-memory frame cannot fail mid-stream, and an S3 object appears only when its
            # PUT or CompleteMultipartUpload succeeds, so no staging is needed.
            try:
                frame.write_parquet(final, metadata=metadata, **self.store.polars_options())
            except BaseException as error:
                # polars does not always abort the multipart upload of a failed PUT; the
                # object itself never appeared. (A concurrent writer of the same partition
                # would see its own upload aborted and fail cleanly too.)
                self._settle(lambda: self.store.abort_uploads(final) > 0)
                raise _write_error(error, where, final) from error
            return WrittenFile(final, columns, frame.height, size_bytes=None)
        return self._write_through_staging(columns, frame, final, metadata, where)

    def write_many(
        self,
        parts: Sequence[tuple[tuple[PartitionColumn, ...], Frame]],
        descriptions: Sequence[str],
        replace_directories: bool,
    ) -> list[WrittenFile]:
        """Write several partitions concurrently (polars releases the GIL; S3 latency overlaps).

        Each partition is written whole or not at all; when one fails, the others still
        finish and the first error is raised. With `replace_directories`, other files in each
        written partition's directory are then removed (one listing for them all on S3).
        """

        def write_one(index: int) -> WrittenFile:
            columns, frame = parts[index]
            return self.write(columns, frame, descriptions[index])

        if len(parts) == 1:
            written, errors = [write_one(0)], []
        else:
            with ThreadPoolExecutor(min(_WRITE_THREADS, len(parts))) as pool:
                futures = [pool.submit(write_one, index) for index in range(len(parts))]
            written = [future.result() for future in futures if future.exception() is None]
            errors = [future.exception() for future in futures if future.exception() is not None]
        if replace_directories and written:
            written = self._replace_directories(written)
        if errors:
            raise errors[0]  # type: ignore[misc]
        return written

    def _replace_directories(self, written: list[WrittenFile]) -> list[WrittenFile]:
        """Remove the files other than `written` from their directories; fill in sizes."""
        directories = sorted({posixpath.dirname(file.uri) for file in written})
        listed = self.store.list_directories(directories)
        uris = {file.uri for file in written}
        self.store.delete([uri for uri in listed if uri not in uris])
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
            size = self.store.publish(staged, final)
        except BaseException as error:  # also on KeyboardInterrupt: never leave staging behind
            self._discard(staged)
            raise _write_error(error, where, final) from error
        return WrittenFile(final, columns, row_count, size)

    def remove_except(self, keep: set[str], directory: str | None = None) -> dict[str, int]:
        """Delete every file below `directory` (default: the whole asset) not in `keep`;
        return the sizes of the kept files found."""
        if directory is None:
            listed = self.store.list_files(self.root)
        else:
            listed = self.store.list_files(directory, recursive=False)
        self.store.delete([uri for uri in listed if uri not in keep])
        return {uri: size for uri, size in listed.items() if uri in keep}

    def check_schema(self, schema: pl.Schema, replacing: str, where: str) -> None:
        """Refuse a schema whose shared columns differ in type from a stored partition's."""
        listed = self.store.list_files(self.root, limit=_SCHEMA_PROBE_FILES)
        # Only our own data files: a stray _SUCCESS or README must not block writes.
        candidates = (uri for uri in listed if uri.endswith("/" + DATA_FILE_NAME))
        stored = next((uri for uri in candidates if uri != replacing), None)
        if stored is None:
            return
        stored_schema = self._read_schema(stored)
        for name, dtype in schema.items():
            if name in stored_schema and stored_schema[name] != dtype:
                raise SchemaConflictError(
                    f"{where}: column {name!r} is {dtype} in this output but "
                    f"{stored_schema[name]} in the stored partition {stored}; one dataset needs "
                    f"one type per column. Cast it to {stored_schema[name]}, or re-materialize "
                    "every partition with the new type (after deleting the asset's directory)."
                )

    def find_files(
        self, targets: Mapping[str, tuple[PartitionColumn, ...]], allow_missing: bool, where: str
    ) -> dict[str, str]:
        """Map each partition key to its file; a missing one raises unless `allow_missing`."""
        uris = {key: self.file_for(columns) for key, columns in targets.items()}
        existing = self._existing(list(uris.values()))
        missing = [key for key, uri in uris.items() if uri not in existing]
        if missing and not allow_missing:
            key = missing[0]
            raise MissingPartitionError(
                f"{where}: partition {key!r} has no data at {uris[key]} "
                f"({len(missing)} of {len(uris)} requested partitions are missing). "
                "Materialize it first, or set allow_missing_partitions=True in the input's "
                "metadata to skip missing partitions."
            )
        return {key: uri for key, uri in uris.items() if key not in missing}

    def split_files(
        self, names: Sequence[str], where: str
    ) -> list[tuple[str, tuple[PartitionColumn, ...]]]:
        """Every file of an asset split by `names`, with typed column values."""
        uris = list(self.store.list_files(self.root))
        if not uris:
            raise MissingPartitionError(
                f"{where}: no data below {self.root}. Materialize the upstream asset first."
            )
        recorded = self._partition_types(uris[0])
        dtypes = {name: recorded.get(name, pl.String()) for name in names}
        prefix = self.root + "/"
        parsed = ((uri, parse_partition_path(uri[len(prefix) :], dtypes)) for uri in uris)
        return [(uri, columns) for uri, columns in parsed if columns is not None]

    def _partition_types(self, uri: str) -> dict[str, pl.DataType]:
        try:
            metadata = pl.read_parquet_metadata(uri, **self.store.polars_options())
        except Exception as error:
            raise ReadError(
                f"reading the Parquet footer of {uri} failed: {brief(error)}"
            ) from error
        recorded = json.loads(metadata.get(PARTITION_TYPES_KEY, "{}"))
        return {name: parse_dtype(text) for name, text in recorded.items()}

    def scan(self, files: Sequence[tuple[str, tuple[PartitionColumn, ...]]]) -> pl.LazyFrame:
        """One lazy frame over the files, partition columns restored with their types."""
        frames = [
            self._raw_scan(uri).with_columns(
                pl.lit(column.value, dtype=column.dtype).alias(column.name) for column in columns
            )
            for uri, columns in files
        ]
        if len(frames) == 1:
            return frames[0]
        # diagonal_relaxed: partitions written before a nullable column was added read as null
        return pl.concat(frames, how="diagonal_relaxed")

    def _write_staged(self, frame: Frame, staged: str, metadata: dict[str, str]) -> int:
        if isinstance(self.store, LocalStore):
            self.store.prepare(staged)
        options = self.store.polars_options()
        if isinstance(frame, pl.DataFrame):
            frame.write_parquet(staged, metadata=metadata, **options)
            return frame.height
        frame.sink_parquet(staged, metadata=metadata, **options)
        counted = pl.scan_parquet(staged, **options).select(pl.len()).collect()
        return int(counted.item())

    def _read_schema(self, uri: str) -> pl.Schema:
        try:
            return self._raw_scan(uri).collect_schema()
        except Exception as error:
            raise ReadError(f"reading the schema of {uri} failed: {brief(error)}") from error

    def _existing(self, uris: list[str]) -> set[str]:
        if len(uris) > _EXISTENCE_CHECK_LIMIT:
            # Many partitions (e.g. all of them): one listing beats a failed read per missing
            # one; the footers of those that exist are still read (in parallel) because the
            # scan needs every file's schema.
            uris = sorted(set(uris) & set(self.store.list_files(self.root)))
        threads = min(self.store.parallel_reads, len(uris))
        if threads <= 1:  # no latency to overlap: a pool's threads would cost more
            flags = [self.has_file(uri) for uri in uris]
        else:
            with ThreadPoolExecutor(threads) as pool:
                flags = list(pool.map(self.has_file, uris))
        return {uri for uri, flag in zip(uris, flags, strict=True) if flag}

    def has_file(self, uri: str) -> bool:
        """Whether the data file exists (by reading its footer, which a later scan reuses)."""
        # Reading the footer proves the file exists at no extra cost: polars keeps it for the
        # scan that `scan()` builds on, so a one-partition load sends what raw polars sends.
        try:
            self._raw_scan(uri).collect_schema()
        except FileNotFoundError:
            self._opened.pop(uri, None)
            return False
        return True

    def _raw_scan(self, uri: str) -> pl.LazyFrame:
        if uri not in self._opened:
            options = self.store.polars_options()
            self._opened[uri] = pl.scan_parquet(uri, hive_partitioning=False, **options)
        return self._opened[uri]

    def _discard(self, staged: str) -> None:
        self._settle(lambda: self.store.discard(staged))

    def _settle(self, clean: Callable[[], bool]) -> None:
        # polars finishes (commits) a failed sink's upload in the background after raising,
        # usually within milliseconds but sometimes seconds later, so keep cleaning: until a
        # short quiet period when nothing ever showed up (e.g. a refused connection), or until
        # what did show up has stayed gone. Only failure paths pay this.
        started = time.monotonic()
        seen_at: float | None = None
        while time.monotonic() - started < _DISCARD_DEADLINE_SECONDS:
            try:
                found = clean()
            except Exception:  # the original error matters more than a failed cleanup
                return
            now = time.monotonic()
            if found:
                seen_at = now
            quiet_since = seen_at if seen_at is not None else started
            if now - quiet_since >= _DISCARD_QUIET_SECONDS:
                return
            time.sleep(_DISCARD_INTERVAL_SECONDS)


def _write_error(error: BaseException, where: str, final: str) -> BaseException:
    if not isinstance(error, Exception):
        return error
    if MISMATCH_SENTINEL in str(error):
        return PartitionValueError(
            f"{where}: a row's partition column does not match the partition key "
            f"({brief(error)}); nothing was written to {final}. Every row must carry the "
            "partition key, or drop the column and it is added for you."
        )
    return WriteError(
        f"{where}: writing {final} failed ({brief(error)}); nothing was published and the "
        "previous version, if any, is untouched. Fix the cause and re-run the materialization."
    )
