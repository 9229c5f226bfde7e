"""`S3Resource.use_ssl` and `verify` reach polars as well as boto3 (issue 8, property 9).

A TLS-terminating relay of the test's own (a throwaway CA and a certificate for 127.0.0.1) in
front of moto: writes (a LazyFrame, which polars streams) and loads (which polars reads) work
with verify=False and with the CA bundle boto3 is configured with (`AWS_CA_BUNDLE`, which the
IO manager hands to polars as `SSL_CERT_FILE`), and fail clearly with the wrong CA.
S3Resource's `verify` field is a bool in dagster-aws (a path is refused by its validation), so a
CA bundle reaches the IO manager the way it reaches boto3: `AWS_CA_BUNDLE` or a profile's
`ca_bundle`.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import PartitionedParquetIOManager, WriteError
from pq_io_manager.credentials import connection_from_resource
from tests.faults_support import DAILY, s3_resource
from tests.servers.moto_server import MotoServer
from tests.servers.tls_proxy import Certificates, TlsRelay, make_certificates

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Certificates, Certificates]:
    """The relay's CA and certificate, and an unrelated CA."""
    directory = tmp_path_factory.mktemp("tls")
    return make_certificates(directory / "right"), make_certificates(directory / "wrong", "other")


@pytest.fixture
def relay(
    moto_server: MotoServer, certificates: tuple[Certificates, Certificates]
) -> Iterator[TlsRelay]:
    """A fresh HTTPS endpoint (a new port per test: polars caches clients per endpoint)."""
    moto_server.endpoint.client().list_buckets()  # the shared proxy's check wants a request
    with TlsRelay(int(urlsplit(moto_server.direct_url).port or 0), certificates[0]) as running:
        yield running


@pytest.fixture
def no_ca_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    # set to "" (not deleted) so that monkeypatch removes what the IO manager sets afterwards
    monkeypatch.setenv("SSL_CERT_FILE", "")
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    return monkeypatch


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def events(context: dg.AssetExecutionContext) -> pl.LazyFrame:
    return pl.LazyFrame({"amount": [1.0, 2.0, 3.0]})


def write_and_load(moto_server: MotoServer, url: str, **settings: Any) -> list[int]:
    """Create a bucket over HTTPS, write a partition and load it back; the loaded heights."""
    bucket = f"tls-{uuid.uuid4().hex[:16]}"
    resource = s3_resource(moto_server.endpoint, url, **settings)
    manager = PartitionedParquetIOManager(base_path=f"s3://{bucket}/lake", s3=resource)
    seen: list[int] = []

    @dg.asset(partitions_def=DAILY, io_manager_key="memory")
    def totals(events: pl.DataFrame) -> None:
        seen.append(events.height)

    connection_from_resource(resource).client().create_bucket(Bucket=bucket)
    resources = {"io_manager": manager, "memory": dg.InMemoryIOManager()}
    dg.materialize([events, totals], partition_key="2024-01-05", resources=resources)
    return seen


def test_verify_false_reaches_polars(
    moto_server: MotoServer, relay: TlsRelay, no_ca_variables: pytest.MonkeyPatch
) -> None:
    assert write_and_load(moto_server, relay.url, verify=False) == [3]


def test_use_ssl_false_with_an_https_endpoint_means_what_boto3_means(
    moto_server: MotoServer, relay: TlsRelay, no_ca_variables: pytest.MonkeyPatch
) -> None:
    """boto3 ignores use_ssl when an endpoint URL is given: its scheme decides (here https)."""
    assert write_and_load(moto_server, relay.url, verify=False, use_ssl=False) == [3]


def test_ca_bundle_reaches_polars(
    moto_server: MotoServer,
    relay: TlsRelay,
    certificates: tuple[Certificates, Certificates],
    no_ca_variables: pytest.MonkeyPatch,
) -> None:
    no_ca_variables.setenv("AWS_CA_BUNDLE", str(certificates[0].ca))
    assert write_and_load(moto_server, relay.url) == [3]


def test_wrong_ca_fails_clearly(
    moto_server: MotoServer,
    relay: TlsRelay,
    certificates: tuple[Certificates, Certificates],
    no_ca_variables: pytest.MonkeyPatch,
) -> None:
    no_ca_variables.setenv("AWS_CA_BUNDLE", str(certificates[1].ca))
    with pytest.raises(Exception, match=r"(?is)certificate verify failed|UnknownIssuer"):
        write_and_load(moto_server, relay.url)
    assert relay.handshake_failures >= 1


def test_a_polars_read_with_the_wrong_ca_fails_clearly(
    moto_server: MotoServer,
    relay: TlsRelay,
    certificates: tuple[Certificates, Certificates],
    tmp_path: Path,
    no_ca_variables: pytest.MonkeyPatch,
) -> None:
    """polars alone (boto3 trusting the right CA, polars the wrong one): an error, not data."""
    no_ca_variables.setenv("SSL_CERT_FILE", str(certificates[1].ca))
    no_ca_variables.setenv("AWS_CA_BUNDLE", str(certificates[0].ca))
    with pytest.raises(WriteError, match=r"(?s)partition '2024-01-05'.*(certificate|Issuer)"):
        write_and_load(moto_server, relay.url)


def test_use_ssl_false_without_endpoint_is_plain_http_for_both(
    no_ca_variables: pytest.MonkeyPatch,
) -> None:
    from dagster_aws.s3 import S3Resource

    resource = S3Resource(
        region_name="eu-west-1", use_ssl=False, aws_access_key_id="k", aws_secret_access_key="s"
    )
    connection = connection_from_resource(resource)
    options = connection.storage_options()
    assert connection.client().meta.endpoint_url == "http://s3.eu-west-1.amazonaws.com"
    assert options["aws_endpoint_url"] == "http://s3.eu-west-1.amazonaws.com"
    assert options["aws_allow_http"] == "true"
    secure = connection_from_resource(
        S3Resource(region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
    )
    assert "aws_endpoint_url" not in secure.storage_options()
    assert secure.client().meta.endpoint_url.startswith("https://")
