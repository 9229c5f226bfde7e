"""Shared fixtures: an AWS-free environment, real S3 servers, and one `Lake` per store kind.

Every `AWS_*` variable is removed at import time, before any test or server starts, so that
credentials can only reach polars through the IO manager. Three variables are then set for
isolation only (they carry no credentials): no shared config/credentials files from the
developer's home, and no instance-metadata lookups (this sandbox must not contact
169.254.169.254, and a missing credential must fail fast rather than wait on it).
"""

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

for _name in [name for name in os.environ if name.startswith("AWS_")]:
    del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = "/nonexistent/pq-io-manager-tests/config"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/pq-io-manager-tests/credentials"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from tests.lake import Lake, local_lake, s3_lake  # noqa: E402
from tests.servers import S3Endpoint  # noqa: E402
from tests.servers.moto_server import MotoServer, start_moto_server  # noqa: E402
from tests.servers.radosgw_server import run_radosgw  # noqa: E402


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto with SigV4 enforced behind a logging proxy; checks at the end that every request
    the suite sent through it was signed."""
    with start_moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server
        _assert_all_signed(server.endpoint)


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: MotoServer) -> S3Endpoint:
    """The moto endpoint (through the logging proxy)."""
    return moto_server.endpoint


@pytest.fixture(scope="session")
def radosgw_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A throwaway single-node Ceph cluster with radosgw (installed with apt if missing)."""
    with run_radosgw(tmp_path_factory.mktemp("radosgw")) as endpoint:
        yield endpoint


@pytest.fixture(
    params=[
        pytest.param("moto", marks=pytest.mark.s3),
        pytest.param("radosgw", marks=[pytest.mark.s3, pytest.mark.radosgw]),
    ]
)
def s3_endpoint(request: pytest.FixtureRequest) -> S3Endpoint:
    """Each real S3 server in turn."""
    endpoint: S3Endpoint = request.getfixturevalue(f"{request.param}_endpoint")
    return endpoint


@pytest.fixture
def bucket(s3_endpoint: S3Endpoint) -> str:
    """A fresh, empty bucket on the current S3 server."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_endpoint.client().create_bucket(Bucket=name)
    return name


_STORES = {
    "local": pytest.param("local", id="local"),
    "moto": pytest.param("moto", marks=pytest.mark.s3, id="moto"),
    "radosgw": pytest.param("radosgw", marks=[pytest.mark.s3, pytest.mark.radosgw], id="radosgw"),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`lake` is local disk and moto for a test through Dagster; a storage test (marked
    `every_s3_server`: staging, publishing, locks, faults, listings) also runs on radosgw, the
    real server, whose timing and consistency differ from moto's."""
    if "lake" not in metafunc.fixturenames or _parametrizes_lake(metafunc):
        return
    every = metafunc.definition.get_closest_marker("every_s3_server") is not None
    names = ["local", "moto", "radosgw"] if every else ["local", "moto"]
    metafunc.parametrize("lake", [_STORES[name] for name in names], indirect=True)


def _parametrizes_lake(metafunc: pytest.Metafunc) -> bool:
    return any(
        "lake" in marker.args[0] for marker in metafunc.definition.iter_markers("parametrize")
    )


@pytest.fixture
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """A fresh, empty lake on local disk, moto or radosgw, with an IO manager pointed at it."""
    if request.param == "local":
        return local_lake(tmp_path / "lake")
    endpoint: S3Endpoint = request.getfixturevalue(f"{request.param}_endpoint")
    name = f"lake-{uuid.uuid4().hex[:20]}"
    endpoint.client().create_bucket(Bucket=name)
    return s3_lake(endpoint, name)


def _assert_all_signed(endpoint: S3Endpoint) -> None:
    if endpoint.request_log is None or not Path(endpoint.request_log).exists():
        return
    records = [json.loads(line) for line in Path(endpoint.request_log).read_text().splitlines()]
    unsigned = [record for record in records if not record.get("signed")]
    assert records, "the moto proxy logged no request at all"
    assert not unsigned, f"{len(unsigned)} unsigned request(s) reached moto: {unsigned[:3]}"
