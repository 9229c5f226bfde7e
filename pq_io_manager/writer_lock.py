"""One writer at a time for whole replacements of an asset: a leased lock object.

`{base}/.pq-meta/{asset}/_writer.json` is taken and released by compare-and-swap
(`Store.write_if`); it is
never deleted (Ceph radosgw ignores If-Match on DELETE), only marked free. While held it is
renewed every quarter lease by a background thread. A killed writer stops renewing: once the
object is older than its lease, measured on the store's own clock (S3: the response's Date
minus LastModified; local disk: the kernel's clock for both), the next writer takes it over.
No writer compares its own clock with another's. No Dagster import.
"""

import contextlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from pq_io_manager.errors import WriteError
from pq_io_manager.stores import Store

LOCK_NAME = "_writer.json"
LEASE_SECONDS = 120.0


@dataclass
class Lease:
    """A held lock: its current version, renewed in the background until released."""

    store: Store
    uri: str
    token: str
    version: str
    lease_seconds: float
    lost: bool = False
    _stopped: threading.Event = field(default_factory=threading.Event)

    def check(self, where: str) -> None:
        """Raise if another writer took the lock over (this one stalled past its lease)."""
        if self.lost:
            raise WriteError(
                f"{where}: this run stalled for longer than the writer lock's lease "
                f"({self.lease_seconds:.0f} s) and another run took {self.uri} over; stopped "
                "before removing the previous version's files. Re-run the materialization."
            )

    def _renew_until_stopped(self) -> None:
        while not self._stopped.wait(self.lease_seconds / 4):
            renewed = self.store.write_if(
                self.uri, _content(self.token, self.lease_seconds), self.version
            )
            if renewed is None:
                self.lost = True
                return
            self.version = renewed


@contextlib.contextmanager
def writer_lock(
    store: Store, uri: str, where: str, lease_seconds: float = LEASE_SECONDS
) -> Iterator[Lease]:
    """Hold the lock at `uri` for the block, or refuse at once if another writer holds it."""
    token = uuid.uuid4().hex
    lease = Lease(
        store, uri, token, _acquire(store, uri, token, lease_seconds, where), lease_seconds
    )
    renewer = threading.Thread(target=lease._renew_until_stopped, daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        lease._stopped.set()
        renewer.join()
        if not lease.lost:
            with contextlib.suppress(Exception):  # an unreleased lock expires with its lease
                store.write_if(uri, _content(None, 0.0), lease.version)


def _acquire(store: Store, uri: str, token: str, lease_seconds: float, where: str) -> str:
    current = store.read_versioned(uri)
    if current is not None:
        held = json.loads(current.data)
        if held.get("token") and current.age_seconds <= float(held["lease_seconds"]):
            raise _refusal(uri, held, current.age_seconds, where)
    version = store.write_if(
        uri, _content(token, lease_seconds), None if current is None else current.version
    )
    if version is not None:
        return version
    # Lost a race for it, or a retried request already took it: the content says which.
    again = store.read_versioned(uri)
    if again is not None and json.loads(again.data).get("token") == token:
        return again.version
    held = json.loads(again.data) if again is not None else {}
    raise _refusal(uri, held, 0.0 if again is None else again.age_seconds, where)


def _refusal(uri: str, held: dict[str, object], age: float, where: str) -> WriteError:
    return WriteError(
        f"{where}: another run ({held.get('holder', 'unknown')}) is replacing this asset right "
        f"now: it holds {uri} (renewed {age:.0f} s ago). Two rewrites at once would leave "
        "files of both, so this one published nothing. Serialize the runs that write this "
        "asset, e.g. with a Dagster concurrency pool (`pool=` on the asset, limit 1) or "
        "`tag_concurrency_limits` on the run queue, and re-run. A lock left by a killed run "
        f"expires {held.get('lease_seconds', LEASE_SECONDS)} s after its last renewal."
    )


def _content(token: str | None, lease_seconds: float) -> bytes:
    holder = f"{socket.gethostname()} pid {os.getpid()}" if token else None
    document = {
        "token": token,
        "holder": holder,
        "lease_seconds": lease_seconds,
        "revision": uuid.uuid4().hex,  # every version differs, so no ABA on its tag
    }
    return json.dumps(document).encode()
