"""Command line: `python -m pq_io_manager migrate-layout|delete ...` (see `--help`)."""

import argparse
import sys
from collections.abc import Sequence

from pq_io_manager import delete_command
from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.errors import PqIOManagerError
from pq_io_manager.layout import asset_root, is_s3_uri, normalize_base_path
from pq_io_manager.migration import DatetimeColumn, apply_moves, plan_moves
from pq_io_manager.s3_store import S3Store
from pq_io_manager.stores import LocalStore, Store


def main(arguments: Sequence[str] | None = None) -> int:
    """Run one command; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pq_io_manager")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser(
        "migrate-layout",
        help="rename directories written by 0.1 (wall-clock datetimes, escaped non-ASCII)",
    )
    migrate.add_argument("--base-path", required=True, help="the IO manager's base_path")
    migrate.add_argument("--asset", required=True, help="the asset key, slash-separated: a/b")
    migrate.add_argument(
        "--datetime-column",
        action="append",
        default=[],
        metavar="NAME[:TIME_ZONE]",
        help="a datetime partition column and its time zone (omit it for naive values), e.g. "
        "hour:America/New_York; repeat for several",
    )
    migrate.add_argument("--dry-run", action="store_true", help="list the moves, change nothing")
    delete_command.add_parser(commands)
    options = parser.parse_args(arguments)
    if options.command == "delete":
        return delete_command.run(options)
    base_path = normalize_base_path(options.base_path)
    store = _store(base_path)
    root = asset_root(base_path, options.asset.split("/"))
    datetimes = [
        DatetimeColumn(name, zone or None)
        for name, _, zone in (text.partition(":") for text in options.datetime_column)
    ]
    moves = plan_moves(store, root, datetimes)
    for move in moves:
        print(f"{move.source} -> {move.target or 'LEFT: ' + str(move.problem)}")
    moved = 0 if options.dry_run else apply_moves(store, moves)
    left = sum(move.target is None for move in moves)
    print(f"{len(moves)} legacy file(s): {moved} moved, {left} left for you to decide")
    return 1 if left else 0


def _store(base_path: str) -> Store:
    # S3 credentials come from boto3's default chain (environment, profile, role)
    if is_s3_uri(base_path):
        return S3Store(connection_from_resource(None))
    return LocalStore(base_path)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PqIOManagerError as error:  # a message with its fix, not a traceback
        sys.exit(f"error: {error}")
