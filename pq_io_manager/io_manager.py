"""The Dagster adapter: configuration fields and context handling only."""

import contextlib
import dataclasses
import posixpath
import time
import typing
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl
from dagster import (
    ConfigurableIOManager,
    InitResourceContext,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
    get_dagster_logger,
)
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from pq_io_manager.credentials import connection_from_resource, describe_resource
from pq_io_manager.errors import (
    ConfigurationError,
    PqIOManagerError,
    ReadError,
    WriteError,
    brief,
)
from pq_io_manager.frames import (
    Frame,
    check_frame_type,
    prepare_partition,
    split_by_partitions,
    split_by_values,
)
from pq_io_manager.inputs import Files, shape_input, unpartitioned_files
from pq_io_manager.layout import (
    PartitionColumn,
    asset_root,
    is_s3_uri,
    normalize_base_path,
    staging_directory,
)
from pq_io_manager.partitions import keys_description, partition_scheme, split_columns
from pq_io_manager.s3_store import S3Store
from pq_io_manager.storage import Dataset, WrittenFile
from pq_io_manager.stores import LocalStore, Store

DEFAULT_BASE_PATH = "data/lake"
DEFAULT_ABANDONED_STAGING_SECONDS = 6 * 3600


class PartitionedParquetIOManager(ConfigurableIOManager):
    """Stores polars DataFrame/LazyFrame asset outputs as hive-partitioned Parquet.

    Each Dagster partition becomes `{base_path}/{asset/key/path}/{column}={value}/data.parquet`,
    with the column named by the asset's `partition_by` metadata. Every file is staged and
    published atomically, so a failed or killed run never leaves a partial partition.

    Example:
        ```python
        @asset(partitions_def=DailyPartitionsDefinition("2024-01-01"),
               metadata={"partition_by": "date"})
        def orders(context) -> pl.DataFrame: ...

        Definitions(assets=[orders], resources={"io_manager": PartitionedParquetIOManager(
            base_path="s3://my-bucket/lake", s3=S3Resource(region_name="eu-west-1"))})
        ```
    """

    base_path: str = Field(
        default=DEFAULT_BASE_PATH,
        description=(
            "Where assets are stored: s3://bucket/prefix, or a local directory (relative paths "
            f"are resolved against the working directory). Default: {DEFAULT_BASE_PATH!r}."
        ),
    )
    s3: S3Resource | None = Field(
        default=None,
        description=(
            "Credentials, region, endpoint and profile for an s3:// base_path. When omitted, "
            "boto3's default chain (environment, profile, role) is resolved and passed to polars "
            "explicitly. Ignored for local paths."
        ),
    )
    abandoned_staging_seconds: int = Field(
        default=DEFAULT_ABANDONED_STAGING_SECONDS,
        ge=60,
        description=(
            "Staged files and multipart uploads older than this many seconds were left by "
            "killed runs and are removed when a process first uses the IO manager. Must exceed "
            "the longest single-partition write. Default: 6 hours."
        ),
    )
    _store: Store | None = PrivateAttr(default=None)

    def __repr__(self) -> str:
        return (
            f"PartitionedParquetIOManager(base_path={self.base_path!r}, "
            f"s3={describe_resource(self.s3)})"
        )

    __str__ = __repr__

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Resolve the store (and credentials) once per process, failing fast, and sweep
        staging left behind by killed runs."""
        self._store = self._make_store()
        base_path = normalize_base_path(self.base_path)
        cutoff = time.time() - self.abandoned_staging_seconds
        try:
            removed = self._store.sweep(base_path, staging_directory(base_path), cutoff)
        except Exception as error:  # e.g. a read-only role: sweeping is housekeeping only
            get_dagster_logger().debug(
                f"not sweeping abandoned staging under {base_path}: {brief(error)}"
            )
            return
        if removed:
            get_dagster_logger().info(f"removed {removed} abandoned staged file(s) or upload(s)")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        """Write an asset output; see the class docstring for the layout."""
        where = _describe(context)
        if obj is None:
            _refuse_or_skip_none(context, where)
            return
        frame = check_frame_type(obj, where)
        dataset = self._dataset(context)
        with _translate_errors(WriteError, where, dataset.root):
            if context.has_asset_partitions:
                written = self._write_partitions(context, dataset, frame, where)
            else:
                written = self._write_whole(context, dataset, frame, where)
        for file in written:
            context.log.info(f"wrote {file.row_count} rows ({file.size_bytes} bytes) to {file.uri}")
        context.add_output_metadata(_output_metadata(context, dataset, frame, written))

    def load_input(self, context: InputContext) -> Any:
        """Load an upstream asset lazily, only the partitions this input asks for."""
        where = _describe(context)
        upstream = context.upstream_output
        if upstream is None or not context.has_asset_key:
            raise ConfigurationError(
                f"{where}: PartitionedParquetIOManager loads asset inputs only"
            )
        dataset = self._dataset(context)
        with _translate_errors(ReadError, where, dataset.root):
            if context.has_asset_partitions:
                metadata = upstream.definition_metadata
                files = self._partition_files(context, dataset, metadata, where)
            else:
                files = unpartitioned_files(dataset, upstream.definition_metadata, where)
            context.log.debug(f"loading {len(files)} file(s) of {where} from {dataset.root}")
            return shape_input(context.dagster_type.typing_type, dataset, files)

    def _make_store(self) -> Store:
        base_path = normalize_base_path(self.base_path)
        if is_s3_uri(base_path):
            return S3Store(connection_from_resource(self.s3))
        return LocalStore(base_path)

    def _dataset(self, context: InputContext | OutputContext) -> Dataset:
        if self._store is None:
            self._store = self._make_store()
        base_path = normalize_base_path(self.base_path)
        return Dataset(self._store, base_path, asset_root(base_path, context.asset_key.path))

    def _write_partitions(
        self, context: OutputContext, dataset: Dataset, frame: Frame, where: str
    ) -> list[WrittenFile]:
        scheme = partition_scheme(context.asset_partitions_def, context.definition_metadata, where)
        keys = context.asset_partition_keys
        targets = [scheme.columns(key) for key in keys]
        parts: Sequence[tuple[tuple[PartitionColumn, ...], Frame]]
        if len(targets) == 1:
            parts = [(targets[0], prepare_partition(frame, targets[0], where))]
        else:
            collected = frame if isinstance(frame, pl.DataFrame) else frame.collect()
            parts = split_by_partitions(collected, targets, where)
        dataset.check_schema(parts[0][1].collect_schema(), dataset.file_for(parts[0][0]), where)
        descriptions = [f"{_asset_name(context)} partition {key!r}" for key in keys]
        return dataset.write_many(parts, descriptions, replace_directories=True)

    def _write_whole(
        self, context: OutputContext, dataset: Dataset, frame: Frame, where: str
    ) -> list[WrittenFile]:
        names = split_columns(context.definition_metadata, where)
        parts: Sequence[tuple[tuple[PartitionColumn, ...], Frame]]
        if names:
            collected = frame if isinstance(frame, pl.DataFrame) else frame.collect()
            parts = split_by_values(collected, names, where)
        else:
            parts = [((), frame)]
        written = dataset.write_many(parts, [where] * len(parts), replace_directories=False)
        sizes = dataset.remove_except({file.uri for file in written})
        return [
            dataclasses.replace(file, size_bytes=sizes.get(file.uri, file.size_bytes))
            for file in written
        ]

    def _partition_files(
        self, context: InputContext, dataset: Dataset, metadata: Any, where: str
    ) -> Files:
        scheme = partition_scheme(context.asset_partitions_def, metadata, where)
        targets = {key: scheme.columns(key) for key in context.asset_partition_keys}
        allow_missing = bool(context.definition_metadata.get("allow_missing_partitions", False))
        found = dataset.find_files(targets, allow_missing, where)
        for key in targets.keys() - found.keys():
            context.log.warning(f"{where}: skipping missing partition {key!r} (allowed)")
        return [(key, uri, targets[key]) for key, uri in found.items()]


def _refuse_or_skip_none(context: OutputContext, where: str) -> None:
    if type(None) in typing.get_args(context.dagster_type.typing_type):
        context.log.info(f"{where}: output is None (Optional); nothing written")
        return
    raise ConfigurationError(
        f"{where}: the output is None. Return a polars DataFrame/LazyFrame, annotate the "
        "return type as Optional[pl.DataFrame] to skip writing, or as None to use no IO manager."
    )


@contextlib.contextmanager
def _translate_errors(error_class: type[PqIOManagerError], where: str, root: str) -> Iterator[None]:
    """Chain any storage-client error into a package error naming the asset and path."""
    try:
        yield
    except PqIOManagerError:
        raise
    except Exception as error:
        action = "writing to" if error_class is WriteError else "reading from"
        raise error_class(
            f"{where}: {action} {root} failed ({brief(error)}). Check the bucket, the "
            "credentials' permissions and the endpoint; stored data was not changed."
        ) from error


def _asset_name(context: InputContext | OutputContext) -> str:
    return f"asset {'/'.join(context.asset_key.path)!r}"


def _describe(context: InputContext | OutputContext) -> str:
    if not context.has_asset_key:
        return f"output {context.name!r}"
    text = _asset_name(context)
    if context.has_asset_partitions:
        text += " " + keys_description(list(context.asset_partition_keys))
    return text


def _output_metadata(
    context: OutputContext, dataset: Dataset, frame: Frame, written: Sequence[WrittenFile]
) -> dict[str, Any]:
    schema = frame.collect_schema()
    rows = sum(file.row_count for file in written)
    count_key = (
        "dagster/partition_row_count" if context.has_asset_partitions else "dagster/row_count"
    )
    # one partition: its column=value directory; several: the asset's root
    uri = posixpath.dirname(written[0].uri) if len(written) == 1 else dataset.root
    return {
        count_key: rows,
        "dagster/column_schema": TableSchema(
            columns=[TableColumn(name, str(dtype)) for name, dtype in schema.items()]
        ),
        "dagster/uri": MetadataValue.path(uri),
        "files": MetadataValue.json([file.uri for file in written]),
        "size_bytes": sum(file.size_bytes or 0 for file in written),
    }
