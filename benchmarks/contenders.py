"""The IO managers compared, built for a target, and called the way Dagster calls them.

Dagster's own entry points are used: `build_resources` initialises each IO manager (so
`setup_for_execution` / `create_io_manager` run), and `build_output_context` /
`build_input_context` (with `upstream_output=`) build the contexts a run would pass, without
paying for a whole run per measurement.
"""

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import dagster as dg
import polars as pl

from benchmarks.targets import BUCKET, Target

OURS = "pq_io_manager"
RAW = "raw polars"
RAW_PREFIX = "raw polars, prefix scan"  # scan_parquet(root/, hive_partitioning=True) + filter
# scenario 8: raw polars' sink inside the same Dagster run (its events, no IO manager)
RAW_IN_DAGSTER = "raw polars in a Dagster run"
PICKLE = "pickle"
DAGSTER_POLARS = "dagster-polars"
DELTA = "deltalake"
ALTERNATIVES = (PICKLE, DAGSTER_POLARS, DELTA)
METADATA = {"partition_by": "date", "partition_expr": "date"}
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2025-12-31")
Keys = str | tuple[str, str]  # one partition key, or an inclusive (first, last) range


def any_type(typing_type: Any) -> dg.DagsterType:
    """A Dagster type with this Python annotation that accepts any value."""
    return dg.DagsterType(
        type_check_fn=lambda _context, _value: True,
        typing_type=typing_type,
        name=f"Any_{getattr(typing_type, '__name__', 'dict')}",
    )


@dataclass
class Contender:
    """One initialised IO manager and the resource config its contexts need."""

    name: str
    io_manager: Any
    resource_config: dict[str, Any] | None = None
    note: str = ""
    loads: bool = True  # False when loading is known to fail (recorded, not timed)
    extra: dict[str, Any] = field(default_factory=dict)

    def write(
        self,
        asset: str,
        keys: Keys,
        obj: object,
        partitions: dg.PartitionsDefinition = PARTITIONS,
    ) -> Callable[[], object]:
        """The timed action writing `obj` to `keys` (context built outside the timing)."""
        context = dg.build_output_context(
            asset_key=[asset],
            definition_metadata=METADATA,
            dagster_type=any_type(type(obj)),
            resource_config=self.resource_config,
            **_partition_arguments(keys, partitions),
        )
        _give_step_metadata(context)
        return _quiet(lambda: self.io_manager.handle_output(context, obj))

    def load(
        self,
        asset: str,
        keys: Keys,
        typing_type: Any,
        partitions: dg.PartitionsDefinition = PARTITIONS,
    ) -> Callable[[], object]:
        """The timed action loading `keys` of `asset` as `typing_type`.

        A range is what Dagster hands an unpartitioned downstream asset too (every upstream
        partition), so `(first, last)` over a whole asset is that reader's load.
        """
        arguments = _partition_arguments(keys, partitions)
        upstream = dg.build_output_context(
            asset_key=[asset], definition_metadata=METADATA, **arguments
        )
        context = dg.build_input_context(
            asset_key=[asset],
            upstream_output=upstream,
            dagster_type=any_type(typing_type),
            resource_config=self.resource_config,
            **arguments,
        )
        return _quiet(lambda: self.io_manager.load_input(context))


class _StepMetadata:
    """What a run's step context offers an IO manager writing several partitions: per-partition
    materialization metadata (kept here, as a run would keep it), the job's executor (in
    process, as `materialize()` runs it), and no instance."""

    instance = None
    job_def = SimpleNamespace(executor_def=dg.in_process_executor)

    def __init__(self) -> None:
        self.metadata: list[tuple[object, ...]] = []

    def add_asset_metadata(self, metadata: object, **where: object) -> None:
        self.metadata.append((metadata, *where.values()))


def _give_step_metadata(context: dg.OutputContext) -> None:
    """`build_output_context` has no step context, but ours writes each partition's metadata
    through it (`context.step_context.add_asset_metadata`) when a run writes several."""
    if getattr(context, "_step_context", None) is None:
        context._step_context = _StepMetadata()  # type: ignore[assignment]


def _quiet(action: Callable[[], object]) -> Callable[[], object]:
    """The action with Dagster's console log lines formatted but sent to /dev/null."""

    def run() -> object:
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            return action()

    return run


def _partition_arguments(keys: Keys, partitions: dg.PartitionsDefinition) -> dict[str, Any]:
    if isinstance(keys, str):
        return {"partition_key": keys, "asset_partitions_def": partitions}
    return {
        "asset_partition_key_range": dg.PartitionKeyRange(*keys),
        "asset_partitions_def": partitions,
    }


def _initialise(stack: contextlib.ExitStack, resource: Any) -> Any:
    resources = stack.enter_context(dg.build_resources({"io_manager": resource}))
    return resources.io_manager


def ours(stack: contextlib.ExitStack, target: Target, counted: bool = False) -> Contender:
    """PartitionedParquetIOManager below `{root}/ours`."""
    from pq_io_manager import PartitionedParquetIOManager

    resource = PartitionedParquetIOManager(
        base_path=target.uri("ours"), s3=target.s3_resource(counted)
    )
    return Contender(OURS, _initialise(stack, resource))


def pickle(stack: contextlib.ExitStack, target: Target, counted: bool = False) -> Contender:
    """Dagster's pickling IO manager: FilesystemIOManager locally, S3PickleIOManager on S3."""
    if not target.is_s3:
        resource: Any = dg.FilesystemIOManager(base_dir=target.uri("pickle"))
        return Contender(PICKLE, _initialise(stack, resource), note="FilesystemIOManager")
    from dagster_aws.s3 import S3PickleIOManager

    s3: Any = target.s3_resource(counted)  # not None: this target is S3
    resource = S3PickleIOManager(s3_resource=s3, s3_bucket=BUCKET, s3_prefix="lake/pickle")
    return Contender(PICKLE, _initialise(stack, resource), note="S3PickleIOManager")


def dagster_polars(stack: contextlib.ExitStack, target: Target, counted: bool = False) -> Contender:
    """dagster-polars PolarsParquetIOManager (local only: its S3 path needs s3fs)."""
    from dagster_polars import PolarsParquetIOManager

    if target.is_s3:
        raise NotImplementedError(
            "needs s3fs for s3:// paths, and s3fs pins botocore<1.43.118 (would downgrade the "
            "botocore 1.44 that boto3 1.44 needs); not installed"
        )
    resource = PolarsParquetIOManager(base_dir=target.uri("dagster_polars"))
    return Contender(DAGSTER_POLARS, _initialise(stack, resource), note="PolarsParquetIOManager")


def delta(stack: contextlib.ExitStack, target: Target, counted: bool = False) -> Contender:
    """dagster-deltalake-polars DeltaLakePolarsIOManager (one Delta table per asset)."""
    from dagster_deltalake import LocalConfig, S3Config
    from dagster_deltalake.config import ClientConfig
    from dagster_deltalake_polars import DeltaLakePolarsIOManager

    root = target.uri("delta")
    if not target.is_s3:
        storage: Any = LocalConfig()
        config: dict[str, Any] = {"local": {}}
        client: dict[str, Any] = {}
    else:
        endpoint = target.s3_endpoint(counted)
        values: dict[str, Any] = {
            "access_key_id": endpoint.access_key_id,
            "secret_access_key": endpoint.secret_access_key,
            "region": endpoint.region,
            "endpoint": endpoint.endpoint_url,
            "allow_unsafe_rename": True,  # single writer; S3 has no atomic rename-if-absent
        }
        storage, config, client = S3Config(**values), {"s3": values}, {"allow_http": True}
    resource = DeltaLakePolarsIOManager(
        root_uri=root, storage_options=storage, client_options=ClientConfig(**client)
    )
    resource_config = {
        "root_uri": root,
        "mode": "overwrite",
        "storage_options": config,
        "client_options": client,
    }
    return Contender(DELTA, _initialise(stack, resource), resource_config, "DeltaLakePolars")


FACTORIES: dict[str, Callable[[contextlib.ExitStack, Target, bool], Contender]] = {
    OURS: ours,
    PICKLE: pickle,
    DAGSTER_POLARS: dagster_polars,
    DELTA: delta,
}


def collect(value: object) -> pl.DataFrame:
    """A loaded value as one DataFrame (dicts of partitions are concatenated)."""
    if isinstance(value, dict):
        return pl.concat([collect(part) for part in value.values()], how="diagonal_relaxed")
    if isinstance(value, pl.LazyFrame):
        return value.collect()
    if isinstance(value, pl.DataFrame):
        return value
    raise TypeError(f"unexpected loaded value {type(value).__name__}")
