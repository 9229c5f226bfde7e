"""What the Dagster UI shows about loads and writes: input metadata on LOADED_INPUT events,
column types as polars prints them, and the optional preview of an output's first rows."""

import datetime as dt
import threading
from typing import Any

import dagster as dg
import polars as pl
import pydantic
import pytest

from pq_io_manager import ConfigurationError, PartitionedParquetIOManager
from pq_io_manager.input_metadata import input_metadata
from pq_io_manager.layout import PartitionColumn
from pq_io_manager.preview import (
    MAX_CELL_CHARACTERS,
    MAX_PREVIEW_COLUMNS,
    markdown_table,
    preview_markdown,
    short_dtype,
)
from pq_io_manager.storage import Dataset, WrittenFile
from pq_io_manager.stores import LocalStore
from tests.lake import Lake
from tests.test_io_manager import orders, range_tags

LETTERS = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.asset(partitions_def=LETTERS, metadata={"partition_by": "letter"})
def letters(context: dg.AssetExecutionContext) -> pl.DataFrame:
    keys = context.partition_keys
    rows = [key for index, key in enumerate(keys) for _ in range(100 * (index + 1))]
    return pl.DataFrame({"letter": rows, "value": range(len(rows))})


@dg.asset
def letter_count(letters: pl.LazyFrame) -> pl.DataFrame:
    return letters.select(pl.len()).collect()


@dg.asset(partitions_def=LETTERS, metadata={"partition_by": "letter"})
def letter_copy(letters: pl.LazyFrame) -> pl.LazyFrame:
    return letters


def previewing(lake: Lake, preview_rows: int) -> PartitionedParquetIOManager:
    """The lake's IO manager with the `preview_rows` field set."""
    return PartitionedParquetIOManager(
        base_path=lake.base_path, s3=lake.resource, preview_rows=preview_rows
    )


def loaded_inputs(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    """The metadata of each LOADED_INPUT event of a run, by input name, as stored values."""
    found = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.LOADED_INPUT):
        assert entry.dagster_event is not None
        data = entry.dagster_event.event_specific_data
        found[data.input_name] = {key: value.value for key, value in data.metadata.items()}
    return found


def output_metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    metadata = result.asset_materializations_for_node(node)[0].metadata
    return {key: value.value for key, value in metadata.items()}


def test_loaded_input_events_carry_partitions_files_bytes_and_uri(lake: Lake) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"io_manager": lake.io_manager()}
    dg.materialize([letters], resources=resources, instance=instance, tags=range_tags("a", "c"))
    sizes = {key: lake.size(f"letters/letter={key}/data.parquet") for key in "abc"}

    several = dg.materialize(
        [letters, letter_count], selection=[letter_count], resources=resources, instance=instance
    )
    one = dg.materialize(
        [letters, letter_copy],
        selection=[letter_copy],
        resources=resources,
        instance=instance,
        partition_key="b",
    )

    assert loaded_inputs(instance, several.run_id) == {
        "letters": {
            "partitions": 3,
            "files": 3,
            "size_bytes": sum(sizes.values()),  # from the listing that proved they exist
            "uri": lake.uri("letters"),
        }
    }
    expected_one = {"partitions": 1, "files": 1, "uri": lake.uri("letters/letter=b")}
    if lake.endpoint is None:  # a local size is one stat; on S3 it would be a HEAD request
        expected_one["size_bytes"] = sizes["b"]
    assert loaded_inputs(instance, one.run_id) == {"letters": expected_one}
    # Dagster also records one partition's input metadata as an observation of the upstream
    observed = instance.all_logs(one.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION)
    assert [entry.asset_observation.partition for entry in observed] == ["b"]


def test_input_metadata_asks_no_store_for_sizes_it_was_not_given() -> None:
    # no store and no server here: an S3 size the listing did not return is left out
    column = PartitionColumn("letter", pl.String(), "a")
    files = [("a", "s3://bucket/lake/letters/letter=a/data.parquet", (column,))]

    metadata = input_metadata("s3://bucket/lake/letters", files, {})

    assert "size_bytes" not in metadata
    assert metadata["files"] == 1
    listed = {files[0][1]: 1234}
    assert input_metadata("s3://bucket/lake/letters", files, listed)["size_bytes"] == 1234


@dg.asset(metadata={"preview_rows": 3})
def typed() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "at": [dt.datetime(2025, 1, day, tzinfo=dt.UTC) for day in range(1, 6)],
            "count": list(range(5)),
            "name": ["a|b", "c", None, "e", "f"],
            "tags": [[1, 2], [3], [], [4], [5]],
            "price": pl.Series([1.5, 2.0, 3.25, 4.0, 5.0]).cast(pl.Decimal(10, 2)),
        },
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )


def test_column_schema_shows_types_as_polars_prints_them(tmp_path: Any) -> None:
    manager = Lake("local", str(tmp_path / "lake")).io_manager()
    result = dg.materialize([typed], resources={"io_manager": manager})

    schema = output_metadata(result, "typed")["dagster/column_schema"]
    assert [(column.name, column.type) for column in schema.columns] == [
        ("at", "datetime[μs, UTC]"),
        ("count", "i64"),
        ("name", "str"),
        ("tags", "list[i64]"),
        ("price", "decimal[10,2]"),
    ]


def test_preview_is_off_by_default(tmp_path: Any) -> None:
    manager = Lake("local", str(tmp_path / "lake")).io_manager()
    result = dg.materialize([orders], resources={"io_manager": manager}, partition_key="2024-01-05")

    assert "preview" not in output_metadata(result, "orders")


def test_preview_field_shows_the_first_rows_of_a_dataframe(tmp_path: Any) -> None:
    manager = previewing(Lake("local", str(tmp_path / "lake")), 2)
    result = dg.materialize([orders], resources={"io_manager": manager}, partition_key="2024-01-05")

    preview = output_metadata(result, "orders")["preview"]
    assert preview.splitlines()[:4] == [
        "| order_id (i64) | amount (f64) | country (str) |",
        "| --- | --- | --- |",
        "| 2024010500 | 0.5 | fr |",
        "| 2024010501 | 1.5 | de |",
    ]
    assert preview.splitlines()[-1] == "_First 2 row(s)._"


def test_asset_metadata_overrides_the_preview_field(tmp_path: Any) -> None:
    lake = Lake("local", str(tmp_path / "lake"))

    @dg.asset(
        name="orders",
        partitions_def=orders.partitions_def,
        metadata={"preview_rows": 0, "partition_by": "date"},
    )
    def quiet(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"x": [1, 2, 3]})

    shown = dg.materialize([typed], resources={"io_manager": lake.io_manager()})
    hidden = dg.materialize(
        [quiet], resources={"io_manager": previewing(lake, 5)}, partition_key="2024-01-05"
    )

    rows = output_metadata(shown, "typed")["preview"].splitlines()
    assert rows[0] == (
        "| at (datetime[μs, UTC]) | count (i64) | name (str) | tags (list[i64]) "
        "| price (decimal[10,2]) |"
    )
    assert rows[2:5] == [
        "| 2025-01-01 00:00:00+00:00 | 0 | a\\|b | [1, 2] | 1.50 |",
        "| 2025-01-02 00:00:00+00:00 | 1 | c | [3] | 2.00 |",
        "| 2025-01-03 00:00:00+00:00 | 2 | null | [] | 3.25 |",
    ]
    assert len(rows) == 2 + 3 + 2  # header, 3 rows, blank line, note
    assert "preview" not in output_metadata(hidden, "orders")


@pytest.mark.parametrize("value", [-1, 101, "5", 2.5, True])
def test_bad_preview_rows_metadata_is_refused_before_writing(tmp_path: Any, value: Any) -> None:
    lake = Lake("local", str(tmp_path / "lake"))

    @dg.asset(name="orders", metadata={"preview_rows": value})
    def bad() -> pl.DataFrame:
        return pl.DataFrame({"x": [1]})

    with pytest.raises(ConfigurationError, match=r"asset 'orders': metadata 'preview_rows'"):
        dg.materialize([bad], resources={"io_manager": lake.io_manager()})
    assert lake.files() == []


@pytest.mark.parametrize("value", [-1, 101])
def test_bad_preview_rows_field_is_refused_when_the_io_manager_is_built(value: int) -> None:
    with pytest.raises(pydantic.ValidationError, match="preview_rows"):
        PartitionedParquetIOManager(base_path="unused", preview_rows=value)


def test_preview_never_evaluates_a_lazyframe_again(lake: Lake) -> None:
    """The preview reads the file just written: the asset's query runs once, for the write."""
    evaluated = {"rows": 0}
    lock = threading.Lock()

    def counted(batch: pl.DataFrame) -> pl.DataFrame:
        with lock:
            evaluated["rows"] += batch.height
        return batch

    def lazy_orders(key: str) -> pl.LazyFrame:
        day = dt.date.fromisoformat(key)  # stored in the hive directory, not in the file
        frame = pl.LazyFrame({"order_id": range(50_000), "amount": [1.5] * 50_000, "date": day})
        return frame.map_batches(counted, schema=frame.collect_schema())

    @dg.asset(
        name="orders", partitions_def=orders.partitions_def, metadata={"partition_by": "date"}
    )
    def lazy(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        return lazy_orders(context.partition_key)

    def run(preview_rows: int) -> dict[str, Any]:
        evaluated["rows"] = 0
        manager = previewing(lake, preview_rows)
        result = dg.materialize(
            [lazy], resources={"io_manager": manager}, partition_key="2024-01-05"
        )
        return output_metadata(result, "orders")

    run(0)
    without_preview = evaluated["rows"]
    metadata = run(3)

    assert evaluated["rows"] == without_preview  # no second evaluation, not even a head
    lines = metadata["preview"].splitlines()
    assert lines[0] == "| order_id (i64) | amount (f64) | date (date) |"  # the output's columns
    assert lines[2:5] == [f"| {index} | 1.5 | 2024-01-05 |" for index in range(3)]


def test_a_run_over_several_partitions_previews_its_first_rows(tmp_path: Any) -> None:
    manager = previewing(Lake("local", str(tmp_path / "lake")), 2)
    result = dg.materialize([letters], resources={"io_manager": manager}, tags=range_tags("a", "c"))

    lines = output_metadata(result, "letters")["preview"].splitlines()
    assert lines[:4] == [
        "| letter (str) | value (i64) |",
        "| --- | --- |",
        "| a | 0 |",
        "| a | 1 |",
    ]
    assert lines[-1] == "_The first rows of this run's output, which wrote 3 files._"


def test_a_failed_read_back_is_told_in_the_preview_not_raised(tmp_path: Any) -> None:
    root = str(tmp_path / "gone")
    dataset = Dataset(LocalStore(str(tmp_path)), str(tmp_path), root)
    removed = WrittenFile(f"{root}/data.parquet", (), row_count=1, size_bytes=None)

    text = preview_markdown(pl.LazyFrame({"x": [1]}), dataset, [removed], rows=3)

    assert text is not None
    assert text.startswith(f"_No preview: reading the first rows of {root}/data.parquet failed")


def test_markdown_table_is_bounded_in_rows_columns_and_characters() -> None:
    wide = pl.DataFrame({f"c{index}": ["x" * 500] * 100 for index in range(30)})

    table = markdown_table(wide, max_characters=4_000)

    lines = table.splitlines()
    assert len(table) <= 4_000 + 100  # the note after the rows
    assert lines[0].count(" | ") == MAX_PREVIEW_COLUMNS - 1
    assert ("x" * (MAX_CELL_CHARACTERS - 1) + "…") in lines[2]
    assert "x" * MAX_CELL_CHARACTERS not in table
    shown = len(lines) - 4
    assert 0 < shown < 100
    assert lines[-1] == f"_First {shown} row(s); 10 more column(s) not shown._"


def test_short_dtype_is_polars_frame_header_text() -> None:
    frame = pl.DataFrame(schema={"at": pl.Datetime("ns", "Europe/Paris"), "day": pl.Date})

    header = repr(frame).splitlines()
    assert short_dtype(pl.Datetime("ns", "Europe/Paris")) in header[-3]
    assert short_dtype(pl.Date()) == "date"
