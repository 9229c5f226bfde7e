"""Combine runs: `python -m benchmarks.merge --output DIR OLDER.json NEWER.json ...`.

For re-running some scenarios or stores after a change (`run --scenarios 2,3 --stores moto`)
without re-running the rest: each (scenario, store) is taken whole from the LAST file that
has it, so a table never mixes contenders of two runs in one scenario (ratios stay within one
run). The merged `results.json` lists every source run in `meta["sources"]`.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.measure import Row
from benchmarks.run import publish

STORE_ORDER = ("local", "moto", "radosgw")


def scenario_number(row: Row) -> str:
    """The scenario's number ("7" for every scale row)."""
    return row.scenario.split(" ", 1)[0]


def merged_rows(documents: list[dict[str, Any]]) -> list[Row]:
    """Rows grouped by (scenario number, store), each group from the last document having it."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for document in documents:
        fresh: dict[tuple[str, str], list[Row]] = {}
        for data in document["rows"]:
            row = Row(**data)
            fresh.setdefault((scenario_number(row), row.store), []).append(row)
        groups.update(fresh)

    def order(group: tuple[str, str]) -> tuple[int, int]:
        number, store = group
        rank = STORE_ORDER.index(store) if store in STORE_ORDER else len(STORE_ORDER)
        return rank, int(number)

    return [row for group in sorted(groups, key=order) for row in groups[group]]


def merged_meta(documents: list[dict[str, Any]], paths: list[Path]) -> dict[str, Any]:
    """The newest run's meta, every store seen, and each source run's own meta."""
    meta = dict(documents[-1]["meta"])
    stores = {store for document in documents for store in document["meta"]["stores"]}
    meta["stores"] = [store for store in STORE_ORDER if store in stores] + sorted(
        stores - set(STORE_ORDER)
    )
    meta["sources"] = [
        {"file": path.name, **{k: v for k, v in d["meta"].items() if k != "sources"}}
        for path, d in zip(paths, documents, strict=True)
    ]
    meta["command"] = "python -m benchmarks.merge (see sources)"
    return meta


def main(argv: list[str] | None = None) -> int:
    """Merge the files and write the results; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="results directory")
    parser.add_argument("files", type=Path, nargs="+", help="results.json files, oldest first")
    arguments = parser.parse_args(argv)
    documents = [json.loads(path.read_text()) for path in arguments.files]
    arguments.output.mkdir(parents=True, exist_ok=True)
    rows = merged_rows(documents)
    publish(arguments.output, rows, merged_meta(documents, arguments.files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
