"""Property-based tests of the layout: values, time windows and asset keys map one-to-one to
paths, never collide and never escape (no I/O)."""

import datetime as dt
import posixpath
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pq_io_manager import ConfigurationError, PartitionValueError
from pq_io_manager.hive_values import (
    datetime_text,
    datetime_text_expression,
    decode_hive_value,
    encode_hive_value,
)
from pq_io_manager.layout import (
    PartitionColumn,
    asset_root,
    check_storable,
    parse_partition_path,
    partition_file,
)
from pq_io_manager.partitions import partition_scheme

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"]
# Python datetimes polars can hold as microseconds (year 1 .. 9999), any wall time
datetimes = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30))
# chrono-tz (polars) and zoneinfo agree on offsets from 1901 to 2037; beyond, chrono-tz stops
# applying DST rules: the instants still agree (text is UTC), only local renderings differ.
aware_datetimes = st.builds(
    lambda naive, zone, fold: naive.replace(tzinfo=ZoneInfo(zone), fold=fold),
    st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2037, 12, 31)),
    st.sampled_from(ZONES),
    st.integers(0, 1),
)
keys = st.text(min_size=1, max_size=40).filter(lambda key: key != "__HIVE_DEFAULT_PARTITION__")
segments = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,12}", fullmatch=True)


@given(st.one_of(datetimes, aware_datetimes))
def test_python_and_polars_write_the_same_datetime_text(value: dt.datetime) -> None:
    dtype = pl.Datetime("us", None if value.tzinfo is None else value.tzinfo.key)  # type: ignore[union-attr]
    text = pl.select(datetime_text_expression(pl.lit(value, dtype=dtype), dtype)).item()

    assert text == datetime_text(value)


@given(aware_datetimes, aware_datetimes)
def test_aware_datetimes_share_a_directory_only_when_they_are_the_same_instant(
    first: dt.datetime, second: dt.datetime
) -> None:
    same_text = encode_hive_value(first) == encode_hive_value(second)

    assert same_text == (first == second or first.astimezone(dt.UTC) == second.astimezone(dt.UTC))


@given(aware_datetimes)
def test_aware_datetimes_round_trip_as_instants_in_the_column_zone(value: dt.datetime) -> None:
    zone = value.tzinfo.key  # type: ignore[union-attr]
    dtype = pl.Datetime("us", zone)
    decoded = decode_hive_value(encode_hive_value(value), dtype)
    column = PartitionColumn("t", dtype, value)

    assert decoded == value
    assert decoded.utcoffset() == value.utcoffset()  # type: ignore[union-attr]
    assert pl.select(column.literal()).item() == value


@given(datetimes)
def test_naive_datetimes_round_trip_including_years_before_1000(value: dt.datetime) -> None:
    text = encode_hive_value(value)

    assert decode_hive_value(text, pl.Datetime("us")) == value
    assert text[:4] == f"{value.year:04d}"


@given(st.integers(0, 999_999_999), st.integers(0, 999_999_999))
def test_nanosecond_values_keep_full_precision(first: int, second: int) -> None:
    base = pl.datetime(2025, 1, 1, time_unit="ns")
    dtype = pl.Datetime("ns", "UTC")
    values = [
        (base + pl.duration(nanoseconds=n)).dt.replace_time_zone("UTC") for n in (first, second)
    ]
    texts = pl.select(
        [datetime_text_expression(v, dtype).alias(str(i)) for i, v in enumerate(values)]
    ).row(0)

    assert (texts[0] == texts[1]) == (first == second)
    for value, text in zip(values, texts, strict=True):
        literal = PartitionColumn("t", dtype, None, text=text).literal()
        assert pl.select(value == literal).item()


@given(keys, keys)
def test_static_keys_stay_one_level_inside_the_asset_and_never_collide(
    first: str, second: str
) -> None:
    root = "/lake/events"
    paths = [
        partition_file(root, [PartitionColumn("key", pl.String(), key)]) for key in (first, second)
    ]

    for path in paths:
        assert posixpath.normpath(path) == path
        assert path.startswith(root + "/key=")
        assert path.count("/") == root.count("/") + 2
    assert (paths[0] == paths[1]) == (first == second)
    parsed = parse_partition_path(paths[0][len(root) + 1 :], {"key": pl.String()})
    assert parsed is not None
    assert parsed[0].value == first


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(ZONES),
    st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 1, 1)),
    st.sampled_from(["%Y-%m-%d-%H:%M", "%Y%m%d%H%M", "%Y-%m-%dT%H"]),
)
def test_hourly_windows_map_one_to_one_to_directories_in_every_zone(
    zone: str, day: dt.date, fmt: str
) -> None:
    definition = dg.HourlyPartitionsDefinition(
        start_date=day.strftime(fmt.replace("%H", "00").replace("%M", "00")),
        end_date=(day + dt.timedelta(days=3)).strftime(fmt.replace("%H", "00").replace("%M", "00")),
        timezone=zone,
        fmt=fmt,
    )
    scheme = partition_scheme(definition, {"partition_by": "hour"}, "asset 'x'")
    keys_ = definition.get_partition_keys()
    directories = [scheme.columns(key)[0].directory for key in keys_]

    assert len(set(directories)) == len(keys_)
    for key in keys_:
        (column,) = scheme.columns(key)
        start = definition.time_window_for_partition_key(key).start
        assert pl.select(column.literal()).item() == start


@settings(max_examples=60)
@given(st.lists(segments, min_size=1, max_size=3), st.lists(segments, min_size=1, max_size=3))
def test_no_asset_can_take_another_assets_files_for_its_own(
    first: list[str], second: list[str]
) -> None:
    base = "s3://bucket/lake"
    columns = [PartitionColumn("country", pl.String(), "fr")]
    files = [
        partition_file(asset_root(base, first), columns),
        partition_file(asset_root(base, first), []),
    ]
    other_root = asset_root(base, second)
    for file in files if first != second else []:
        if file.startswith(other_root + "/"):
            relative = file[len(other_root) + 1 :]
            for dtypes in ({}, {"country": pl.String()}):
                assert parse_partition_path(relative, dtypes) is None


@pytest.mark.parametrize("segment", ["a=b", ".hidden", "_SUCCESS", "data.parquet", "x.parquet"])
def test_asset_key_segments_that_look_like_data_are_refused(segment: str) -> None:
    with pytest.raises(ConfigurationError, match="could be taken for a hive level"):
        asset_root("/lake", ["orders", segment])


def test_names_longer_than_any_store_accepts_are_refused_before_writing() -> None:
    long_key = "é" * 65 + "/" * 50  # 130 bytes of UTF-8, and 50 escaped to 150 bytes
    path = partition_file("/lake/events", [PartitionColumn("key", pl.String(), long_key)])

    with pytest.raises(PartitionValueError, match="at most 255 bytes per level"):
        check_storable(path, "asset 'events'")
    deep = "s3://b/" + "/".join(["k=" + "v" * 200] * 6) + "/data.parquet"
    with pytest.raises(PartitionValueError, match="S3 accepts at most 1024"):
        check_storable(deep, "asset 'events'")


@pytest.mark.parametrize("base_path", ["s3://bucket/env=prod/lake", "/data/env=prod/lake"])
def test_base_paths_with_hive_levels_are_refused(base_path: str) -> None:
    from pq_io_manager.layout import normalize_base_path

    with pytest.raises(ConfigurationError, match="hive readers would take for a partition"):
        normalize_base_path(base_path)
