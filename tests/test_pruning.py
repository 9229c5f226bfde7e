"""Loads at raw polars' cost: one prunable scan per input, existence proven by what was asked."""

import datetime as dt
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._core.types.dagster_type import resolve_dagster_type

from pq_io_manager import ConfigurationError
from tests.faults_support import private_proxy, proxied_lake
from tests.lake import Lake, local_lake, s3_lake
from tests.servers import S3Endpoint
from tests.test_io_manager import materialize

pytestmark = pytest.mark.every_s3_server

DAYS = dg.DailyPartitionsDefinition(start_date="2016-01-01", end_date="2026-01-01")  # 3653
FIRST_DAYS = [f"2024-01-0{day}" for day in range(1, 6)]
LAST_TWO = dg.TimeWindowPartitionMapping(start_offset=-1)


@dg.asset(partitions_def=DAYS, metadata={"partition_by": "date"})
def sales(context: dg.AssetExecutionContext) -> pl.DataFrame:
    day = int(context.partition_key[-2:])
    return pl.DataFrame({"amount": [float(day)] * 3})


def remove(lake: Lake, relative: str) -> None:
    if lake.endpoint is None:
        Path(lake.uri(relative)).unlink()
    else:
        lake.endpoint.client().delete_object(Bucket=lake.bucket, Key=f"lake/{relative}")


def test_a_filter_on_the_partition_column_never_opens_an_excluded_file(lake: Lake) -> None:
    for key in FIRST_DAYS:
        materialize(lake, [sales], partition_key=key)
    excluded = f"sales/date={FIRST_DAYS[0]}/data.parquet"

    @dg.asset(ins={"sales": dg.AssetIn(metadata={"allow_missing_partitions": True})})
    def one_day(sales: pl.LazyFrame) -> pl.DataFrame:
        remove(lake, excluded)  # after the load planned the scan: pruning must skip it
        return sales.filter(pl.col("date") == pl.date(2024, 1, 3)).collect()

    loaded = materialize(lake, [sales, one_day], selection=[one_day]).output_for_node("one_day")

    assert loaded["amount"].to_list() == [3.0] * 3
    assert loaded.schema["date"] == pl.Date


def test_partitions_written_before_a_column_was_added_read_it_as_null(lake: Lake) -> None:
    @dg.asset(name="sales", partitions_def=DAYS, metadata={"partition_by": "date"})
    def with_note(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"amount": [9.0], "note": ["new"]})

    materialize(lake, [sales], partition_key=FIRST_DAYS[0])
    materialize(lake, [with_note], partition_key=FIRST_DAYS[1])

    seen: list[pl.DataFrame] = []
    each: list[dict[str, pl.DataFrame]] = []
    upstream = {"sales": dg.AssetIn(partition_mapping=LAST_TWO)}

    @dg.asset(partitions_def=DAYS, ins=upstream)
    def both(sales: pl.DataFrame) -> None:
        seen.append(sales.sort("date"))

    @dg.asset(partitions_def=DAYS, ins=upstream)
    def each_day(sales: dict[str, pl.DataFrame]) -> None:
        each.append(sales)

    materialize(
        lake, [sales, both, each_day], selection=[both, each_day], partition_key=FIRST_DAYS[1]
    )
    (loaded,) = seen
    assert loaded.columns == ["amount", "note", "date"]
    assert loaded["note"].to_list() == [None, None, None, "new"]
    (frames,) = each  # one schema for every partition of a dict input too
    assert [frame.columns for frame in frames.values()] == [["amount", "note", "date"]] * 2
    assert frames[FIRST_DAYS[0]]["note"].to_list() == [None] * 3


def test_the_columns_metadata_loads_only_those_columns(lake: Lake) -> None:
    materialize(lake, [sales], partition_key=FIRST_DAYS[0])

    seen: list[pl.DataFrame] = []

    def reader(columns: object) -> dg.AssetsDefinition:
        @dg.asset(partitions_def=DAYS, ins={"sales": dg.AssetIn(metadata={"columns": columns})})
        def amounts(sales: pl.DataFrame) -> None:
            seen.append(sales)

        return amounts

    materialize(lake, [sales, reader(["date"])], selection=["amounts"], partition_key=FIRST_DAYS[0])
    assert seen[0].columns == ["date"]
    assert seen[0].height == 3
    with pytest.raises(ConfigurationError, match=r"'columns' names \['nope'\]"):
        materialize(
            lake, [sales, reader(["nope"])], selection=["amounts"], partition_key=FIRST_DAYS[0]
        )


def _parquet(amount: float) -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"amount": [amount]}).write_parquet(buffer)
    return buffer.getvalue()


def _requests_since(endpoint: S3Endpoint, start: int) -> list[dict[str, object]]:
    lines = Path(str(endpoint.request_log)).read_text().splitlines()
    return [json.loads(line) for line in lines[start:]]


@pytest.mark.s3
@pytest.mark.slow
def test_a_month_of_a_ten_year_asset_costs_a_month_on_s3(moto_endpoint: S3Endpoint) -> None:
    bucket = "pruning-ten-years"
    client = moto_endpoint.client()
    client.create_bucket(Bucket=bucket)
    lake = s3_lake(moto_endpoint, bucket)
    materialize(lake, [sales], partition_key="2016-01-01")  # creates the schema record
    body = _parquet(1.0)
    keys = DAYS.get_partition_keys()[1:]
    with ThreadPoolExecutor(16) as pool:  # the other 3652 days, as stored files
        list(
            pool.map(
                lambda key: client.put_object(
                    Bucket=bucket, Key=f"lake/sales/date={key}/data.parquet", Body=body
                ),
                keys,
            )
        )
    monthly = dg.MonthlyPartitionsDefinition(start_date="2016-01-01", end_date="2026-01-01")

    seen: list[pl.DataFrame] = []

    @dg.asset(partitions_def=monthly)
    def month(sales: pl.LazyFrame) -> None:
        seen.append(sales.select(pl.len(), pl.col("date").min()).collect())

    start = len(Path(str(moto_endpoint.request_log)).read_text().splitlines())
    materialize(lake, [sales, month], selection=[month], partition_key="2024-03-01")

    assert seen[0].rows() == [(31, dt.date(2024, 3, 1))]
    requests = _requests_since(moto_endpoint, start)
    listings = [str(r["path"]) for r in requests if "list-type=2" in str(r["path"])]
    assert len(listings) == 1
    assert "prefix=lake%2Fsales%2Fdate%3D2024-03-" in listings[0]
    data_reads = [r for r in requests if "/sales/date" in str(r["path"]) and r["method"] == "GET"]
    assert len(data_reads) <= 31 * 2  # footer and data of each day at most, never another day
    assert all("date%3D2024-03-" in str(r["path"]) for r in data_reads)


def _range_context(annotation: object, columns: list[str] | None) -> dg.InputContext:
    """The context of an input of `sales` asking for the five FIRST_DAYS as one range."""
    return dg.build_input_context(
        asset_key=dg.AssetKey("sales"),
        asset_partition_key_range=dg.PartitionKeyRange(FIRST_DAYS[0], FIRST_DAYS[-1]),
        asset_partitions_def=DAYS,
        definition_metadata=None if columns is None else {"columns": columns},
        dagster_type=resolve_dagster_type(annotation),
        upstream_output=dg.build_output_context(
            asset_key=dg.AssetKey("sales"), definition_metadata={"partition_by": "date"}
        ),
    )


@pytest.mark.s3
@pytest.mark.parametrize(
    ("annotation", "columns"),
    [(pl.LazyFrame, None), (dict[str, pl.LazyFrame], ["amount"])],
    ids=["lazy", "dict-columns"],
)
def test_a_range_load_reads_no_footer_until_it_is_collected(
    s3_endpoint: S3Endpoint, bucket: str, annotation: object, columns: list[str] | None
) -> None:
    lake = s3_lake(s3_endpoint, bucket)
    materialize(lake, [sales], partition_key=FIRST_DAYS[0])  # and the schema record
    for key in FIRST_DAYS[1:]:
        lake.put(f"sales/date={key}/data.parquet", _parquet(float(key[-1])))
    with private_proxy(s3_endpoint.endpoint_url) as proxy:
        manager = proxied_lake(lake, proxy.url).io_manager()
        loaded = manager.load_input(_range_context(annotation, columns))
        during = [(record.method, record.path) for record in proxy.requests]
        proxy.reset_counts()
        frames = list(loaded.values()) if isinstance(loaded, dict) else [loaded]
        collected = pl.concat([frame.collect() for frame in frames])
        after = {record.path for record in proxy.requests if record.method == "GET"}

    listings = [path for _, path in during if "list-type=2" in path]
    assert len(listings) == 1
    assert "prefix=lake%2Fsales%2Fdate%3D2024-01-0" in listings[0]
    record = f"/{bucket}/lake/.pq-meta/sales/_schema.json"
    assert [request for request in during if "list-type=2" not in request[1]] == [("GET", record)]
    files = {f"/{bucket}/lake/sales/date%3D{key}/data.parquet" for key in FIRST_DAYS}
    assert files <= after  # read when collected, not before
    assert sorted(collected["amount"]) == [1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert collected.columns == (columns or ["amount", "date"])


def test_an_input_skipping_missing_partitions_warns_once(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    for key in FIRST_DAYS[:2]:
        materialize(lake, [sales], partition_key=key)

    heights: list[int] = []

    @dg.asset(ins={"sales": dg.AssetIn(metadata={"allow_missing_partitions": True})})
    def every_day(sales: pl.LazyFrame) -> None:
        heights.append(sales.collect().height)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [sales, every_day],
        selection=[every_day],
        resources={"io_manager": lake.io_manager()},
        instance=instance,
    )

    assert heights == [6]
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and "skipping" in entry.user_message
    ]
    assert len(warnings) == 1  # not one per missing partition (3651 here)
    (warning,) = warnings
    missing = len(DAYS.get_partition_keys()) - 2
    assert f"asset 'sales' {len(DAYS.get_partition_keys())} partitions" in warning
    assert f"skipping {missing} of {missing + 2} requested partition(s)" in warning
    assert f"{lake.base_path}/sales/date=<date>/data.parquet" in warning
    assert "'2016-01-01', '2016-01-02', '2016-01-03', '2016-01-04', '2016-01-05' and " in warning
    assert f"and {missing - 5} more" in warning
