"""S3 timestamps are parsed without dateutil, to the same instants botocore's parser gives."""

import datetime as dt
from typing import Any

import botocore.parsers
import pytest
from botocore.utils import parse_timestamp
from dagster_aws.s3 import S3Resource
from hypothesis import given
from hypothesis import strategies as st

from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.s3_store import S3Store
from pq_io_manager.s3_timestamps import parse_s3_timestamp
from tests.servers import S3Endpoint

INSTANTS = st.datetimes(
    min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)


@given(INSTANTS, st.sampled_from(["Z", "+00:00"]), st.booleans())
def test_iso_instants_parse_as_botocore_parses_them(
    instant: dt.datetime, suffix: str, milliseconds: bool
) -> None:
    text = instant.strftime("%Y-%m-%dT%H:%M:%S")
    text += f".{instant.microsecond // 1000:03d}" if milliseconds else ""
    text += suffix

    parsed = parse_s3_timestamp(text)

    assert parsed == parse_timestamp(text)
    assert parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "value",
    ["Tue, 01 Dec 2026 06:15:05 GMT", 1700000000, "1700000000", "2024-01-01T00:00:00"],
)
def test_other_timestamps_go_to_botocores_parser(value: Any) -> None:
    assert parse_s3_timestamp(value) == parse_timestamp(value)


def test_a_listing_parses_no_timestamp_with_dateutil(
    s3_endpoint: S3Endpoint, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = s3_endpoint.client()
    keys = [f"asset/date=2024-01-{day:02d}/data.parquet" for day in range(1, 5)]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    store = S3Store(connection_from_resource(_resource(s3_endpoint)))
    slow: list[object] = []
    monkeypatch.setattr(botocore.parsers, "DEFAULT_TIMESTAMP_PARSER", slow.append)

    found = store.existing([f"s3://{bucket}/{key}" for key in keys])
    modified = store.client.head_object(Bucket=bucket, Key=keys[0])["LastModified"]

    assert found == {f"s3://{bucket}/{key}": 1 for key in keys}
    assert slow == []  # the HEAD's RFC 822 header went to botocore's own parser instead
    assert abs(dt.datetime.now(dt.UTC) - modified) < dt.timedelta(minutes=10)


def _resource(endpoint: S3Endpoint) -> S3Resource:
    return S3Resource(
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        endpoint_url=endpoint.endpoint_url,
        region_name=endpoint.region,
    )
