"""The materialization metadata of a write: per output, and per partition of a range run."""

import posixpath
from collections.abc import Sequence
from typing import Any

from dagster import MetadataValue, TableColumn, TableSchema

from pq_io_manager.asset_slice import AssetSlice
from pq_io_manager.frames import Frame
from pq_io_manager.preview import preview_markdown, short_dtype
from pq_io_manager.storage import Dataset, WrittenFile
from pq_io_manager.write_options import WRITE_OPTIONS_KEY


def output_metadata(
    target: AssetSlice,
    dataset: Dataset,
    frame: Frame,
    written: Sequence[WrittenFile],
    preview_rows: int = 0,
) -> dict[str, Any]:
    """Row count, column schema (types as polars prints them: `datetime[μs, UTC]`), URI, files
    and size of everything one output wrote, the Parquet write options it was written with, and
    a `preview` of its first `preview_rows` rows."""
    schema = frame.collect_schema()
    metadata = {
        **_files_metadata(target, written, dataset.root),
        "dagster/column_schema": TableSchema(
            columns=[TableColumn(name, short_dtype(dtype)) for name, dtype in schema.items()]
        ),
        WRITE_OPTIONS_KEY: MetadataValue.json(dataset.write_options.describe()),
    }
    preview = preview_markdown(frame, dataset, written, preview_rows)
    if preview is not None:
        metadata["preview"] = MetadataValue.md(preview)
    return metadata


def partition_metadata(
    target: AssetSlice, dataset: Dataset, written: Sequence[WrittenFile]
) -> dict[str, dict[str, Any]]:
    """For a run over several partitions, each partition's own row count, URI, files and size
    (merged by Dagster over the output metadata on that partition's materialization)."""
    if len(target.partitions) < 2:
        return {}  # one partition: the output metadata is already its own
    by_uri = {file.uri: file for file in written}
    found = ((part.key, by_uri.get(dataset.file_for(part.columns))) for part in target.partitions)
    return {
        key: _files_metadata(target, [file], dataset.root)
        for key, file in found
        if file is not None
    }


def _files_metadata(
    target: AssetSlice, written: Sequence[WrittenFile], root: str
) -> dict[str, Any]:
    count_key = "dagster/partition_row_count" if target.partitioned else "dagster/row_count"
    # one file: its directory (a partition's column=value directory); several: the asset's root
    uri = posixpath.dirname(written[0].uri) if len(written) == 1 else root
    return {
        count_key: sum(file.row_count for file in written),
        "dagster/uri": MetadataValue.path(uri),
        "files": MetadataValue.json([file.uri for file in written]),
        "size_bytes": sum(file.size_bytes or 0 for file in written),
    }


def written_line(written: Sequence[WrittenFile], root: str) -> str:
    """The log line of an output's files."""
    # one line per output, not per file: each line is an event Dagster stores (a 90-partition
    # backfill spent a third of its run overhead storing 90 of them)
    if len(written) == 1:
        (file,) = written
        return f"wrote {file.row_count} rows ({file.size_bytes} bytes) to {file.uri}"
    rows = sum(file.row_count for file in written)
    size = sum(file.size_bytes or 0 for file in written)
    return (
        f"wrote {rows} rows ({size} bytes) in {len(written)} files under {root}, e.g. "
        f"{written[0].row_count} rows to {written[0].uri}; each partition's rows and size are "
        "in its materialization's metadata"
    )
