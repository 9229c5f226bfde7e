"""Unit tests of paths, hive encoding and value typing (no I/O)."""

import datetime as dt
import posixpath
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from pq_io_manager import ConfigurationError, PartitionValueError
from pq_io_manager.layout import (
    HIVE_NULL,
    PartitionColumn,
    asset_root,
    check_column_name,
    decode_hive_value,
    encode_hive_value,
    normalize_base_path,
    parse_partition_path,
    partition_file,
    staging_uri,
)

TRICKY = [
    "a/b",
    "k=v",
    "two words",
    "100%",
    "café ☕",
    "..",
    "../../etc",
    ".",
    "a\\b",
    "%2F",
    "007",
]


@pytest.mark.parametrize("value", TRICKY)
def test_string_values_round_trip_and_stay_one_path_level(value: str) -> None:
    encoded = encode_hive_value(value)

    assert "/" not in encoded
    assert decode_hive_value(encoded, pl.String()) == value


@pytest.mark.parametrize("value", TRICKY)
def test_partition_file_never_leaves_the_asset_root(value: str) -> None:
    root = "/lake/orders"
    path = partition_file(root, [PartitionColumn("key", pl.String(), value)])

    assert posixpath.normpath(path).startswith(root + "/key=")
    assert posixpath.normpath(path) == path
    assert path.count("/") == root.count("/") + 2


def test_encoding_matches_what_polars_and_hive_readers_decode() -> None:
    assert encode_hive_value("two words") == "two%20words"
    assert encode_hive_value("a/b") == "a%2Fb"
    assert encode_hive_value("k=v") == "k%3Dv"
    assert encode_hive_value(None) == HIVE_NULL


@pytest.mark.parametrize(
    ("value", "dtype", "text"),
    [
        (dt.date(2024, 1, 5), pl.Date(), "2024-01-05"),
        (
            dt.datetime(2024, 1, 5, 7, 30, tzinfo=ZoneInfo("UTC")),
            pl.Datetime("us", "UTC"),
            "2024-01-05T07%3A30%3A00Z",
        ),
        (12, pl.Int64(), "12"),
        (True, pl.Boolean(), "true"),
    ],
)
def test_typed_values_round_trip(value: object, dtype: pl.DataType, text: str) -> None:
    assert encode_hive_value(value) == text  # type: ignore[arg-type]
    assert decode_hive_value(text, dtype) == value


def test_reserved_and_empty_values_are_refused() -> None:
    with pytest.raises(PartitionValueError, match="reserved for nulls or empty"):
        encode_hive_value(HIVE_NULL)
    with pytest.raises(PartitionValueError, match="reserved for nulls or empty"):
        encode_hive_value("")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3://my-bucket/lake/", "s3://my-bucket/lake"),
        ("s3://my-bucket", "s3://my-bucket"),
        ("s3://my-bucket//a//b", "s3://my-bucket/a/b"),
        ("/data/lake/", "/data/lake"),
    ],
)
def test_base_paths_are_normalized(given: str, expected: str) -> None:
    assert normalize_base_path(given) == expected


def test_relative_local_base_path_becomes_absolute(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(str(tmp_path))
    assert normalize_base_path("data/lake") == posixpath.join(str(tmp_path), "data/lake")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("s3://Bad_Bucket/x", "does not name a valid S3 bucket"),
        ("s3://bucket/../x", "could address another directory"),
        ("gs://bucket/x", "unsupported scheme"),
        ("  ", "base_path is empty"),
    ],
)
def test_invalid_base_paths_are_refused(given: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        normalize_base_path(given)


def test_asset_roots_and_staging_never_overlap() -> None:
    assert asset_root("s3://b/lake", ["raw", "orders"]) == "s3://b/lake/raw/orders"
    assert staging_uri("s3://b/lake", "abc") == "s3://b/lake/.pq-staging/abc.parquet"
    with pytest.raises(
        ConfigurationError, match=r"segment .\.pq-staging., which could be taken for"
    ):
        asset_root("s3://b/lake", [".pq-staging"])
    with pytest.raises(ConfigurationError, match="could address another directory"):
        asset_root("s3://b/lake", ["..", "x"])


@pytest.mark.parametrize("name", ["", "a/b", "a=b", "..", "tab\there"])
def test_unusable_column_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="not a usable partition column name"):
        check_column_name(name, "asset 'x'")


def test_parse_partition_path_types_values_and_ignores_foreign_files() -> None:
    dtypes = {"date": pl.Date(), "region": pl.String()}

    columns = parse_partition_path("date=2024-01-02/region=eu%2Fwest/data.parquet", dtypes)

    assert columns == (
        PartitionColumn("date", pl.Date(), dt.date(2024, 1, 2)),
        PartitionColumn("region", pl.String(), "eu/west"),
    )
    assert parse_partition_path("date=2024-01-02/data.parquet", dtypes) is None
    assert parse_partition_path("date=2024-01-02/region=eu/_SUCCESS", dtypes) is None
    assert parse_partition_path("day=2024-01-02/region=eu/data.parquet", dtypes) is None
    assert parse_partition_path(f"date={HIVE_NULL}/region=eu/data.parquet", dtypes) == (
        PartitionColumn("date", pl.Date(), None),  # type: ignore[arg-type]
        PartitionColumn("region", pl.String(), "eu"),
    )
