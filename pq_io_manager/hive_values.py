"""Typed values as hive directory text, and back: one canonical text per value.

Pure functions; no I/O and no Dagster import. The text of a value is what a hive reader
(polars, DuckDB, pyarrow, Spark) sees after percent-decoding the directory name:

- strings as they are; integers in decimal; booleans `true` / `false`; dates `YYYY-MM-DD`;
- datetimes in ISO 8601 with `T`, seconds always, a fraction only when it is not zero (3, 6 or
  9 digits, as polars' `%.f` prints it); time-zone-aware ones as their UTC instant with `Z`, so
  that the two hours a DST change repeats are two directories and every reader sees instants.
"""

import datetime as dt
import re
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import polars as pl

from pq_io_manager.errors import ConfigurationError, PartitionValueError

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
PartitionValue = str | int | bool | dt.date | dt.datetime
# chrono (polars) format of a datetime value: `%.f` is empty or 3/6/9 digits with the dot
_POLARS_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.f"
# What versions before 0.2 wrote for datetimes: wall-clock time, no offset (read, not written)
_LEGACY_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_UTC = dt.UTC
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # what needs no encoding at all (the common case)
_ASCII_ENCODED = {chr(code): quote(chr(code), safe="") for code in range(0x80)}


def value_text(value: PartitionValue) -> str:
    """The canonical hive text of a value (before percent-encoding)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return datetime_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def encode_hive_value(value: PartitionValue | None) -> str:
    """A typed value as a directory value, percent-encoding all but [A-Za-z0-9_.~-]."""
    if value is None:
        return HIVE_NULL
    return encode_text(value_text(value))


def encode_text(text: str) -> str:
    """Percent-encode hive text, refusing what a hive reader would not read back as itself.

    ASCII outside [A-Za-z0-9_.~-] is percent-encoded (so "/", "=", "%" can never add a path
    level or escape); other characters stay as they are, as Spark and Hive write them: Spark
    decodes each `%XX` as one Latin-1 character, so UTF-8 bytes encoded one by one would reach
    it garbled, while polars, pyarrow and DuckDB read raw characters and escapes alike.
    Control and other non-printable characters are always encoded.
    """
    if text in (HIVE_NULL, ""):
        raise PartitionValueError(
            f"partition value {text!r} cannot be stored: it is reserved for nulls or empty"
        )
    try:
        text.encode()
    except UnicodeEncodeError as error:  # an unpaired surrogate: no store can name it
        raise PartitionValueError(
            f"partition value {text!r} cannot be stored: it is not valid Unicode text"
        ) from error
    if _PLAIN.fullmatch(text):
        return text
    return "".join(_encode_character(character) for character in text)


def _encode_character(character: str) -> str:
    if character in _ASCII_ENCODED:
        return _ASCII_ENCODED[character]
    return character if character.isprintable() else quote(character, safe="")


def datetime_text(value: dt.datetime) -> str:
    """ISO 8601: UTC with `Z` when aware, as is when naive; fraction only when non-zero."""
    suffix = ""
    if value.tzinfo is not None:
        value, suffix = value.astimezone(_UTC), "Z"
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    return text + _fraction(value.microsecond * 1000) + suffix


def datetime_text_expression(expression: pl.Expr, dtype: pl.Datetime) -> pl.Expr:
    """The same text as `datetime_text`, computed by polars (keeps nanoseconds exact)."""
    if dtype.time_zone is None:
        return expression.dt.to_string(_POLARS_DATETIME_FORMAT)
    utc = expression.dt.convert_time_zone("UTC")
    return utc.dt.to_string(_POLARS_DATETIME_FORMAT + "Z")


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
        return parse_datetime_text(raw, dtype.time_zone)
    if dtype == pl.Boolean:
        return raw == "true"
    if dtype.is_integer():
        return int(raw)
    raise ConfigurationError(f"partition columns of type {dtype} are not supported")


def parse_datetime_text(raw: str, time_zone: str | None) -> dt.datetime:
    """Parse canonical (or legacy wall-clock) datetime text; microseconds at most."""
    if "T" not in raw:  # legacy: wall-clock time in the column's zone
        legacy = dt.datetime.strptime(raw, _LEGACY_DATETIME_FORMAT)
        return legacy.replace(tzinfo=_zone(time_zone))
    aware = raw.endswith("Z")
    body, _, fraction = raw.removesuffix("Z").partition(".")
    parsed = dt.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    parsed = parsed.replace(microsecond=int((fraction + "000000")[:6]))
    if not aware:
        return parsed if time_zone is None else parsed.replace(tzinfo=ZoneInfo(time_zone))
    instant = parsed.replace(tzinfo=_UTC)
    return instant if time_zone is None else instant.astimezone(ZoneInfo(time_zone))


def text_literal(text: str, dtype: pl.DataType) -> pl.Expr:
    """A polars literal of `dtype` from canonical hive text (exact to the nanosecond)."""
    if not isinstance(dtype, pl.Datetime):
        return pl.lit(decode_hive_value(encode_text(text), dtype), dtype=dtype)
    if "T" not in text:
        value = parse_datetime_text(text, dtype.time_zone)
        return pl.lit(value, dtype=dtype)
    aware = text.endswith("Z")
    parsed = pl.lit(text.removesuffix("Z")).str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f", time_unit=dtype.time_unit, strict=True
    )
    if aware:
        parsed = parsed.dt.replace_time_zone("UTC")
        if dtype.time_zone is not None:
            parsed = parsed.dt.convert_time_zone(dtype.time_zone)
    elif dtype.time_zone is not None:
        parsed = parsed.dt.replace_time_zone(dtype.time_zone)
    return parsed


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


def _fraction(nanoseconds: int) -> str:
    # chrono's `%.f`: nothing when zero, else the shortest of 3, 6 or 9 digits that is exact
    if nanoseconds == 0:
        return ""
    for digits, unit in ((3, 1_000_000), (6, 1_000)):
        if nanoseconds % unit == 0:
            return f".{nanoseconds // unit:0{digits}d}"
    return f".{nanoseconds:09d}"


def _zone(name: str | None) -> dt.tzinfo | None:
    return None if name is None else ZoneInfo(name)
