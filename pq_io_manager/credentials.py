"""Turn a dagster-aws `S3Resource` (or boto3's default chain) into what polars and boto3 need.

Secrets never go into `storage_options`: polars receives them through a credential provider
that boto3 refreshes, so assumed roles and session tokens keep working past their expiry.
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import botocore.credentials
import botocore.exceptions
from botocore.config import Config

from pq_io_manager.errors import ConfigurationError, CredentialsError

if TYPE_CHECKING:
    from dagster_aws.s3 import S3Resource
    from mypy_boto3_s3 import S3Client

DEFAULT_REGION = "us-east-1"
# Refresh a little before the real expiry so no request is signed with a dying key.
EXPIRY_MARGIN_SECONDS = 60
CredentialProvider = Callable[[], tuple[dict[str, str | None], int | None]]


@dataclass(frozen=True)
class S3Connection:
    """Everything needed to talk to one S3 endpoint; its repr holds no secret."""

    region: str
    endpoint_url: str | None
    max_attempts: int
    verify: bool | None
    session: boto3.session.Session = field(repr=False, compare=False)
    use_ssl: bool = True

    @property
    def allow_http(self) -> bool:
        """Whether the endpoint is plain HTTP (a local test server or a private gateway)."""
        return bool(self.endpoint_url and self.endpoint_url.startswith("http://"))

    def storage_options(self) -> dict[str, str | int]:
        """polars `storage_options`: never empty, never a secret."""
        options: dict[str, str | int] = {
            "aws_region": self.region,
            "max_retries": self.max_attempts,
        }
        if self.endpoint_url:
            options["aws_endpoint_url"] = self.endpoint_url
        if self.allow_http:
            options["aws_allow_http"] = "true"
        if self.verify is False:  # boto3's verify=False: encrypted, certificate not checked
            options["aws_allow_invalid_certificates"] = "true"
        return options

    def credential_provider(self) -> CredentialProvider:
        """A polars credential provider returning fresh keys and their expiry."""
        credentials = resolve_credentials(self.session)
        return lambda: credentials_with_expiry(credentials)

    def client(self) -> "S3Client":
        """A boto3 S3 client with the same credentials, region and endpoint as polars uses."""
        config = Config(
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            s3={"addressing_style": "path"},
            max_pool_connections=32,
        )
        return self.session.client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            use_ssl=self.use_ssl,
            verify=self.verify,
            config=config,
        )


def connection_from_resource(resource: "S3Resource | None") -> S3Connection:
    """Build a connection from an `S3Resource`, or from boto3's default chain when None.

    Raises:
        ConfigurationError: the resource asks for unsigned (anonymous) access.
        CredentialsError: no credentials can be found, or the profile does not exist.
    """
    settings = resource.model_dump() if resource is not None else {}
    if settings.get("use_unsigned_session"):
        raise ConfigurationError(
            "S3Resource(use_unsigned_session=True) is refused: pq_io_manager never sends "
            "anonymous requests. Give the resource credentials or a profile instead."
        )
    session = _session(settings)
    region = settings.get("region_name") or _default_region(session)
    use_ssl = settings.get("use_ssl", True) is not False
    connection = S3Connection(
        region=region,
        endpoint_url=settings.get("endpoint_url")
        or _default_endpoint()
        or _plain_http_endpoint(session, region, use_ssl),
        max_attempts=int(settings.get("max_attempts") or 5),
        verify=settings.get("verify"),
        session=session,
        use_ssl=use_ssl,
    )
    if connection.verify is not False:
        _trust_ca_bundle_in_polars(session)
    resolve_credentials(session)  # fail fast, before any data is computed or sent
    return connection


def _plain_http_endpoint(session: boto3.session.Session, region: str, use_ssl: bool) -> str | None:
    """boto3's meaning of use_ssl=False: plain HTTP to the region's default endpoint (with an
    explicit endpoint URL, its scheme decides and use_ssl is ignored, as boto3 does)."""
    if use_ssl:
        return None
    client = session.client("s3", region_name=region, use_ssl=False)
    return str(client.meta.endpoint_url)


def _trust_ca_bundle_in_polars(session: boto3.session.Session) -> None:
    """Make polars trust the CA bundle boto3 uses (AWS_CA_BUNDLE or a profile's ca_bundle).

    polars' HTTP client (object_store, rustls) takes no CA option; it reads the roots from
    `SSL_CERT_FILE`, so that variable is set to the bundle unless the user set it already.
    """
    bundle = session._session.get_config_variable("ca_bundle")
    if bundle and not os.environ.get("SSL_CERT_FILE"):
        os.environ["SSL_CERT_FILE"] = str(bundle)


def resolve_credentials(session: boto3.session.Session) -> botocore.credentials.Credentials:
    """The session's credentials, or a `CredentialsError` saying where they were looked for."""
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        raise CredentialsError(
            f"resolving AWS credentials failed ({type(error).__name__}). Check the "
            "S3Resource's profile_name and your AWS configuration files."
        ) from error
    if credentials is None:
        raise CredentialsError(
            "no AWS credentials found for an s3:// base_path. Give the S3Resource "
            "aws_access_key_id/aws_secret_access_key or profile_name, or set AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment."
        )
    return credentials


def credentials_with_expiry(
    credentials: botocore.credentials.Credentials,
) -> tuple[dict[str, str | None], int | None]:
    """Fresh keys for polars and the epoch second after which it must ask again."""
    frozen = credentials.get_frozen_credentials()  # refreshes refreshable credentials
    keys: dict[str, str | None] = {
        "aws_access_key_id": frozen.access_key,
        "aws_secret_access_key": frozen.secret_key,
        "aws_session_token": frozen.token,
    }
    expiry = getattr(credentials, "_expiry_time", None)
    if expiry is None:
        return keys, None
    return keys, max(int(expiry.timestamp()) - EXPIRY_MARGIN_SECONDS, int(time.time()) + 1)


def _session(settings: dict[str, Any]) -> boto3.session.Session:
    try:
        return boto3.session.Session(
            profile_name=settings.get("profile_name"),
            aws_access_key_id=settings.get("aws_access_key_id"),
            aws_secret_access_key=settings.get("aws_secret_access_key"),
            aws_session_token=settings.get("aws_session_token"),
        )
    except botocore.exceptions.ProfileNotFound as error:
        raise CredentialsError(
            f"the AWS profile {settings.get('profile_name')!r} does not exist: fix the "
            "S3Resource's profile_name or your ~/.aws/config"
        ) from error


def _default_region(session: boto3.session.Session) -> str:
    return (
        session.region_name
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )


def _default_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def describe_resource(resource: "S3Resource | None") -> str:
    """A repr of an `S3Resource` with every secret replaced by whether it is set."""
    if resource is None:
        return "None"
    settings = resource.model_dump()
    shown = {
        name: (("<set>" if settings[name] else None) if name in _SECRET_FIELDS else settings[name])
        for name in sorted(settings)
    }
    return "S3Resource(" + ", ".join(f"{name}={value!r}" for name, value in shown.items()) + ")"


_SECRET_FIELDS = frozenset({"aws_access_key_id", "aws_secret_access_key", "aws_session_token"})
