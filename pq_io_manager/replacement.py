"""Replacing an unpartitioned asset whole (one file, or split by `partition_by` values).

Every value is validated and every file staged before any is published, so a failed rewrite
leaves the previous version whole. Then, holding the asset's writer lock: publish every file,
remove the previous version's data files that the new one does not have, record the schema.
A concurrent rewrite of the same asset is refused by the lock. No Dagster import.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from pq_io_manager.dataset_files import data_files
from pq_io_manager.errors import WriteError, brief
from pq_io_manager.frames import Frame
from pq_io_manager.layout import PartitionColumn, check_storable, metadata_uri
from pq_io_manager.schema_record import SchemaRecord, update
from pq_io_manager.staged_files import Staged, discard_all, publish_all, run_all
from pq_io_manager.writer_lock import LOCK_NAME, writer_lock

if TYPE_CHECKING:
    from pq_io_manager.storage import Dataset, WrittenFile

Parts = Sequence[tuple[tuple[PartitionColumn, ...], Frame]]


def replace_whole(dataset: "Dataset", parts: Parts, where: str) -> list["WrittenFile"]:
    """Replace every data file of the asset by `parts` (see the module docstring)."""
    for columns, _ in parts:
        check_storable(dataset.file_for(columns), where)
    schema = parts[0][1].collect_schema()
    if len(parts) == 1:  # one file: published atomically by itself (S3 PUT, or stage and rename)
        return _replace(dataset, parts[0][0], schema, [], parts[0], where)
    return _replace(dataset, parts[0][0], schema, _stage_all(dataset, parts, where), None, where)


def replace_staged(
    dataset: "Dataset", staged: Sequence[Staged], schema: pl.Schema, where: str
) -> list["WrittenFile"]:
    """Replace every data file of the asset by files already staged (data columns `schema`);
    the staged files are removed whatever happens."""
    return _replace(dataset, staged[0].columns, schema, staged, None, where)


def _replace(
    dataset: "Dataset",
    columns: tuple[PartitionColumn, ...],
    schema: pl.Schema,
    staged: Sequence[Staged],
    single: tuple[tuple[PartitionColumn, ...], Frame] | None,
    where: str,
) -> list["WrittenFile"]:
    finals = [file.final for file in staged] or [dataset.file_for(columns)]
    names = [column.name for column in columns]
    origin = finals[0][len(dataset.root) + 1 :]
    record = SchemaRecord(
        dict(schema), dict.fromkeys(schema, origin), {c.name: c.dtype for c in columns}
    )
    try:
        lock = metadata_uri(dataset.base_path, dataset.root, LOCK_NAME)
        with writer_lock(dataset.store, lock, where) as lease:
            previous = _previous_files(dataset, names)
            if single is None:
                written = _publish_all(dataset, staged, where)
            else:
                written = [dataset.write(single[0], single[1], where)]
            lease.check(where)
            _remove_previous(dataset, previous, set(finals), where)
            update(dataset.store, dataset.record_uri, lambda _: record)
    except BaseException:
        # published files' staging is gone already; the rest is removed
        discard_all(dataset.store, [file.staged for file in staged])
        raise
    return dataset.with_sizes(written)


def _previous_files(dataset: "Dataset", names: list[str]) -> dict[str, int]:
    stored = dataset.current_record(names)
    layouts = {tuple(names)}
    if stored is not None:
        layouts.add(tuple(stored.partition_columns))
    found: dict[str, int] = {}
    for layout in layouts:
        found.update(data_files(dataset.store, dataset.root, layout))
    return found


def _remove_previous(
    dataset: "Dataset", previous: dict[str, int], keep: set[str], where: str
) -> None:
    try:
        dataset.store.delete(sorted(uri for uri in previous if uri not in keep))
    except Exception as error:
        raise WriteError(
            f"{where}: the new version is published, but removing the previous version's "
            f"other files failed ({brief(error)}); a reader may see stale directories until "
            "the asset is materialized again."
        ) from error


def _stage_all(dataset: "Dataset", parts: Parts, where: str) -> list[Staged]:
    def stage(part: tuple[tuple[PartitionColumn, ...], Frame]) -> Staged:
        columns, frame = part
        staged, row_count = dataset.stage(columns, frame, where)
        return Staged(columns, staged, dataset.file_for(columns), row_count)

    done, errors = run_all(stage, list(parts))
    if errors:
        discard_all(dataset.store, [file.staged for file in done])
        raise errors[0]
    return done


def _publish_all(dataset: "Dataset", staged: Sequence[Staged], where: str) -> list["WrittenFile"]:
    from pq_io_manager.storage import WrittenFile

    published, errors = publish_all(dataset.store, staged)
    done = [WrittenFile(file.final, file.columns, file.row_count, size) for file, size in published]
    if errors:
        raise WriteError(
            f"{where}: publishing failed after {len(done)} of {len(staged)} files "
            f"({brief(errors[0])}); the asset now mixes both versions (each file whole). "
            "Re-run the materialization to publish the rest."
        ) from errors[0]
    return done
