"""Parquet write options, named as polars names them: validated once, before anything is written.

The IO manager's fields give every asset's defaults (polars' own unless set); an asset's
definition metadata `parquet_write_options` (a dict of the same names) overrides them. Unknown
names and bad values are refused with an error naming the asset; nothing is silently dropped.
No Dagster import.
"""

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from pq_io_manager.errors import ConfigurationError

WRITE_OPTIONS_KEY = "parquet_write_options"
COMPRESSIONS = ("zstd", "snappy", "lz4", "gzip", "brotli", "uncompressed")
# polars' ranges; the other codecs take no level (polars would ignore one silently)
LEVEL_RANGES = {"zstd": (1, 22), "gzip": (0, 9), "brotli": (0, 11)}
STATISTICS_KINDS = ("min", "max", "distinct_count", "null_count")

COMPRESSION_FIELD: Any = Field(
    default="zstd",
    description=f"Parquet compression codec, as polars names it: one of {', '.join(COMPRESSIONS)}.",
)
COMPRESSION_LEVEL_FIELD: Any = Field(
    default=None,
    description=(
        "Codec level (zstd 1-22, gzip 0-9, brotli 0-11); None = polars' default. Refused for "
        "codecs without levels."
    ),
)
STATISTICS_FIELD: Any = Field(
    default=True,
    description=(
        "Write column statistics (min, max, null count) to the footer, as polars' `statistics`; "
        "an asset's `parquet_write_options` may also ask for 'full' or a dict of kinds."
    ),
)
ROW_GROUP_SIZE_FIELD: Any = Field(
    default=None,
    description="Rows per row group, as polars' `row_group_size`; None = polars' default.",
)
DATA_PAGE_SIZE_FIELD: Any = Field(
    default=None,
    description="Target data page size in bytes, as polars' `data_page_size`; None = default.",
)


@dataclass(frozen=True)
class ParquetWriteOptions:
    """The keyword arguments every `write_parquet` / `sink_parquet` of one output gets.

    Defaults are polars' own, so a value object built with no arguments changes nothing.
    """

    compression: str = "zstd"
    compression_level: int | None = None
    statistics: bool | str | Mapping[str, bool] = True
    row_group_size: int | None = None
    data_page_size: int | None = None

    def polars_arguments(self) -> dict[str, Any]:
        """The options as keyword arguments of polars' Parquet writers."""
        arguments = dataclasses.asdict(self)
        if isinstance(self.statistics, Mapping):
            arguments["statistics"] = dict(self.statistics)
        return arguments

    def describe(self) -> dict[str, Any]:
        """The options as JSON-able output metadata (None: polars' default)."""
        return self.polars_arguments()


OPTION_NAMES = tuple(field.name for field in dataclasses.fields(ParquetWriteOptions))


def options_from_fields(values: object, where: str) -> ParquetWriteOptions:
    """Validate the IO manager's option fields (attributes named as the options)."""
    return _validated({name: getattr(values, name) for name in OPTION_NAMES}, where)


def resolve(fields: object, metadata: Mapping[str, Any], where: str) -> ParquetWriteOptions:
    """The IO manager's option fields with the asset's `parquet_write_options` metadata over
    them, all validated.

    A level belongs to its codec: an override that changes `compression` does not inherit the
    IO manager's `compression_level`.
    """
    defaults = options_from_fields(fields, where)
    override = metadata.get(WRITE_OPTIONS_KEY)
    if override is None:
        return defaults
    source = f"{where}: metadata {WRITE_OPTIONS_KEY!r}"
    if not isinstance(override, Mapping):
        raise ConfigurationError(
            f"{source} must be a dict of polars' write_parquet option names, e.g. "
            f"{{'compression': 'zstd', 'row_group_size': 100000}}, not {override!r}"
        )
    refuse_unknown(override, OPTION_NAMES, source, "option")
    merged = {**dataclasses.asdict(defaults), **override}
    if "compression" in override and "compression_level" not in override:
        merged["compression_level"] = None
    return _validated(merged, source)


def refuse_unknown(
    values: Mapping[str, Any], known: tuple[str, ...], source: str, noun: str
) -> None:
    """Raise for any name not in `known`, suggesting the closest known one."""
    for name in values:
        if name in known:
            continue
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise ConfigurationError(
            f"{source}: unknown {noun} {name!r} (refused rather than ignored). {hint}"
            f"Known names: {', '.join(known)}."
        )


def check_given(values: Mapping[str, Any], where: str) -> None:
    """Validate the options among `values` (others keep polars' defaults)."""
    given = {name: values[name] for name in OPTION_NAMES if name in values}
    _validated({**dataclasses.asdict(ParquetWriteOptions()), **given}, where)


def _validated(values: dict[str, Any], source: str) -> ParquetWriteOptions:
    compression = values["compression"]
    if compression not in COMPRESSIONS:
        raise ConfigurationError(
            f"{source}: compression {compression!r} is not one polars writes; use one of "
            f"{', '.join(COMPRESSIONS)}"
        )
    _check_level(compression, values["compression_level"], source)
    for name in ("row_group_size", "data_page_size"):
        _check_positive(name, values[name], source)
    _check_statistics(values["statistics"], source)
    return ParquetWriteOptions(**values)


def _check_level(compression: str, level: object, source: str) -> None:
    if level is None:
        return
    if compression not in LEVEL_RANGES:
        raise ConfigurationError(
            f"{source}: compression {compression!r} takes no compression_level (polars would "
            f"ignore {level!r}); remove the level or use one of {', '.join(LEVEL_RANGES)}"
        )
    low, high = LEVEL_RANGES[compression]
    if not _is_integer(level) or not low <= level <= high:  # type: ignore[operator]
        raise ConfigurationError(
            f"{source}: compression_level {level!r} is outside {compression}'s range "
            f"{low}..{high}; use an integer in it, or None for polars' default"
        )


def _check_positive(name: str, value: object, source: str) -> None:
    if value is None or (_is_integer(value) and value > 0):  # type: ignore[operator]
        return
    raise ConfigurationError(
        f"{source}: {name} must be a positive integer or None (polars' default), not {value!r}"
    )


def _check_statistics(value: object, source: str) -> None:
    if isinstance(value, bool) or value == "full":
        return
    if (
        isinstance(value, Mapping)
        and all(key in STATISTICS_KINDS for key in value)
        and all(isinstance(flag, bool) for flag in value.values())
    ):
        return
    raise ConfigurationError(
        f"{source}: statistics must be True, False, 'full' or a dict of "
        f"{', '.join(STATISTICS_KINDS)} to True/False (as polars takes it), not {value!r}"
    )


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
