"""A run over many partitions reports each partition's own row count, URI and size."""

import dagster as dg
import polars as pl
import pytest

from tests.lake import Lake
from tests.test_io_manager import DAILY, range_tags

STATIC = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.asset(
    partitions_def=DAILY,
    metadata={"partition_by": "date"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def events(context: dg.AssetExecutionContext) -> pl.DataFrame:
    # a different number of rows per day: day N of January has N rows
    window = context.partition_time_window
    days = pl.date_range(window.start.date(), window.end.date(), closed="left", eager=True)
    return pl.DataFrame({"date": [day for day in days for _ in range(day.day)]}).with_columns(
        value=pl.int_range(pl.len())
    )


@dg.asset(partitions_def=STATIC, metadata={"partition_by": "letter"})
def letters(context: dg.AssetExecutionContext) -> pl.LazyFrame:
    keys = context.partition_keys
    rows = [key for index, key in enumerate(keys) for _ in range(index + 1)]
    return pl.LazyFrame({"letter": rows, "value": range(len(rows))})


def materializations(
    instance: dg.DagsterInstance, asset: str
) -> dict[str, dg.AssetMaterialization]:
    """The instance's materialization event of each partition of `asset`."""
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
    found = {}
    for record in records:
        materialization = record.asset_materialization
        assert materialization is not None
        assert materialization.partition is not None
        found[materialization.partition] = materialization
    return found


@pytest.mark.parametrize(
    ("asset", "column", "first", "last", "keys"),
    [
        (
            events,
            "date",
            "2024-01-01",
            "2024-01-04",
            ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
        ),
        (letters, "letter", "a", "c", ["a", "b", "c"]),
    ],
    ids=["daily", "static"],
)
def test_each_partition_reports_its_own_rows_uri_and_size(
    lake: Lake,
    asset: dg.AssetsDefinition,
    column: str,
    first: str,
    last: str,
    keys: list[str],
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize(
        [asset],
        resources={"io_manager": lake.io_manager()},
        instance=instance,
        tags=range_tags(first, last),
    )

    found = materializations(instance, asset.key.path[-1])
    assert sorted(found) == keys
    counts = []
    for key, materialization in found.items():
        directory = f"{asset.key.path[-1]}/{column}={key}"
        stored = f"{directory}/data.parquet"
        metadata = materialization.metadata
        counts.append(metadata["dagster/partition_row_count"].value)
        assert metadata["dagster/partition_row_count"].value == lake.read(stored).height
        assert metadata["dagster/uri"].value == lake.uri(directory)
        assert metadata["size_bytes"].value == lake.size(stored)
        assert metadata["files"].value == [lake.uri(stored)]
        assert "dagster/column_schema" in metadata
    assert len(set(counts)) == len(keys)  # every partition its own count, not the run's sum


def test_a_range_written_through_a_bare_output_context_keeps_the_run_totals(
    tmp_path: object,
) -> None:
    """Users unit-test IO managers with `build_output_context` (no step context): a range write
    still works and reports the run's totals."""
    from pathlib import Path

    from tests.lake import local_lake

    lake = local_lake(Path(str(tmp_path)) / "lake")
    manager = lake.io_manager()
    context = dg.build_output_context(
        asset_key=dg.AssetKey("events"),
        partition_key=None,
        definition_metadata={"partition_by": "date"},
        asset_partitions_def=DAILY,
        asset_partition_key_range=dg.PartitionKeyRange("2024-01-05", "2024-01-06"),
        dagster_type=dg.DagsterType(lambda _, value: True, name="frame", typing_type=pl.DataFrame),
    )
    frame = pl.DataFrame({"date": ["2024-01-05", "2024-01-06"], "amount": [1.0, 2.0]})

    manager.handle_output(context, frame)

    assert lake.files("events/") == [
        "events/date=2024-01-05/data.parquet",
        "events/date=2024-01-06/data.parquet",
    ]
