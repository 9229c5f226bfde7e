"""The start-of-process sweep of abandoned staging, run at most once per process per store.

Across processes the store itself limits sweeps to one per interval (a marker whose time is
the store's own clock). No Dagster import.
"""

import threading

from pq_io_manager.stores import Store

_SWEPT: set[tuple[str, str]] = set()
_LOCK = threading.Lock()


def sweep_once(store: Store, staging: str, abandoned_seconds: float) -> int | None:
    """Sweep `staging` unless this process already did (or tried); how many were removed,
    or None when skipped. Sweeps run at most once per `abandoned_seconds` across processes, so
    a leftover is removed between one and two thresholds after its writer stopped."""
    endpoint = str(store.polars_options().get("storage_options", {}).get("aws_endpoint_url"))
    with _LOCK:
        if (endpoint, staging) in _SWEPT:
            return None
        _SWEPT.add((endpoint, staging))  # also when it fails: a read-only role tries once
    return store.sweep(staging, abandoned_seconds, interval_seconds=abandoned_seconds)


def forget_sweeps() -> None:
    """Let this process sweep again (for tests and long-lived processes that want to)."""
    with _LOCK:
        _SWEPT.clear()
