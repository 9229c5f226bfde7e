"""Plain `@op` jobs with the IO manager as their default `io_manager`, on every store.

Op outputs live at `{base}/.pq-runs/{run_id}/{step_key}/{output_name}[/{mapping_key}]`,
as Dagster's own IO managers keep them, so that re-executions load the parent run's outputs.
"""

import uuid
from typing import Any

import dagster as dg
import polars as pl
import pytest

from pq_io_manager import ConfigurationError
from tests.lake import Lake

# Lakes by token, for jobs rebuilt by `execute_job` (in this process: in-process executor).
_LAKES: dict[str, Lake] = {}


@dg.op
def numbers() -> pl.DataFrame:
    return pl.DataFrame({"n": [1, 2, 3]})


@dg.op
def doubled(numbers: pl.DataFrame) -> pl.LazyFrame:
    return numbers.lazy().with_columns(n=pl.col("n") * 2)


@dg.op
def total(doubled: pl.LazyFrame) -> pl.DataFrame:
    return doubled.select(pl.col("n").sum()).collect()


def chain_job(lake: Lake) -> dg.JobDefinition:
    @dg.job(resource_defs={"io_manager": lake.io_manager()}, executor_def=dg.in_process_executor)
    def chain() -> None:
        total(doubled(numbers()))

    return chain


def chain_job_for(token: str) -> dg.JobDefinition:
    """Rebuilds the chain job of a registered lake (the reconstructable target)."""
    return chain_job(_LAKES[token])


def run_files(lake: Lake, run_id: str) -> list[str]:
    return lake.files(f".pq-runs/{run_id}/")


def test_op_outputs_are_stored_per_run_step_and_output(lake: Lake) -> None:
    result = chain_job(lake).execute_in_process()

    assert result.success
    assert run_files(lake, result.run_id) == [
        f".pq-runs/{result.run_id}/{step}/result/data.parquet"
        for step in ["doubled", "numbers", "total"]
    ]
    assert lake.read(f".pq-runs/{result.run_id}/doubled/result/data.parquet")["n"].to_list() == [
        2,
        4,
        6,
    ]
    assert result.output_for_node("total")["n"].to_list() == [12]


def test_op_outputs_never_touch_asset_directories(lake: Lake) -> None:
    @dg.asset(key=["numbers"])
    def numbers_asset() -> pl.DataFrame:
        return pl.DataFrame({"n": [9]})

    dg.materialize([numbers_asset], resources={"io_manager": lake.io_manager()})
    result = chain_job(lake).execute_in_process()

    assert lake.files("numbers/") == ["numbers/data.parquet"]
    assert lake.read("numbers/data.parquet")["n"].to_list() == [9]
    assert len(run_files(lake, result.run_id)) == 3


def test_none_outputs_reach_downstream_ops_as_none(lake: Lake) -> None:
    received: dict[str, Any] = {}

    @dg.op
    def nothing_found():  # type: ignore[no-untyped-def]  # an untyped (Any) output
        return None

    @dg.op
    def consume(value) -> None:  # type: ignore[no-untyped-def]
        received["value"] = value

    @dg.op
    def side_effect() -> None:  # a Nothing output: Dagster never calls the IO manager
        return None

    @dg.op(ins={"after": dg.In(dg.Nothing)})
    def last() -> pl.DataFrame:
        return pl.DataFrame({"n": [1]})

    @dg.job(resource_defs={"io_manager": lake.io_manager()})
    def job() -> None:
        consume(nothing_found())
        last(after=side_effect())

    result = job.execute_in_process()

    assert result.success
    assert received == {"value": None}
    assert run_files(lake, result.run_id) == [
        f".pq-runs/{result.run_id}/last/result/data.parquet",
        f".pq-runs/{result.run_id}/nothing_found/result/.none/data.parquet",
    ]


def test_non_frame_op_output_is_refused_with_the_fix(lake: Lake) -> None:
    @dg.op
    def count() -> int:
        return 3

    @dg.job(resource_defs={"io_manager": lake.io_manager()})
    def job() -> None:
        count()

    with pytest.raises(
        ConfigurationError, match=r"op output count\.result.*builtins\.int.*io_manager_key"
    ):
        job.execute_in_process()
    assert lake.files(".pq-runs/") == []


def test_dynamic_outputs_map_and_collect(lake: Lake) -> None:
    @dg.op(out=dg.DynamicOut(pl.DataFrame))
    def countries():  # type: ignore[no-untyped-def]
        for country in ["fr", "de", "us"]:
            yield dg.DynamicOutput(pl.DataFrame({"country": [country]}), mapping_key=country)

    @dg.op
    def tagged(frame: pl.DataFrame) -> pl.LazyFrame:
        return frame.lazy().with_columns(seen=pl.lit(True))

    @dg.op
    def combined(frames: list[pl.DataFrame]) -> pl.DataFrame:
        assert all(isinstance(frame, pl.DataFrame) for frame in frames)
        return pl.concat(frames).sort("country")

    @dg.job(resource_defs={"io_manager": lake.io_manager()})
    def job() -> None:
        combined(countries().map(tagged).collect())

    result = job.execute_in_process()

    assert result.output_for_node("combined").to_dict(as_series=False) == {
        "country": ["de", "fr", "us"],
        "seen": [True, True, True],
    }
    files = run_files(lake, result.run_id)
    prefix = f".pq-runs/{result.run_id}"
    assert f"{prefix}/countries/result/fr/data.parquet" in files
    # mapped step keys are "tagged[fr]": stored percent-encoded, never read as a glob
    assert f"{prefix}/tagged%5Bfr%5D/result/data.parquet" in files
    assert len(files) == 3 + 3 + 1


def test_reexecution_loads_the_parent_runs_outputs(lake: Lake) -> None:
    token = uuid.uuid4().hex
    _LAKES[token] = lake
    recon = dg.build_reconstructable_job(
        __name__, chain_job_for.__name__, reconstructable_args=(token,)
    )
    try:
        with dg.instance_for_test() as instance:
            parent = dg.execute_job(recon, instance)
            assert parent.success
            options = dg.ReexecutionOptions(parent_run_id=parent.run_id, step_selection=["total"])
            with dg.execute_job(recon, instance, reexecution_options=options) as child:
                assert child.success
                assert child.output_for_node("total")["n"].to_list() == [12]
    finally:
        del _LAKES[token]
    # the child ran only `total`, reading `doubled` from the parent run's directory
    assert run_files(lake, child.run_id) == [f".pq-runs/{child.run_id}/total/result/data.parquet"]


def test_graph_backed_asset_keeps_its_inner_op_outputs_per_run(lake: Lake) -> None:
    @dg.graph_asset
    def report() -> pl.DataFrame:
        return total(doubled(numbers()))

    result = dg.materialize([report], resources={"io_manager": lake.io_manager()})

    assert lake.read("report/data.parquet")["n"].to_list() == [12]
    prefix = f".pq-runs/{result.run_id}"
    assert run_files(lake, result.run_id) == [
        f"{prefix}/report.doubled/result/data.parquet",
        f"{prefix}/report.numbers/result/data.parquet",
    ]
