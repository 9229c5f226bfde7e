"""Ceph radosgw, started by scripts/ceph_up.sh, behaves as the S3 the IO manager relies on."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.servers import S3Endpoint
from tests.servers.radosgw_server import radosgw_available, run_radosgw

pytestmark = [pytest.mark.s3, pytest.mark.radosgw]

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def radosgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """One throwaway Ceph cluster for the whole module (installs Ceph when root)."""
    if not radosgw_available() and os.geteuid() != 0:
        pytest.skip("Ceph is not installed and installing it needs root")
    with run_radosgw(tmp_path_factory.mktemp("ceph")) as endpoint:
        yield endpoint


@pytest.fixture
def s3(radosgw: S3Endpoint) -> Any:
    """A boto3 client signed with the test user's keys."""
    return radosgw.client()


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh, empty bucket for one test."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage_options(radosgw: S3Endpoint) -> dict[str, str]:
    """polars' object_store options for the cluster."""
    return {
        "aws_access_key_id": radosgw.access_key_id,
        "aws_secret_access_key": radosgw.secret_access_key,
        "aws_region": radosgw.region,
        "aws_endpoint_url": radosgw.endpoint_url,
        "aws_allow_http": "true",
    }


def _payload(size: int) -> bytes:
    """Deterministic, incompressible-enough bytes of `size` length."""
    block = hashlib.sha256(str(size).encode()).digest() * (MIB // 32)
    return (block * (size // len(block) + 1))[:size]


def _sample_frame(rows: int = 1000) -> pl.DataFrame:
    """A small frame with a partition column."""
    return pl.DataFrame(
        {
            "id": list(range(rows)),
            "region": [("eu", "us", "ap")[i % 3] for i in range(rows)],
            "value": [i * 0.5 for i in range(rows)],
        }
    )


def test_endpoint_is_loopback_with_keys(radosgw: S3Endpoint) -> None:
    assert radosgw.name == "radosgw"
    assert radosgw.endpoint_url.startswith("http://127.0.0.1:")
    assert radosgw.access_key_id
    assert radosgw.secret_access_key not in repr(radosgw)


def test_put_get_roundtrip(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello radosgw")
    body = s3.get_object(Bucket=bucket, Key="dir/hello.txt")["Body"].read()
    assert body == b"hello radosgw"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["dir/hello.txt"]


def test_multipart_upload_of_12_mib(s3: Any, bucket: str) -> None:
    data = _payload(12 * MIB)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")
    parts = []
    for number, start in enumerate(range(0, len(data), 5 * MIB), start=1):
        part = s3.upload_part(
            Bucket=bucket,
            Key="big.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data[start : start + 5 * MIB],
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data


def test_wrong_secret_is_refused(radosgw: S3Endpoint, bucket: str) -> None:
    wrong = radosgw.client(aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError, match="SignatureDoesNotMatch") as raised:
        wrong.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key_is_refused(radosgw: S3Endpoint) -> None:
    stranger = radosgw.client(aws_access_key_id="NOSUCHKEY0000000000")
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        stranger.list_buckets()


def test_anonymous_put_and_get_are_refused(radosgw: S3Endpoint, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret data")
    anonymous = radosgw.client(
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"})
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        anonymous.put_object(Bucket=bucket, Key="anon", Body=b"x")
    with pytest.raises(ClientError, match="AccessDenied"):
        anonymous.get_object(Bucket=bucket, Key="private")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="anon")


def test_polars_write_and_scan_parquet(bucket: str, storage_options: dict[str, str]) -> None:
    frame = _sample_frame()
    uri = f"s3://{bucket}/x.parquet"
    frame.write_parquet(uri, storage_options=storage_options)
    back = pl.scan_parquet(uri, storage_options=storage_options).collect()
    assert back.equals(frame)


def test_polars_multipart_write(s3: Any, bucket: str, storage_options: dict[str, str]) -> None:
    """A file large enough that object_store uploads it in several parts."""
    frame = pl.select(a=pl.int_range(2_500_000).hash(1), b=pl.int_range(2_500_000).hash(2))
    uri = f"s3://{bucket}/big.parquet"
    frame.write_parquet(uri, storage_options=storage_options)
    assert "-" in s3.head_object(Bucket=bucket, Key="big.parquet")["ETag"]
    assert pl.read_parquet(uri, storage_options=storage_options).equals(frame)


def test_polars_partitioned_write(s3: Any, bucket: str, storage_options: dict[str, str]) -> None:
    frame = _sample_frame()
    frame.write_parquet(
        f"s3://{bucket}/table/", partition_by=["region"], storage_options=storage_options
    )
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="table/")
    keys = sorted(o["Key"] for o in listing["Contents"])
    assert keys == [f"table/region={r}/00000000.parquet" for r in ("ap", "eu", "us")]
    back = pl.scan_parquet(
        f"s3://{bucket}/table/", hive_partitioning=True, storage_options=storage_options
    ).collect()
    assert back.select(frame.columns).sort("id").equals(frame)


def test_copy_object_and_delete_objects(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a/one", Body=b"1")
    s3.copy_object(Bucket=bucket, Key="b/one", CopySource={"Bucket": bucket, "Key": "a/one"})
    assert s3.get_object(Bucket=bucket, Key="b/one")["Body"].read() == b"1"
    answer = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a/one"}, {"Key": "b/one"}]}
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["a/one", "b/one"]
    assert not answer.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_list_and_abort_multipart_uploads(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="pending")["UploadId"]
    s3.upload_part(
        Bucket=bucket, Key="pending", UploadId=upload_id, PartNumber=1, Body=_payload(MIB)
    )
    listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("pending", upload_id)]
    s3.abort_multipart_upload(Bucket=bucket, Key="pending", UploadId=upload_id)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    # AWS answers NoSuchUpload; radosgw (Pacific) answers NoSuchKey for ListParts.
    with pytest.raises(ClientError, match=r"NoSuchUpload|NoSuchKey"):
        s3.list_parts(Bucket=bucket, Key="pending", UploadId=upload_id)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def _pyarrow_upload(radosgw: S3Endpoint, bucket: str, data: bytes) -> None:
    """Upload `data` with pyarrow's S3FileSystem (multipart once above 5 MiB)."""
    from pyarrow import fs

    filesystem = fs.S3FileSystem(
        access_key=radosgw.access_key_id,
        secret_key=radosgw.secret_access_key,
        region=radosgw.region,
        endpoint_override=radosgw.endpoint_url,
        scheme="http",
    )
    with filesystem.open_output_stream(f"{bucket}/arrow.bin") as stream:
        stream.write(data)


def test_pyarrow_multipart_needs_checksum_when_required(
    radosgw: S3Endpoint, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow's AWS SDK sends UploadPart with checksums radosgw (Pacific) answers with 411.

    The AWS SDK reads the variable when an S3FileSystem is created, so setting it per test
    is enough.
    """
    data = _payload(12 * MIB)
    monkeypatch.delenv("AWS_REQUEST_CHECKSUM_CALCULATION", raising=False)
    with pytest.raises(OSError, match="MissingContentLength"):
        _pyarrow_upload(radosgw, bucket, data)
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "WHEN_REQUIRED")
    _pyarrow_upload(radosgw, bucket, data)
    assert s3.get_object(Bucket=bucket, Key="arrow.bin")["Body"].read() == data
