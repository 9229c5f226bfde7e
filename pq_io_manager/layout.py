"""Where data lives: base paths, asset roots, hive `column=value` directories and value typing.

Pure functions and value objects; no I/O and no Dagster import.
"""

import datetime as dt
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

import polars as pl

from pq_io_manager.errors import ConfigurationError, PartitionValueError

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
DATA_FILE_NAME = "data.parquet"
STAGING_DIRECTORY = ".pq-staging"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_COLUMN_PATTERN = re.compile(r"^[^/=\\\x00-\x1f]+$")
PartitionValue = str | int | bool | dt.date | dt.datetime


@dataclass(frozen=True)
class PartitionColumn:
    """One hive level: a column name, its polars type and the typed value of this partition."""

    name: str
    dtype: pl.DataType
    value: PartitionValue

    @property
    def directory(self) -> str:
        """The `column=value` directory name, value percent-encoded."""
        return f"{self.name}={encode_hive_value(self.value)}"


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
        return "/".join(["s3:/", bucket, *segments])
    if "://" in base_path:
        raise ConfigurationError(
            f"base_path {base_path!r} uses an unsupported scheme: "
            "use s3://bucket/prefix or a local directory path"
        )
    if not base_path.strip():
        raise ConfigurationError("base_path is empty: use s3://bucket/prefix or a local directory")
    return posixpath.normpath(posixpath.abspath(base_path))


def asset_root(base_path: str, asset_path: Sequence[str]) -> str:
    """The directory holding every file of one asset: `{base_path}/{key/path}`."""
    _check_segments(list(asset_path), f"asset key {list(asset_path)!r}")
    if asset_path and asset_path[0] == STAGING_DIRECTORY:
        raise ConfigurationError(f"asset key {list(asset_path)!r} clashes with {STAGING_DIRECTORY}")
    return "/".join([base_path, *asset_path])


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
    if not isinstance(name, str) or not _COLUMN_PATTERN.match(name) or name in {".", ".."}:
        raise ConfigurationError(
            f"{where}: {name!r} is not a usable partition column name "
            "(a non-empty string without '/', '=' or control characters)"
        )
    return name


def encode_hive_value(value: PartitionValue | None) -> str:
    """Format a typed value as a hive directory value, percent-encoding all but [A-Za-z0-9_.~-]."""
    if value is None:
        return HIVE_NULL
    text = _format_value(value)
    if text == HIVE_NULL or text == "":
        raise PartitionValueError(
            f"partition value {text!r} cannot be stored: it is reserved for nulls or empty"
        )
    # quote(safe="") also encodes "/" and "%", so a value can never add a path level or escape
    return quote(text, safe="")


def decode_hive_value(text: str, dtype: pl.DataType) -> PartitionValue | None:
    """Inverse of `encode_hive_value` for a column of type `dtype`."""
    if text == HIVE_NULL:
        return None
    raw = unquote(text)
    if dtype == pl.String:
        return raw
    if dtype == pl.Date:
        return dt.date.fromisoformat(raw)
    if isinstance(dtype, pl.Datetime):
        parsed = dt.datetime.strptime(raw, DATETIME_FORMAT)
        return parsed.replace(tzinfo=_zone(dtype.time_zone))
    if dtype == pl.Boolean:
        return raw == "true"
    if dtype.is_integer():
        return int(raw)
    raise ConfigurationError(f"partition columns of type {dtype} are not supported")


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
        columns.append(PartitionColumn(name, dtype, decode_hive_value(text, dtype)))  # type: ignore[arg-type]
    return tuple(columns)


def dtype_for_values(dtype: pl.DataType, where: str) -> pl.DataType:
    """Check that a column of `dtype` can be a hive level and return it."""
    if dtype in (pl.String, pl.Date, pl.Boolean) or dtype.is_integer():
        return dtype
    if isinstance(dtype, pl.Datetime):
        return dtype
    raise ConfigurationError(
        f"{where}: partition column type {dtype} is not supported; "
        "cast it to String, an integer, Boolean, Date or Datetime"
    )


def _format_value(value: PartitionValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        # Hive stores wall-clock time; the time zone lives in the column type
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _zone(name: str | None) -> dt.tzinfo | None:
    if name is None:
        return None
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _check_segments(segments: list[str], where: str) -> None:
    for segment in segments:
        if segment in {"", ".", ".."} or "/" in segment or "\\" in segment:
            raise ConfigurationError(
                f"{where} has the path segment {segment!r}, which could address another "
                "directory: use plain names"
            )


def parse_dtype(text: str) -> pl.DataType:
    """Inverse of `str(dtype)` for the partition column types (unknown names: String)."""
    if text.startswith("Datetime"):
        unit = "ms" if "'ms'" in text else "ns" if "'ns'" in text else "us"
        zone = text.split("time_zone=")[-1].rstrip(")").strip("'")
        return pl.Datetime(unit, None if zone == "None" else zone)  # type: ignore[arg-type]
    dtype = getattr(pl, text, None)
    if dtype is None:
        return pl.String()
    return dtype() if isinstance(dtype, type) else dtype  # type: ignore[no-any-return]
