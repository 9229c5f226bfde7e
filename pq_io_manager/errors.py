"""Exceptions raised by pq_io_manager.

Every error names what failed, why, and how to fix it. Missing data raises
`MissingPartitionError`, which is also a `FileNotFoundError`.
"""


class PqIOManagerError(Exception):
    """Base class of every error raised by pq_io_manager."""


class ConfigurationError(PqIOManagerError):
    """The IO manager or an asset is configured in a way that cannot work."""


class CredentialsError(PqIOManagerError):
    """No usable S3 credentials could be resolved."""


class PartitionValueError(PqIOManagerError):
    """An output's partition columns disagree with the partition being written."""


class SchemaConflictError(PqIOManagerError):
    """An output's schema conflicts with the partitions already stored."""


class WriteError(PqIOManagerError):
    """Writing or publishing a Parquet file failed; the previous version is untouched."""


class QueryError(PqIOManagerError):
    """The asset's own polars query failed while its output was being written.

    Not a storage problem: nothing was published, the previous version is untouched, and the
    fix is in the asset's code or its input data.
    """


class ReadError(PqIOManagerError):
    """Reading stored Parquet data failed."""


class MissingPartitionError(PqIOManagerError, FileNotFoundError):
    """A requested partition has never been written (or was deleted)."""


_MESSAGE_LIMIT = 500


def brief(error: BaseException) -> str:
    """`Type: message` of an error, cut to a readable length."""
    text = f"{type(error).__name__}: {error}".strip()
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."
