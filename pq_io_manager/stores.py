"""The object operations the storage layer needs (`Store`), and the local-directory store.

polars moves the bytes; stores do what polars cannot (publish, delete, list, abort). The S3
store is in `s3_store`. No Dagster import.
"""

import contextlib
import enum
import fcntl
import hashlib
import os
import posixpath
import re
import stat
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

STAGED_NAME = re.compile(r"[0-9a-f]{32}\.parquet")
"""The name of a staged file (a uuid4 hex): the only files below staging a sweep removes."""
SWEEP_MARKER = ".last-sweep"


class Presence(enum.Enum):
    """What a store says about a file a read just failed on."""

    PRESENT = "present"
    ABSENT = "absent"
    DENIED = "denied"  # S3 answers 403 for a missing key to a role without s3:ListBucket


@dataclass(frozen=True)
class Versioned:
    """A small file read with the tag a conditional write compares, and its age.

    `age_seconds` is measured on the store's own clock (S3: the response's Date minus the
    object's LastModified), so that no writer has to trust its own clock against another's.
    """

    data: bytes
    version: str
    age_seconds: float


class Store(Protocol):
    """What the storage layer needs from a local directory or an S3 bucket."""

    def polars_options(self) -> dict[str, Any]:
        """Keyword arguments that give polars access to this store."""

    def prepare(self, uri: str) -> None:
        """Make `uri` writable by polars (a directory needs its parents; a key needs nothing)."""

    def list_files(
        self, directory: str, recursive: bool = True, limit: int | None = None
    ) -> dict[str, int]:
        """Files below `directory` (URI to size, sorted, at most `limit`); empty when absent."""

    def list_directories(self, directories: Sequence[str]) -> dict[str, int]:
        """Files directly in any of `directories` (URI to size)."""

    def existing(self, uris: Sequence[str]) -> dict[str, int]:
        """Those of these files that exist, to their sizes, at a cost that grows with how many
        were asked."""

    @property
    def parallel_reads(self) -> int:
        """How many small reads are worth running at once (to overlap request latency)."""

    @property
    def atomic_uploads(self) -> bool:
        """Whether a file written in one go appears whole or not at all (S3 PUT/multipart)."""

    def publish(
        self, staged: str, final: str, size: int | None = None, keep_staged: bool = False
    ) -> int:
        """Atomically make the staged file visible at `final` (replacing it); its size
        (`size`: the staged file's size when the writer knows it, which saves a request).
        `keep_staged`: the caller deletes the staged files of many publishes in one `delete`
        (a store that moves the file leaves nothing to delete)."""

    def delete(self, uris: Iterable[str]) -> None:
        """Delete files; missing ones are ignored."""

    def discard(self, staged: str) -> bool:
        """Remove a staged file and anything half-uploaded for it; True if there was any."""

    def upload(self, data: bytes, uri: str, staging: str) -> int:
        """Store a serialized file at `uri` atomically; a failure removes only what this call
        started (`staging` is the base path's staging directory); its size."""

    def probe(self, uri: str) -> "Presence":
        """Whether a file exists, asked only after a read failed (to classify the failure)."""

    def sweep(self, staging: str, abandoned_seconds: float, interval_seconds: float) -> int | None:
        """Remove our own staged files and uploads below `staging` that made no progress for
        `abandoned_seconds` by the store's clock; how many, or None when a sweep of `staging`
        was claimed less than `interval_seconds` ago or another caller won the claim (a
        conditional write of the marker: of many callers at once, one sweeps)."""

    def list_prefix(self, prefix: str) -> dict[str, int]:
        """Files whose URI starts with `prefix`, at any depth (URI to size, sorted)."""

    def read_versioned(self, uri: str) -> Versioned | None:
        """A small file's content, version and age; None when it does not exist."""

    def write_if(self, uri: str, data: bytes, version: str | None) -> str | None:
        """Write `data` at `uri` only if its current version is `version` (None: only if it
        does not exist), atomically against concurrent writers; the new version, or None when
        the condition did not hold."""


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
        """One `scandir` each (cheap locally); absent directories hold nothing."""
        found: dict[str, int] = {}
        for directory in directories:
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                continue
            found.update(
                (posixpath.join(directory, entry.name), entry.stat().st_size)
                for entry in entries
                if entry.is_file()
            )
        return found

    def existing(self, uris: Sequence[str]) -> dict[str, int]:
        """One `stat` per file: cheaper than listing each file's directory."""
        found = {}
        for uri in uris:
            with contextlib.suppress(OSError):
                status = os.stat(uri)
                if stat.S_ISREG(status.st_mode):
                    found[uri] = status.st_size
        return found

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

    def publish(
        self, staged: str, final: str, size: int | None = None, keep_staged: bool = False
    ) -> int:
        """`os.replace` is atomic on POSIX within one filesystem; fsync makes it durable (a
        local `stat` is cheap: `size` is not needed; a rename leaves no staged file)."""
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

    def upload(self, data: bytes, uri: str, staging: str) -> int:
        """Write a hidden temporary file next to `uri`, then rename it into place."""
        self.prepare(uri)
        temporary = posixpath.join(
            posixpath.dirname(uri), f".{posixpath.basename(uri)}.{uuid.uuid4().hex}"
        )
        try:
            with open(temporary, "xb") as file:
                file.write(data)
            return self.publish(temporary, uri)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)

    def probe(self, uri: str) -> "Presence":
        """`os.path.exists` (a local file that cannot be read still exists)."""
        return Presence.PRESENT if os.path.exists(uri) else Presence.ABSENT

    def discard(self, staged: str) -> bool:
        """Remove a staged file if polars left one behind."""
        found = os.path.exists(staged)
        self.delete([staged])
        return found

    def sweep(self, staging: str, abandoned_seconds: float, interval_seconds: float) -> int | None:
        """Delete our staged files (`{32 hex}.parquet`) not written to for `abandoned_seconds`
        by the filesystem's clock; a marker file's mtime says when the last sweep was claimed."""
        now = _filesystem_now(staging)
        if now is None:
            return 0  # no staging directory: nothing is staged
        marker = posixpath.join(staging, SWEEP_MARKER)
        current = self.read_versioned(marker)
        if current is not None and now - os.stat(marker).st_mtime < interval_seconds:
            return None
        # claimed by compare-and-swap: of processes starting together, one sweeps
        version = None if current is None else current.version
        if self.write_if(marker, uuid.uuid4().hex.encode(), version) is None:
            return None
        staged = [entry for entry in os.scandir(staging) if STAGED_NAME.fullmatch(entry.name)]
        stale = [entry.path for entry in staged if now - entry.stat().st_mtime > abandoned_seconds]
        self.delete(stale)
        return len(stale)

    def list_prefix(self, prefix: str) -> dict[str, int]:
        """Files and directories named `prefix`* in its directory, files below them."""
        directory, _, start = prefix.rpartition("/")
        try:
            names = sorted(name for name in os.listdir(directory) if name.startswith(start))
        except FileNotFoundError:
            return {}
        found: dict[str, int] = {}
        for name in names:
            path = posixpath.join(directory, name)
            if os.path.isdir(path):
                found.update(self.list_files(path))
            elif os.path.isfile(path):
                found[path] = os.stat(path).st_size
        return found

    def read_versioned(self, uri: str) -> Versioned | None:
        """The version is the content's digest (writers put a fresh token in each content)."""
        try:
            with open(uri, "rb") as file:
                data = file.read()
                modified = os.fstat(file.fileno()).st_mtime
        except FileNotFoundError:
            return None
        return Versioned(data, _digest(data), max(0.0, time.time() - modified))

    def write_if(self, uri: str, data: bytes, version: str | None) -> str | None:
        """Compare and replace under an exclusive `flock` of the file's directory (released by
        the kernel if the process dies), with a hidden temporary file and `os.replace`."""
        directory = posixpath.dirname(uri)
        self.prepare(uri)
        with _locked(directory):
            current = self.read_versioned(uri)
            if (None if current is None else current.version) != version:
                return None
            temporary = posixpath.join(directory, f".{posixpath.basename(uri)}.{uuid.uuid4().hex}")
            try:
                with open(temporary, "xb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, uri)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(temporary)
            _fsync(directory)
        return _digest(data)


def list_each(store: Store, directories: Iterable[str]) -> dict[str, int]:
    """Files directly in each of `directories`, with one listing per directory."""
    found: dict[str, int] = {}
    for directory in directories:
        found.update(store.list_files(directory, recursive=False))
    return found


def _filesystem_now(directory: str) -> float | None:
    """The filesystem's own time (a new file's mtime), not this process's clock."""
    probe = posixpath.join(directory, f".clock-{uuid.uuid4().hex}")
    try:
        with open(probe, "xb") as file:
            return os.fstat(file.fileno()).st_mtime
    except FileNotFoundError:
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(probe)


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


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    # flock conflicts between separate opens, so threads and processes exclude each other
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
