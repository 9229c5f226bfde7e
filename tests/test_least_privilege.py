"""Least-privilege roles (issue 8, property 9), with real restricted users on both servers.

moto enforces identity policies (IAM users of a private moto with an admin); radosgw enforces
bucket policies naming a second radosgw user. Without s3:ListBucket radosgw (like AWS) answers
403 AccessDenied for a missing key; moto answers 404 whatever the policy (checked below), so
the 403 path is proven on radosgw and the plain path on moto.
"""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl
import pytest
from botocore.exceptions import ClientError

from pq_io_manager import MissingPartitionError, PartitionedParquetIOManager
from tests.faults_support import DAILY, SERVERS, s3_resource, server_endpoint
from tests.servers import S3Endpoint
from tests.servers.iam_moto import IamMoto, start_iam_moto
from tests.servers.radosgw_server import create_user


def no_list_bucket(bucket: str) -> list[dict[str, Any]]:
    """A writer's object permissions, but no s3:ListBucket."""
    return [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/*"],
        }
    ]


def read_only(bucket: str) -> list[dict[str, Any]]:
    """The minimal reader: GetObject on the keys, ListBucket on the bucket."""
    return [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"]},
    ]


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamMoto]:
    """A private moto with an IAM admin (the shared one's user may only use S3)."""
    with start_iam_moto(tmp_path_factory.mktemp("least-privilege-moto")) as server:
        yield server


def owner_and_role(
    request: pytest.FixtureRequest, server: str, statements: Any
) -> tuple[S3Endpoint, S3Endpoint, str]:
    """(owner, restricted role, bucket): a fresh bucket the role may use only as allowed."""
    bucket = f"lp-{uuid.uuid4().hex[:16]}"
    name = f"role-{uuid.uuid4().hex[:8]}"
    if server == "moto":
        moto: IamMoto = request.getfixturevalue("iam_moto")
        owner = moto.admin_endpoint()
        owner.client().create_bucket(Bucket=bucket)
        moto.user(name, statements(bucket))
        key_id, secret = moto.key(name)
    else:
        owner, _ = server_endpoint(request, server)
        owner.client().create_bucket(Bucket=bucket)
        key_id, secret = create_user(owner, name)
        granted = [
            {**statement, "Principal": {"AWS": [f"arn:aws:iam:::user/{name}"]}}
            for statement in statements(bucket)
        ]
        document = {"Version": "2012-10-17", "Statement": granted}
        owner.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    role = S3Endpoint(owner.name, owner.endpoint_url, key_id, secret, owner.region)
    return owner, role, bucket


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def events(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"amount": [1.0, 2.0, 3.0]})


def reader_assets(
    seen: list[int], allow_missing: bool, offset: int = 0
) -> list[dg.AssetsDefinition]:
    """`events` and a downstream reading it (days `offset`..0 back) through the IO manager;
    the downstream's own output goes to memory (the roles here may not write it)."""

    @dg.asset(
        partitions_def=DAILY,
        io_manager_key="memory",
        ins={
            "events": dg.AssetIn(
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=offset),
                metadata={"allow_missing_partitions": allow_missing},
            )
        },
    )
    def totals(events: pl.DataFrame) -> int:
        seen.append(events.height)
        return events.height

    return [events, totals]


def manager(endpoint: S3Endpoint, bucket: str) -> PartitionedParquetIOManager:
    return PartitionedParquetIOManager(base_path=f"s3://{bucket}/lake", s3=s3_resource(endpoint))


def read_as(role: S3Endpoint, bucket: str, key: str, assets: list[dg.AssetsDefinition]) -> Any:
    resources = {"io_manager": manager(role, bucket), "memory": dg.InMemoryIOManager()}
    return dg.materialize(assets, selection=[assets[1]], partition_key=key, resources=resources)


@pytest.mark.parametrize("server", SERVERS)
def test_missing_partition_without_list_bucket(request: pytest.FixtureRequest, server: str) -> None:
    owner, role, bucket = owner_and_role(request, server, no_list_bucket)
    dg.materialize(
        [events], partition_key="2024-01-05", resources={"io_manager": manager(owner, bucket)}
    )
    missing = f"s3://{bucket}/lake/events/date=2024-01-06/data.parquet"
    with pytest.raises(ClientError) as denied:
        role.client().head_object(Bucket=bucket, Key=missing.split("/", 3)[3])
    status = denied.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == (404 if server == "moto" else 403)  # what each server really answers

    hint = r".*may also be access denied" if server == "radosgw" else ""
    with pytest.raises(
        MissingPartitionError, match=rf"(?s)asset 'events'.*'2024-01-06'.*{missing}{hint}"
    ):
        read_as(role, bucket, "2024-01-06", reader_assets([], allow_missing=False))

    seen: list[int] = []
    read_as(role, bucket, "2024-01-06", reader_assets(seen, allow_missing=True, offset=-1))
    assert seen == [3]  # 2024-01-05 loaded, 2024-01-06 skipped


@pytest.mark.parametrize("server", SERVERS)
def test_read_only_role_loads(request: pytest.FixtureRequest, server: str) -> None:
    owner, role, bucket = owner_and_role(request, server, read_only)
    dg.materialize(
        [events], partition_key="2024-01-05", resources={"io_manager": manager(owner, bucket)}
    )
    # something of ours in staging, so the reader's start-of-process sweep really tries
    stray = f"lake/.pq-staging/{uuid.uuid4().hex}.parquet"
    owner.client().put_object(Bucket=bucket, Key=stray, Body=b"staged")
    with pytest.raises(ClientError, match="AccessDenied"):
        role.client().put_object(Bucket=bucket, Key="lake/probe", Body=b"x")

    seen: list[int] = []
    result = read_as(role, bucket, "2024-01-05", reader_assets(seen, allow_missing=False))

    assert result.success
    assert seen == [3]
    assert owner.client().head_object(Bucket=bucket, Key=stray)["ContentLength"] == 6
