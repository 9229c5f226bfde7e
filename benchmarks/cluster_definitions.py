"""The job the cluster benchmark runs (benchmarks/cluster.py): `STEPS` independent daily
assets, so one run is `STEPS` steps that Celery can spread over every worker.

Each step writes one small partition through the demo's IO manager (resources from the
environment: `PQ_BASE_PATH`, `AWS_*`), on the executor `PQ_EXECUTOR` names. Workers load this
file by the path each task carries.
"""

import datetime as dt

import dagster as dg
import polars as pl

from demo.executor import executor
from demo.resources import base_path, resources

STEPS = 16
ROWS = 2_000
DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")


def make_asset(number: int) -> dg.AssetsDefinition:
    """One independent daily asset writing `ROWS` rows for its day."""

    @dg.asset(
        name=f"bench_part_{number:02d}",
        partitions_def=DAILY,
        metadata={"partition_by": "day"},
    )
    def part(context: dg.AssetExecutionContext) -> pl.DataFrame:
        day = dt.date.fromisoformat(context.partition_key)
        return pl.DataFrame({"day": [day] * ROWS, "value": range(ROWS), "step": number})

    return part


ASSETS = [make_asset(number) for number in range(STEPS)]
bench_job = dg.define_asset_job("bench_job", selection=dg.AssetSelection.assets(*ASSETS))
# The baseline: the same steps as subprocesses of the run on this machine, whatever PQ_EXECUTOR.
bench_local_job = dg.define_asset_job(
    "bench_local_job",
    selection=dg.AssetSelection.assets(*ASSETS),
    executor_def=dg.multiprocess_executor,
)
defs = dg.Definitions(
    assets=ASSETS,
    jobs=[bench_job, bench_local_job],
    resources=resources(),
    executor=executor(base_path()),
)
