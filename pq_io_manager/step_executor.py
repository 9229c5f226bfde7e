"""The check of `executor_check` at the moment a step writes, on the executor running it.

Runs in the step's own process (a Celery worker, a Kubernetes pod), so it also catches jobs
whose Definitions were never checked: the step fails before writing anything to a private,
per-worker lake.
"""

from dagster import DagsterInvariantViolationError, OutputContext

from pq_io_manager.executor_check import check_base_path_for_executor


def check_step_executor(context: OutputContext, base_path: str) -> None:
    """Refuse (ConfigurationError) a relative local `base_path` when the step's job runs on an
    executor that runs steps in other processes or hosts; a no-op outside a run."""
    try:
        executor_name = context.step_context.job_def.executor_def.name
    except DagsterInvariantViolationError:  # an output context built outside a run
        return
    check_base_path_for_executor(base_path, executor_name)
