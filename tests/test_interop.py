"""The written dataset is a standard hive dataset: DuckDB and pyarrow read it as one table."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pyarrow.dataset
import pyarrow.fs
import pytest

from tests.lake import Lake
from tests.test_io_manager import materialize, orders
from tests.test_partition_kinds import MULTI, TRICKY_KEYS, labelled, sales

DAYS = ["2024-01-05", "2024-01-06"]


def write_dataset(lake: Lake) -> None:
    """Two daily partitions, a multi-partitioned asset and tricky static keys."""
    for day in DAYS:
        materialize(lake, [orders], partition_key=day)
    for region in ["eu", "us"]:
        materialize(
            lake, [sales], partition_key=dg.MultiPartitionKey({"date": DAYS[0], "region": region})
        )
    for key in TRICKY_KEYS:
        materialize(lake, [labelled], partition_key=key)


def test_duckdb_reads_the_hive_dataset(tmp_path: object) -> None:
    from tests.lake import local_lake

    lake = local_lake(tmp_path / "lake")  # type: ignore[operator]
    write_dataset(lake)

    connection = duckdb.connect()
    rows = connection.execute(
        "select date, count(*), sum(amount) from read_parquet(?, hive_partitioning=true) "
        "group by date order by date",
        [lake.uri("orders/**/*.parquet")],
    ).fetchall()
    assert rows == [(dt.date(2024, 1, 5), 4, 8.0), (dt.date(2024, 1, 6), 4, 8.0)]
    regions = connection.execute(
        "select day, region, units from read_parquet(?, hive_partitioning=true) order by region",
        [lake.uri("sales/**/*.parquet")],
    ).fetchall()
    assert regions == [(dt.date(2024, 1, 5), "eu", 3), (dt.date(2024, 1, 5), "us", 3)]
    labels = connection.execute(
        "select label from read_parquet(?, hive_partitioning=true, hive_types={'label': VARCHAR})",
        [lake.uri("labelled/**/*.parquet")],
    ).fetchall()
    assert sorted(label for (label,) in labels) == sorted(TRICKY_KEYS)


def test_pyarrow_dataset_reads_the_hive_dataset(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(lake)
    filesystem, root = _filesystem(lake, monkeypatch)

    table = pyarrow.dataset.dataset(
        f"{root}/orders", filesystem=filesystem, format="parquet", partitioning="hive"
    ).to_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    assert frame.height == 8
    assert sorted(set(frame["date"].cast(pl.String).to_list())) == DAYS
    labels = pyarrow.dataset.dataset(
        f"{root}/labelled",
        filesystem=filesystem,
        format="parquet",
        partitioning=pyarrow.dataset.partitioning(
            pyarrow.schema([("label", pyarrow.string())]), flavor="hive"
        ),
    ).to_table()
    assert sorted(labels.column("label").to_pylist()) == sorted(TRICKY_KEYS)
    assert MULTI.partitions_defs[1].name == "region"


def _filesystem(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> tuple[pyarrow.fs.FileSystem, str]:
    if lake.endpoint is None:
        return pyarrow.fs.LocalFileSystem(), lake.base_path
    # radosgw refuses pyarrow's default upload checksums (411); reading needs none, set anyway
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "WHEN_REQUIRED")
    filesystem = pyarrow.fs.S3FileSystem(
        access_key=lake.endpoint.access_key_id,
        secret_key=lake.endpoint.secret_access_key,
        region=lake.endpoint.region,
        endpoint_override=lake.endpoint.endpoint_url,
        scheme="http",
    )
    return filesystem, lake.base_path[len("s3://") :]


def test_duckdb_pyarrow_and_polars_read_the_repeated_dst_hour_as_two_instants(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_time_windows import AUTUMN, AUTUMN_NY, meter_assets, start_of

    meter = meter_assets(AUTUMN_NY)[0]
    for key in AUTUMN:
        materialize(lake, [meter], partition_key=key)
    instants = sorted(start_of(AUTUMN_NY, key).astimezone(dt.UTC) for key in AUTUMN)

    filesystem, root = _filesystem(lake, monkeypatch)
    arrow = pyarrow.dataset.dataset(
        f"{root}/meter", filesystem=filesystem, format="parquet", partitioning="hive"
    ).to_table()
    texts = sorted(arrow.column("hour").to_pylist())
    assert len(set(texts)) == len(AUTUMN)  # strings, one per window
    parsed = pl.Series(texts).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    assert parsed.to_list() == instants
    scanned = pl.scan_parquet(
        lake.uri("meter/"), hive_partitioning=True, **lake.storage_options()
    ).collect()
    assert sorted(scanned["hour"].to_list()) == instants  # inferred as UTC instants
    if lake.endpoint is None:  # DuckDB reads the local copy
        hours = (
            duckdb.connect()
            .execute(
                "select distinct hour from read_parquet(?, hive_partitioning=true) order by hour",
                [lake.uri("meter/**/*.parquet")],
            )
            .fetchall()
        )
        assert len(hours) == len(AUTUMN)
