"""Whether a lake's base path is reachable from wherever an executor runs steps.

Executors such as dagster-celery's, `k8s_job_executor` or `docker_executor` run each step in
another process, usually on another host, with its own working directory and no shared disk.
A relative local base path then resolves against each worker's own directory: every step
would write (and read) a different, private lake and the run would still "succeed". That is
refused. An absolute local path works only where every worker mounts the same directory (one
machine, or a shared filesystem): allowed, with a warning. No Dagster import.
"""

import logging
import os

from pq_io_manager.errors import ConfigurationError
from pq_io_manager.layout import is_s3_uri

# Dagster's own executors: every step runs on this host, in this working directory
# (`execute_in_process_executor` is the one `materialize()` and `execute_in_process()` use).
SAME_HOST_EXECUTORS = frozenset(
    {"in_process", "execute_in_process_executor", "multiprocess", "multi_or_in_process_executor"}
)

logger = logging.getLogger(__name__)
_WARNED: set[tuple[str, str]] = set()  # once per process: the check runs for every output


def check_base_path_for_executor(base_path: str, executor_name: str) -> None:
    """Refuse a relative local `base_path` for an executor that runs steps elsewhere.

    Args:
        base_path: The IO manager's `base_path` (`s3://...` or a local directory).
        executor_name: The name of the job's executor definition, e.g. `"celery"`.

    Raises:
        ConfigurationError: `base_path` is a relative local path and the executor is not one of
            Dagster's same-host executors.
    """
    if is_s3_uri(base_path) or executor_name in SAME_HOST_EXECUTORS:
        return
    if not os.path.isabs(base_path):
        raise ConfigurationError(
            f"base_path {base_path!r} is a relative local directory, but the {executor_name!r} "
            "executor runs steps in other processes (often on other hosts) with their own "
            "working directories and disks: each step would write a different, private lake. "
            "Use an s3:// base_path (set PQ_BASE_PATH=s3://bucket/prefix for the demo), or run "
            "the job with the multiprocess executor."
        )
    if (base_path, executor_name) in _WARNED:
        return
    _WARNED.add((base_path, executor_name))
    logger.warning(
        "base_path %r is a local directory and the %r executor may run steps on other hosts: "
        "every worker must mount the same directory at this path, or use an s3:// base_path.",
        base_path,
        executor_name,
    )
