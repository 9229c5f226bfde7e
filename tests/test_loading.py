"""Loading inputs: lazy scans with pushdown, only the partitions asked for, and credentials."""

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from dagster._core.types.dagster_type import resolve_dagster_type
from dagster_aws.s3 import S3Resource

from pq_io_manager import (
    ConfigurationError,
    CredentialsError,
    PartitionedParquetIOManager,
    WriteError,
)
from pq_io_manager.schema_record import SchemaRecord
from tests.lake import Lake, local_lake, s3_lake
from tests.servers import S3Endpoint
from tests.servers.moto_server import MotoServer
from tests.test_io_manager import DAILY, materialize, orders, orders_for, range_tags, ranged_orders

pytestmark = pytest.mark.every_s3_server


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def plan(orders: pl.LazyFrame) -> pl.DataFrame:
    query = orders.filter(pl.col("amount") > 1).select("order_id")
    return pl.DataFrame({"plan": [query.explain()], "rows": [query.collect().height]})


@dg.asset(
    partitions_def=dg.WeeklyPartitionsDefinition(start_date="2024-01-07"),
    metadata={"partition_by": "week"},
)
def per_day(orders: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.DataFrame({"day": list(orders), "rows": [frame.height for frame in orders.values()]})


def test_lazy_input_keeps_predicate_and_projection_pushdown(lake: Lake) -> None:
    materialize(lake, [orders], partition_key="2024-01-05")
    result = materialize(lake, [orders, plan], selection=[plan], partition_key="2024-01-05")

    explained = result.output_for_node("plan")["plan"][0]
    scan = explained[explained.index("Parquet SCAN") :]
    assert 'SELECTION: col("amount") > 1.0' in scan
    assert "PROJECT 2/4 COLUMNS" in scan  # of the file's 3 columns and the typed hive column
    assert result.output_for_node("plan")["rows"][0] == 3


def test_dict_input_is_keyed_by_partition_key(lake: Lake) -> None:
    for day in ["2024-01-07", "2024-01-09"]:
        materialize(lake, [orders], partition_key=day)
    upstream = dg.AssetIn(metadata={"allow_missing_partitions": True})

    @dg.asset(
        name="per_day",
        ins={"orders": upstream},
        partitions_def=per_day.partitions_def,
        metadata={"partition_by": "week"},
    )
    def tolerant(orders: dict[str, pl.DataFrame]) -> pl.DataFrame:
        return per_day(orders)

    result = materialize(lake, [orders, tolerant], selection=[tolerant], partition_key="2024-01-07")
    assert result.output_for_node("per_day").rows() == [("2024-01-07", 4), ("2024-01-09", 4)]


def load_requests(server: MotoServer, lake: Lake, partitions: int) -> list[tuple[str, str]]:
    """The requests sent while loading one partition of an asset holding `partitions`."""
    keys = DAILY.get_partition_keys()[:partitions]
    materialize(lake, [ranged_orders], tags=range_tags(keys[0], keys[-1]))  # one run writes all
    manager = lake.io_manager()
    context = dg.build_input_context(
        asset_key=dg.AssetKey("orders"),
        partition_key=keys[-1],
        asset_partitions_def=DAILY,
        dagster_type=resolve_dagster_type(pl.DataFrame),
        upstream_output=dg.build_output_context(
            asset_key=dg.AssetKey("orders"), definition_metadata={"partition_by": "date"}
        ),
    )
    server.proxy.reset_counts()
    loaded = manager.load_input(context)
    assert loaded.height == 4
    return [
        (record.method, record.path.split("?")[0].split("/")[-1] or "?")
        for record in server.proxy.requests
    ]


@pytest.mark.s3
def test_loading_one_partition_costs_the_same_whatever_the_asset_size(
    moto_server: MotoServer,
) -> None:
    endpoint = moto_server.endpoint
    small = s3_lake(endpoint, _bucket(endpoint, "small"))
    large = s3_lake(endpoint, _bucket(endpoint, "large"))

    few = load_requests(moto_server, small, 2)
    many = load_requests(moto_server, large, 40)

    assert len(few) == len(many)
    listing = [record for record in moto_server.proxy.requests if "list-type" in record.path]
    assert listing == []
    assert {method for method, _ in many} <= {"GET", "HEAD"}


def _bucket(endpoint: S3Endpoint, label: str) -> str:
    import uuid

    name = f"{label}-{uuid.uuid4().hex[:12]}"
    endpoint.client().create_bucket(Bucket=name)
    return name


def test_partitioned_write_with_explicit_credentials(s3_endpoint: S3Endpoint, bucket: str) -> None:
    manager = PartitionedParquetIOManager(
        base_path=f"s3://{bucket}/seed",
        s3=S3Resource(
            aws_access_key_id=s3_endpoint.access_key_id,
            aws_secret_access_key=s3_endpoint.secret_access_key,
            endpoint_url=s3_endpoint.endpoint_url,
            region_name=s3_endpoint.region,
        ),
    )
    dg.materialize([orders], partition_key="2024-01-05", resources={"io_manager": manager})

    listed = s3_endpoint.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == [
        "seed/.pq-meta/orders/_schema.json",
        "seed/.pq-staging/.last-sweep",  # the start-of-run sweep's claim, outside the dataset
        "seed/orders/date=2024-01-05/data.parquet",
    ]


def test_write_without_credentials_fails_fast_and_writes_nothing(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    manager = PartitionedParquetIOManager(
        base_path=f"s3://{bucket}/seed",
        s3=S3Resource(endpoint_url=s3_endpoint.endpoint_url, region_name=s3_endpoint.region),
    )
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        dg.materialize([orders], partition_key="2024-01-05", resources={"io_manager": manager})
    assert isinstance(raised.value.__cause__, CredentialsError)
    assert "no AWS credentials found" in str(raised.value.__cause__)
    assert s3_endpoint.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_wrong_secret_is_refused_by_the_server_and_writes_nothing(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    manager = PartitionedParquetIOManager(
        base_path=f"s3://{bucket}/seed",
        s3=S3Resource(
            aws_access_key_id=s3_endpoint.access_key_id,
            aws_secret_access_key="not-the-secret",
            endpoint_url=s3_endpoint.endpoint_url,
            region_name=s3_endpoint.region,
            max_attempts=1,
        ),
    )
    with pytest.raises(
        WriteError,
        match=r"(?s)asset 'orders' partition '2024-01-05'.*(403|Forbidden|SignatureDoesNotMatch)",
    ):
        dg.materialize([orders], partition_key="2024-01-05", resources={"io_manager": manager})
    assert s3_endpoint.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_dataframe_input_is_collected(lake: Lake) -> None:
    @dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
    def eager(orders: pl.DataFrame) -> pl.DataFrame:
        assert isinstance(orders, pl.DataFrame)
        return orders

    materialize(lake, [orders], partition_key="2024-01-05")
    result = materialize(lake, [orders, eager], selection=[eager], partition_key="2024-01-05")
    assert result.output_for_node("eager").drop("date").equals(orders_for("2024-01-05"))


def test_each_load_reuses_the_decoded_schema_record(monkeypatch: pytest.MonkeyPatch) -> None:
    record = SchemaRecord(
        {"column_only_this_test_stores": pl.Int64()}, {}, {"day_of_it": pl.Date()}
    )
    stored = record.to_bytes()
    decodes: list[object] = []
    read_ipc = pl.read_ipc

    def counted(source: Any, **options: Any) -> pl.DataFrame:
        decodes.append(source)
        return read_ipc(source, **options)

    monkeypatch.setattr(pl, "read_ipc", counted)

    loads = [SchemaRecord.from_bytes(stored) for _ in range(3)]

    assert all(load.schema() == record.schema() for load in loads)
    assert len(decodes) == 2  # the data and the partition schema, once each


def test_the_columns_metadata_selects_data_columns_of_lazy_and_dict_inputs(
    tmp_path: Path,
) -> None:
    lake = local_lake(tmp_path / "lake")  # what S3 requests it costs: tests/test_pruning.py
    for day in ["2024-01-05", "2024-01-06"]:
        materialize(lake, [orders], partition_key=day)
    picked = {"columns": ["amount", "order_id"], "allow_missing_partitions": True}
    seen: dict[str, Any] = {}

    upstream = {"orders": dg.AssetIn(metadata=picked)}

    @dg.asset(ins=upstream)
    def whole(orders: pl.LazyFrame) -> None:
        seen["whole"] = orders.collect()

    @dg.asset(ins=upstream)
    def each(orders: dict[str, pl.DataFrame]) -> None:
        seen["each"] = orders

    materialize(lake, [orders, whole, each], selection=[whole, each])

    assert seen["whole"].columns == ["amount", "order_id"]  # not country, nor the date
    assert seen["whole"].height == 8
    assert list(seen["each"]) == ["2024-01-05", "2024-01-06"]
    for day, frame in seen["each"].items():
        assert frame.equals(orders_for(day).select("amount", "order_id"))


@pytest.mark.parametrize(
    ("columns", "refused"),
    [
        ("amount", r"not 'amount' \(one column is a list too: \['amount'\]\)"),
        (["amount", 3], r"not \['amount', 3\]"),
        ([], r"must be a non-empty list of column names.*not \[\]"),
    ],
    ids=["string", "not-a-string", "empty"],
)
def test_a_malformed_columns_metadata_is_refused(
    tmp_path: Path, columns: object, refused: str
) -> None:
    lake = local_lake(tmp_path / "lake")

    @dg.asset(partitions_def=DAILY, ins={"orders": dg.AssetIn(metadata={"columns": columns})})
    def picky(orders: pl.DataFrame) -> None:
        raise AssertionError("never called: the input is refused first")

    with pytest.raises(
        ConfigurationError,
        match=rf"input 'orders' of asset 'orders' partition '2024-01-05'.*{refused}",
    ):
        materialize(lake, [orders, picky], selection=[picky], partition_key="2024-01-05")
