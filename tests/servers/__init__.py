"""Real S3 servers the test suite starts on 127.0.0.1 (moto with SigV4 enforced, Ceph radosgw)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class S3Endpoint:
    """One running S3 server and a key pair it accepts.

    `request_log` is a path to a file where the server (or a logging proxy in front of it)
    records one line per request, including whether it carried a SigV4 Authorization header;
    None where the server has no such log.
    """

    name: str
    endpoint_url: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"
    request_log: str | None = None
    ceph_conf: str | None = None  # radosgw: the cluster's ceph.conf, for radosgw-admin

    def client(self, **overrides: Any) -> Any:
        """A boto3 S3 client signed with this endpoint's keys (or `overrides`)."""
        import boto3
        from botocore.config import Config

        arguments: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "region_name": self.region,
            "config": Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        }
        arguments.update(overrides)
        return boto3.client("s3", **arguments)
