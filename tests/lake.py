"""A lake under test: where its files are and how to look at them without the IO manager."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from dagster_aws.s3 import S3Resource

from pq_io_manager import PartitionedParquetIOManager
from tests.servers import S3Endpoint

SWEEP_MARKER = ".pq-staging/.last-sweep"


@dataclass
class Lake:
    """One empty base path on one store, with an IO manager configured for it."""

    kind: str
    base_path: str
    endpoint: S3Endpoint | None = None
    bucket: str | None = None
    resource: S3Resource | None = field(default=None, repr=False)

    def io_manager(self) -> PartitionedParquetIOManager:
        """An IO manager writing to this lake with the right credentials."""
        return PartitionedParquetIOManager(base_path=self.base_path, s3=self.resource)

    def uri(self, relative: str) -> str:
        """The full URI of a path relative to the base path."""
        return f"{self.base_path}/{relative}"

    def files(self, below: str = "", records: bool = False) -> list[str]:
        """Every file under the base path (or `below` it), relative and sorted; the datasets'
        own records under `.pq-meta/` (schema record, writer lock) only with `records`."""
        if self.endpoint is None:
            root = Path(self.base_path)
            found = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        else:
            client = self.endpoint.client()
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix="lake/"
            )
            found = [
                item["Key"][len("lake/") :] for page in pages for item in page.get("Contents", [])
            ]
        kept = (path for path in found if records or not path.startswith(".pq-meta/"))
        # the sweep's marker (when staging was last swept) is housekeeping, not a file
        return sorted(path for path in kept if path.startswith(below) and path != SWEEP_MARKER)

    def put(self, relative: str, data: bytes) -> None:
        """Store a file as another tool would (not through the IO manager)."""
        if self.endpoint is None:
            path = Path(self.base_path, relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.endpoint.client().put_object(Bucket=self.bucket, Key=f"lake/{relative}", Body=data)

    def size(self, relative: str) -> int:
        """The stored size of a file in bytes."""
        if self.endpoint is None:
            return Path(self.base_path, relative).stat().st_size
        head = self.endpoint.client().head_object(Bucket=self.bucket, Key=f"lake/{relative}")
        return int(head["ContentLength"])

    def storage_options(self) -> dict[str, Any]:
        """polars options to read the lake directly (for checks only)."""
        if self.endpoint is None:
            return {}
        return {
            "storage_options": {
                "aws_access_key_id": self.endpoint.access_key_id,
                "aws_secret_access_key": self.endpoint.secret_access_key,
                "aws_region": self.endpoint.region,
                "aws_endpoint_url": self.endpoint.endpoint_url,
                "aws_allow_http": "true",
            }
        }

    def read(self, relative: str) -> pl.DataFrame:
        """One Parquet file as stored, without hive columns."""
        return pl.read_parquet(
            self.uri(relative), hive_partitioning=False, **self.storage_options()
        )


def local_lake(directory: Path) -> Lake:
    """A lake in a local directory (created on first write)."""
    return Lake(kind="local", base_path=os.fspath(directory))


def s3_lake(endpoint: S3Endpoint, bucket: str) -> Lake:
    """A lake at s3://bucket/lake on `endpoint`, credentials through an S3Resource."""
    resource = S3Resource(
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        endpoint_url=endpoint.endpoint_url,
        region_name=endpoint.region,
    )
    return Lake(endpoint.name, f"s3://{bucket}/lake", endpoint, bucket, resource)
