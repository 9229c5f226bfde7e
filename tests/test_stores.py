"""Object operations of the stores, against local disk and the real S3 servers."""

from pathlib import Path
from typing import Any

import pytest
from dagster_aws.s3 import S3Resource

import pq_io_manager.s3_store
from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.s3_store import S3Store
from pq_io_manager.stores import LocalStore
from tests.servers import S3Endpoint

# Twelve daily partitions, each with our file and one another tool left.
KEYS = [
    f"asset/date=2024-01-{day:02d}/{name}"
    for day in range(1, 13)
    for name in ("data.parquet", "part-0.parquet")
]
# Their common prefix "asset/date=2024-01-1" also holds 2024-01-12, which was not asked for.
WANTED = ["asset/date=2024-01-10", "asset/date=2024-01-11"]


def expected(base: str) -> set[str]:
    return {f"{base}/{key}" for key in KEYS if key.rpartition("/")[0] in WANTED}


def s3_store(endpoint: S3Endpoint, bucket: str) -> tuple[S3Store, list[str]]:
    """A store on `bucket` with every key of KEYS, and the list its listing requests go to."""
    client = endpoint.client()
    for key in KEYS:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    resource = S3Resource(
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        endpoint_url=endpoint.endpoint_url,
        region_name=endpoint.region,
    )
    store = S3Store(connection_from_resource(resource))
    listings: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        listings.append(params.get("Prefix", ""))

    store.client.meta.events.register("before-parameter-build.s3.ListObjectsV2", count)
    return store, listings


def test_directories_of_a_range_are_listed_in_one_request(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    store, listings = s3_store(s3_endpoint, bucket)

    found = store.list_directories([f"s3://{bucket}/{directory}" for directory in WANTED])

    assert set(found) == expected(f"s3://{bucket}")
    assert all(size == len(uri.split("/", 3)[3]) for uri, size in found.items())
    assert listings == ["asset/date=2024-01-1"]


def test_a_crowded_common_prefix_falls_back_to_one_listing_per_directory(
    s3_endpoint: S3Endpoint, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, listings = s3_store(s3_endpoint, bucket)
    # the prefix holds 6 keys; allow 2 (one per wanted directory) before giving up on it
    monkeypatch.setattr(pq_io_manager.s3_store, "_LISTING_PAGE", 2)
    monkeypatch.setattr(pq_io_manager.s3_store, "_PREFIX_LISTING_FACTOR", 1)

    found = store.list_directories([f"s3://{bucket}/{directory}" for directory in WANTED])

    assert set(found) == expected(f"s3://{bucket}")
    assert listings == ["asset/date=2024-01-1", *(f"{directory}/" for directory in WANTED)]


def test_one_directory_is_listed_by_itself(s3_endpoint: S3Endpoint, bucket: str) -> None:
    store, listings = s3_store(s3_endpoint, bucket)

    found = store.list_directories([f"s3://{bucket}/{WANTED[0]}"])

    assert set(found) == {
        f"s3://{bucket}/{WANTED[0]}/{name}" for name in ("data.parquet", "part-0.parquet")
    }
    assert listings == [f"{WANTED[0]}/"]


def test_local_directories_are_listed_with_the_same_meaning(tmp_path: Path) -> None:
    for key in KEYS:
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())
    base = tmp_path.as_posix()

    found = LocalStore(base).list_directories([f"{base}/{directory}" for directory in WANTED])

    assert set(found) == expected(base)
    assert all(size == len(uri[len(base) + 1 :]) for uri, size in found.items())


def test_local_existence_is_asked_of_each_file_only(tmp_path: Path) -> None:
    base = tmp_path.as_posix()
    for key in KEYS[:2]:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(b"x")
    (tmp_path / "asset/date=2024-01-02/data.parquet").mkdir(parents=True)  # not a file
    asked = [f"{base}/{key}" for key in KEYS[:1]] + [
        f"{base}/asset/date=2024-01-02/data.parquet",
        f"{base}/asset/date=2024-01-03/data.parquet",
    ]

    assert LocalStore(base).existing(asked) == {f"{base}/{KEYS[0]}": 1}


def test_s3_existence_is_one_listing_of_the_files_directories(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    store, listings = s3_store(s3_endpoint, bucket)
    asked = [f"s3://{bucket}/{directory}/data.parquet" for directory in WANTED] + [
        f"s3://{bucket}/asset/date=2024-01-13/data.parquet"
    ]

    found = store.existing(asked)

    assert set(found) == set(asked[:2])
    assert listings == ["asset/date=2024-01-1"]
