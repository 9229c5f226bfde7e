"""A file removed between listing and reading is reported as such (issue 8, property 10).

A load first finds its files (footer reads for a few partitions, a listing for a split asset)
and reads them afterwards; another client deletes one in between (a concurrent rewrite or
delete). The load must raise `MissingPartitionError` saying so and that a retry sees the
current state, never "check the bucket and credentials".
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

import pq_io_manager.inputs
from pq_io_manager import MissingPartitionError
from tests.faults_support import DAILY
from tests.lake import Lake

pytestmark = pytest.mark.every_s3_server

REMOVED = r"(?s)removed after it was listed.*not a credentials problem.*retry"


def remove(lake: Lake, uri: str) -> None:
    """Delete a stored file with a client of the test's own."""
    if lake.endpoint is None:
        Path(uri).unlink()
    else:
        lake.endpoint.client().delete_object(Bucket=lake.bucket, Key=uri.split("/", 3)[3])


def delete_after(
    monkeypatch: pytest.MonkeyPatch, lake: Lake, function: str, pick: Callable[[Any], str]
) -> None:
    """Wrap `<function>` (a step of the input side that finds files) so that one found file
    is deleted by another client right after it returns, before anything reads it."""
    original = getattr(pq_io_manager.inputs, function)

    def finding_then_deleting(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        remove(lake, pick(found))
        return found

    monkeypatch.setattr(pq_io_manager.inputs, function, finding_then_deleting)


@dg.asset(partitions_def=DAILY, metadata={"partition_by": "date"})
def daily(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"amount": [1.0, 2.0]})


@dg.asset(metadata={"partition_by": ["country"]})
def split() -> pl.DataFrame:
    return pl.DataFrame({"country": ["fr", "de", "it"], "amount": [1.0, 2.0, 3.0]})


def test_partition_removed_after_it_was_found(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ["2024-01-05", "2024-01-06"]:
        dg.materialize([daily], partition_key=key, resources={"io_manager": lake.io_manager()})

    @dg.asset(
        partitions_def=DAILY,
        io_manager_key="memory",
        ins={"daily": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1))},
    )
    def totals(daily: pl.DataFrame) -> int:
        return daily.height

    delete_after(monkeypatch, lake, "find_files", lambda found: sorted(found.values())[-1])
    resources = {"io_manager": lake.io_manager(), "memory": dg.InMemoryIOManager()}
    with pytest.raises(MissingPartitionError, match=REMOVED):
        dg.materialize(
            [daily, totals], selection=[totals], partition_key="2024-01-06", resources=resources
        )


def test_split_file_removed_after_listing(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    dg.materialize([split], resources={"io_manager": lake.io_manager()})

    @dg.asset(io_manager_key="memory")
    def countries(split: pl.DataFrame) -> int:
        return split.height

    delete_after(monkeypatch, lake, "split_files", lambda found: found[-1][0])
    resources = {"io_manager": lake.io_manager(), "memory": dg.InMemoryIOManager()}
    with pytest.raises(MissingPartitionError, match=REMOVED):
        dg.materialize([split, countries], selection=[countries], resources=resources)
