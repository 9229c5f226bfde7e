"""The Dagster adapter: configuration fields and context handling only."""

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from dagster import (
    ConfigurableIOManager,
    DagsterInvariantViolationError,
    InitResourceContext,
    InputContext,
    OutputContext,
    get_dagster_logger,
)
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr, model_validator

from pq_io_manager.asset_slice import AssetSlice, input_slice, output_slice
from pq_io_manager.credentials import connection_from_resource, describe_resource
from pq_io_manager.errors import (
    ConfigurationError,
    PqIOManagerError,
    ReadError,
    WriteError,
    brief,
)
from pq_io_manager.frames import Frame, check_frame_type, prepare_partition
from pq_io_manager.housekeeping import sweep_once
from pq_io_manager.input_metadata import add_input_metadata, input_metadata
from pq_io_manager.inputs import load
from pq_io_manager.layout import (
    is_s3_uri,
    normalize_base_path,
    staging_directory,
)
from pq_io_manager.maintenance import StorageMaintenance
from pq_io_manager.op_outputs import refuse_non_frame, write_frame, write_none
from pq_io_manager.output_metadata import output_metadata, partition_metadata, written_line
from pq_io_manager.partitions import split_columns
from pq_io_manager.preview import MAX_PREVIEW_ROWS, preview_rows
from pq_io_manager.resource_fields import check_fields
from pq_io_manager.s3_store import S3Store
from pq_io_manager.step_executor import check_step_executor
from pq_io_manager.storage import Dataset, WrittenFile
from pq_io_manager.stores import LocalStore, Store
from pq_io_manager.streamed_writes import replace_split, write_range
from pq_io_manager.write_options import (
    COMPRESSION_FIELD,
    COMPRESSION_LEVEL_FIELD,
    DATA_PAGE_SIZE_FIELD,
    ROW_GROUP_SIZE_FIELD,
    STATISTICS_FIELD,
    ParquetWriteOptions,
    resolve,
)

DEFAULT_BASE_PATH = "data/lake"
DEFAULT_ABANDONED_STAGING_SECONDS = 6 * 3600


class PartitionedParquetIOManager(ConfigurableIOManager, StorageMaintenance):
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

    Stored data is deleted or inspected with `delete_partitions`, `delete_asset`,
    `stored_partition_keys`, `stored_files` and `stored_schema` (see `maintenance`).
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
            "This package's own staged files and multipart uploads that made no progress for "
            "this many seconds (by the store's clock, never this machine's) were left by killed "
            "runs and are removed when a process first uses the IO manager; sweeps run at most "
            "once per process and once per this interval per base path. Must exceed the longest "
            "pause between two parts of one upload. Default: 6 hours."
        ),
    )
    # Parquet write options, named and defaulted as polars' (see write_options)
    compression: str = COMPRESSION_FIELD
    compression_level: int | None = COMPRESSION_LEVEL_FIELD
    statistics: bool = STATISTICS_FIELD
    row_group_size: int | None = ROW_GROUP_SIZE_FIELD
    data_page_size: int | None = DATA_PAGE_SIZE_FIELD
    # Observability in the UI (the input side needs no setting: see input_metadata).
    preview_rows: int = Field(
        default=0,
        ge=0,
        le=MAX_PREVIEW_ROWS,
        description=(
            "Show the first this many rows of each output as a Markdown table (`preview`) in "
            "its materialization metadata; an asset's own `preview_rows` metadata overrides "
            "it. Never evaluates a LazyFrame again: its rows are read back from the first "
            f"file written. At most {MAX_PREVIEW_ROWS}. Default: 0 (no preview)."
        ),
    )
    _store: Store | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _check_fields(cls, data: Any) -> Any:
        """Refuse misspelled field names (Dagster would ignore them) and bad write options."""
        return check_fields(data, tuple(cls.model_fields), cls.__name__)

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
        staging = staging_directory(base_path)
        try:
            removed = sweep_once(self._store, staging, self.abandoned_staging_seconds)
        except Exception as error:  # e.g. a read-only role: sweeping is housekeeping only
            get_dagster_logger().debug(
                f"not sweeping abandoned staging under {base_path}: {brief(error)}"
            )
            return
        if removed:
            get_dagster_logger().info(f"removed {removed} abandoned staged file(s) or upload(s)")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        """Write an asset output (see the class docstring for the layout) or an op output
        (`{base_path}/.pq-runs/{run_id}/{step_key}/{output_name}/data.parquet`)."""
        target = output_slice(context)
        check_step_executor(context, self.base_path)
        if obj is None:
            self._handle_none(context, target)
            return
        if target.op_output is not None:
            refuse_non_frame(obj, target.where)
        frame = check_frame_type(obj, target.where)
        rows = preview_rows(target.metadata, self.preview_rows, target.where)
        dataset = self._dataset(target, writing=True)
        with _translate_errors(WriteError, target.where, dataset.root):
            if target.op_output is not None:
                written = write_frame(dataset, frame, target.where)
            elif target.partitioned:
                written = self._write_partitions(target, dataset, frame)
            else:
                written = self._write_whole(context, dataset, frame, target.where)
        _report(context, target, dataset, frame, written, rows)

    def load_input(self, context: InputContext) -> Any:
        """Load an upstream asset lazily (only the partitions this input asks for), or an op
        output; see `pq_io_manager.inputs` for the shapes an input can take."""
        source = input_slice(context)
        dataset = self._dataset(source)
        with _translate_errors(ReadError, source.where, dataset.root):
            loaded = load(source, dataset, context.log.warning)
        metadata = input_metadata(dataset.root, loaded.files, dataset.listed_sizes)
        add_input_metadata(context, metadata, not source.partitioned or len(source.partitions) == 1)
        return loaded.value

    def _handle_none(self, context: OutputContext, target: AssetSlice) -> None:
        if target.op_output is None:
            _refuse_or_skip_none(context, target)
            return
        # Dagster's type check let None through (an Any or Optional output): keep it as None.
        dataset = self._dataset(target)
        with _translate_errors(WriteError, target.where, dataset.root):
            write_none(dataset, target.where)
        context.log.info(f"{target.where} is None; recorded as None under {dataset.root}")

    def _make_store(self) -> Store:
        base_path = normalize_base_path(self.base_path)
        if is_s3_uri(base_path):
            return S3Store(connection_from_resource(self.s3))
        return LocalStore(base_path)

    def _dataset(self, target: AssetSlice, writing: bool = False) -> Dataset:
        if self._store is None:
            self._store = self._make_store()
        base_path = normalize_base_path(self.base_path)
        options = ParquetWriteOptions()  # loads need none, and must not fail on them
        if writing:  # validated here, before anything is written
            options = resolve(self, target.metadata, target.where)
        return Dataset(self._store, base_path, target.root(base_path), write_options=options)

    def _write_partitions(
        self, target: AssetSlice, dataset: Dataset, frame: Frame
    ) -> list[WrittenFile]:
        where = target.where
        targets = [part.columns for part in target.partitions]
        name = f"asset {'/'.join(target.asset_path)!r}"
        descriptions = [f"{name} partition {part.key!r}" for part in target.partitions]
        if len(targets) > 1:  # one streaming pass into staging, then each partition published
            return write_range(dataset, frame, targets, descriptions, where)
        parts = [(targets[0], prepare_partition(frame, targets[0], where))]
        return dataset.write_many(dataset.check_schema(parts, where), descriptions, True)

    def _write_whole(
        self, context: OutputContext, dataset: Dataset, frame: Frame, where: str
    ) -> list[WrittenFile]:
        names = split_columns(context.definition_metadata, where)
        if names:  # one streaming pass into staging, then the asset replaced whole
            return replace_split(dataset, frame, names, where)
        return dataset.replace_whole([((), frame)], where)


def _refuse_or_skip_none(context: OutputContext, target: AssetSlice) -> None:
    if target.optional:
        context.log.info(f"{target.where}: output is None (Optional); nothing written")
        return
    raise ConfigurationError(
        f"{target.where}: the output is None. Return a polars DataFrame/LazyFrame, annotate the "
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
        # no claim about what was published: storage raises its own errors saying exactly that
        raise error_class(
            f"{where}: {action} {root} failed ({brief(error)}). Check the bucket, the "
            "credentials' permissions and the endpoint, then re-run."
        ) from error


def _report(
    context: OutputContext,
    target: AssetSlice,
    dataset: Dataset,
    frame: Frame,
    written: Sequence[WrittenFile],
    rows: int,
) -> None:
    """Log each file; attach output metadata (with a preview of `rows` rows) and, for a run over
    several partitions, each partition's own metadata to that partition's materialization."""
    context.log.info(written_line(written, dataset.root))
    context.add_output_metadata(output_metadata(target, dataset, frame, written, rows))
    partitions = partition_metadata(target, dataset, written)
    if partitions and not _has_step_context(context):
        # e.g. `build_output_context()` in a user's unit test: only the run totals apply
        context.log.debug("no step context: per-partition metadata not attached")
        return
    for key, metadata in partitions.items():
        context.step_context.add_asset_metadata(
            metadata, asset_key=context.asset_key, partition_key=key
        )


def _has_step_context(context: OutputContext) -> bool:
    try:
        context.step_context  # noqa: B018  (the property raises when there is none)
    except DagsterInvariantViolationError:
        return False
    return True
