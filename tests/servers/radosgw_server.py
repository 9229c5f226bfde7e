"""Ceph radosgw as a throwaway S3 server for the tests (see scripts/ceph_up.sh).

A single-node cluster (one mon, one memstore OSD, one radosgw) whose files all live in a
work directory, bound to 127.0.0.1 on free ports. Starting takes a few seconds once the
Debian packages are installed (scripts/install_ceph.sh).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.servers import S3Endpoint

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool")
INSTALL_TIMEOUT_S = 900
UP_TIMEOUT_S = 300
DOWN_TIMEOUT_S = 120


def radosgw_available() -> bool:
    """Whether the Ceph binaries that ceph_up.sh needs are installed."""
    return all(shutil.which(binary) for binary in BINARIES)


def _run_script(name: str, *args: str, timeout: float) -> None:
    """Run one of scripts/*.sh; raise RuntimeError with its output when it fails.

    The scripts never print the S3 secret, so their output is safe to show.
    """
    completed = subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{name} {' '.join(args)} exited {completed.returncode}:\n"
            f"{completed.stdout}{completed.stderr}"
        )


def install_ceph() -> None:
    """Install the Ceph packages with apt unless they are present (needs root)."""
    if not radosgw_available():
        _run_script("install_ceph.sh", timeout=INSTALL_TIMEOUT_S)


def read_endpoint_env(path: Path) -> dict[str, str]:
    """Parse the KEY=VALUE lines of an endpoint.env written by ceph_up.sh."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _endpoint_from_env(values: dict[str, str]) -> S3Endpoint:
    """Build the S3Endpoint for a parsed endpoint.env."""
    return S3Endpoint(
        name="radosgw",
        endpoint_url=values["ENDPOINT_URL"],
        access_key_id=values["ACCESS_KEY_ID"],
        secret_access_key=values["SECRET_ACCESS_KEY"],
        region=values.get("REGION", "us-east-1"),
        request_log=None,
    )


def _ceph_down(workdir: Path) -> None:
    """Stop the cluster in `workdir` by PID and remove its data; report but never raise."""
    try:
        _run_script("ceph_down.sh", str(workdir), timeout=DOWN_TIMEOUT_S)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"radosgw_server: ceph_down.sh failed: {error}", file=sys.stderr)


@contextlib.contextmanager
def run_radosgw(workdir: Path) -> Iterator[S3Endpoint]:
    """Start a throwaway Ceph cluster with radosgw under `workdir` and yield its endpoint.

    Installs the packages first when they are missing. The cluster is stopped (every daemon
    by its own PID) and its data removed on exit, also when starting it failed half-way.
    """
    install_ceph()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        _run_script("ceph_up.sh", str(workdir), timeout=UP_TIMEOUT_S)
        endpoint = _endpoint_from_env(read_endpoint_env(workdir / "endpoint.env"))
        yield dataclasses.replace(endpoint, ceph_conf=str(workdir / "ceph.conf"))
    finally:
        _ceph_down(workdir)


def create_user(endpoint: S3Endpoint, uid: str) -> tuple[str, str]:
    """Create another radosgw user (no buckets, no grants) and return its key pair.

    The key is parsed from radosgw-admin's JSON output and never printed.
    """
    if endpoint.ceph_conf is None:
        raise ValueError(f"{endpoint.name} is not a radosgw endpoint started by run_radosgw")
    completed = subprocess.run(
        [
            "radosgw-admin",
            "-c",
            endpoint.ceph_conf,
            "-n",
            "client.admin",
            "user",
            "create",
            "--uid",
            uid,
            "--display-name",
            uid,
            "--gen-access-key",
            "--gen-secret",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"radosgw-admin user create {uid} exited {completed.returncode}")
    key = json.loads(completed.stdout)["keys"][0]
    return str(key["access_key"]), str(key["secret_key"])
