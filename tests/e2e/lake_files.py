"""Read what the demo wrote into a local lake, without the IO manager."""

from pathlib import Path

import polars as pl


def hive_files(lake: Path, asset: str) -> list[str]:
    """The data files of one asset, relative to its directory, sorted."""
    root = lake / asset
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*.parquet"))


def read_partition(lake: Path, asset: str, *directories: str) -> pl.DataFrame:
    """One partition's rows, read back with polars from `{lake}/{asset}/{dirs}/data.parquet`."""
    return pl.read_parquet(lake.joinpath(asset, *directories, "data.parquet"))
