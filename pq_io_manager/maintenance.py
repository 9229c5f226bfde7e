"""What a user can do with stored data outside a run: delete it, see what is stored.

Mixed into `PartitionedParquetIOManager` (whose adapter stays thin): each method builds the
asset's `AssetSlice` from its definition, exactly as a write builds it from its context, and
hands it to `deletion` / `reading`. Usable from an op, a sensor or a script (the resource
needs no run: `PartitionedParquetIOManager(base_path=...).delete_asset(orders)`).
"""

import contextlib
from collections.abc import Iterator, Sequence

import polars as pl
from dagster import AssetsDefinition, AssetSpec

from pq_io_manager import deletion
from pq_io_manager.asset_slice import AssetSlice, asset_spec, definition_slice
from pq_io_manager.errors import ConfigurationError, PqIOManagerError, ReadError, brief
from pq_io_manager.partitions import split_columns
from pq_io_manager.reading import find_files
from pq_io_manager.storage import Dataset

Asset = AssetsDefinition | AssetSpec


class StorageMaintenance:
    """Deleting and inspecting an asset's stored data, given its definition."""

    def _dataset(self, target: AssetSlice) -> Dataset:
        raise NotImplementedError  # the IO manager's own

    def delete_partitions(
        self, asset: Asset, partition_keys: Sequence[str], dry_run: bool = False
    ) -> deletion.Deletion:
        """Delete the stored data of some partitions of a partitioned asset.

        Removes exactly each partition's `data.parquet` (the file a write of that key
        publishes); other tools' files in its directory are left and listed in `left`. Keys
        with no stored data, or that no partition could be stored under, are listed in
        `absent_keys`. Keys need not be in the partitions definition any more (a removed
        dynamic partition). The schema record stays: see `delete_asset`.

        Args:
            asset: The asset's definition (`@asset` function or `AssetSpec`): its key,
                partitions definition and `partition_by` metadata map keys to files.
            partition_keys: Dagster partition keys, as a write receives them.
            dry_run: Only list what would be removed.

        Returns:
            What was (or would be) removed.
        """
        target, unmapped = definition_slice(asset_spec(asset), _keys(partition_keys))
        if target.scheme is None:
            raise ConfigurationError(
                f"{target.where} is not partitioned: use delete_asset() to delete its data"
            )
        with _failures(target):
            dataset = self._dataset(target)
            return deletion.delete_partitions(dataset, target, unmapped, dry_run)

    def delete_asset(self, asset: Asset, dry_run: bool = False) -> deletion.Deletion:
        """Delete every stored data file of an asset and its schema record.

        Never touches another asset (keys that extend this one) or other tools' files. Holds
        the asset's writer lock: a concurrent whole replacement is refused, not mixed in.

        Args:
            asset: The asset's definition (`@asset` function or `AssetSpec`).
            dry_run: Only list what would be removed.

        Returns:
            What was (or would be) removed.
        """
        target, _ = definition_slice(asset_spec(asset), ())
        with _failures(target):
            return deletion.delete_asset(self._dataset(target), target, dry_run)

    def stored_partition_keys(self, asset: Asset, partition_keys: Sequence[str]) -> list[str]:
        """Which of `partition_keys` of a partitioned asset have stored data (one listing)."""
        target, _ = definition_slice(asset_spec(asset), _keys(partition_keys))
        targets = {part.key: part.columns for part in target.partitions}
        with _failures(target):
            return list(find_files(self._dataset(target), targets, True, target.where))

    def stored_files(self, asset: Asset) -> dict[str, int]:
        """Every stored data file of an asset (URI to size in bytes, sorted)."""
        target, _ = definition_slice(asset_spec(asset), ())
        with _failures(target):
            return deletion.data_files_of(self._dataset(target), target)

    def stored_schema(self, asset: Asset) -> pl.Schema | None:
        """The stored columns and types (data columns, then partition columns) from the
        schema record, or from the files' footers for a dataset stored before records
        existed; None when nothing is stored."""
        target, _ = definition_slice(asset_spec(asset), ())
        if target.scheme is not None:
            names = list(target.scheme.dtypes)
        else:
            names = split_columns(target.metadata, target.where)
        with _failures(target):
            record = self._dataset(target).current_record(names)
        return None if record is None else record.schema()


def _keys(partition_keys: Sequence[str]) -> Sequence[str]:
    if isinstance(partition_keys, str):  # a string is a sequence of one-letter "keys"
        raise ConfigurationError(
            f"partition_keys must be a list of partition keys, e.g. [{partition_keys!r}], not "
            f"the string {partition_keys!r}"
        )
    return partition_keys


@contextlib.contextmanager
def _failures(target: AssetSlice) -> Iterator[None]:
    """Chain a storage client's error into a package error naming the asset."""
    try:
        yield
    except PqIOManagerError:
        raise
    except Exception as error:
        raise ReadError(
            f"{target.where}: listing its stored files failed ({brief(error)}). Check the "
            "bucket, the credentials' permissions (s3:ListBucket) and the endpoint."
        ) from error
