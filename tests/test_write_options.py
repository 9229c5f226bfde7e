"""Parquet write options: IO manager fields and per-asset `parquet_write_options` metadata
reach every written file's footer, and bad options are refused before anything is written."""

import io
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pq_io_manager import ConfigurationError, PartitionedParquetIOManager
from pq_io_manager.write_options import (
    COMPRESSIONS,
    LEVEL_RANGES,
    ParquetWriteOptions,
    resolve,
)
from tests.lake import Lake, local_lake

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01")
ROWS = 250
LOCAL_AND_MOTO = pytest.mark.parametrize(
    "lake", ["local", pytest.param("moto", marks=pytest.mark.s3)], indirect=True
)


def frame(rows: int = ROWS) -> pl.DataFrame:
    return pl.DataFrame({"order_id": range(rows), "amount": [index * 0.5 for index in range(rows)]})


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def eager_orders() -> pl.DataFrame:
    return frame()


@dg.asset
def lazy_orders() -> pl.LazyFrame:
    return frame().lazy()


def footer(lake: Lake, relative: str) -> Any:
    """The Parquet footer of a stored file, read with pyarrow from the bytes as stored."""
    if lake.endpoint is None:
        data = Path(lake.uri(relative)).read_bytes()
    else:
        stored = lake.endpoint.client().get_object(Bucket=lake.bucket, Key=f"lake/{relative}")
        data = stored["Body"].read()
    return pq.ParquetFile(io.BytesIO(data)).metadata


def codecs(metadata: Any) -> set[str]:
    return {
        metadata.row_group(group).column(column).compression
        for group in range(metadata.num_row_groups)
        for column in range(metadata.num_columns)
    }


def row_group_sizes(metadata: Any) -> list[int]:
    return [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]


def has_statistics(metadata: Any) -> bool:
    return any(
        metadata.row_group(group).column(column).is_stats_set
        for group in range(metadata.num_row_groups)
        for column in range(metadata.num_columns)
    )


def io_manager(lake: Lake, **options: Any) -> PartitionedParquetIOManager:
    return PartitionedParquetIOManager(base_path=lake.base_path, s3=lake.resource, **options)


@LOCAL_AND_MOTO
def test_io_manager_options_reach_every_file(lake: Lake) -> None:
    manager = io_manager(
        lake, compression="gzip", compression_level=9, row_group_size=100, statistics=False
    )
    # a DataFrame (uploaded from memory on S3) and a LazyFrame (sunk through staging)
    result = dg.materialize(
        [eager_orders], resources={"io_manager": manager}, partition_key="2024-01-05"
    )
    dg.materialize([lazy_orders], resources={"io_manager": manager})

    for relative in ["eager_orders/date=2024-01-05/data.parquet", "lazy_orders/data.parquet"]:
        metadata = footer(lake, relative)
        assert codecs(metadata) == {"GZIP"}
        assert row_group_sizes(metadata) == [100, 100, 50]
        assert not has_statistics(metadata)
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["parquet_write_options"].value == {
        "compression": "gzip",
        "compression_level": 9,
        "statistics": False,
        "row_group_size": 100,
        "data_page_size": None,
    }


@LOCAL_AND_MOTO
def test_options_reach_files_of_streamed_multi_partition_writes(lake: Lake) -> None:
    @dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
    def ranged(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        days = context.partition_keys
        return pl.concat([frame().with_columns(pl.lit(day).alias("date")) for day in days]).lazy()

    @dg.asset(metadata={"partition_by": ["country"]})
    def split() -> pl.DataFrame:
        return frame().with_columns(country=pl.Series(["fr", "de"] * (ROWS // 2)))

    manager = io_manager(lake, compression="gzip", row_group_size=60, statistics=False)
    dg.materialize(
        [ranged],
        resources={"io_manager": manager},
        tags={
            "dagster/asset_partition_range_start": "2024-01-02",
            "dagster/asset_partition_range_end": "2024-01-03",
        },
    )
    dg.materialize([split], resources={"io_manager": manager})

    for relative in [
        "ranged/date=2024-01-02/data.parquet",
        "ranged/date=2024-01-03/data.parquet",
        "split/country=fr/data.parquet",
    ]:
        metadata = footer(lake, relative)
        assert codecs(metadata) == {"GZIP"}
        assert max(row_group_sizes(metadata)) <= 60
        assert not has_statistics(metadata)


@LOCAL_AND_MOTO
def test_per_asset_options_win_over_the_io_manager(lake: Lake) -> None:
    @dg.asset(metadata={"parquet_write_options": {"compression": "lz4", "statistics": True}})
    def tuned() -> pl.DataFrame:
        return frame()

    manager = io_manager(lake, compression="brotli", compression_level=5, statistics=False)
    result = dg.materialize(
        [tuned, lazy_orders], resources={"io_manager": io_manager(lake, row_group_size=80)}
    )
    dg.materialize([tuned, lazy_orders], resources={"io_manager": manager})

    tuned_footer = footer(lake, "tuned/data.parquet")
    assert codecs(tuned_footer) == {"LZ4"}  # brotli's level is not carried over to lz4
    assert has_statistics(tuned_footer)
    plain_footer = footer(lake, "lazy_orders/data.parquet")
    assert codecs(plain_footer) == {"BROTLI"}
    assert not has_statistics(plain_footer)
    # an override of some options keeps the IO manager's others (the first run's row groups)
    first = {
        event.asset_key.path[-1]: event.materialization.metadata["parquet_write_options"].value
        for event in result.get_asset_materialization_events()
    }
    assert first["tuned"]["row_group_size"] == 80
    assert first["tuned"]["compression"] == "lz4"


def test_data_page_size_reaches_the_file(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    sizes = []
    for page_size in [None, 1024]:
        manager = io_manager(lake, compression="uncompressed", data_page_size=page_size)
        dg.materialize([lazy_orders], resources={"io_manager": manager})
        metadata = footer(lake, "lazy_orders/data.parquet")
        sizes.append(metadata.row_group(0).column(0).total_uncompressed_size)
    # 250 ints (2 kB) are one page by default, three of 1 kB: two more page headers
    assert sizes[1] > sizes[0]


def test_default_options_are_polars_own(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    result = dg.materialize([lazy_orders], resources={"io_manager": io_manager(lake)})

    metadata = footer(lake, "lazy_orders/data.parquet")
    assert codecs(metadata) == {"ZSTD"}
    assert has_statistics(metadata)
    [event] = result.get_asset_materialization_events()
    stored = event.materialization.metadata["parquet_write_options"].value
    assert stored == ParquetWriteOptions().describe()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"compresion": "zstd"}, r"unknown option 'compresion'.*Did you mean 'compression'"),
        ({"compression": "zip"}, r"compression 'zip' is not one polars writes"),
        ({"compression": "snappy", "compression_level": 3}, r"'snappy' takes no compression_"),
        ({"compression_level": 23}, r"outside zstd's range 1\.\.22"),
        ({"row_group_size": 0}, r"row_group_size must be a positive integer"),
        ({"data_page_size": "1MB"}, r"data_page_size must be a positive integer"),
        ({"statistics": {"minimum": True}}, r"statistics must be True, False, 'full'"),
        ("zstd", r"must be a dict of polars' write_parquet option names"),
    ],
)
def test_bad_asset_options_are_refused(override: object, message: str) -> None:
    metadata = {"parquet_write_options": override}
    with pytest.raises(ConfigurationError, match=rf"asset 'x': metadata .*{message}"):
        resolve(PartitionedParquetIOManager(), metadata, "asset 'x'")


@pytest.mark.parametrize(
    "override", [{"compresion": "zstd"}, {"compression": "zstd", "compression_level": 0}]
)
def test_bad_asset_options_fail_the_run_before_anything_is_written(
    tmp_path: Path, override: dict[str, Any]
) -> None:
    metadata = {"partition_by": "date", "parquet_write_options": override}

    @dg.asset(partitions_def=DAILY, metadata=metadata)
    def badly_tuned() -> pl.DataFrame:
        return frame()

    lake = local_lake(tmp_path / "lake")
    where = r"asset 'badly_tuned' partition '2024-01-05': metadata 'parquet_write_options'"
    with pytest.raises(ConfigurationError, match=where):
        dg.materialize(
            [badly_tuned], resources={"io_manager": io_manager(lake)}, partition_key="2024-01-05"
        )
    assert lake.files(records=True) == []  # not even the schema record


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"compresion": "snappy"}, r"unknown field 'compresion'.*Did you mean 'compression'"),
        ({"row_group_sise": 10}, r"unknown field 'row_group_sise'.*'row_group_size'"),
        ({"compression": "lzo"}, r"compression 'lzo' is not one polars writes"),
        ({"compression": "gzip", "compression_level": 10}, r"outside gzip's range 0\.\.9"),
    ],
)
def test_bad_fields_are_refused_when_the_io_manager_is_built(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"PartitionedParquetIOManager: .*{message}"):
        PartitionedParquetIOManager(base_path="unused", **fields)


def test_options_from_the_environment_are_checked_when_a_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = local_lake(tmp_path / "lake")
    manager = io_manager(lake, compression=dg.EnvVar("PQ_TEST_CODEC"))  # unresolved: builds
    monkeypatch.setenv("PQ_TEST_CODEC", "snappy")
    dg.materialize([lazy_orders], resources={"io_manager": manager})
    assert codecs(footer(lake, "lazy_orders/data.parquet")) == {"SNAPPY"}

    monkeypatch.setenv("PQ_TEST_CODEC", "snapy")
    # refused when Dagster initialises the resource for the run, before any step writes
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        dg.materialize(
            [eager_orders], resources={"io_manager": manager}, partition_key="2024-01-05"
        )
    assert isinstance(raised.value.__cause__, ConfigurationError)
    assert "compression 'snapy' is not one polars writes" in str(raised.value.__cause__)
    assert lake.files() == ["lazy_orders/data.parquet"]


def test_a_level_is_kept_when_the_override_keeps_the_codec() -> None:
    manager = PartitionedParquetIOManager(compression="zstd", compression_level=19)
    metadata = {"parquet_write_options": {"row_group_size": 1000}}
    assert resolve(manager, metadata, "asset 'x'") == ParquetWriteOptions(
        compression="zstd", compression_level=19, row_group_size=1000
    )
    switched = {"parquet_write_options": {"compression": "gzip"}}
    assert resolve(manager, switched, "asset 'x'").compression_level is None


@settings(max_examples=60, deadline=None)
@given(
    compression=st.sampled_from(COMPRESSIONS),
    level=st.none() | st.integers(min_value=-2, max_value=24),
)
def test_accepted_levels_are_exactly_those_polars_writes(
    compression: str, level: int | None
) -> None:
    options = {"compression": compression, "compression_level": level}
    try:
        resolve(PartitionedParquetIOManager(), {"parquet_write_options": options}, "asset 'x'")
        accepted = True
    except ConfigurationError:
        accepted = False
    buffer = io.BytesIO()
    try:
        frame(10).write_parquet(buffer, compression=compression, compression_level=level)
        polars_writes = True
    except ValueError:
        polars_writes = False
    # polars also "writes" a level for snappy/lz4/uncompressed by ignoring it: refused here
    ignored_by_polars = level is not None and compression not in LEVEL_RANGES
    assert accepted == (polars_writes and not ignored_by_polars)


def test_op_outputs_get_the_options_and_their_out_metadata_overrides(tmp_path: Path) -> None:
    @dg.op(out=dg.Out(metadata={"parquet_write_options": {"compression": "lz4"}}))
    def tuned_numbers() -> pl.DataFrame:
        return frame()

    @dg.op
    def plain_numbers() -> pl.LazyFrame:
        return frame().lazy()

    @dg.job(resource_defs={"io_manager": io_manager(local_lake(tmp_path), compression="gzip")})
    def numbers() -> None:
        tuned_numbers()
        plain_numbers()

    result = numbers.execute_in_process()
    lake = local_lake(tmp_path)
    prefix = f".pq-runs/{result.run_id}"
    assert codecs(footer(lake, f"{prefix}/tuned_numbers/result/data.parquet")) == {"LZ4"}
    assert codecs(footer(lake, f"{prefix}/plain_numbers/result/data.parquet")) == {"GZIP"}
