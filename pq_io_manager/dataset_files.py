"""Which stored files belong to one asset: only its own data files, by exact shape.

An asset's data files are `{root}/data.parquet`, or `{root}/c1=v/.../cn=v/data.parquet` with
exactly its partition columns in order. Anything else below the root (another asset whose key
extends this one, `_SUCCESS`, `.crc` files, a README, another tool's `.parquet`) is never
listed as ours, compared or deleted. S3 listings use the tightest prefix: `{root}/{c1}=`.
No Dagster import.
"""

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from pq_io_manager.hive_values import parse_dtype
from pq_io_manager.layout import DATA_FILE_NAME, data_file_levels
from pq_io_manager.schema_record import SchemaRecord
from pq_io_manager.stores import Store

# Parquet key-value metadata naming the partition columns' types (written with every file).
PARTITION_TYPES_KEY = "pq_io_manager.partition_types"
# (schema, key-value metadata) of one file
FooterReader = Callable[[str], tuple[pl.Schema, dict[str, str]]]


def data_files(store: Store, root: str, names: Sequence[str]) -> dict[str, int]:
    """The asset's data files of the layout split by `names` (URI to size)."""
    if not names:
        exact = f"{root}/{DATA_FILE_NAME}"
        return {uri: size for uri, size in store.list_prefix(exact).items() if uri == exact}
    listed = store.list_prefix(f"{root}/{names[0]}=")
    return {
        uri: size
        for uri, size in listed.items()
        if data_file_levels(uri[len(root) + 1 :]) == tuple(names)
    }


def legacy_record(
    store: Store, root: str, names: Sequence[str], read_footer: FooterReader
) -> SchemaRecord | None:
    """The record of a dataset written before records existed, from its files' footers.

    One-time: lists the root, groups the files shaped like ours by their column names, and
    takes the group whose footers name those same partition columns (this write's layout
    first). Every footer of that group is read, so a conflict with any stored file is seen.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for uri in store.list_files(root):
        levels = data_file_levels(uri[len(root) + 1 :])
        if levels is not None:
            groups.setdefault(levels, []).append(uri)
    ordered = sorted(groups, key=lambda levels: (levels != tuple(names), -len(groups[levels])))
    for levels in ordered:
        uris = groups[levels]
        schema, metadata = read_footer(uris[0])
        recorded = json.loads(metadata.get(PARTITION_TYPES_KEY, "{}"))
        if tuple(recorded) != levels:
            continue  # shaped like ours, but another asset's or another tool's
        with ThreadPoolExecutor(max(1, min(store.parallel_reads, len(uris)))) as pool:
            schemas = [schema, *pool.map(lambda uri: read_footer(uri)[0], uris[1:])]
        partition = {name: parse_dtype(text) for name, text in recorded.items()}
        return _union(schemas, [uri[len(root) + 1 :] for uri in uris], partition)
    return None


def _union(
    schemas: Sequence[pl.Schema], origins: Sequence[str], partition: dict[str, pl.DataType]
) -> SchemaRecord:
    # Files that already disagree keep the first type seen (the record cannot undo the past).
    columns: dict[str, pl.DataType] = {}
    first: dict[str, str] = {}
    for schema, origin in zip(schemas, origins, strict=True):
        for name, dtype in schema.items():
            if name not in columns or (columns[name] == pl.Null and dtype != pl.Null):
                columns[name], first[name] = dtype, origin
    return SchemaRecord(columns, first, partition)
