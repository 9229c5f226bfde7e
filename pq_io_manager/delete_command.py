"""`python -m pq_io_manager delete`: delete partitions or a whole asset from the command line.

The asset's definition (its partitions and `partition_by`) comes from the project's Dagster
`Definitions`, loaded as Dagster's own CLI loads them: `-f definitions.py` or `-m package`.
The deletion itself is `PartitionedParquetIOManager.delete_partitions` / `delete_asset`, so the
command removes exactly what the API removes.
"""

import argparse
import importlib
import importlib.util
import os
import sys
from types import ModuleType

from dagster import AssetKey, AssetsDefinition, AssetSpec, Definitions

from pq_io_manager.deletion import Deletion
from pq_io_manager.errors import ConfigurationError
from pq_io_manager.io_manager import PartitionedParquetIOManager


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register the `delete` command."""
    delete = commands.add_parser(
        "delete",
        help="delete stored partitions of an asset, or the whole asset (only its own files)",
    )
    source = delete.add_mutually_exclusive_group(required=True)
    source.add_argument("-f", "--python-file", help="a file defining Dagster Definitions")
    source.add_argument("-m", "--module-name", help="a module defining Dagster Definitions")
    delete.add_argument("--base-path", required=True, help="the IO manager's base_path")
    delete.add_argument("--asset", required=True, help="the asset key, slash-separated: a/b")
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--partition",
        action="append",
        metavar="KEY",
        help="a partition key as Dagster names it (2025-01-31, 2025-01-31|emea); repeat",
    )
    which.add_argument(
        "--whole-asset",
        action="store_true",
        help="delete every stored file of the asset and its schema record",
    )
    delete.add_argument("--dry-run", action="store_true", help="list what would go, delete none")


def run(options: argparse.Namespace) -> int:
    """Delete as the parsed options say; print what went; the exit status."""
    definitions = load_definitions(options.python_file, options.module_name)
    asset = find_asset(definitions, options.asset)
    # S3 credentials come from boto3's default chain (environment, profile, role)
    io_manager = PartitionedParquetIOManager(base_path=options.base_path)
    if options.whole_asset:
        deletion = io_manager.delete_asset(asset, dry_run=options.dry_run)
    else:
        deletion = io_manager.delete_partitions(asset, options.partition, options.dry_run)
    print(describe(deletion))
    return 0


def describe(deletion: Deletion) -> str:
    """The lines the command prints."""
    verb = "would remove" if deletion.dry_run else "removed"
    lines = [f"{verb} {file.uri} ({file.size_bytes} bytes)" for file in deletion.removed]
    lines += [f"no stored data for partition {key!r}" for key in deletion.absent_keys]
    lines += [f"left (not written by pq_io_manager): {uri}" for uri in deletion.left]
    lines.append(
        f"asset {deletion.asset!r}: {verb} {len(deletion.removed)} file(s), "
        f"{deletion.size_bytes} bytes" + (" (dry run: nothing deleted)" if deletion.dry_run else "")
    )
    return "\n".join(lines)


def load_definitions(python_file: str | None, module_name: str | None) -> Definitions:
    """The `Definitions` of a file or module: its `defs`, or its only `Definitions` object."""
    module = _import_file(python_file) if python_file else importlib.import_module(str(module_name))
    found = {name: value for name, value in vars(module).items() if isinstance(value, Definitions)}
    if "defs" in found:
        return found["defs"]
    if len(found) == 1:
        return next(iter(found.values()))
    raise ConfigurationError(
        f"{python_file or module_name} defines {len(found)} Definitions objects "
        f"({sorted(found)}): name the one to use `defs`"
    )


def find_asset(definitions: Definitions, key: str) -> AssetsDefinition | AssetSpec:
    """The definition of the asset keyed `a/b`, or of its spec in a multi-asset."""
    asset_key = AssetKey(key.split("/"))
    try:
        assets_def = definitions.resolve_assets_def(asset_key)
    except Exception as error:  # Dagster's own lookup error: no such asset
        known = sorted(k.to_user_string() for k in definitions.resolve_all_asset_keys())
        raise ConfigurationError(
            f"asset {key!r} is not defined in these Definitions (assets: {known[:20]})"
        ) from error
    if len(assets_def.keys) > 1:
        return assets_def.specs_by_key[asset_key]
    return assets_def


def _import_file(path: str) -> ModuleType:
    # as Dagster's `-f`: the file's directory is importable while it loads, so it may import
    # its package; removed afterwards, so that it never shadows a module of the same name
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"{path} is not a Python file that can be imported")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, directory)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(directory)
    return module
