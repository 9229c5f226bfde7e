"""Unit tests of credential resolution: nothing anonymous, nothing leaked, refresh on expiry."""

import datetime as dt
import time

import boto3
import botocore.credentials
import pytest
from dagster_aws.s3 import S3Resource

from pq_io_manager import ConfigurationError, CredentialsError, PartitionedParquetIOManager
from pq_io_manager.credentials import (
    connection_from_resource,
    credentials_with_expiry,
    describe_resource,
)

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def resource(**overrides: object) -> S3Resource:
    settings: dict[str, object] = {
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": SECRET,
        "aws_session_token": "session-token-value",
        "region_name": "eu-west-3",
        "endpoint_url": "http://127.0.0.1:9000",
    }
    settings.update(overrides)
    return S3Resource(**settings)  # type: ignore[arg-type]


def test_storage_options_carry_region_and_endpoint_but_no_secret() -> None:
    options = connection_from_resource(resource()).storage_options()

    assert options == {
        "aws_region": "eu-west-3",
        "max_retries": 5,
        "aws_endpoint_url": "http://127.0.0.1:9000",
        "aws_allow_http": "true",
    }
    assert SECRET not in repr(options)


def test_https_endpoint_does_not_allow_http() -> None:
    options = connection_from_resource(
        resource(endpoint_url="https://s3.example.com")
    ).storage_options()
    assert "aws_allow_http" not in options


def test_storage_options_are_never_empty_without_region_or_endpoint() -> None:
    options = connection_from_resource(
        resource(region_name=None, endpoint_url=None)
    ).storage_options()
    assert options == {"aws_region": "us-east-1", "max_retries": 5}


def test_credential_provider_returns_the_resource_keys() -> None:
    keys, expiry = connection_from_resource(resource()).credential_provider()()

    assert keys == {
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": SECRET,
        "aws_session_token": "session-token-value",
    }
    assert expiry is None


def test_environment_chain_is_used_without_a_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9999")

    connection = connection_from_resource(None)

    assert connection.credential_provider()()[0]["aws_access_key_id"] == "AKIDFROMENV"
    assert connection.storage_options()["aws_region"] == "ap-south-1"
    assert connection.storage_options()["aws_endpoint_url"] == "http://127.0.0.1:9999"


def test_missing_credentials_fail_fast_with_the_fix() -> None:
    started = time.monotonic()
    with pytest.raises(CredentialsError, match=r"no AWS credentials found.*AWS_ACCESS_KEY_ID"):
        connection_from_resource(S3Resource(region_name="eu-west-1"))
    assert time.monotonic() - started < 5


def test_unknown_profile_is_a_credentials_error() -> None:
    with pytest.raises(CredentialsError, match=r"profile 'nope' does not exist"):
        connection_from_resource(S3Resource(profile_name="nope"))


def test_unsigned_sessions_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="never sends anonymous requests"):
        connection_from_resource(resource(use_unsigned_session=True))


def test_refreshable_credentials_report_expiry_and_refresh() -> None:
    issued: list[str] = []

    def refresh() -> dict[str, str]:
        issued.append(f"AKID{len(issued)}")
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=70 if len(issued) == 1 else 3600)
        return {
            "access_key": issued[-1],
            "secret_key": "secret",
            "token": "token",
            "expiry_time": expiry.isoformat(),
        }

    credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
        refresh(), refresh, "test"
    )
    keys, expiry = credentials_with_expiry(credentials)

    # 70 s left is inside botocore's refresh window, so the first call already refreshed.
    assert keys["aws_access_key_id"] == "AKID1"
    assert expiry is not None
    assert 3000 < expiry - time.time() < 3600


def test_frozen_static_credentials_have_no_expiry() -> None:
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b")
    assert credentials_with_expiry(session.get_credentials())[1] is None


def test_reprs_never_show_secrets() -> None:
    manager = PartitionedParquetIOManager(base_path="s3://bucket/lake", s3=resource())

    for text in [repr(manager), str(manager), describe_resource(manager.s3)]:
        assert SECRET not in text
        assert "session-token-value" not in text
        assert "AKIDEXAMPLE" not in text
    assert "aws_secret_access_key='<set>'" in repr(manager)
    assert repr(connection_from_resource(resource())).count(SECRET) == 0


def test_profile_from_the_resource_is_resolved(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = f"{tmp_path}/config"
    with open(config, "w") as handle:
        handle.write(
            "[profile analytics]\n"
            "aws_access_key_id = AKIDPROFILE\n"
            f"aws_secret_access_key = {SECRET}\n"
            "region = eu-north-1\n"
        )
    monkeypatch.setenv("AWS_CONFIG_FILE", config)

    connection = connection_from_resource(S3Resource(profile_name="analytics"))

    assert connection.credential_provider()()[0]["aws_access_key_id"] == "AKIDPROFILE"
    assert connection.storage_options()["aws_region"] == "eu-north-1"
