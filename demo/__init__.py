"""The pq_io_manager demo: an online shop's orders as hive-partitioned Parquet.

`definitions.py` at the repository root exposes `defs = build_definitions()`.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg


def build_definitions(resources: Mapping[str, Any] | None = None) -> dg.Definitions:
    """The demo's assets, jobs, schedules and sensor; resources from the environment unless
    `resources` is given (tests pass an IO manager on a temporary directory). Every job runs
    on the executor `PQ_EXECUTOR` names (demo/executor.py; Dagster's default when unset)."""
    from demo.assets import ASSET_CHECKS, ASSETS
    from demo.executor import executor
    from demo.jobs import JOBS, SCHEDULES, SENSORS
    from demo.resources import base_path
    from demo.resources import resources as environment_resources

    return dg.Definitions(
        assets=ASSETS,
        asset_checks=ASSET_CHECKS,
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources=dict(resources) if resources is not None else environment_resources(),
        executor=executor(base_path()),
    )
