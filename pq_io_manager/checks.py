"""Dagster asset checks over what `PartitionedParquetIOManager` stored, attached in one line.

    Definitions(assets=[orders], asset_checks=build_storage_checks(orders), resources=...)

- `stored_partitions_exist`: every expected partition has its data file. Expected are the
  partitions Dagster recorded as materialized (in the instance) that are still keys of the
  partitions definition, or with `all_partitions=True` every key of the definition up to now.
  An unpartitioned asset is expected to hold data once it was materialized.
- `stored_schema_matches`: the stored columns and types (the asset's schema record) equal
  its declared `dagster/column_schema` (only built when one is declared).

The checks read through the IO manager resource the asset is stored with (by resource key),
so they use its base path and credentials, and they run in any job that selects the asset.
"""

from collections.abc import Iterator, Sequence
from typing import Protocol

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetsDefinition,
    AssetSpec,
    DagsterInstance,
    MetadataValue,
    multi_asset_check,
)

from pq_io_manager.asset_slice import asset_spec
from pq_io_manager.declared_schema import declared_schema, schema_differences
from pq_io_manager.errors import ConfigurationError

EXISTENCE_CHECK = "stored_partitions_exist"
SCHEMA_CHECK = "stored_schema_matches"
_SHOWN = 20  # missing keys / problems listed in a result's metadata


class StoredData(Protocol):
    """What the checks ask the IO manager (`PartitionedParquetIOManager` provides it)."""

    def stored_partition_keys(
        self, asset: AssetsDefinition | AssetSpec, partition_keys: Sequence[str]
    ) -> list[str]: ...

    def stored_files(self, asset: AssetsDefinition | AssetSpec) -> dict[str, int]: ...

    def stored_schema(self, asset: AssetsDefinition | AssetSpec) -> pl.Schema | None: ...


def build_storage_checks(
    asset: AssetsDefinition | AssetSpec,
    io_manager_key: str | None = None,
    all_partitions: bool = False,
) -> list[AssetChecksDefinition]:
    """Asset checks that the asset's stored data is complete and has its declared schema.

    Args:
        asset: The asset's definition (`@asset` function or `AssetSpec`).
        io_manager_key: The resource key of the asset's `PartitionedParquetIOManager`;
            default: the definition's own IO manager key (`"io_manager"` for an `AssetSpec`).
        all_partitions: Expect every key of the partitions definition up to now, not only
            the ones the instance recorded as materialized.

    Returns:
        One definition (one step, so one process under the multiprocess executor) holding
        the existence check, and the schema check when `dagster/column_schema` is declared;
        each can be executed alone.
    """
    spec = asset_spec(asset)
    resource_key = io_manager_key or _io_manager_key(asset, spec)

    @multi_asset_check(
        name=f"{spec.key.to_python_identifier()}_storage_checks",
        specs=_check_specs(spec, all_partitions),
        can_subset=True,
        required_resource_keys={resource_key},
    )
    def storage_checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        storage = _storage(context, resource_key)
        selected = {key.name for key in context.selected_asset_check_keys}
        if EXISTENCE_CHECK in selected:
            yield _existence_result(context.instance, spec, storage, all_partitions)
        if SCHEMA_CHECK in selected:
            yield _schema_result(spec, storage)

    return [storage_checks]


def _check_specs(spec: AssetSpec, all_partitions: bool) -> list[AssetCheckSpec]:
    expected = "every partition key up to now" if all_partitions else "materialized partitions"
    specs = [
        AssetCheckSpec(
            EXISTENCE_CHECK,
            asset=spec.key,
            description=f"Every expected partition ({expected}) has its stored data file.",
        )
    ]
    if declared_schema(spec.metadata) is not None:
        description = "The stored columns and types equal the declared dagster/column_schema."
        specs.append(AssetCheckSpec(SCHEMA_CHECK, asset=spec.key, description=description))
    return specs


def _existence_result(
    instance: DagsterInstance, spec: AssetSpec, storage: StoredData, all_partitions: bool
) -> AssetCheckResult:
    if spec.partitions_def is None:
        return _whole_result(instance, spec, storage, all_partitions)
    keys = _expected_keys(instance, spec, all_partitions)
    stored = set(storage.stored_partition_keys(spec, keys)) if keys else set()
    missing = [key for key in keys if key not in stored]
    return AssetCheckResult(
        check_name=EXISTENCE_CHECK,
        passed=not missing,
        description=(
            f"{len(missing)} of {len(keys)} expected partitions have no stored data"
            if missing
            else f"all {len(keys)} expected partitions are stored"
        ),
        metadata={
            "expected_partitions": len(keys),
            "missing_partitions": len(missing),
            "missing_keys": MetadataValue.json([str(key) for key in missing[:_SHOWN]]),
        },
    )


def _schema_result(spec: AssetSpec, storage: StoredData) -> AssetCheckResult:
    stored = storage.stored_schema(spec)
    declared = declared_schema(spec.metadata)
    assert declared is not None  # the check is only built when one is declared
    if stored is None:
        return AssetCheckResult(
            check_name=SCHEMA_CHECK, passed=False, description="nothing is stored yet"
        )
    problems = schema_differences(stored, declared)
    return AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=not problems,
        description="; ".join(problems[:_SHOWN]) or "the stored schema is the declared one",
        metadata={
            "stored_columns": MetadataValue.json({n: str(t) for n, t in stored.items()}),
            "differences": len(problems),
        },
    )


def _whole_result(
    instance: DagsterInstance, spec: AssetSpec, storage: StoredData, all_partitions: bool
) -> AssetCheckResult:
    expected = all_partitions or instance.get_latest_materialization_event(spec.key) is not None
    files = storage.stored_files(spec)
    return AssetCheckResult(
        check_name=EXISTENCE_CHECK,
        passed=bool(files) or not expected,
        description=f"{len(files)} data file(s) stored"
        + ("" if files or not expected else ", but the asset was materialized"),
        metadata={"stored_files": len(files), "stored_bytes": sum(files.values())},
    )


def _expected_keys(instance: DagsterInstance, spec: AssetSpec, all_partitions: bool) -> list[str]:
    assert spec.partitions_def is not None
    current = spec.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    if all_partitions:
        return list(current)
    materialized = instance.get_materialized_partitions(spec.key)
    return [key for key in current if key in materialized]


def _storage(context: AssetCheckExecutionContext, resource_key: str) -> StoredData:
    resource = getattr(context.resources, resource_key)
    if not all(hasattr(resource, name) for name in ("stored_partition_keys", "stored_schema")):
        raise ConfigurationError(
            f"storage checks read through the resource {resource_key!r}, which is "
            f"{type(resource).__name__}, not a PartitionedParquetIOManager: pass "
            "io_manager_key= naming the asset's PartitionedParquetIOManager resource"
        )
    return resource  # type: ignore[no-any-return]


def _io_manager_key(asset: AssetsDefinition | AssetSpec, spec: AssetSpec) -> str:
    if isinstance(asset, AssetsDefinition):
        return asset.get_io_manager_key_for_asset_key(spec.key)
    return "io_manager"
