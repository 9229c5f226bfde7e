"""Checks of the IO manager's keyword arguments when it is built, before any run.

Dagster's `ConfigurableResource` ignores unknown keyword arguments (with `compresion="snappy"`
every file would silently stay zstd), so a pydantic "before" validator refuses them,
and refuses bad write options (see `write_options`) as early as they are known.
"""

from collections.abc import Mapping
from typing import Any

from dagster import EnvVar

from pq_io_manager.write_options import OPTION_NAMES, check_given, refuse_unknown

_INT_ENV_VAR = type(EnvVar.int("PQ_UNUSED"))  # dagster's IntEnvVar is not exported


def check_fields(data: Any, known: tuple[str, ...], class_name: str) -> Any:
    """Raise for an unknown field name or a bad write option; return `data` unchanged.

    Values read from the environment (`EnvVar`) are checked when the resource is initialised
    for a run, because Dagster builds the resource again from the resolved values.
    """
    if not isinstance(data, Mapping):
        return data
    refuse_unknown(data, known, class_name, "field")
    options = {name: data[name] for name in OPTION_NAMES if name in data}
    if not any(isinstance(value, EnvVar | _INT_ENV_VAR) for value in options.values()):
        check_given(options, class_name)
    return data
