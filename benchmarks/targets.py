"""Where the benchmarks write: a local directory, moto or radosgw (each with a counting proxy).

Timings talk to the S3 server directly; request counts go through a loopback `HttpProxy`
in front of the same server (same keys, same bucket), so counting never slows the timings.
"""

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dagster_aws.s3 import S3Resource

from tests.servers import S3Endpoint
from tests.servers.http_proxy import HttpProxy

BUCKET = "bench"
RADOSGW_MEMSTORE_BYTES = str(12 * 1024**3)


@dataclass(frozen=True)
class Target:
    """One store: `root` is a local directory or `s3://bench/lake`.

    `endpoint` is the direct (timed) S3 endpoint, `counting` the same server through `proxy`.
    """

    name: str
    root: str
    endpoint: S3Endpoint | None = None
    counting: S3Endpoint | None = None
    proxy: HttpProxy | None = None

    @property
    def is_s3(self) -> bool:
        """Whether this target is an S3 server."""
        return self.endpoint is not None

    def uri(self, *parts: str) -> str:
        """A path below the target's root."""
        return "/".join([self.root, *parts])

    def s3_endpoint(self, counted: bool = False) -> S3Endpoint:
        """The direct endpoint, or the proxied one when `counted`."""
        endpoint = self.counting if counted else self.endpoint
        if endpoint is None:
            raise ValueError(f"{self.name} is not an S3 target")
        return endpoint

    def storage_options(self, counted: bool = False) -> dict[str, str] | None:
        """polars `storage_options` for raw baselines (None for local paths)."""
        if not self.is_s3:
            return None
        endpoint = self.s3_endpoint(counted)
        return {
            "aws_access_key_id": endpoint.access_key_id,
            "aws_secret_access_key": endpoint.secret_access_key,
            "aws_region": endpoint.region,
            "aws_endpoint_url": endpoint.endpoint_url,
            "aws_allow_http": "true",
        }

    def s3_resource(self, counted: bool = False) -> S3Resource | None:
        """The dagster-aws resource the IO managers get (None for local paths)."""
        if not self.is_s3:
            return None
        endpoint = self.s3_endpoint(counted)
        return S3Resource(
            aws_access_key_id=endpoint.access_key_id,
            aws_secret_access_key=endpoint.secret_access_key,
            endpoint_url=endpoint.endpoint_url,
            region_name=endpoint.region,
        )

    def remove(self, *parts: str) -> None:
        """Delete everything below a path (a local tree or an S3 prefix)."""
        path = self.uri(*parts)
        if not self.is_s3:
            shutil.rmtree(path, ignore_errors=True)
            return
        client = self.s3_endpoint().client()
        prefix = path.removeprefix(f"s3://{BUCKET}/").rstrip("/") + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})

    def count_requests(self) -> "RequestCounter":
        """A context manager counting the requests that reach the proxy meanwhile."""
        if self.proxy is None:
            raise ValueError(f"{self.name} has no counting proxy")
        return RequestCounter(self.proxy)


class RequestCounter:
    """Counts proxied requests by method between `__enter__` and `__exit__`."""

    def __init__(self, proxy: HttpProxy) -> None:
        self.proxy = proxy
        self.by_method: dict[str, int] = {}

    def __enter__(self) -> "RequestCounter":
        self.proxy.reset_counts()
        return self

    def __exit__(self, *exc: object) -> None:
        for record in self.proxy.requests:
            kind = _kind(record.method, record.path)
            self.by_method[kind] = self.by_method.get(kind, 0) + 1

    @property
    def total(self) -> int:
        """All requests counted."""
        return sum(self.by_method.values())


def _kind(method: str, path: str) -> str:
    """The request's method, or LIST for a bucket listing (a GET with `list-type=`)."""
    return "LIST" if method == "GET" and "list-type=" in path else method


def _s3_target(name: str, direct: S3Endpoint, proxy: HttpProxy | None) -> Target:
    direct.client().create_bucket(Bucket=BUCKET)
    if proxy is None:
        return Target(name, f"s3://{BUCKET}/lake", direct, direct, None)
    counting = replace(direct, name=f"{name}-proxy", endpoint_url=proxy.url)
    return Target(name, f"s3://{BUCKET}/lake", direct, counting, proxy)


@contextlib.contextmanager
def open_target(name: str, workdir: Path) -> Iterator[Target]:
    """Start (and on exit stop) the store called `name`: local, moto or radosgw."""
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "local":
        yield Target("local", str(workdir / "lake"))
        shutil.rmtree(workdir / "lake", ignore_errors=True)
    elif name == "moto":
        from tests.servers.moto_server import start_moto_server

        with start_moto_server(workdir) as server:
            yield _s3_target("moto", server.direct_endpoint(), server.proxy)
    elif name == "radosgw":
        yield from _radosgw_target(workdir)
    else:
        raise ValueError(f"unknown store {name!r} (local, moto, radosgw)")


def _radosgw_target(workdir: Path) -> Iterator[Target]:
    from tests.servers.radosgw_server import run_radosgw

    os.environ.setdefault("CEPH_MEMSTORE_BYTES", RADOSGW_MEMSTORE_BYTES)

    with run_radosgw(workdir) as endpoint, HttpProxy(endpoint.endpoint_url) as proxy:
        yield _s3_target("radosgw", endpoint, proxy)


def available_stores() -> list[str]:
    """The stores that can run here (radosgw only when Ceph is installed)."""
    from tests.servers.radosgw_server import radosgw_available

    return ["local", "moto", *(["radosgw"] if radosgw_available() else [])]


def describe(target: Target) -> dict[str, Any]:
    """What the report says about a target (no secrets)."""
    return {"name": target.name, "root": target.root, "s3": target.is_s3}
