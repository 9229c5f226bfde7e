"""Files staged outside the asset and not yet published: running work over many of them,
publishing them, and removing them after a failure. No Dagster import.
"""

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from pq_io_manager.layout import PartitionColumn
from pq_io_manager.stores import Store

_THREADS = 8
PUBLISH_THREADS = 32  # server-side copies wait on the server, not on us (boto3 pool: 32)
_DISCARD_QUIET_SECONDS = 5.0  # nothing showed up yet: a PUT of the sink may still be in flight
# some showed up: the others may still be in flight (radosgw under CI load committed one of a
# failed sink's files more than 15 s after the others)
_DISCARD_SETTLED_SECONDS = 25.0
_DISCARD_DEADLINE_SECONDS = 40.0
_DISCARD_GONE_SECONDS = 2.0
_DISCARD_INTERVAL_SECONDS = 0.1
_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class Staged:
    """One file staged outside the asset, not yet published, and what polars wrote into it."""

    columns: tuple[PartitionColumn, ...]
    staged: str
    final: str
    row_count: int
    size_bytes: int | None = None  # when polars reported it: publishing needs no HEAD


def run_all(
    function: Callable[[_Item], _Result], items: Sequence[_Item], threads: int = _THREADS
) -> tuple[list[_Result], list[BaseException]]:
    """Run `function` on every item (`threads` at a time); the results and the errors."""
    with ThreadPoolExecutor(min(threads, max(1, len(items)))) as pool:
        futures = [pool.submit(function, item) for item in items]
    done = [future.result() for future in futures if future.exception() is None]
    errors = [error for future in futures if (error := future.exception()) is not None]
    return done, errors


def publish_all(
    store: Store, staged: Sequence[Staged]
) -> tuple[list[tuple[Staged, int]], list[BaseException]]:
    """Publish every staged file (each atomically, 32 at a time), each with its size, and the
    errors; then remove the published files' staged copies in one `delete` (one request on S3
    for up to 1000 partitions, instead of one each)."""

    def publish(file: Staged) -> tuple[Staged, int]:
        return file, store.publish(file.staged, file.final, file.size_bytes, keep_staged=True)

    done, errors = run_all(publish, staged, PUBLISH_THREADS)
    # published whole already: a staged copy a failed delete leaves is ours, and swept later
    with contextlib.suppress(Exception):
        store.delete([file.staged for file, _ in done])
    return done, errors


def discard_all(store: Store, staged: Sequence[str]) -> None:
    """Remove staged files whose writes have ended (written whole, or never started)."""
    if staged:
        run_all(store.discard, staged)  # the original error matters more than a failed cleanup


def discard_in_flight(store: Store, names: Callable[[], Sequence[str]]) -> None:
    """Remove the files (and half-uploads) of a polars write that failed, waiting for it to settle.

    polars finishes (commits) a failed write's uploads in the background after raising, usually
    within milliseconds but sometimes seconds later on a loaded server, each file once; its
    threads may even name a file after it raised. So `names` is read again on every pass, and
    cleaning goes on until every file has shown up once (and is gone), or until a quiet period
    when nothing ever showed up (e.g. a refused connection), or until what did show up has
    stayed gone for a while (a file polars never started). Only a failed write pays this, once
    for all its files; a sink refusing a key does not fail (see `partitioned_sink`).
    """
    started = time.monotonic()
    seen_at: float | None = None
    seen: set[str] = set()
    while (staged := list(names())) and time.monotonic() - started < _DISCARD_DEADLINE_SECONDS:
        found, errors = run_all(lambda uri: (uri, store.discard(uri)), staged)
        if errors:  # the original error matters more than a failed cleanup
            return
        now = time.monotonic()
        if any(present for _, present in found):
            seen_at = now
        seen.update(uri for uri, present in found if present)
        # all seen: still look until they stayed gone a moment (a commit can land again)
        if seen.issuperset(staged) and now - (seen_at or now) >= _DISCARD_GONE_SECONDS:
            return
        if seen_at is None and now - started >= _DISCARD_QUIET_SECONDS:
            return
        if seen_at is not None and now - seen_at >= _DISCARD_SETTLED_SECONDS:
            return
        time.sleep(_DISCARD_INTERVAL_SECONDS)
