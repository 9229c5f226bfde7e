"""Replacing a split asset never ends in a mixture (issue 8, property 4), on every store.

Every file is staged before any is published, so a failed rewrite leaves the previous version
whole; a concurrent rewrite of the same asset is refused by the writer lock, and a lock left by
a killed writer expires with its lease.
"""

import json
import threading
import time
import uuid
from typing import Any

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import PartitionValueError, QueryError, WriteError
from pq_io_manager.partitioned_sink import PartitionedSink
from pq_io_manager.stores import LocalStore
from pq_io_manager.writer_lock import LOCK_NAME
from tests.faults_support import leftovers, private_proxy, proxied_lake, server_endpoint, wait_for
from tests.lake import Lake
from tests.test_faults import SETTLE_SECONDS
from tests.test_io_manager import materialize

pytestmark = pytest.mark.every_s3_server

VERSION_1 = {"country": ["fr", "de", "us"], "count": [1, 2, 3]}
VERSION_1_FILES = [f"customers/country={c}/data.parquet" for c in ("de", "fr", "us")]


def customers_asset(rows: dict[str, Any]) -> dg.AssetsDefinition:
    """`customers`, split by country, returning whatever `rows` holds when it runs."""

    @dg.asset(name="customers", metadata={"partition_by": ["country"]})
    def customers() -> pl.DataFrame:
        return pl.DataFrame(rows)

    return customers


def contents(lake: Lake) -> dict[str, list[tuple[Any, ...]]]:
    """Each stored data file of `customers` and its rows."""
    return {path: lake.read(path).rows() for path in lake.files("customers")}


def test_a_refused_value_leaves_the_previous_version_whole(lake: Lake) -> None:
    materialize(lake, [customers_asset(VERSION_1)])
    before = contents(lake)
    # "it" and "es" could be written, but no store can hold a 300-byte directory name
    bad = {"country": ["it", "es", "x" * 300], "count": [4, 5, 6]}

    with pytest.raises(PartitionValueError, match=r"cannot store .*300 bytes|255 bytes"):
        materialize(lake, [customers_asset(bad)])

    assert contents(lake) == before


def test_a_failing_lazy_query_leaves_the_previous_version_whole(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    materialize(lake, [customers_asset(VERSION_1)])
    before = contents(lake)
    named = _named_files(monkeypatch)
    rows = 2_000_000  # many morsels: the countries' files are open when the last row fails

    @dg.asset(name="customers", metadata={"partition_by": ["country"]})
    def failing() -> pl.LazyFrame:
        n = pl.int_range(0, rows, eager=True)
        countries = pl.Series("country", ["it", "es", "fr"]).gather(n % 3)
        text = pl.when(pl.col("n") < rows - 1).then(pl.lit("4")).otherwise(pl.lit("six"))
        frame = pl.LazyFrame({"n": n, "country": countries})
        return frame.select("country", count=text.str.to_integer(strict=True))

    with pytest.raises(QueryError, match=r"(?s)polars query failed.*six.*nothing was published"):
        materialize(lake, [failing])

    assert named, "the query failed before the sink opened any file: nothing to clean up"
    if lake.endpoint is not None:
        time.sleep(SETTLE_SECONDS)  # polars may complete a failed sink's upload in the background
    assert contents(lake) == before
    assert leftovers(lake) == ([], [])


def _named_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The staged files the partitioned sink names from now on (it opens each one)."""
    named: list[str] = []
    name = PartitionedSink._name

    def recording(self: PartitionedSink, arguments: Any) -> str:
        named.append(name(self, arguments))
        return named[-1]

    monkeypatch.setattr(PartitionedSink, "_name", recording)
    return named


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("moto", marks=pytest.mark.s3),
        pytest.param("radosgw", marks=[pytest.mark.s3, pytest.mark.radosgw]),
    ],
)
def test_a_connection_failing_on_the_third_file_leaves_the_previous_version_whole(
    request: pytest.FixtureRequest, server: str
) -> None:
    endpoint, upstream = server_endpoint(request, server)
    bucket = f"split-{uuid.uuid4().hex[:16]}"
    endpoint.client().create_bucket(Bucket=bucket)
    from tests.lake import s3_lake

    with private_proxy(upstream) as proxy:
        lake = proxied_lake(s3_lake(endpoint, bucket), proxy.url, max_attempts=1)
        materialize(lake, [customers_asset(VERSION_1)])
        before = contents(lake)
        uploads = _Counter()

        def third_upload(method: str, path: str) -> bool:
            return method == "PUT" and path.endswith(".parquet") and uploads.next() >= 2

        proxy.fail_requests_matching(third_upload, status=403)
        version_2 = {"country": ["it", "es", "pt", "fr"], "count": [4, 5, 6, 7]}

        with pytest.raises(WriteError, match=r"(?s)writing s3://.*/customers failed.*403"):
            materialize(lake, [customers_asset(version_2)])
        proxy.clear_faults()

        assert uploads.next() >= 3, "the third upload was never refused"
        # (no settle: cleanup waited 15 s for the uploads that had landed, see staged_files)
        assert contents(lake) == before
        assert leftovers(lake) == ([], [])


def test_two_concurrent_rewrites_never_mix(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    materialize(lake, [customers_asset(VERSION_1)])
    first_publishing = threading.Event()
    release_first = threading.Event()
    _hold_first_publish(monkeypatch, lake, first_publishing, release_first)
    version_a = {"country": ["fr", "it"], "count": [10, 11]}
    version_b = {"country": ["de", "es"], "count": [20, 21]}
    outcome: dict[str, Any] = {}

    def rewrite_a() -> None:
        try:
            materialize(lake, [customers_asset(version_a)])
            outcome["a"] = "written"
        except Exception as error:  # reported by the assertions below
            outcome["a"] = error

    writer_a = threading.Thread(target=rewrite_a)
    writer_a.start()
    assert first_publishing.wait(60), "the first rewrite never reached its publish"
    try:
        with pytest.raises(WriteError, match=r"another run .*concurrency pool"):
            materialize(lake, [customers_asset(version_b)])
    finally:
        release_first.set()
        writer_a.join(60)

    assert outcome["a"] == "written"
    assert contents(lake) == {
        "customers/country=fr/data.parquet": [(10,)],
        "customers/country=it/data.parquet": [(11,)],
    }


def test_a_lock_left_by_a_killed_writer_expires_with_its_lease(lake: Lake) -> None:
    materialize(lake, [customers_asset(VERSION_1)])
    lock = f".pq-meta/customers/{LOCK_NAME}"
    holder = {"token": "killed", "holder": "a killed run", "lease_seconds": 600.0}
    lake.put(lock, json.dumps({**holder, "revision": "1"}).encode())
    version_2 = {"country": ["it"], "count": [9]}

    with pytest.raises(WriteError, match=r"a killed run.*expires 600\.0 s after"):
        materialize(lake, [customers_asset(version_2)])
    assert contents(lake)["customers/country=fr/data.parquet"] == [(1,)]

    # the same lock with a 1 s lease: once the store's own clock says it is older, taken over
    lake.put(lock, json.dumps({**holder, "lease_seconds": 1.0, "revision": "2"}).encode())
    wait_for(lambda: _age(lake, lock) > 1.0, timeout=10)
    materialize(lake, [customers_asset(version_2)])

    assert contents(lake) == {"customers/country=it/data.parquet": [(9,)]}


def _age(lake: Lake, relative: str) -> float:
    from tests.test_schema_safety import _store

    found = _store(lake).read_versioned(lake.uri(relative))
    assert found is not None
    return found.age_seconds


def _hold_first_publish(
    monkeypatch: pytest.MonkeyPatch, lake: Lake, reached: threading.Event, release: threading.Event
) -> None:
    """The first writer to publish (or upload a final file) waits for `release`."""
    import pq_io_manager.storage

    holder: list[int] = []
    lock = threading.Lock()
    original = pq_io_manager.storage.Dataset.write

    def held(self: Any, *args: Any, **kwargs: Any) -> Any:
        _wait_if_first(holder, lock, reached, release)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq_io_manager.storage.Dataset, "write", held)
    for store in _store_classes():
        publish = store.publish

        def held_publish(
            self: Any,
            staged: str,
            final: str,
            size: int | None = None,
            keep_staged: bool = False,
            _publish: Any = publish,
        ) -> int:
            _wait_if_first(holder, lock, reached, release)
            return int(_publish(self, staged, final, size, keep_staged))

        monkeypatch.setattr(store, "publish", held_publish)


def _wait_if_first(
    holder: list[int], lock: threading.Lock, reached: threading.Event, release: threading.Event
) -> None:
    with lock:
        if not holder:
            holder.append(threading.get_ident())
        mine = holder[0] == threading.get_ident()
    if mine and not release.is_set():
        reached.set()
        release.wait(60)


def _store_classes() -> list[type]:
    from pq_io_manager.s3_store import S3Store

    return [LocalStore, S3Store]


class _Counter:
    """A thread-safe counter (the proxy calls predicates from its own threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def next(self) -> int:
        with self._lock:
            self._count += 1
            return self._count - 1


def test_a_held_lock_is_renewed_past_its_lease_and_released_after(lake: Lake) -> None:
    from pq_io_manager.writer_lock import writer_lock
    from tests.test_schema_safety import _store

    store, uri = _store(lake), lake.uri(f".pq-meta/customers/{LOCK_NAME}")
    with writer_lock(store, uri, "first", lease_seconds=2.0):
        threading.Event().wait(2.6)  # the lease runs out unless renewed
        # older than one lease, but renewed: still held
        with (
            pytest.raises(WriteError, match=r"another run"),
            writer_lock(_store(lake), uri, "second"),
        ):
            pass
    with writer_lock(_store(lake), uri, "third"):  # released: taken at once
        pass
