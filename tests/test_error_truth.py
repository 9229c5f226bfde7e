"""Errors tell the truth: the user's query is not the bucket; published data is not "nothing"."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import QueryError, WriteError
from pq_io_manager.stores import LocalStore
from tests.faults_support import private_proxy, proxied_lake, server_endpoint
from tests.lake import Lake, local_lake, s3_lake
from tests.servers import S3Endpoint
from tests.test_io_manager import DAILY, materialize, orders, range_tags


def test_a_query_error_in_a_lazy_output_is_reported_as_the_users_not_storage(lake: Lake) -> None:
    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def broken() -> pl.LazyFrame:
        frame = pl.LazyFrame({"quantity": ["1", "2", "three"]})
        return frame.select(pl.col("quantity").str.to_integer(strict=True))

    materialize(lake, [orders], partition_key="2024-01-05")
    before = lake.files()

    with pytest.raises(QueryError, match=r"(?s)partition '2024-01-05'.*polars query failed.*three"):
        materialize(lake, [broken], partition_key="2024-01-05")
    assert lake.files() == before


def test_a_query_error_while_streaming_a_range_is_the_users(lake: Lake) -> None:
    def explode(frame: pl.DataFrame) -> pl.DataFrame:
        raise ZeroDivisionError("the user's own function failed")

    @dg.asset(
        name="orders",
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def broken() -> pl.LazyFrame:
        return pl.LazyFrame({"date": ["2024-01-05"], "amount": [1]}).map_batches(explode)

    with pytest.raises(
        QueryError, match=r"(?s)query failed while its output was being written.*user"
    ):
        materialize(lake, [broken], tags=range_tags("2024-01-05", "2024-01-06"))
    assert lake.files() == []


@pytest.fixture(params=["local", pytest.param("moto", marks=pytest.mark.s3)])
def half_failing_lake(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lake]:
    """A lake whose store refuses every write of the 2024-01-06 partition (a full disk locally,
    HTTP 500 from a proxy of the test's own on S3)."""
    if request.param == "local":
        original = LocalStore.publish

        def refusing(
            store: LocalStore,
            staged: str,
            final: str,
            size: int | None = None,
            keep_staged: bool = False,
        ) -> int:
            if "2024-01-06" in final:
                raise OSError(28, "No space left on device (injected)")
            return original(store, staged, final, size, keep_staged)

        monkeypatch.setattr(LocalStore, "publish", refusing)
        yield local_lake(tmp_path / "lake")
        return
    lake: Lake = request.getfixturevalue("lake_on_moto")
    _, upstream = server_endpoint(request, "moto")
    with private_proxy(upstream) as proxy:
        proxy.fail_requests_matching(lambda method, path: "2024-01-06" in path, status=500)
        yield proxied_lake(lake, proxy.url, max_attempts=1)


@pytest.fixture
def lake_on_moto(moto_endpoint: S3Endpoint) -> Lake:
    bucket = f"partial-{uuid.uuid4().hex[:16]}"
    moto_endpoint.client().create_bucket(Bucket=bucket)
    return s3_lake(moto_endpoint, bucket)


def test_a_range_that_fails_halfway_says_what_was_published(half_failing_lake: Lake) -> None:
    @dg.asset(
        name="orders",
        partitions_def=DAILY,
        metadata={"partition_by": "date"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged() -> pl.DataFrame:
        return pl.DataFrame({"date": ["2024-01-05", "2024-01-06"], "amount": [1.0, 2.0]})

    with pytest.raises(
        WriteError, match=r"(?s)1 of 2 partitions were published.*2024-01-05.*keep their previous"
    ):
        materialize(half_failing_lake, [ranged], tags=range_tags("2024-01-05", "2024-01-06"))
    assert half_failing_lake.files("orders/") == ["orders/date=2024-01-05/data.parquet"]
