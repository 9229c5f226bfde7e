"""pq_io_manager: Dagster IO manager for polars frames as hive-partitioned Parquet."""

from pq_io_manager.errors import (
    ConfigurationError,
    CredentialsError,
    MissingPartitionError,
    PartitionValueError,
    PqIOManagerError,
    QueryError,
    ReadError,
    SchemaConflictError,
    WriteError,
)
from pq_io_manager.io_manager import DEFAULT_BASE_PATH, PartitionedParquetIOManager

__all__ = [
    "DEFAULT_BASE_PATH",
    "ConfigurationError",
    "CredentialsError",
    "MissingPartitionError",
    "PartitionValueError",
    "PartitionedParquetIOManager",
    "PqIOManagerError",
    "QueryError",
    "ReadError",
    "SchemaConflictError",
    "WriteError",
]
