"""Where data lives: base paths, asset roots and hive `column=value` directories.

Pure functions and value objects; no I/O and no Dagster import. How a typed value becomes
directory text is `hive_values`' business.
"""

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import polars as pl

from pq_io_manager.errors import ConfigurationError, PartitionValueError
from pq_io_manager.hive_values import (
    HIVE_NULL,
    PartitionValue,
    decode_hive_value,
    dtype_for_values,
    encode_hive_value,
    encode_text,
    parse_dtype,
    text_literal,
    value_text,
)

__all__ = [  # the value helpers are re-exported: callers address "the layout"
    "HIVE_NULL",
    "PartitionValue",
    "decode_hive_value",
    "dtype_for_values",
    "encode_hive_value",
    "parse_dtype",
]

DATA_FILE_NAME = "data.parquet"
STAGING_DIRECTORY = ".pq-staging"
# The IO manager's own small files per asset (schema record, writer lock) live outside the
# datasets: a non-Parquet file inside one breaks `pl.scan_parquet(root + "/")` (polars refuses
# a directory of mixed file extensions) and is one more name every other reader must skip.
METADATA_DIRECTORY = ".pq-meta"
# Name limits every supported store accepts: one path level (ext4, xfs, APFS: 255 bytes) and a
# whole S3 key (1024 bytes). A dataset must also fit on the store it may be copied to.
MAX_NAME_BYTES = 255
MAX_KEY_BYTES = 1024
_BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_COLUMN_PATTERN = re.compile(r"^[^/=\\\x00-\x1f]+$")


@dataclass(frozen=True)
class PartitionColumn:
    """One hive level: a column name, its polars type and the typed value of this partition.

    `text` overrides the value's canonical text when polars computed it (nanosecond datetimes
    have no exact Python value); `key` is the Dagster key of this dimension and `zone` the time
    zone of its time windows, so that outputs may carry the key as Dagster formats it.
    """

    name: str
    dtype: pl.DataType
    value: PartitionValue | None
    text: str | None = None
    key: str | None = None
    zone: str | None = None

    @property
    def hive_text(self) -> str | None:
        """The value as hive text (None for null)."""
        if self.text is not None:
            return self.text
        return None if self.value is None else value_text(self.value)

    @property
    def directory(self) -> str:
        """The `column=value` directory name, value percent-encoded."""
        text = self.hive_text
        return f"{self.name}={HIVE_NULL if text is None else encode_text(text)}"

    def literal(self) -> pl.Expr:
        """The value as a polars literal of the column's type, exact."""
        text = self.hive_text
        if text is None:
            return pl.lit(None, dtype=self.dtype)
        return text_literal(text, self.dtype)


def is_s3_uri(path: str) -> bool:
    """Whether `path` addresses S3 rather than the local filesystem."""
    return path.startswith("s3://")


def normalize_base_path(base_path: str) -> str:
    """Validate `base_path` and return it without a trailing slash (local paths made absolute)."""
    if is_s3_uri(base_path):
        bucket, _, prefix = base_path[len("s3://") :].partition("/")
        if not _BUCKET_PATTERN.match(bucket):
            raise ConfigurationError(
                f"base_path {base_path!r} does not name a valid S3 bucket ({bucket!r}): "
                "use s3://bucket-name/optional/prefix"
            )
        segments = [segment for segment in prefix.split("/") if segment]
        _check_segments(segments, f"base_path {base_path!r}")
        _refuse_hive_levels(segments, base_path)
        return "/".join(["s3:/", bucket, *segments])
    if "://" in base_path:
        raise ConfigurationError(
            f"base_path {base_path!r} uses an unsupported scheme: "
            "use s3://bucket/prefix or a local directory path"
        )
    if not base_path.strip():
        raise ConfigurationError("base_path is empty: use s3://bucket/prefix or a local directory")
    normalized = posixpath.normpath(posixpath.abspath(base_path))
    _refuse_hive_levels(normalized.split("/"), base_path)
    return normalized


def _refuse_hive_levels(segments: Sequence[str], base_path: str) -> None:
    # Hive readers (polars, Spark, DuckDB) take every `name=value` level of a path for a
    # partition column, so one above the assets would add a column to every dataset.
    hive = [segment for segment in segments if "=" in segment]
    if hive:
        raise ConfigurationError(
            f"base_path {base_path!r} contains {hive[0]!r}, which hive readers would take for a "
            "partition column of every dataset below it: choose a base path without '='"
        )


def asset_root(base_path: str, asset_path: Sequence[str]) -> str:
    """The directory holding every file of one asset: `{base_path}/{key/path}`.

    Key segments that could be read as one of our files or hive levels (`x=y`, `*.parquet`) or
    that hive readers skip or we use ourselves (`.hidden`, `_marker`) are refused, so no asset's
    files can ever be taken for another's: assets whose keys extend one another stay apart.
    """
    where = f"asset key {list(asset_path)!r}"
    _check_segments(list(asset_path), where)
    for segment in asset_path:
        if "=" in segment or segment.startswith((".", "_")) or segment.endswith(".parquet"):
            raise ConfigurationError(
                f"{where} has the segment {segment!r}, which could be taken for a hive level, a "
                "data file or a hidden/metadata entry of another asset's dataset (segments may "
                "not contain '=', start with '.' or '_', or end in '.parquet'): rename the asset"
            )
    return "/".join([base_path, *asset_path])


def metadata_uri(base_path: str, root: str, name: str) -> str:
    """`{base_path}/.pq-meta/{asset/key/path}/{name}`: one of an asset's own small files.

    `name` starts with "_", which no asset key segment may, so an asset whose key extends
    another's can never address the other's files.
    """
    return f"{base_path}/{METADATA_DIRECTORY}/{root[len(base_path) + 1 :]}/{name}"


def staging_directory(base_path: str) -> str:
    """Where files are staged before publishing: outside every asset root, same store."""
    return f"{base_path}/{STAGING_DIRECTORY}"


def staging_uri(base_path: str, token: str) -> str:
    """A fresh staging location for one file."""
    return f"{staging_directory(base_path)}/{token}.parquet"


def partition_file(root: str, columns: Sequence[PartitionColumn]) -> str:
    """The one data file of a partition: `{root}/{col=value/...}/data.parquet`."""
    return "/".join([root, *(column.directory for column in columns), DATA_FILE_NAME])


def check_column_name(name: str, where: str) -> str:
    """Refuse column names that cannot be a hive directory level."""
    if (
        not isinstance(name, str)
        or not _COLUMN_PATTERN.match(name)
        or name.startswith(".")  # hive readers skip hidden directories
        or name == HIVE_NULL
    ):
        raise ConfigurationError(
            f"{where}: {name!r} is not a usable partition column name (a non-empty string "
            "without '/', '=' or control characters, not starting with '.')"
        )
    return name


def storage_problem(uri: str) -> str | None:
    """Why a file cannot be stored under this name on every supported store, or None."""
    if uri.isascii() and len(uri) <= MAX_NAME_BYTES:  # no level nor key is longer than it
        return None
    levels = uri.split("://", 1)[-1].split("/")
    longest = max(levels, key=lambda level: len(level.encode()))
    if len(longest.encode()) > MAX_NAME_BYTES:
        return (
            f"the path level {longest[:60]!r}... is {len(longest.encode())} bytes once "
            f"percent-encoded; stores accept at most {MAX_NAME_BYTES} bytes per level"
        )
    key = "/".join(levels[1:]) if uri.startswith("s3://") else uri
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"the key is {len(key.encode())} bytes; S3 accepts at most {MAX_KEY_BYTES}"
    return None


def check_storable(uri: str, where: str) -> str:
    """Refuse, before anything is written, a file name some store would reject or cut."""
    problem = storage_problem(uri)
    if problem is not None:
        raise PartitionValueError(
            f"{where}: cannot store {uri[:120]}...: {problem}. Use shorter partition keys or "
            "values (or a shorter base path / asset key)."
        )
    return uri


def parse_partition_path(
    relative_path: str, dtypes: Mapping[str, pl.DataType]
) -> tuple[PartitionColumn, ...] | None:
    """Parse `col=value/.../data.parquet` below an asset root; None if it is not one of ours."""
    *directories, file_name = relative_path.split("/")
    if file_name != DATA_FILE_NAME or len(directories) != len(dtypes):
        return None
    columns = []
    for directory, (name, dtype) in zip(directories, dtypes.items(), strict=True):
        column, separator, text = directory.partition("=")
        if not separator or column != name:
            return None
        raw = unquote(text)
        try:
            value = decode_hive_value(text, dtype)
        except ValueError:  # another tool's directory that merely looks like ours
            return None
        columns.append(
            PartitionColumn(
                name, dtype, value, text=raw if isinstance(dtype, pl.Datetime) else None
            )
        )
    return tuple(columns)


def _check_segments(segments: list[str], where: str) -> None:
    for segment in segments:
        if segment in {"", ".", ".."} or "/" in segment or "\\" in segment:
            raise ConfigurationError(
                f"{where} has the path segment {segment!r}, which could address another "
                "directory: use plain names"
            )


def data_file_levels(relative_path: str) -> tuple[str, ...] | None:
    """The column names of a `col=value/.../data.parquet` path below an asset root (`()` for
    the root's own data file); None for any other file (another tool's, or another asset's)."""
    *directories, file_name = relative_path.split("/")
    if file_name != DATA_FILE_NAME:
        return None
    names = tuple(directory.partition("=")[0] for directory in directories)
    if not all(
        "=" in directory and not directory.startswith((".", "_")) for directory in directories
    ):
        return None
    return names
