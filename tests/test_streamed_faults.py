"""Faults in the streamed write of a multi-partition range (issue 10), on moto and radosgw.

A single-run backfill is sunk in one pass into staging, then published partition by partition
(`streamed_writes`). A connection cut during the sink, or copies refused while publishing, go
through a fault-injecting proxy of the test's own in front of the server itself. Afterwards
every partition that was not published keeps its previous version byte for byte, and no
staged object or incomplete multipart upload is left under `.pq-staging/`.
"""

import threading
import time

import polars as pl
import pytest

from pq_io_manager import QueryError, WriteError
from tests.faults_support import SERVERS, etags, leftovers, private_proxy, proxied_lake
from tests.lake import Lake
from tests.servers.http_proxy import RequestRecord
from tests.test_faults import SETTLE_SECONDS, remote_lake
from tests.test_streamed_writes import backfill, days, events, partition_files

KEYS = days(1, 8)
CUT_AFTER = 1 << 16  # a staged file of BIG_ROWS rows is larger: its upload is cut
BIG_ROWS, SMALL_ROWS = 40_000, 10
HUGE_ROWS = 15_000_000  # 32 MiB buffered, and polars starts a multipart upload: its part is cut


def new_version(keys: list[str], huge_rows: int = 0) -> pl.LazyFrame:
    """Big files for every other day, small ones (under `CUT_AFTER`) for the rest; and
    first, when `huge_rows`, that many rows more for the first day (a multipart upload)."""
    big, small = keys[::2], keys[1::2]
    parts = [events(big, BIG_ROWS, "new"), events(small, SMALL_ROWS, "new")]
    frame = pl.concat([events(keys[:1], huge_rows, "new"), *parts] if huge_rows else parts)
    # barely compressible values, so that a big day's file really outgrows CUT_AFTER
    return frame.with_columns(value=pl.col("id") * 2654435761 % 1_000_003)


def staged_puts(requests: list[RequestRecord], status: int | None) -> list[RequestRecord]:
    """The uploads into staging that got `status` (None: cut, no answer)."""
    return [
        record
        for record in requests
        if record.method == "PUT" and ".pq-staging/" in record.path and record.status == status
    ]


def seeded(direct: Lake, proxy_url: str) -> Lake:
    """`direct` reached through the proxy at `proxy_url` (one attempt per request), holding
    the old version of every day of KEYS."""
    lake = proxied_lake(direct, proxy_url, max_attempts=1)
    backfill(lake, lambda run_keys: events(run_keys, 100, "old"), KEYS)
    return lake


# "closing": the days' files are uploaded as the sink closes them; the small ones land, the
# big ones are cut. "mid-stream": the first day outgrows a part, and its part upload is cut
# while the stream runs: polars 2.1 raises the ComputeError it raises for a failing strict
# cast ("File out of specification: underlying IO error"), so the error cannot be classified
# by type; the message says so and points at the connection. Either way nothing is published.
CUTS: dict[str, tuple[int, tuple[type[Exception], ...], str]] = {
    "closing": (0, (WriteError,), r"writing s3://\S*/lake/events failed.*untouched"),
    "mid-stream": (
        HUGE_ROWS,
        (WriteError, QueryError),
        r"(nothing was published.*untouched.*check the connection"
        r"|writing s3://\S*/lake/events failed.*untouched)",
    ),
}


def assert_cut_as_planned(cut: str, requests: list[RequestRecord]) -> None:
    """The cut hit the sink where `cut` says, with something in staging to clean up."""
    cut_puts = staged_puts(requests, None)
    assert cut_puts, "no upload was cut"
    if cut == "closing":
        assert staged_puts(requests, 200), "no staged file landed before the cut"
    else:  # a multipart upload was open: cleanup has to abort it
        assert any("uploadId=" in record.path for record in cut_puts), "no part was cut"


@pytest.mark.slow
@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("server", SERVERS)
def test_a_connection_cut_during_a_backfills_sink_keeps_every_previous_version(
    request: pytest.FixtureRequest, server: str, cut: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The uploads cut here never land: waiting the full settled period for late commits of a
    # loaded server adds nothing but time (the settle below still catches a late landing).
    monkeypatch.setattr("pq_io_manager.staged_files._DISCARD_SETTLED_SECONDS", 2.0)
    huge_rows, error, message = CUTS[cut]
    direct, upstream = remote_lake(request, server)
    with private_proxy(upstream) as proxy:
        lake = seeded(direct, proxy.url)
        before = etags(direct)
        proxy.reset_counts()
        proxy.cut_upload_after(CUT_AFTER, methods=("PUT",), count=1000)  # every retry too

        with pytest.raises(error, match=rf"(?s)8 partitions .*{message}"):
            backfill(lake, lambda run_keys: new_version(run_keys, huge_rows), KEYS)
        proxy.clear_faults()
        assert_cut_as_planned(cut, proxy.requests)

    time.sleep(SETTLE_SECONDS)  # polars may complete a failed sink's upload in the background
    assert etags(direct) == before
    assert leftovers(direct) == ([], [])
    assert direct.read(f"events/date={KEYS[0]}/data.parquet")["tag"].unique().to_list() == ["old"]


class PublishRefusal:
    """A proxy predicate: the first `allowed` copies onto a partition's final key go through,
    every later one is refused (the proxy calls it from its own threads)."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.copies = 0
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str) -> bool:
        if method != "PUT" or "/lake/events/" not in path:
            return False
        with self._lock:
            self.copies += 1
            return self.copies > self.allowed


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_a_backfill_failing_while_publishing_says_what_was_published(
    request: pytest.FixtureRequest, server: str
) -> None:
    direct, upstream = remote_lake(request, server)
    with private_proxy(upstream) as proxy:
        lake = seeded(direct, proxy.url)
        before = etags(direct)
        proxy.fail_requests_matching(PublishRefusal(allowed=3), status=503)

        with pytest.raises(
            WriteError,
            match=r"(?s)3 of 8 partitions were published \(each whole, e\.g\. s3://.*/events/"
            r"date=2024-01-0\d/data\.parquet\); 5 failed and keep their previous version\. "
            r"First failure: .*(503|SlowDown).*Re-run the failed partitions",
        ):
            backfill(lake, new_version, KEYS)
        proxy.clear_faults()

    after = etags(direct)
    assert sorted(after) == sorted(before)
    files = partition_files(KEYS)
    changed = [path for path in files if after[path] != before[path]]
    assert len(changed) == 3
    for path in files:  # each partition whole: all new, or its previous version untouched
        tags = direct.read(path)["tag"].unique().to_list()
        assert tags == (["new"] if path in changed else ["old"]), path
    assert leftovers(direct) == ([], [])
