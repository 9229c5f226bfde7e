"""The dataset-level schema record: `{base}/.pq-meta/{asset}/_schema.json`, one per asset.

It holds every data column's type and where that type was first stored, plus the partition
columns of the stored layout, so that a write is checked against the whole dataset with one
read, whatever the number of partitions. It is only ever changed by a compare-and-swap
(`Store.write_if`), so concurrent writers end with the union of their columns and, of two
conflicting first writers, exactly one wins. It lives outside the dataset (see
`layout.metadata_uri`), so readers of the dataset never see it. No Dagster import.
"""

import base64
import functools
import io
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from pq_io_manager.errors import SchemaConflictError, WriteError
from pq_io_manager.stores import Store

RECORD_NAME = "_schema.json"
_FORMAT = 1
_ATTEMPTS = 64
_BACKOFF_SECONDS = 0.02


@dataclass(frozen=True)
class SchemaRecord:
    """Data column types (first-stored order), where each was first stored, and the layout."""

    columns: dict[str, pl.DataType]
    origins: dict[str, str]
    partition_columns: dict[str, pl.DataType] = field(default_factory=dict)

    def schema(self) -> pl.Schema:
        """The schema a load returns: data columns, then the partition columns."""
        return pl.Schema({**self.columns, **self.partition_columns})

    def to_bytes(self) -> bytes:
        """JSON; types twice: readable text, and exact Arrow IPC (nested types round-trip)."""
        document = {
            "format": _FORMAT,
            "revision": uuid.uuid4().hex,  # every version differs, so no ABA on its tag
            "columns": [
                {"name": name, "type": str(dtype), "first_stored_in": self.origins.get(name)}
                for name, dtype in self.columns.items()
            ],
            "partition_columns": {name: str(d) for name, d in self.partition_columns.items()},
            "data_schema": _encode(self.columns),
            "partition_schema": _encode(self.partition_columns),
        }
        return json.dumps(document, indent=1).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SchemaRecord":
        """Inverse of `to_bytes`."""
        document = json.loads(data)
        origins = {
            entry["name"]: entry.get("first_stored_in") or "" for entry in document["columns"]
        }
        return cls(_decode(document["data_schema"]), origins, _decode(document["partition_schema"]))


def merged(
    record: SchemaRecord | None,
    columns: Mapping[str, pl.DataType],
    partition_columns: Mapping[str, pl.DataType],
    origin: str,
    where: str,
) -> SchemaRecord:
    """The record extended by a write of `columns`; a conflicting type raises.

    All-null (`Null`) columns agree with every type both ways: a recorded Null is upgraded to
    the first real type written, and a Null output is stored with the recorded type.
    """
    if record is None:
        return SchemaRecord(dict(columns), dict.fromkeys(columns, origin), dict(partition_columns))
    _check_layout(record, partition_columns, where)
    types, origins = dict(record.columns), dict(record.origins)
    for name, dtype in columns.items():
        stored = types.get(name)
        if stored is None or (stored == pl.Null and dtype != pl.Null):
            types[name], origins[name] = dtype, origin
        elif dtype != stored and dtype != pl.Null:
            raise SchemaConflictError(
                f"{where}: column {name!r} is {dtype} in this output but {stored} in the stored "
                f"dataset (first stored in {record.origins.get(name) or 'an earlier write'}); "
                f"one dataset needs one type per column. Cast it to {stored}, or re-materialize "
                "every partition with the new type (after deleting the asset's directory)."
            )
    return SchemaRecord(types, origins, dict(record.partition_columns))


def null_casts(record: SchemaRecord, columns: Mapping[str, pl.DataType]) -> dict[str, pl.DataType]:
    """The output's all-null columns that must be stored with the recorded type."""
    return {
        name: record.columns[name]
        for name, dtype in columns.items()
        if dtype == pl.Null and record.columns.get(name, pl.Null) != pl.Null
    }


def update(
    store: Store, uri: str, change: Callable[[SchemaRecord | None], SchemaRecord | None]
) -> SchemaRecord | None:
    """Apply `change` to the stored record by compare-and-swap, retrying on a lost race.

    `change` gets the current record (None when absent) and returns the new one (or None /
    the same to leave it); it may raise to refuse. Returns the record as stored afterwards.
    """
    for attempt in range(_ATTEMPTS):
        current = store.read_versioned(uri)
        record = None if current is None else SchemaRecord.from_bytes(current.data)
        wanted = change(record)
        if wanted is None or wanted == record:
            return record
        version = None if current is None else current.version
        if store.write_if(uri, wanted.to_bytes(), version) is not None:
            return wanted
        time.sleep(random.uniform(0, _BACKOFF_SECONDS * min(attempt + 1, 10)))
    raise WriteError(
        f"updating the schema record {uri} lost {_ATTEMPTS} races in a row to other writers; "
        "nothing was written. Retry the materialization."
    )


def read(store: Store, uri: str) -> SchemaRecord | None:
    """The stored record, or None."""
    current = store.read_versioned(uri)
    return None if current is None else SchemaRecord.from_bytes(current.data)


def _check_layout(
    record: SchemaRecord, partition_columns: Mapping[str, pl.DataType], where: str
) -> None:
    if list(record.partition_columns) == list(partition_columns):
        return
    raise SchemaConflictError(
        f"{where}: this output is stored by the partition column(s) {list(partition_columns)} "
        f"but the stored dataset by {list(record.partition_columns)}; one dataset has one "
        "layout. Restore the asset's partition_by metadata, or delete the asset's directory "
        "and re-materialize every partition."
    )


def _encode(columns: Mapping[str, pl.DataType]) -> str:
    buffer = io.BytesIO()
    pl.DataFrame(schema=dict(columns)).write_ipc(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def _decode(text: str) -> dict[str, pl.DataType]:
    return dict(_decoded(text))


@functools.lru_cache(maxsize=256)
def _decoded(text: str) -> tuple[tuple[str, pl.DataType], ...]:
    # every load reads the record; decoding its IPC schemas costs more than the read (local)
    return tuple(pl.read_ipc(io.BytesIO(base64.b64decode(text))).schema.items())
