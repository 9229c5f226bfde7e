"""One LazyFrame sunk into many staged files in one streaming pass (polars' `PartitionBy`).

Each distinct value of the key columns becomes one file named like every staged file
(`{staging}/{32 hex}.parquet`, flat), so the start-of-process sweep removes it when this
process dies mid-write. polars asks for each file's name (in the stream, before writing its
rows), where the caller labels the key (or refuses it), and reports each file's row count when
the sink finishes; nothing is re-read.

A refused key does not stop the stream: raising inside polars' callback fails the sink while
its other uploads are still in flight, and those land (seconds) later, after any cleanup has
looked. So a refused key's rows are sunk like any other, the sink finishes with every file
committed and reported, and only then are all its files removed and the refusal raised: an
error path that costs one full pass but leaves nothing behind, deterministically. No Dagster
import.
"""

import posixpath
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from polars.io.partition import FileProviderArgs, SinkedPathsCallbackArgs

from pq_io_manager.errors import WriteError
from pq_io_manager.staged_files import discard_all, discard_in_flight
from pq_io_manager.stores import Store


@dataclass(frozen=True)
class SinkedFile:
    """One staged file: the label of its rows' key, and what polars wrote."""

    label: Any
    staged: str
    row_count: int
    size_bytes: int


class PartitionedSink:
    """A partitioned sink into `staging`; it remembers every file it named, so that a failed or
    refused sink's files (polars commits truncated ones) are all removed before it raises."""

    def __init__(
        self,
        store: Store,
        staging: str,
        label: Callable[[pl.DataFrame], Any],
        write_arguments: dict[str, Any],
    ) -> None:
        self.store = store
        self.write_arguments = write_arguments  # the Parquet write options, polars-named
        self.staging = staging
        self.label = label  # called with one row of the key columns; may raise to refuse it
        self.named: dict[str, Any] = {}
        self.refusal: Exception | None = None  # what `label` raised first
        self.failed = False  # the sink raised: no more files may be named
        self._lock = threading.Lock()

    def staged_uris(self) -> list[str]:
        """Every file this sink named so far (written, partly written or not yet opened)."""
        with self._lock:
            return [posixpath.join(self.staging, name) for name in self.named]

    def run(
        self, frame: pl.LazyFrame, key_names: Sequence[str], metadata: dict[str, str]
    ) -> list[SinkedFile]:
        """Sink `frame`, one file per distinct value of `key_names` (dropped from the files).

        Raises:
            Exception: what `label` raised for the first refused key, once every file is gone;
                any failure of the sink itself, once its files have settled and are gone.
        """
        reported: list[SinkedPathsCallbackArgs] = []
        self.store.prepare(posixpath.join(self.staging, "file"))
        target = pl.PartitionBy(
            self.staging,
            key=list(key_names),
            include_key=False,
            file_path_provider=self._name,
            approximate_bytes_per_file=None,  # one file per key, however large
        )
        try:
            frame.sink_parquet(
                target,
                metadata=metadata,
                sinked_paths_callback=reported.append,
                **self.write_arguments,
                **self.store.polars_options(),
            )
        except BaseException:  # also on KeyboardInterrupt: never leave staging behind
            with self._lock:
                self.failed = True  # polars' threads may still ask for a name: refuse them
            discard_in_flight(self.store, self.staged_uris)
            raise
        if self.refusal is not None:
            discard_all(self.store, self.staged_uris())  # the sink ended: all were committed
            raise self.refusal
        return self._files(reported)

    def _name(self, arguments: FileProviderArgs) -> str:
        name = f"{uuid.uuid4().hex}.parquet"
        refusal: Exception | None = None
        try:
            label = self.label(arguments.partition_keys)
        except Exception as refused:  # finish the stream (see the module docstring)
            label = refusal = refused
        with self._lock:  # one section: a name is either refused or seen by the cleanup
            if self.failed:  # a file named now could land after the cleanup has looked
                raise WriteError(f"the partitioned sink into {self.staging} already failed")
            self.refusal = self.refusal or refusal
            self.named[name] = label
        return name

    def _files(self, reported: list[SinkedPathsCallbackArgs]) -> list[SinkedFile]:
        files = [path for report in reported for path in report.paths]
        with self._lock:
            named = dict(self.named)
        labels = [named[posixpath.basename(file.path)] for file in files]
        if len(set(labels)) != len(labels) or len(files) != len(named):
            raise WriteError(
                f"polars wrote {len(files)} file(s) for {len(set(labels))} partition(s) "
                f"(named {len(named)}) into {self.staging}, not one file per partition; "
                "nothing was published. Check that polars is the version this package pins."
            )
        return [
            SinkedFile(
                key,
                posixpath.join(self.staging, posixpath.basename(file.path)),
                file.num_rows,
                file.num_bytes,
            )
            for key, file in zip(labels, files, strict=True)
        ]
