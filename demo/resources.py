"""Resources configured from the environment only: nothing is hard-coded, no secret is printed.

- `PQ_BASE_PATH`: where the lake lives; a local directory (default `data/lake`, relative to the
  working directory) or `s3://bucket/prefix`.
- `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_PROFILE`,
  `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL`: passed to the `S3Resource` as
  `dagster.EnvVar` references when they are set (the UI shows the variable name, never the
  value); unset ones are left to boto3's default chain, so zero variables is a valid setup.
"""

import os

from dagster import EnvVar
from dagster_aws.s3 import S3Resource

from pq_io_manager import DEFAULT_BASE_PATH, PartitionedParquetIOManager

BASE_PATH_VARIABLE = "PQ_BASE_PATH"
# S3Resource field -> environment variables, first set one wins.
S3_VARIABLES: dict[str, tuple[str, ...]] = {
    "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "aws_session_token": ("AWS_SESSION_TOKEN",),
    "profile_name": ("AWS_PROFILE",),
    "region_name": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "endpoint_url": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
}


def base_path() -> str:
    """The lake location: `PQ_BASE_PATH`, or the local default when it is unset or empty."""
    return os.environ.get(BASE_PATH_VARIABLE) or DEFAULT_BASE_PATH


def uses_s3() -> bool:
    """Whether the lake is on S3 (decides the assets' storage kind tag)."""
    return base_path().startswith("s3://")


def s3_resource() -> S3Resource:
    """An `S3Resource` reading every setting that is present from the `AWS_*` variables."""
    settings: dict[str, EnvVar] = {}
    for field, variables in S3_VARIABLES.items():
        present = [name for name in variables if os.environ.get(name)]
        if present:
            settings[field] = EnvVar(present[0])
    return S3Resource(**settings)


def io_manager(s3: S3Resource) -> PartitionedParquetIOManager:
    """The lake's IO manager on `base_path()`; `s3` only matters for an s3:// path."""
    return PartitionedParquetIOManager(base_path=base_path(), s3=s3)


def resources() -> dict[str, object]:
    """The resource dict of the demo's `Definitions`."""
    s3 = s3_resource()
    return {"io_manager": io_manager(s3), "s3": s3}
