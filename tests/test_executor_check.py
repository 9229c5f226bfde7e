"""A relative local base_path is refused on an executor that runs steps in other processes.

Celery workers, Kubernetes pods and Docker containers each have their own working directory
and disk: a relative base path would give every step a private lake and the run would still
succeed. Dagster's own executors (same host, same directory) and s3:// paths are unaffected.
"""

import logging
import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._core.execution.execution_result import ExecutionResult

from demo.executor import executor as demo_executor
from pq_io_manager import ConfigurationError, PartitionedParquetIOManager
from pq_io_manager.executor_check import check_base_path_for_executor

# An in-process executor under another name stands for one that runs steps elsewhere.
REMOTE = dg.in_process_executor.configured({}, name="remote_workers")
BASE_PATH_VARIABLE = "PQ_TEST_EXECUTOR_BASE_PATH"


@pytest.mark.parametrize("executor_name", ["celery", "k8s", "docker", "remote_workers"])
def test_a_relative_local_path_is_refused_for_executors_running_steps_elsewhere(
    executor_name: str,
) -> None:
    with pytest.raises(ConfigurationError, match=r"'data/lake' is a relative local directory"):
        check_base_path_for_executor("data/lake", executor_name)


@pytest.mark.parametrize(
    "executor_name",
    ["in_process", "execute_in_process_executor", "multiprocess", "multi_or_in_process_executor"],
)
def test_same_host_executors_keep_relative_paths(executor_name: str) -> None:
    check_base_path_for_executor("data/lake", executor_name)  # no error


def test_materialize_writes_to_the_relative_default_base_path_without_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)  # `materialize()` runs steps in this process, in this directory
    with caplog.at_level(logging.WARNING):
        result = dg.materialize([numbers], resources={"io_manager": PartitionedParquetIOManager()})
    assert result.success
    assert (tmp_path / "data" / "lake" / "numbers" / "data.parquet").is_file()
    assert "other hosts" not in caplog.text


def test_s3_paths_suit_every_executor() -> None:
    check_base_path_for_executor("s3://bucket/lake", "celery")  # no error


def test_an_absolute_local_path_warns_that_workers_need_the_same_mount(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with caplog.at_level(logging.WARNING):
        check_base_path_for_executor(str(tmp_path), "celery")
    assert "every worker must mount the same directory" in caplog.text


def test_the_demo_refuses_celery_with_its_relative_default_lake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PQ_EXECUTOR", "celery")
    with pytest.raises(ConfigurationError, match="PQ_BASE_PATH=s3://"):
        demo_executor("data/lake")
    assert demo_executor("s3://bucket/lake") is not None  # the Celery executor
    monkeypatch.setenv("PQ_EXECUTOR", "")
    assert demo_executor("data/lake") is None  # Dagster's default


def celery_settings(executor: dg.ExecutorDefinition) -> dict[str, str]:
    """The broker and backend a configured Celery executor hands its tasks."""
    config = executor.apply_config_mapping({}).value["config"]
    return {"broker": config["broker"], "backend": config["backend"]}


def test_the_demo_celery_executor_defaults_to_a_local_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PQ_EXECUTOR", "Celery ")
    monkeypatch.delenv("PQ_CELERY_BROKER", raising=False)
    monkeypatch.setenv("PQ_CELERY_BACKEND", "")  # empty counts as unset
    executor = demo_executor("s3://bucket/lake")
    assert executor is not None
    assert executor.name == "celery"
    assert celery_settings(executor) == {
        "broker": "redis://127.0.0.1:6379/0",
        "backend": "redis://127.0.0.1:6379/1",
    }
    monkeypatch.setenv("PQ_CELERY_BROKER", "redis://broker.internal:6380/2")
    monkeypatch.setenv("PQ_CELERY_BACKEND", "redis://broker.internal:6380/3")
    assert celery_settings(demo_executor("s3://bucket/lake")) == {  # type: ignore[arg-type]
        "broker": "redis://broker.internal:6380/2",
        "backend": "redis://broker.internal:6380/3",
    }


@pytest.mark.parametrize("value", ["k8s", "celery_k8s", "in-process"])
def test_the_demo_refuses_an_executor_it_does_not_know(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PQ_EXECUTOR", value)
    with pytest.raises(ValueError, match=rf"PQ_EXECUTOR='{value}' is not an executor of the demo"):
        demo_executor("s3://bucket/lake")


@dg.asset
def numbers() -> pl.DataFrame:
    """One small frame."""
    return pl.DataFrame({"value": [1, 2, 3]})


def remote_definitions() -> dg.JobDefinition:
    """`numbers` as a job on the renamed executor, its lake from the environment."""
    io_manager = PartitionedParquetIOManager(base_path=os.environ[BASE_PATH_VARIABLE])
    job = dg.define_asset_job("remote_job", selection=[numbers], executor_def=REMOTE)
    definitions = dg.Definitions(assets=[numbers], jobs=[job], resources={"io_manager": io_manager})
    return definitions.resolve_job_def("remote_job")


def run_remote(base_path: str, monkeypatch: pytest.MonkeyPatch) -> ExecutionResult:
    monkeypatch.setenv(BASE_PATH_VARIABLE, base_path)
    with dg.instance_for_test() as instance:
        return dg.execute_job(dg.reconstructable(remote_definitions), instance=instance)


def test_a_step_on_such_an_executor_fails_before_writing_to_a_relative_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_remote("lake", monkeypatch)
    assert not result.success
    failure = result.failure_data_for_node("numbers")
    assert failure is not None
    assert "'lake' is a relative local directory" in str(failure.error)
    assert not (tmp_path / "lake").exists()


def test_the_same_step_writes_to_an_absolute_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = run_remote(str(tmp_path / "lake"), monkeypatch)
    assert result.success
    assert (tmp_path / "lake" / "numbers" / "data.parquet").exists()
