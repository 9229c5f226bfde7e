"""No secret leaks, no unsigned request, no write outside the asset's directory."""

import traceback
import uuid
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._serdes import serialize_value

from pq_io_manager import PartitionedParquetIOManager
from tests.faults_support import (
    failing_at_the_end,
    payload,
    proxied_server,
    s3_resource,
    server_endpoint,
)
from tests.lake import s3_lake
from tests.servers.http_proxy import read_request_log
from tests.test_faults import SERVERS, events_asset

WRONG_SECRET = "WrongSecret-" + uuid.uuid4().hex


def everything_recorded(instance: dg.DagsterInstance, error: BaseException | None) -> str:
    """Every event, run record and error text a user or operator could see."""
    texts = []
    for run in instance.get_runs():
        texts.append(serialize_value(run))
        texts += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    if error is not None:
        texts += traceback.format_exception(error)
        texts += [repr(error), str(error)]
    return "\n".join(texts)


@pytest.mark.parametrize("server", SERVERS)
def test_no_secret_in_events_metadata_logs_errors_or_reprs(
    request: pytest.FixtureRequest,
    server: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, _ = server_endpoint(request, server)
    bucket = f"secrets-{uuid.uuid4().hex[:12]}"
    endpoint.client().create_bucket(Bucket=bucket)
    lake = s3_lake(endpoint, bucket)
    good = lake.io_manager()
    wrong = PartitionedParquetIOManager(
        base_path=lake.base_path,
        s3=s3_resource(endpoint, aws_secret_access_key=WRONG_SECRET, max_attempts=1),
    )
    ok = events_asset(lambda key: payload(key, 100))
    failing = events_asset(lambda key: failing_at_the_end(payload(key, 300_000), 300_000))

    @dg.asset(partitions_def=ok.partitions_def, metadata={"partition_by": "date"})
    def downstream(events: pl.LazyFrame) -> pl.LazyFrame:
        return events

    recorded = []
    with dg.instance_for_test() as instance:
        runs = [
            ([ok], good, "2024-01-05"),  # success: metadata, log lines
            ([ok, downstream], good, "2024-01-05"),  # a read
            ([failing], good, "2024-01-05"),  # a failure mid-stream
            ([ok, downstream], good, "2024-01-09"),  # a missing upstream partition
            ([ok], wrong, "2024-01-06"),  # refused by the server
        ]
        for assets, manager, key in runs:
            selection = assets[-1:]
            try:
                dg.materialize(
                    assets,
                    selection=selection,
                    partition_key=key,
                    instance=instance,
                    resources={"io_manager": manager},
                )
                error = None
            except Exception as raised:
                error = raised
            recorded.append(everything_recorded(instance, error))
        recorded += [repr(good), str(good), repr(wrong), str(wrong)]
    captured = capfd.readouterr()
    recorded += [captured.out, captured.err, caplog.text]
    text = "\n".join(recorded)

    assert "wrote 100 rows" in text
    assert "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text or "403" in text
    for secret in [endpoint.secret_access_key, WRONG_SECRET]:
        assert secret not in text


@pytest.mark.parametrize("server", SERVERS)
def test_every_request_is_signed(
    request: pytest.FixtureRequest, server: str, tmp_path: Path
) -> None:
    """A logging proxy of the test's own in front of each server records every request of a
    write, a read, a failure and the start-of-process sweep."""
    endpoint, _ = server_endpoint(request, server)
    bucket = f"signed-{uuid.uuid4().hex[:12]}"
    endpoint.client().create_bucket(Bucket=bucket)
    log = tmp_path / "requests.jsonl"
    with proxied_server(request, server, log_path=log) as (proxied, _):
        lake = s3_lake(proxied, bucket)
        ok = events_asset(lambda key: payload(key, 1000))

        @dg.asset(partitions_def=ok.partitions_def, metadata={"partition_by": "date"})
        def downstream(events: pl.DataFrame) -> pl.DataFrame:
            return events

        resources = {"io_manager": lake.io_manager()}
        dg.materialize([ok, downstream], partition_key="2024-01-05", resources=resources)
        with pytest.raises(Exception, match="no data"):
            dg.materialize(
                [ok, downstream],
                selection=[downstream],
                partition_key="2024-01-06",
                resources=resources,
            )

    records = read_request_log(log)
    methods = {record["method"] for record in records}
    assert {"GET", "PUT", "POST", "HEAD"} <= methods
    sweeps = [r for r in records if r["method"] == "GET" and "uploads" in r["path"]]
    assert sweeps, "the start-of-process sweep did not list multipart uploads"
    unsigned = [record for record in records if record["authorization"] != "sigv4-header"]
    assert unsigned == []
    assert all(record["status"] in (200, 204, 206, 404) for record in records), records


@pytest.mark.parametrize("server", SERVERS)
def test_partition_keys_and_values_never_address_anything_outside_the_asset(
    request: pytest.FixtureRequest, server: str
) -> None:
    endpoint, _ = server_endpoint(request, server)
    bucket = f"escape-{uuid.uuid4().hex[:12]}"
    client = endpoint.client()
    client.create_bucket(Bucket=bucket)
    for key in ["outside.txt", "lake/victim/data.parquet"]:
        client.put_object(Bucket=bucket, Key=key, Body=b"keep me")
    lake = s3_lake(endpoint, bucket)
    evil = ["..", "../victim", "../../outside.txt", "a/../../b", "/abs", "%2e%2e", "x\\..\\y"]

    @dg.asset(
        name="events",
        partitions_def=dg.StaticPartitionsDefinition(evil),
        metadata={"partition_by": "label"},
    )
    def static(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"value": [1]})

    @dg.asset(name="split", metadata={"partition_by": ["label"]})
    def split() -> pl.DataFrame:
        return pl.DataFrame({"label": evil, "value": list(range(len(evil)))})

    for key in evil:
        dg.materialize([static], partition_key=key, resources={"io_manager": lake.io_manager()})
    dg.materialize([split], resources={"io_manager": lake.io_manager()})

    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    own = sorted(key for key in keys if key.startswith("lake/.pq-meta/"))
    assert own == [  # the IO manager's own records, outside every dataset
        "lake/.pq-meta/events/_schema.json",
        "lake/.pq-meta/split/_schema.json",
        "lake/.pq-meta/split/_writer.json",
    ]
    housekeeping = {"lake/.pq-staging/.last-sweep"}  # the start-of-run sweep's claim
    written = sorted(set(keys) - {"outside.txt", "lake/victim/data.parquet", *own, *housekeeping})
    assert len(written) == 2 * len(evil)
    for key in written:
        asset, directory, name = key.removeprefix("lake/").split("/")
        assert asset in {"events", "split"}
        assert directory.startswith("label=")
        assert name == "data.parquet"
        assert "\\" not in directory
    for key in ["outside.txt", "lake/victim/data.parquet"]:
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"keep me"
