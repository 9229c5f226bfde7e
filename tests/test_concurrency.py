"""Concurrent writers: a parallel backfill, many processes at once, two runs on one partition.

Workers are separate OS processes (`python -m tests.faults_support`), each with its own IO
manager, so every one of them also runs the start-of-process sweep while the others write.
Payloads stay below polars' 32 MiB multipart threshold: moto reports every multipart upload
as initiated in 2010, so on moto a starting process's sweep would abort the others' uploads
(a moto limitation; radosgw and S3 report real times).
"""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.faults_support import (
    DAILY,
    ROWS,
    expected,
    finish_worker,
    leftovers,
    start_worker,
    three_job,
    wait_for,
    worker_spec,
)
from tests.lake import Lake

pytestmark = [pytest.mark.slow, pytest.mark.every_s3_server]


def run_workers(lake: Lake, specs: list[dict], tmp_path: Path) -> list[list[dict]]:
    """Start one worker per spec, release them together once all are ready; their records."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = []
    for index, spec in enumerate(specs):
        log = tmp_path / f"worker-{index}.log"
        processes.append((start_worker(lake, {**spec, "barrier": str(barrier)}, log), log))
    ready = wait_for(lambda: len(list(barrier.glob("ready-*"))) == len(specs), timeout=120)
    (barrier / "go").touch()
    assert ready, "workers did not start"
    return [finish_worker(process, log, timeout=240) for process, log in processes]


def assert_exact(lake: Lake, keys: list[str], rows: int = ROWS) -> None:
    """Every partition holds exactly its payload, and nothing else is stored."""
    assert lake.files() == [f"events/date={key}/data.parquet" for key in sorted(keys)]
    for key in keys:
        assert lake.read(f"events/date={key}/data.parquet").equals(expected(key, rows))
    assert leftovers(lake) == ([], [])


def overlapped(records: list[list[dict]]) -> bool:
    """Whether writes of two different workers really ran at the same time."""
    spans = [
        [(record["start"], record["end"]) for record in worker if "key" in record]
        for worker in records
    ]
    return any(
        start < other_end and other_start < end
        for index, worker in enumerate(spans)
        for other in spans[index + 1 :]
        for start, end in worker
        for other_start, other_end in other
    )


def test_backfill_of_30_daily_partitions_by_parallel_runs(lake: Lake, tmp_path: Path) -> None:
    """Like a backfill with one run per partition: 3 processes x 10 runs each, at once."""
    keys = DAILY.get_partition_keys()[:30]
    specs = [worker_spec(lake, keys[index::3], rows=ROWS) for index in range(3)]

    records = run_workers(lake, specs, tmp_path)

    assert sorted(record["key"] for worker in records for record in worker if "key" in record) == (
        sorted(keys)
    )
    assert overlapped(records)
    assert_exact(lake, keys)


def test_eight_processes_materializing_eight_partitions_at_once(lake: Lake, tmp_path: Path) -> None:
    keys = DAILY.get_partition_keys()[10:18]

    records = run_workers(lake, [worker_spec(lake, [key], rows=ROWS) for key in keys], tmp_path)

    assert overlapped(records)
    assert_exact(lake, keys)


def test_two_runs_writing_one_partition_leave_one_whole_version(lake: Lake, tmp_path: Path) -> None:
    key = "2024-02-01"
    versions = {"a": 300_000, "b": 500_000}
    specs = [
        worker_spec(lake, [key], rows=rows, tag=tag, rounds=4) for tag, rows in versions.items()
    ]

    records = run_workers(lake, specs, tmp_path)

    assert overlapped(records)
    assert lake.files() == [f"events/date={key}/data.parquet"]
    stored = lake.read(f"events/date={key}/data.parquet")
    tags = stored["tag"].unique().to_list()
    assert len(tags) == 1, f"a mix of versions: {tags}"
    assert stored.equals(expected(key, versions[tags[0]], tags[0]))
    assert leftovers(lake) == ([], [])


def test_multiprocess_executor_writes_steps_in_parallel_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    monkeypatch.setenv("PQ_TEST_BASE_PATH", str(lake))
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(three_job),  # importable by the step processes
            instance=instance,
            tags={"dagster/partition": "2024-01-09"},
            run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 3}}}},
        )
        assert result.success
        pids = {event.pid for event in result.all_events if event.event_type_value == "STEP_START"}
    assert len(pids) == 3
    for name in ["first", "second", "third"]:
        stored = pl.read_parquet(lake / name / "date=2024-01-09" / "data.parquet")
        assert stored.equals(expected("2024-01-09", ROWS))
