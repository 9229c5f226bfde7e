"""What a failed write means, told truthfully: the user's query, a partition mismatch, or storage.

polars reports storage failures as `OSError` (connection, permission, missing path); anything
else raised while it writes a frame came out of the asset's own query, except that a
`ComputeError` may also be an upload cut off mid-stream, which the message then says.
Classified by exception type only, never by parsing another library's message (the mismatch
sentinel is our own text).
"""

import polars as pl

from pq_io_manager.errors import PartitionValueError, QueryError, WriteError, brief
from pq_io_manager.frames import MISMATCH_SENTINEL


def write_error(error: BaseException, where: str, final: str) -> BaseException:
    """What a failure of polars writing a frame means: a partition mismatch, the user's query,
    or storage."""
    if not isinstance(error, Exception):
        return error
    if MISMATCH_SENTINEL in str(error):
        return PartitionValueError(
            f"{where}: a row's partition column does not match the partition key "
            f"({brief(error)}); nothing was written to {final}. Every row must carry the "
            "partition key, or drop the column and it is added for you."
        )
    if not isinstance(error, OSError):
        # polars reports storage failures as OSError (connection, permission, missing path);
        # anything else came out of the asset's own query (a bad cast, a missing column, an
        # exception in a UDF) and is the user's to fix, not the bucket's.
        return QueryError(
            f"{where}: the asset's polars query failed while its output was being written "
            f"({brief(error)}); nothing was published to {final} and the previous version, if "
            f"any, is untouched. Fix the query or its input data and re-run.{_ambiguity(error)}"
        )
    return storage_error(error, where, final)


def _ambiguity(error: Exception) -> str:
    # polars 2.1 raises ComputeError both for a failing expression (a strict cast) and for an
    # upload cut off in the middle of a streamed part: the type cannot tell them apart.
    if not isinstance(error, pl.exceptions.ComputeError):
        return ""
    return (
        " (polars reports an upload cut off mid-stream as the same ComputeError: if the "
        "message names an IO error, check the connection to the store instead.)"
    )


def storage_error(error: BaseException, where: str, final: str) -> BaseException:
    """A failure of the store itself (upload, publish) before anything was published."""
    if not isinstance(error, Exception):
        return error
    return WriteError(
        f"{where}: writing {final} failed ({brief(error)}); nothing was published and the "
        "previous version, if any, is untouched. Check the bucket, the credentials' "
        "permissions and the endpoint, then re-run the materialization."
    )
