"""The object operations the storage layer needs (`Store`), and the local-directory store.

polars moves the bytes; stores do what polars cannot (publish, delete, list, abort). The S3
store is in `s3_store`. No Dagster import.
"""

import os
import posixpath
from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Store(Protocol):
    """What the storage layer needs from a local directory or an S3 bucket."""

    def polars_options(self) -> dict[str, Any]:
        """Keyword arguments that give polars access to this store."""

    def list_files(
        self, directory: str, recursive: bool = True, limit: int | None = None
    ) -> dict[str, int]:
        """Files below `directory` (URI to size, sorted, at most `limit`); empty when absent."""

    def list_directories(self, directories: Sequence[str]) -> dict[str, int]:
        """Files directly in any of `directories` (URI to size)."""

    @property
    def parallel_reads(self) -> int:
        """How many small reads are worth running at once (to overlap request latency)."""

    @property
    def atomic_uploads(self) -> bool:
        """Whether a file written in one go appears whole or not at all (S3 PUT/multipart)."""

    def publish(self, staged: str, final: str) -> int:
        """Atomically make the staged file visible at `final` (replacing it); its size."""

    def delete(self, uris: Iterable[str]) -> None:
        """Delete files; missing ones are ignored."""

    def discard(self, staged: str) -> bool:
        """Remove a staged file and anything half-uploaded for it; True if there was any."""

    def abort_uploads(self, uri: str) -> int:
        """Abort unfinished uploads to exactly `uri`; how many."""

    def sweep(self, base_path: str, staging: str, older_than: float) -> int:
        """Remove staged files below `staging`, and unfinished uploads below `base_path`,
        started before epoch `older_than`; how many."""


class LocalStore:
    """A directory on the local filesystem; publishing is an atomic rename."""

    def __init__(self, base_path: str) -> None:
        self.base_path = base_path

    def polars_options(self) -> dict[str, Any]:
        """Local paths need no storage options."""
        return {}

    def list_files(
        self, directory: str, recursive: bool = True, limit: int | None = None
    ) -> dict[str, int]:
        """Files below `directory`, skipping nothing."""
        found: list[str] = []
        for current, directories, files in os.walk(directory):
            directories.sort()
            found.extend(posixpath.join(current, name) for name in sorted(files))
            if not recursive or (limit is not None and len(found) >= limit):
                break
        return {path: os.stat(path).st_size for path in found[:limit]}

    def list_directories(self, directories: Sequence[str]) -> dict[str, int]:
        """One directory read each (cheap locally)."""
        return list_each(self, directories)

    def prepare(self, uri: str) -> None:
        """Create the parent directory of `uri`."""
        os.makedirs(posixpath.dirname(uri), exist_ok=True)

    @property
    def parallel_reads(self) -> int:
        """A local read has no latency worth a thread."""
        return 1

    @property
    def atomic_uploads(self) -> bool:
        """Files are written in place, so they must be staged and renamed."""
        return False

    def publish(self, staged: str, final: str) -> int:
        """`os.replace` is atomic on POSIX within one filesystem; fsync makes it durable."""
        self.prepare(final)
        _fsync(staged)
        size = os.stat(staged).st_size
        os.replace(staged, final)
        _fsync(posixpath.dirname(final))
        return size

    def delete(self, uris: Iterable[str]) -> None:
        """Unlink files, then prune directories left empty."""
        for uri in uris:
            try:
                os.remove(uri)
            except FileNotFoundError:
                continue
            _remove_empty_parents(posixpath.dirname(uri), self.base_path)

    def abort_uploads(self, uri: str) -> int:
        """Local files have no uploads."""
        return 0

    def discard(self, staged: str) -> bool:
        """Remove a staged file if polars left one behind."""
        found = os.path.exists(staged)
        self.delete([staged])
        return found

    def sweep(self, base_path: str, staging: str, older_than: float) -> int:
        """Delete staged files last modified before `older_than` (local files have no uploads)."""
        stale = [path for path in self.list_files(staging) if os.stat(path).st_mtime < older_than]
        self.delete(stale)
        return len(stale)


def list_each(store: Store, directories: Iterable[str]) -> dict[str, int]:
    """Files directly in each of `directories`, with one listing per directory."""
    found: dict[str, int] = {}
    for directory in directories:
        found.update(store.list_files(directory, recursive=False))
    return found


def _fsync(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_empty_parents(directory: str, base_path: str) -> None:
    # Stops at the first non-empty directory and never removes base_path or anything above it.
    while directory.startswith(base_path + "/"):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = posixpath.dirname(directory)
