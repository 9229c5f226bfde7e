"""Merging benchmark runs takes each (scenario, store) whole from the newest run that has it."""

from typing import Any

from benchmarks.measure import Row
from benchmarks.merge import merged_meta, merged_rows


def run(stores: list[str], rows: list[Row], date: str) -> dict[str, Any]:
    return {"meta": {"stores": stores, "date": date}, "rows": [row.to_json() for row in rows]}


def test_a_rerun_replaces_whole_scenarios_of_its_stores_only() -> None:
    old = run(
        ["local", "moto"],
        [
            Row("1 write", "local", "ours", median_s=1.0),
            Row("2 load", "local", "ours", median_s=2.0),
            Row("2 load", "local", "raw", median_s=2.0),
            Row("2 load", "moto", "ours", median_s=3.0),
        ],
        "old",
    )
    new = run(["local"], [Row("2 load", "local", "ours", median_s=0.5)], "new")

    rows = merged_rows([old, new])

    assert [(r.scenario, r.store, r.contender, r.median_s) for r in rows] == [
        ("1 write", "local", "ours", 1.0),
        ("2 load", "local", "ours", 0.5),  # the old raw row of that scenario is gone with it
        ("2 load", "moto", "ours", 3.0),
    ]


def test_merged_meta_names_every_source_and_store(tmp_path: Any) -> None:
    old, new = run(["radosgw", "local"], [], "old"), run(["moto"], [], "new")

    meta = merged_meta([old, new], [tmp_path / "old.json", tmp_path / "new.json"])

    assert meta["stores"] == ["local", "moto", "radosgw"]
    assert [source["date"] for source in meta["sources"]] == ["old", "new"]
    assert meta["date"] == "new"
