"""Comparing a stored schema with an asset's declared `dagster/column_schema`. No I/O.

A declared column type matches a stored polars type when it is written as polars writes it,
either form, ignoring case and spaces: `str(dtype)` (`Datetime(time_unit='us',
time_zone='UTC')`, `Int64`) or polars' short form (`datetime[μs, UTC]`, `i64`).
"""

from collections.abc import Mapping
from typing import Any

import polars as pl
from dagster import TableSchema, TableSchemaMetadataValue

COLUMN_SCHEMA = "dagster/column_schema"


def declared_schema(metadata: Mapping[str, Any]) -> TableSchema | None:
    """The asset's declared column schema, if its definition metadata has one."""
    declared = metadata.get(COLUMN_SCHEMA)
    if isinstance(declared, TableSchemaMetadataValue):
        return declared.schema
    return declared if isinstance(declared, TableSchema) else None


def type_names(dtype: pl.DataType) -> set[str]:
    """The texts a declared type may use for `dtype`, normalized."""
    # `_string_repr` is polars' own short form, the one its frames print in their headers
    return {_normalized(str(dtype)), _normalized(dtype._string_repr())}


def schema_differences(stored: Mapping[str, pl.DataType], declared: TableSchema) -> list[str]:
    """Every way the stored columns differ from the declared ones; empty when they match.

    Column order is not compared: the stored order is the first write's, and a load returns
    the partition columns last.
    """
    expected = {column.name: column.type for column in declared.columns}
    problems = [
        f"column {name!r} is declared ({text}) but not stored"
        for name, text in expected.items()
        if name not in stored
    ]
    problems += [
        f"column {name!r} is stored ({dtype}) but not declared"
        for name, dtype in stored.items()
        if name not in expected
    ]
    problems += [
        f"column {name!r} is declared as {expected[name]!r} but stored as {dtype} "
        f"({dtype._string_repr()})"
        for name, dtype in stored.items()
        if name in expected and _normalized(expected[name]) not in type_names(dtype)
    ]
    return problems


def _normalized(text: str) -> str:
    return "".join(text.split()).lower()
