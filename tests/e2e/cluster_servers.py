"""Redis, PostgreSQL and Celery workers for the cluster end-to-end test, each on 127.0.0.1.

Every server is a Debian binary (scripts/install_cluster.sh) started by the test on a free
port, in its own session, and stopped by its own PID. PostgreSQL refuses to run as root: it
runs as the `postgres` system user (through `runuser`) in a temporary directory that user owns.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.dagster_dev import REPO_ROOT, free_port

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
POSTGRES_USER = "postgres"


def install_cluster_packages() -> None:
    """Install redis-server and PostgreSQL with apt unless present (needs root)."""
    script = REPO_ROOT / "scripts" / "install_cluster.sh"
    completed = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"install_cluster.sh failed:\n{completed.stdout}{completed.stderr}")


def postgres_bin() -> Path:
    """The newest installed PostgreSQL server's binary directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/install_cluster.sh")
    return Path(found[-1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"nothing answered on port {port} in {START_TIMEOUT_SECONDS:.0f} s:\n{tail(log)}"
    )


def tail(log: Path, lines: int = 40) -> str:
    """The end of a log file, for failure messages."""
    text = log.read_text(errors="replace") if log.exists() else "<no log>"
    return "\n".join(text.splitlines()[-lines:])


def stop_pid(pid: int, first_signal: signal.Signals = signal.SIGTERM) -> None:
    """Send `first_signal` to one process, wait for it to go, then SIGKILL it."""
    for signal_number in (first_signal, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            time.sleep(0.1)


@contextlib.contextmanager
def run_redis(workdir: Path) -> Iterator[str]:
    """redis-server on a free loopback port, nothing persisted; yields its `redis://` URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "redis.log"
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir), "--logfile", str(log)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, process, log)
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop_pid(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def _as_postgres(*command: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        ["runuser", "-u", POSTGRES_USER, "--", *command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{completed.stdout}{completed.stderr}")
    return completed


@contextlib.contextmanager
def run_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster owned by the `postgres` user, on a free loopback port,
    trusting local connections; yields a `postgresql+psycopg2://` URL of its database."""
    # pytest's tmp_path is private to root: the postgres user needs a directory of its own.
    directory = Path(tempfile.mkdtemp(prefix="pq-postgres-"))
    account = pwd.getpwnam(POSTGRES_USER)
    os.chown(directory, account.pw_uid, account.pw_gid)
    data, log, port = directory / "data", directory / "postgres.log", free_port()
    binaries = postgres_bin()
    pid: int | None = None
    try:
        _as_postgres(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(
            str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"
        )
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        if pid is not None:
            stop_pid(pid, signal.SIGINT)  # SIGINT: PostgreSQL's "fast" shutdown
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class CeleryWorker:
    """One `celery worker` process (it leads its own process group) and its directory."""

    name: str
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        """The worker's combined stdout and stderr."""
        return self.directory / "worker.log"

    def processes(self) -> list[int]:
        """The worker's PID and its pool children's."""
        import psutil

        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(self.process.pid)
            return [parent.pid, *(child.pid for child in parent.children(recursive=True))]
        return []

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a lost host would stop."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to the group), then SIGKILL; reaped."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):  # pool children left behind
            os.killpg(self.process.pid, signal.SIGKILL)


def start_worker(name: str, directory: Path, env: Mapping[str, str]) -> CeleryWorker:
    """A dagster-celery worker with one slot, in its own working directory and TMPDIR; the
    repository root is on PYTHONPATH only for `dagster_celery_config`."""
    scratch = directory / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    environment = {**env, "TMPDIR": str(scratch), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker"]
    command += ["-Q", "dagster", "--concurrency", "1", "-n", f"{name}@%h", "--loglevel", "INFO"]
    command += ["--without-gossip", "--without-mingle", "--prefetch-multiplier", "1"]
    with open(directory / "worker.log", "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=directory,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return CeleryWorker(name, directory, process)


def wait_until_ready(workers: list[CeleryWorker]) -> None:
    """Wait until every worker logged that it is ready to take tasks."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS * 2
    pending = list(workers)
    while pending and time.monotonic() < deadline:
        for worker in list(pending):
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited:\n{tail(worker.log)}")
            if worker.log.exists() and " ready." in worker.log.read_text(errors="replace"):
                pending.remove(worker)
        time.sleep(0.2)
    if pending:
        raise RuntimeError(f"worker {pending[0].name} not ready:\n{tail(pending[0].log)}")
