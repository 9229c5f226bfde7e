"""The demo's jobs against moto (SigV4 enforced), configured only by PQ_BASE_PATH and AWS_*."""

import json
import uuid
from pathlib import Path

import polars as pl
import pytest

from tests.e2e.cli import IN_PROCESS, describe, run_dagster
from tests.servers import S3Endpoint

pytestmark = [pytest.mark.e2e, pytest.mark.s3]

WEEK = [f"2025-01-{day:02d}" for day in range(6, 13)]  # Monday 6 to Sunday 12 January


class RedactedEnv(dict[str, str]):
    """Environment variables whose repr (in pytest tracebacks) hides secret values."""

    def __repr__(self) -> str:
        return repr({k: "<redacted>" if "SECRET" in k else v for k, v in self.items()})


def aws_environment(endpoint: S3Endpoint, bucket: str) -> RedactedEnv:
    """The variables a user sets to point the demo at an S3 endpoint."""
    return RedactedEnv(
        {
            "PQ_BASE_PATH": f"s3://{bucket}/lake",
            "AWS_ACCESS_KEY_ID": endpoint.access_key_id,
            "AWS_SECRET_ACCESS_KEY": endpoint.secret_access_key,
            "AWS_REGION": endpoint.region,
            "AWS_ENDPOINT_URL": endpoint.endpoint_url,
        }
    )


def execute_job(job: str, tags: dict[str, str], workdir: Path, env: RedactedEnv) -> None:
    """`dagster job execute` one job of definitions.py in process, asserting success."""
    config = workdir / "in_process.json"  # JSON is YAML; `job execute` has no --config-json
    config.write_text(IN_PROCESS)
    command = ["job", "execute", "-f", "definitions.py", "-j", job, "--tags", json.dumps(tags)]
    result = run_dagster([*command, "-c", str(config)], workdir, env)
    assert result.returncode == 0, describe(result)
    assert endpoint_secret_absent(result.stdout + result.stderr, env)


def endpoint_secret_absent(output: str, env: RedactedEnv) -> bool:
    """The secret key never shows up in the CLI's output."""
    return env["AWS_SECRET_ACCESS_KEY"] not in output


def object_keys(endpoint: S3Endpoint, bucket: str) -> list[str]:
    """Every object key in the bucket, sorted."""
    pages = endpoint.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def read_s3(endpoint: S3Endpoint, uri: str) -> pl.DataFrame:
    """One Parquet object, read with polars and the endpoint's keys."""
    options = {
        "aws_access_key_id": endpoint.access_key_id,
        "aws_secret_access_key": endpoint.secret_access_key,
        "aws_region": endpoint.region,
        "aws_endpoint_url": endpoint.endpoint_url,
        "aws_allow_http": "true",
    }
    return pl.read_parquet(uri, storage_options=options)


def test_demo_jobs_on_s3(moto_endpoint: S3Endpoint, tmp_path: Path) -> None:
    """A week of the daily job (one partition, then a 7-day backfill run), the weekly job and
    the regional job, all on S3; then the objects are listed and read back."""
    bucket = f"demo-{uuid.uuid4().hex[:12]}"
    moto_endpoint.client().create_bucket(Bucket=bucket)
    env = aws_environment(moto_endpoint, bucket)
    execute_job("daily_orders_job", {"dagster/partition": WEEK[0]}, tmp_path, env)
    week_range = {
        "dagster/asset_partition_range_start": WEEK[0],
        "dagster/asset_partition_range_end": WEEK[-1],
    }
    execute_job("daily_orders_job", week_range, tmp_path, env)
    execute_job("weekly_sales_job", {"dagster/partition": WEEK[0]}, tmp_path, env)
    regional = {"dagster/partition": f"{WEEK[2]}|americas"}
    execute_job("regional_orders_job", regional, tmp_path, env)

    keys = object_keys(moto_endpoint, bucket)
    expected = {f"lake/raw_orders/order_date={day}/data.parquet" for day in WEEK}
    expected |= {f"lake/daily_sales/order_date={day}/data.parquet" for day in WEEK}
    expected |= {f"lake/weekly_sales/week_start={WEEK[0]}/data.parquet"}
    expected |= {f"lake/regional_orders/order_date={WEEK[2]}/region=americas/data.parquet"}
    # each asset's schema record, outside its dataset
    expected |= {
        f"lake/.pq-meta/{asset}/_schema.json"
        for asset in ("raw_orders", "daily_sales", "weekly_sales", "regional_orders")
    }
    expected |= {"lake/.pq-staging/.last-sweep"}  # when the last sweep was claimed
    assert set(keys) == expected, keys  # and no staging leftovers
    weekly = read_s3(
        moto_endpoint, f"s3://{bucket}/lake/weekly_sales/week_start={WEEK[0]}/data.parquet"
    )
    daily_orders = sum(
        read_s3(
            moto_endpoint, f"s3://{bucket}/lake/raw_orders/order_date={day}/data.parquet"
        ).height
        for day in WEEK
    )
    assert set(weekly["days"]) == {7}
    assert weekly["orders"].sum() == daily_orders
