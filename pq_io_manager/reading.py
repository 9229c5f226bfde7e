"""Loads: which of the asked files exist, and one lazy scan over them that polars can prune.

The scan is `pl.scan_parquet(files, hive_partitioning=True, hive_schema=...)`: polars types the
partition columns from each file's path and skips files a predicate on them excludes before
opening any. Several files are scanned with the dataset's recorded schema, so planning reads no
footer and partitions written before a nullable column was added read it as null. Existence
costs what was asked: one file is proven by the footer read the scan reuses (raw polars' own
requests), several by one listing of the narrowest prefix covering their directories.
No Dagster import.
"""

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from pq_io_manager.dataset_files import PARTITION_TYPES_KEY, data_files
from pq_io_manager.errors import MissingPartitionError, PartitionValueError, ReadError, brief
from pq_io_manager.layout import (
    PartitionColumn,
    parse_dtype,
    parse_partition_path,
    storage_problem,
)
from pq_io_manager.schema_record import SchemaRecord
from pq_io_manager.storage import Dataset
from pq_io_manager.stores import Presence

Located = list[tuple[str, tuple[PartitionColumn, ...]]]  # (uri, typed partition columns)


def find_files(
    dataset: Dataset,
    targets: Mapping[str, tuple[PartitionColumn, ...]],
    allow_missing: bool,
    where: str,
) -> dict[str, str]:
    """Map each partition key to its file; a missing one raises unless `allow_missing`.

    A key whose file could never be stored (a reserved value, a name too long for a store) is
    missing by definition, without asking the store.
    """
    uris = {key: _storable_file(dataset, columns) for key, columns in targets.items()}
    hive = {column.name: column.dtype for columns in targets.values() for column in columns}
    existing = _existing(dataset, [uri for uri in uris.values() if uri is not None], hive)
    missing = [key for key, uri in uris.items() if uri not in existing]
    if missing and not allow_missing:
        key = missing[0]
        uri = uris[key] or f"{dataset.root} (partition value cannot be stored)"
        raise MissingPartitionError(
            f"{where}: partition {key!r} has no data at {uri} "
            f"({len(missing)} of {len(uris)} requested partitions are missing). "
            "Materialize it first, or set allow_missing_partitions=True in the input's "
            "metadata to skip missing partitions." + missing_hint(dataset, uris[key])
        )
    return {key: uri for key, uri in uris.items() if uri is not None and key not in missing}


def split_files(dataset: Dataset, names: Sequence[str], where: str) -> Located:
    """Every data file of an asset split by `names`, with typed column values (only files
    of exactly that shape: never another asset's or another tool's)."""
    listed = data_files(dataset.store, dataset.root, names)
    dataset.listed_sizes.update(listed)
    uris = list(listed)
    if not uris:
        raise MissingPartitionError(
            f"{where}: no data below {dataset.root}. Materialize the upstream asset first."
        )
    record = _record(dataset, names)
    recorded = dict(record.partition_columns) if record else _partition_types(dataset, uris[0])
    dtypes = {name: recorded.get(name, pl.String()) for name in names}
    prefix = dataset.root + "/"
    parsed = ((uri, parse_partition_path(uri[len(prefix) :], dtypes)) for uri in uris)
    return [(uri, columns) for uri, columns in parsed if columns is not None]


def scan(dataset: Dataset, files: Located) -> pl.LazyFrame:
    """One lazy frame over the files, typed partition columns parsed from their paths."""
    uris = [uri for uri, _ in files]
    options = _scan_options(dataset, files[0][1])
    if len(uris) == 1:
        # the scan whose footer proved the file exists: polars reuses it, as raw polars would
        return dataset.opened(uris[0], options)
    return _recorded_scan(dataset, uris, options)


def scan_each(dataset: Dataset, files: Located) -> list[pl.LazyFrame]:
    """One lazy frame per file (a `dict` input's), in order. Several files were proven to exist
    by a listing: each is scanned with the dataset's recorded schema, so none reads its footer
    before it is collected, and all have the same columns (null where a file lacks one)."""
    if len(files) == 1:
        return [scan(dataset, files)]
    return [
        _recorded_scan(dataset, [uri], _scan_options(dataset, columns)) for uri, columns in files
    ]


def _scan_options(dataset: Dataset, columns: Sequence[PartitionColumn]) -> dict[str, Any]:
    return _hive_options(dataset, {column.name: column.dtype for column in columns})


def _hive_options(dataset: Dataset, hive: Mapping[str, pl.DataType]) -> dict[str, Any]:
    options: dict[str, Any] = {"hive_partitioning": bool(hive), **dataset.store.polars_options()}
    if hive:
        options["hive_schema"] = dict(hive)
    return options


def _recorded_scan(dataset: Dataset, uris: list[str], options: dict[str, Any]) -> pl.LazyFrame:
    """A scan planned from the schema record (no footer read), unified across the files."""
    record = _record(dataset, list(options.get("hive_schema", {})))
    schema = None if record is None else pl.Schema(record.columns)
    return pl.scan_parquet(uris, schema=schema, missing_columns="insert", **options)


def has_file(dataset: Dataset, uri: str, hive: Mapping[str, pl.DataType]) -> bool:
    """Whether the data file exists, by reading its footer (which the scan then reuses)."""
    options = _hive_options(dataset, hive)
    try:
        dataset.opened(uri, options).collect_schema()
    except FileNotFoundError:
        dataset.forget(uri)
        return False
    except Exception as error:
        # Only on this failure path: ask the store (never parse polars' message). S3 answers
        # 403, not 404, for a missing key to a role without s3:ListBucket.
        dataset.forget(uri)
        presence = dataset.store.probe(uri)
        if presence is Presence.PRESENT:
            raise ReadError(
                f"reading the Parquet footer of {uri} failed ({brief(error)}); the file "
                "exists, so it is unreadable or damaged: re-materialize that partition."
            ) from error
        if presence is Presence.DENIED:
            dataset.denied.add(uri)
        return False
    return True


def missing_hint(dataset: Dataset, uri: str | None) -> str:
    """What to add to a missing-data message for `uri` when S3 refused to say (403)."""
    if uri not in dataset.denied:
        return ""
    return (
        " S3 answered 403 AccessDenied for it, which is how S3 reports a missing key to a "
        "role without s3:ListBucket, so it may also be access denied: grant s3:ListBucket "
        "on the bucket to tell the two apart (and s3:GetObject on the key if it exists)."
    )


def raise_if_removed(dataset: Dataset, uris: Sequence[str], error: Exception, where: str) -> None:
    """After a read of listed files failed: raise `MissingPartitionError` if one of them is
    gone now (removed concurrently), else return so the caller re-raises `error`."""
    try:
        presences = _presences(dataset, uris)
    except Exception:  # the store cannot tell either: the read's own error stands
        return
    removed = [uri for uri, presence in presences.items() if presence is Presence.ABSENT]
    if removed:
        raise MissingPartitionError(
            f"{where}: {removed[0]} ({len(removed)} of {len(uris)} file(s) read) was removed "
            "after it was listed, by a concurrent rewrite or delete of the upstream asset "
            f"({brief(error)}). This is not a credentials problem: load again, a retry sees "
            "the current state."
        ) from error


def _existing(dataset: Dataset, uris: list[str], hive: Mapping[str, pl.DataType]) -> set[str]:
    if not uris:
        return set()
    if len(uris) == 1:
        return set(uris) if has_file(dataset, uris[0], hive) else set()
    with ThreadPoolExecutor(2) as pool:
        if dataset.store.parallel_reads > 1:  # the scan will need the record: read it meanwhile
            pool.submit(_record, dataset, list(hive))
        try:
            found = dataset.store.existing(uris)
        except Exception:  # e.g. a role without s3:ListBucket: ask for each file instead
            return _probed(dataset, uris)
    dataset.listed_sizes.update(found)
    return set(found)


def _probed(dataset: Dataset, uris: list[str]) -> set[str]:
    presences = _presences(dataset, uris)
    dataset.denied.update(uri for uri, found in presences.items() if found is Presence.DENIED)
    return {uri for uri, found in presences.items() if found is Presence.PRESENT}


def _presences(dataset: Dataset, uris: Sequence[str]) -> dict[str, Presence]:
    threads = max(1, min(dataset.store.parallel_reads, len(uris)))
    with ThreadPoolExecutor(threads) as pool:
        return dict(zip(uris, pool.map(dataset.store.probe, uris), strict=True))


def _record(dataset: Dataset, names: Sequence[str]) -> SchemaRecord | None:
    """The dataset's schema record, read once per load."""
    if "record" not in dataset.loaded_records:
        dataset.loaded_records["record"] = dataset.current_record(names)
    return dataset.loaded_records["record"]


def _storable_file(dataset: Dataset, columns: Sequence[PartitionColumn]) -> str | None:
    try:
        uri = dataset.file_for(columns)
    except PartitionValueError:  # a reserved value: never stored under any name
        return None
    return uri if storage_problem(uri) is None else None


def _partition_types(dataset: Dataset, uri: str) -> dict[str, pl.DataType]:
    try:
        metadata = pl.read_parquet_metadata(uri, **dataset.store.polars_options())
    except Exception as error:
        raise_if_removed(dataset, [uri], error, f"reading {dataset.root}")
        raise ReadError(f"reading the Parquet footer of {uri} failed: {brief(error)}") from error
    recorded = json.loads(metadata.get(PARTITION_TYPES_KEY, "{}"))
    return {name: parse_dtype(text) for name, text in recorded.items()}
