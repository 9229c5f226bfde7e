"""Which executor runs the demo's steps, chosen by the environment only.

- `PQ_EXECUTOR` unset, empty or `multiprocess`: Dagster's default (each step in a subprocess of
  the run worker, on this machine).
- `PQ_EXECUTOR=celery`: dagster-celery's executor (the `cluster` extra) sends every step to
  Celery workers through `PQ_CELERY_BROKER`, results back through `PQ_CELERY_BACKEND` (both
  default to a Redis on 127.0.0.1:6379). The workers read the same two variables from
  `dagster_celery_config.py` at the repository root.

Steps on Celery workers run in other processes, on other hosts, in other working directories:
a relative local `PQ_BASE_PATH` would silently scatter the lake over the workers' directories,
so that combination is refused when the definitions load (see `check_base_path`).
"""

import os

import dagster as dg

from dagster_celery_config import DEFAULT_BACKEND, DEFAULT_BROKER
from pq_io_manager.executor_check import check_base_path_for_executor

EXECUTOR_VARIABLE = "PQ_EXECUTOR"
BROKER_VARIABLE = "PQ_CELERY_BROKER"
BACKEND_VARIABLE = "PQ_CELERY_BACKEND"
LOCAL_EXECUTORS = ("", "multiprocess")


def executor_name() -> str:
    """`PQ_EXECUTOR`, lower-cased; refuses values the demo does not know."""
    name = (os.environ.get(EXECUTOR_VARIABLE) or "").strip().lower()
    if name not in (*LOCAL_EXECUTORS, "celery"):
        raise ValueError(
            f"{EXECUTOR_VARIABLE}={name!r} is not an executor of the demo: "
            "unset it (or set 'multiprocess') to run steps on this machine, or set 'celery'"
        )
    return name


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor with the broker and backend from the environment."""
    from dagster_celery import celery_executor as unconfigured

    broker = os.environ.get(BROKER_VARIABLE) or DEFAULT_BROKER
    backend = os.environ.get(BACKEND_VARIABLE) or DEFAULT_BACKEND
    return unconfigured.configured({"broker": broker, "backend": backend}, name="celery")


def executor(base_path: str) -> dg.ExecutorDefinition | None:
    """The executor `PQ_EXECUTOR` asks for (None: Dagster's default), after checking that the
    lake at `base_path` is reachable from wherever it runs steps."""
    name = executor_name()
    if name in LOCAL_EXECUTORS:
        return None
    check_base_path_for_executor(base_path, executor_name=name)
    return celery_executor()
