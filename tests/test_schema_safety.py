"""Schema safety across the whole dataset (issue 8, property 5), on every store.

A write whose types conflict with ANY stored partition is refused before anything is written,
at a constant number of requests; all-null columns agree with every type; concurrent writers
end with the union of their columns in the dataset's schema record.
"""

import json
import threading
import uuid
from typing import Any

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import SchemaConflictError
from pq_io_manager.layout import PartitionColumn
from pq_io_manager.s3_store import S3Store
from pq_io_manager.storage import Dataset
from pq_io_manager.stores import LocalStore, Store, Versioned
from tests.faults_support import proxied_server, s3_resource
from tests.lake import Lake, s3_lake
from tests.test_io_manager import DAILY, materialize, orders, orders_for, range_tags
from tests.test_writes import ranged_orders

pytestmark = pytest.mark.every_s3_server

RECORD = ".pq-meta/orders/_schema.json"


def daily(extra: dict[str, dict[str, pl.DataType | None]]) -> dg.AssetsDefinition:
    """`orders`, with extra columns per partition key: {key: {column: dtype, None = Null}}."""

    @dg.asset(name="orders", partitions_def=DAILY, metadata={"partition_by": "date"})
    def shaped(context: dg.AssetExecutionContext) -> pl.DataFrame:
        frame = orders_for(context.partition_key)
        columns = extra.get(context.partition_key, {})
        return frame.with_columns(
            pl.lit(None if dtype is None else "7", dtype=pl.String)
            .cast(dtype or pl.Null)
            .alias(name)
            for name, dtype in columns.items()
        )

    return shaped


def test_a_conflict_with_any_stored_partition_is_refused_before_writing(lake: Lake) -> None:
    # the first listed partition lacks `note`; the second stores it as String
    shapes: dict[str, dict[str, pl.DataType | None]] = {
        "2024-01-02": {"note": pl.String()},
        "2024-01-03": {"note": pl.Int64()},
    }
    for key in ["2024-01-01", "2024-01-02"]:
        materialize(lake, [daily(shapes)], partition_key=key)

    with pytest.raises(
        SchemaConflictError,
        match=r"column 'note' is Int64 in this output but String .*date=2024-01-02/data\.parquet",
    ):
        materialize(lake, [daily(shapes)], partition_key="2024-01-03")

    assert lake.files() == [f"orders/date=2024-01-0{day}/data.parquet" for day in (1, 2)]


def test_all_null_columns_agree_with_every_type_both_ways(lake: Lake) -> None:
    shapes: dict[str, dict[str, pl.DataType | None]] = {
        "2024-01-01": {"note": None},  # all-null first, typed later
        "2024-01-02": {"note": pl.String()},
        "2024-01-03": {"note": None},  # all-null after a typed one
    }
    for key in shapes:
        materialize(lake, [daily(shapes)], partition_key=key)

    # the Null column written after the typed one is stored with the recorded type
    assert lake.read("orders/date=2024-01-03/data.parquet").schema["note"] == pl.String
    assert lake.read("orders/date=2024-01-01/data.parquet").schema["note"] == pl.Null
    record = json.loads(_read_raw(lake, RECORD))
    assert {c["name"]: c["type"] for c in record["columns"]}["note"] == "String"
    assert {c["name"]: c["first_stored_in"] for c in record["columns"]}["note"] == (
        "date=2024-01-02/data.parquet"
    )
    loaded = _load_all(lake)
    assert loaded.schema["note"] == pl.String
    assert loaded.height == 12


def test_stored_schema_is_the_recorded_data_then_partition_columns(lake: Lake) -> None:
    dataset = _dataset(lake, "orders")
    assert dataset.stored_schema() is None

    materialize(lake, [orders], partition_key="2024-01-05")

    assert dataset.stored_schema() == pl.Schema(
        {"order_id": pl.Int64, "amount": pl.Float64, "country": pl.String, "date": pl.Date}
    )


def test_a_dataset_stored_before_records_existed_is_checked_against_every_file(
    lake: Lake,
) -> None:
    dataset = _dataset(lake, "orders")
    for day, note in [(1, None), (2, pl.String()), (3, None)]:
        frame = orders_for(f"2024-01-0{day}")
        if note is not None:
            frame = frame.with_columns(note=pl.lit("x"))
        dataset.write(_date(day), frame, "seed")  # as an earlier version wrote: no record
    assert not [path for path in lake.files(records=True) if ".pq-meta/" in path]
    shapes: dict[str, dict[str, pl.DataType | None]] = {"2024-01-04": {"note": pl.Int64()}}

    with pytest.raises(SchemaConflictError, match=r"'note' is Int64.*String.*2024-01-02"):
        materialize(lake, [daily(shapes)], partition_key="2024-01-04")

    assert RECORD not in lake.files(records=True)  # a refused write changes nothing
    materialize(lake, [orders], partition_key="2024-01-04")
    assert RECORD in lake.files(records=True)


def test_concurrent_writers_end_with_the_union_of_their_columns(lake: Lake) -> None:
    writers = 12
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(index: int) -> None:
        dataset = _dataset(lake, "orders")
        frame = orders_for("2024-01-01").with_columns(pl.lit(index).alias(f"extra_{index}"))
        parts = [(_date(index + 1), frame)]
        barrier.wait()
        try:
            dataset.write_many(dataset.check_schema(parts, "test"), ["test"], True)
        except BaseException as error:
            errors.append(error)

    _run_threads(write, writers)

    assert errors == []
    schema = _dataset(lake, "orders").stored_schema()
    assert schema is not None
    assert {f"extra_{index}" for index in range(writers)} <= set(schema)
    assert len(lake.files("orders/date=")) == writers


def test_of_two_conflicting_first_writers_exactly_one_wins(lake: Lake) -> None:
    # both read "no record" before either writes: the compare-and-swap decides
    both_read = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def write(index: int) -> None:
        dataset = _dataset(lake, "orders", _pause_first_read(_store(lake), both_read))
        dtype = [pl.Int64, pl.String][index]
        frame = orders_for("2024-01-01").with_columns(pl.lit("1").cast(dtype).alias("code"))
        parts = [(_date(index + 1), frame)]
        try:
            dataset.write_many(dataset.check_schema(parts, f"writer {index}"), ["w"], True)
            outcomes[index] = "written"
        except SchemaConflictError as error:
            outcomes[index] = str(error)

    _run_threads(write, 2)

    assert sorted(outcomes.values()).count("written") == 1, outcomes
    winner = next(index for index, outcome in outcomes.items() if outcome == "written")
    loser = 1 - winner
    winner_type = ["Int64", "String"][winner]
    assert f"column 'code' is {['Int64', 'String'][loser]}" in outcomes[loser]
    assert f"but {winner_type} in the stored dataset" in outcomes[loser]
    assert lake.files("orders/date=") == [f"orders/date=2024-01-0{winner + 1}/data.parquet"]
    schema = _dataset(lake, "orders").stored_schema()
    assert schema is not None
    assert str(schema["code"]) == winner_type


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("moto", marks=pytest.mark.s3),
        pytest.param("radosgw", marks=[pytest.mark.s3, pytest.mark.radosgw]),
    ],
)
def test_requests_per_write_do_not_grow_with_the_number_of_partitions(
    request: pytest.FixtureRequest, server: str
) -> None:
    counts = {}
    with proxied_server(request, server) as (endpoint, proxy):
        for partitions in (3, 300):
            bucket = f"requests-{partitions}-{uuid.uuid4().hex[:12]}"
            endpoint.client().create_bucket(Bucket=bucket)
            lake = s3_lake(endpoint, bucket)
            lake.resource = s3_resource(endpoint, endpoint.endpoint_url)
            keys = DAILY.get_partition_keys()[:partitions]
            materialize(lake, [ranged_orders()], tags=range_tags(keys[0], keys[-1]))
            proxy.reset_counts()
            materialize(lake, [orders], partition_key=keys[1])  # a rewrite of one partition
            counts[partitions] = sorted(
                f"{record.method} {record.path.split('?')[0].rsplit('/', 1)[-1]}"
                for record in proxy.requests
                if "?list-type" in record.path
                or "data.parquet" in record.path
                or ".pq-meta" in record.path
            )
            counts[f"total {partitions}"] = len(proxy.requests)  # type: ignore[index]
    print(f"requests of one partition write on {server}: {counts}")  # for the report (-s)
    assert counts[3] == counts[300], counts
    assert counts["total 3"] == counts["total 300"], counts  # type: ignore[index]
    assert not any("list-type" in entry for entry in counts[3]), counts


def _pause_first_read(store: Store, barrier: threading.Barrier) -> Store:
    """The store, its first read of a record waiting for the other writer's first read."""
    read = store.read_versioned
    pending = [barrier]

    def paused(uri: str) -> Versioned | None:
        found = read(uri)
        if pending:
            pending.pop().wait()
        return found

    store.read_versioned = paused  # type: ignore[method-assign]
    return store


def _run_threads(target: Any, count: int) -> None:
    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _store(lake: Lake) -> Store:
    if lake.resource is None:
        return LocalStore(lake.base_path)
    from pq_io_manager.credentials import connection_from_resource

    return S3Store(connection_from_resource(lake.resource))


def _dataset(lake: Lake, asset: str, store: Any = None) -> Dataset:
    return Dataset(store or _store(lake), lake.base_path, f"{lake.base_path}/{asset}")


def _date(day: int) -> tuple[PartitionColumn, ...]:
    import datetime as dt

    return (PartitionColumn("date", pl.Date(), dt.date(2024, 1, day)),)


def _read_raw(lake: Lake, relative: str) -> bytes:
    found = _store(lake).read_versioned(lake.uri(relative))
    assert found is not None, relative
    return found.data


def _load_all(lake: Lake) -> pl.DataFrame:
    """Every stored partition of `orders`, loaded by a downstream asset as one frame."""
    loaded: dict[str, pl.DataFrame] = {}
    upstream = dg.AssetIn(
        partition_mapping=dg.AllPartitionMapping(),
        metadata={"allow_missing_partitions": True},
    )

    @dg.asset(ins={"orders": upstream})
    def everything(orders: pl.LazyFrame) -> None:
        loaded["frame"] = orders.collect()

    materialize(lake, [daily({}), everything], selection=[everything])
    return loaded["frame"]


def _write_in_a_process(where: tuple[str, Any, Any], index: int) -> str:
    """One writer process: a partition of its own with a column of its own (and `code`)."""
    from pathlib import Path

    from tests.lake import local_lake

    base_path, endpoint, bucket = where  # an S3Resource does not pickle: rebuild the lake
    lake = local_lake(Path(base_path)) if endpoint is None else s3_lake(endpoint, bucket)
    dataset = _dataset(lake, "orders")
    frame = orders_for("2024-01-01").with_columns(
        pl.lit(index).alias(f"extra_{index}"), code=pl.lit(index)
    )
    parts = [(_date(index + 1), frame)]
    dataset.write_many(dataset.check_schema(parts, f"process {index}"), ["p"], True)
    return "written"


@pytest.mark.slow
def test_writer_processes_end_with_the_union_of_their_columns(lake: Lake) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    processes = 6
    context = multiprocessing.get_context("spawn")
    where = (lake.base_path, lake.endpoint, lake.bucket)
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        outcomes = list(pool.map(_write_in_a_process, [where] * processes, range(processes)))

    assert outcomes == ["written"] * processes
    schema = _dataset(lake, "orders").stored_schema()
    assert schema is not None
    assert {f"extra_{index}" for index in range(processes)} | {"code"} <= set(schema)
    assert len(lake.files("orders/date=")) == processes
