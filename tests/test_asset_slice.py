"""The value object the adapter builds from a Dagster context."""

import datetime as dt

import dagster as dg
import polars as pl

from pq_io_manager.asset_slice import OpOutput, output_slice

HOURLY = dg.HourlyPartitionsDefinition("2025-11-01-00:00", timezone="America/New_York")
MULTI = dg.MultiPartitionsDefinition(
    {
        "day": dg.DailyPartitionsDefinition("2025-01-01"),
        "region": dg.StaticPartitionsDefinition(["eu", "us"]),
    }
)

FRAME = dg.DagsterType(lambda _, __: True, name="frame", typing_type=pl.DataFrame)


def test_time_partitions_are_described_as_time_windows() -> None:
    context = dg.build_output_context(
        asset_key=dg.AssetKey(["readings"]),
        partition_key="2025-11-02-01:00-0500",  # the repeated autumn hour, second time
        asset_partitions_def=HOURLY,
        definition_metadata={"partition_by": "hour"},
        dagster_type=FRAME,
    )
    target = output_slice(context)

    assert target.partitioned
    assert [part.key for part in target.partitions] == ["2025-11-02-01:00-0500"]
    window = target.time_window
    assert window is not None
    assert window.start.astimezone(dt.UTC) == dt.datetime(2025, 11, 2, 6, tzinfo=dt.UTC)
    assert window.end - window.start == dt.timedelta(hours=1)
    assert target.where == "asset 'readings' partition '2025-11-02-01:00-0500'"


def test_multi_partitions_have_the_window_of_their_time_dimension() -> None:
    key = dg.MultiPartitionKey({"day": "2025-01-03", "region": "eu"})
    context = dg.build_output_context(
        asset_key=dg.AssetKey(["sales"]),
        partition_key=key,
        asset_partitions_def=MULTI,
        definition_metadata={"partition_by": {"day": "day", "region": "region"}},
        dagster_type=FRAME,
    )
    target = output_slice(context)

    window = target.time_window_of(key)
    assert window is not None
    assert window.start.date() == dt.date(2025, 1, 3)
    assert [column.name for column in target.partitions[0].columns] == ["day", "region"]


def test_op_outputs_live_outside_every_asset_and_encode_step_keys() -> None:
    output = OpOutput("run-1", "tagged[fr]", "result", None)

    assert (
        output.root("s3://bucket/lake") == "s3://bucket/lake/.pq-runs/run-1/tagged%5Bfr%5D/result"
    )
    assert OpOutput("r", "fan", "out", "de").root("/lake") == "/lake/.pq-runs/r/fan/out/de"
