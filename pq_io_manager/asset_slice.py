"""What one Dagster input or output addresses, read from its context in one place.

The adapter builds an `AssetSlice` once per `handle_output` / `load_input` (like Dagster's own
`DbIOManager` builds a `TableSlice`) and hands it down, so nothing below it reads a context.
"""

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dagster import (
    AssetsDefinition,
    AssetSpec,
    InputContext,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    OutputContext,
    PartitionsDefinition,
    TimeWindow,
    TimeWindowPartitionsDefinition,
)

from pq_io_manager.errors import ConfigurationError
from pq_io_manager.layout import PartitionColumn, asset_root
from pq_io_manager.partitions import PartitionScheme, keys_description, partition_scheme

# Op outputs (outputs without an asset key) live here, per run, step and output, as Dagster's
# own IO managers store them. Asset keys may not start with ".", so no asset can collide.
OP_OUTPUTS_DIRECTORY = ".pq-runs"
ALLOW_MISSING_PARTITIONS = "allow_missing_partitions"
COLUMNS = "columns"  # input metadata: load only these columns (as Dagster's DB IO managers)


@dataclass(frozen=True)
class PartitionSlice:
    """One Dagster partition: its key and its typed hive columns."""

    key: str
    columns: tuple[PartitionColumn, ...]


@dataclass(frozen=True)
class OpOutput:
    """The identity of an op output (no asset key): run, step, output and mapping key.

    For an input, `run_id` is the run that produced the output: the parent run's when a
    re-execution skipped the producing step.
    """

    run_id: str
    step_key: str
    output_name: str
    mapping_key: str | None

    def root(self, base_path: str) -> str:
        """`{base_path}/.pq-runs/{run_id}/{step_key}/{output_name}[/{mapping_key}]`."""
        segments = [self.run_id, self.step_key, self.output_name]
        if self.mapping_key:
            segments.append(self.mapping_key)
        # Step keys of mapped steps contain "[key]", a glob pattern to polars: encode them.
        return "/".join([base_path, OP_OUTPUTS_DIRECTORY, *(quote(s, safe="") for s in segments)])


@dataclass(frozen=True)
class AssetSlice:
    """Everything the storage side needs to know about one input or output.

    Attributes:
        where: How messages name it (asset key and partitions, or op output).
        asset_path: The asset key's path; empty for an op output.
        scheme: How partition keys map to hive columns; None when not partitioned.
        partitions: The partitions addressed (may be empty for an input mapped to none), in
            Dagster's order.
        metadata: The definition metadata of the producing output (e.g. `partition_by`).
        allow_missing: Whether an input skips missing partitions (input metadata).
        annotation: The Python type the output or input is annotated with.
        op_output: The run/step/output identity of an op output; None for assets.
        columns: The only columns an input loads (input metadata `columns`); None for all.
    """

    where: str
    asset_path: tuple[str, ...]
    scheme: PartitionScheme | None
    partitions: tuple[PartitionSlice, ...]
    metadata: Mapping[str, Any]
    allow_missing: bool
    annotation: Any
    op_output: OpOutput | None
    columns: tuple[str, ...] | None = None

    @property
    def partitioned(self) -> bool:
        """Whether the asset has a partitions definition."""
        return self.scheme is not None

    @property
    def optional(self) -> bool:
        """Whether the annotation accepts None (`Optional[...]`, `X | None`)."""
        return type(None) in typing.get_args(self.annotation)

    def time_window_of(self, key: str) -> TimeWindow | None:
        """The time window of one partition key (of the time dimension when multi-partitioned);
        None when the asset has no time dimension. Computed on demand: it costs ~60 us a key."""
        if self.scheme is None:
            return None
        return _time_window(self.scheme.partitions_def, key)

    @property
    def time_window(self) -> TimeWindow | None:
        """From the first partition's window start to the last one's end, if time-partitioned."""
        if not self.partitions:
            return None
        first = self.time_window_of(self.partitions[0].key)
        last = self.time_window_of(self.partitions[-1].key)
        if first is None or last is None:
            return None
        return TimeWindow(min(first.start, last.start), max(first.end, last.end))

    def root(self, base_path: str) -> str:
        """The directory that holds this asset's (or op output's) files."""
        if self.op_output is not None:
            return self.op_output.root(base_path)
        return asset_root(base_path, self.asset_path)


def output_slice(context: OutputContext) -> AssetSlice:
    """The slice an output writes."""
    return _build(context, context)


def input_slice(context: InputContext) -> AssetSlice:
    """The slice an input reads (the upstream output's asset, partitions and layout)."""
    upstream = context.upstream_output
    if upstream is None:
        raise ConfigurationError(
            f"input {context.name!r}: PartitionedParquetIOManager loads the outputs of assets "
            "and ops only; give this input a default value or another input manager"
        )
    source = _build(context, upstream)
    columns = (context.definition_metadata or {}).get(COLUMNS)
    if columns is None:
        return source
    names = _column_names(columns)
    if names is None:
        hint = f" (one column is a list too: [{columns!r}])" if isinstance(columns, str) else ""
        raise ConfigurationError(
            f"input {context.name!r} of {source.where}: metadata {COLUMNS!r} must be a non-empty "
            f"list of column names, e.g. {{'columns': ['id', 'amount']}}, not {columns!r}{hint}; "
            "fix the input's metadata, or remove it to load every column"
        )
    return dataclasses.replace(source, columns=names)


def _column_names(columns: object) -> tuple[str, ...] | None:
    """The names of the input metadata `columns` (a list or tuple of column names), once
    each; None for any other value."""
    if not isinstance(columns, list | tuple) or not columns:
        return None
    if not all(isinstance(name, str) and name for name in columns):
        return None
    return tuple(dict.fromkeys(columns))  # a name given twice is loaded once


def _build(context: InputContext | OutputContext, producer: OutputContext) -> AssetSlice:
    annotation = context.dagster_type.typing_type
    metadata = producer.definition_metadata or {}
    allow_missing = isinstance(context, InputContext) and bool(
        (context.definition_metadata or {}).get(ALLOW_MISSING_PARTITIONS, False)
    )
    if not context.has_asset_key:
        where = f"op output {producer.step_key}.{producer.name}"
        if producer.mapping_key:
            where += f" (mapping key {producer.mapping_key!r})"
        op_output = OpOutput(
            producer.run_id, producer.step_key, producer.name, producer.mapping_key
        )
        return AssetSlice(where, (), None, (), metadata, False, annotation, op_output)
    path = tuple(context.asset_key.path)
    name = f"asset {'/'.join(path)!r}"
    if not context.has_asset_partitions:
        return AssetSlice(name, path, None, (), metadata, allow_missing, annotation, None)
    keys = list(context.asset_partition_keys)
    partitions_def = context.asset_partitions_def
    where = f"{name} {keys_description(keys)}" if keys else f"{name} (no partition)"
    scheme = partition_scheme(partitions_def, metadata, where)
    partitions = tuple(PartitionSlice(key, scheme.columns(key)) for key in keys)
    return AssetSlice(where, path, scheme, partitions, metadata, allow_missing, annotation, None)


def asset_spec(asset: AssetsDefinition | AssetSpec) -> AssetSpec:
    """The one asset an `AssetsDefinition` (or `AssetSpec`) defines: key, partitions, metadata."""
    if isinstance(asset, AssetSpec):
        return asset
    specs = list(asset.specs)
    if len(specs) != 1:
        keys = [spec.key.to_user_string() for spec in specs]
        raise ConfigurationError(
            f"this definition holds {len(specs)} assets ({keys}): pass one of them, e.g. "
            "`definition.specs_by_key[AssetKey(...)]`"
        )
    return specs[0]


def definition_slice(
    spec: AssetSpec, partition_keys: Sequence[str]
) -> tuple[AssetSlice, tuple[str, ...]]:
    """The slice of the stored partitions `partition_keys` of an asset, built from its definition
    exactly as a write builds it from its context, and the keys no partition could ever be
    stored under (not keys of its partitions definition's shape: no hive value for them)."""
    path = tuple(spec.key.path)
    name = f"asset {'/'.join(path)!r}"
    metadata = dict(spec.metadata)
    if spec.partitions_def is None:
        return AssetSlice(name, path, None, (), metadata, False, None, None), ()
    keys = list(dict.fromkeys(partition_keys))
    where = f"{name} {keys_description(keys)}" if keys else name
    scheme = partition_scheme(spec.partitions_def, metadata, where)
    partitions: list[PartitionSlice] = []
    unmapped: list[str] = []
    for key in keys:
        try:
            partitions.append(PartitionSlice(key, scheme.columns(key)))
        except Exception:  # Dagster's own parse of a malformed key: no path was ever built
            unmapped.append(key)
    target = AssetSlice(where, path, scheme, tuple(partitions), metadata, False, None, None)
    return target, tuple(unmapped)


def _time_window(partitions_def: PartitionsDefinition, key: str) -> TimeWindow | None:
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return partitions_def.time_window_for_partition_key(key)
    if isinstance(partitions_def, MultiPartitionsDefinition):
        if not partitions_def.has_time_window_dimension:
            return None
        dimension = partitions_def.time_window_dimension
        multi_key = (
            key
            if isinstance(key, MultiPartitionKey)
            else partitions_def.get_partition_key_from_str(key)
        )
        window_def = typing.cast(TimeWindowPartitionsDefinition, dimension.partitions_def)
        return window_def.time_window_for_partition_key(multi_key.keys_by_dimension[dimension.name])
    return None
