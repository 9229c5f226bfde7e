"""moto's S3 server as a subprocess on 127.0.0.1, with SigV4 enforced, behind a logging proxy.

`start_moto_server(workdir)` yields a `MotoServer` (endpoint through the proxy, the proxy itself
for fault injection and request counts, and the direct URL); `run_moto(workdir)` yields just the
`S3Endpoint`. Both stop the proxy and the server's own process group on exit.

Files written to `workdir`: `moto-server.log` (the server's stdout and stderr) and
`moto-requests.jsonl` (the proxy's request log, see `http_proxy.RequestRecord`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.servers import S3Endpoint
from tests.servers.http_proxy import HttpProxy

REGION = "us-east-1"
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
USER_NAME = "pq-io-manager-tests"
_S3_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}],
}


@dataclass(frozen=True)
class MotoServer:
    """A running moto server and the logging proxy in front of it.

    `endpoint` goes through `proxy` (use it in tests); `direct_url` reaches moto itself (for
    benchmarks or a second proxy). `startup_seconds` is the time from spawn to answering.
    """

    endpoint: S3Endpoint
    proxy: HttpProxy
    direct_url: str
    process: subprocess.Popen[bytes]
    startup_seconds: float

    def direct_endpoint(self) -> S3Endpoint:
        """The same keys, pointing at moto without the proxy (no request log)."""
        return replace(
            self.endpoint, name="moto-direct", endpoint_url=self.direct_url, request_log=None
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment_without_aws() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}


def _spawn(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=_environment_without_aws(),
            start_new_session=True,
        )


def _log_tail(log_path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no server log>"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/data.json", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _wait_until_answering(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"moto server exited with {process.returncode} before answering; log tail:\n"
                + _log_tail(log_path)
            )
        if _answers(url):
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"moto server did not answer on {url} within {START_TIMEOUT_SECONDS:.0f} s; "
        "log tail:\n" + _log_tail(log_path)
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop a process started with `start_new_session=True`: SIGTERM to its own process group,
    then SIGKILL if it has not exited within `timeout`; always reaps it."""
    for signal_number, wait_seconds in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal_number)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_seconds)
    if process.poll() is None:
        raise RuntimeError(f"moto server (pid {process.pid}) did not exit")


def _create_s3_user(url: str) -> tuple[str, str]:
    """Create an IAM user allowed `s3:*` and return one of its access keys (before enforcement)."""
    import boto3

    iam: Any = boto3.client(
        "iam",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",  # moto accepts any key before reset-auth
    )
    iam.create_user(UserName=USER_NAME)
    policy = iam.create_policy(PolicyName="s3-all", PolicyDocument=json.dumps(_S3_POLICY))
    iam.attach_user_policy(UserName=USER_NAME, PolicyArn=policy["Policy"]["Arn"])
    key = iam.create_access_key(UserName=USER_NAME)["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


def _enforce_authentication(url: str) -> None:
    """From now on moto refuses every request not SigV4-signed by a key it knows."""
    request = urllib.request.Request(
        url + "/moto-api/reset-auth",
        data=b"0",
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _verify_enforcement(endpoint: S3Endpoint) -> None:
    """The right key must work and a wrong secret must get 403, or the setup is broken."""
    from botocore.exceptions import ClientError

    endpoint.client().list_buckets()
    try:
        endpoint.client(aws_secret_access_key="not-the-secret").list_buckets()
    except ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] == 403:
            return
        raise
    raise RuntimeError("moto accepted a request signed with a wrong secret")


def _start_process(workdir: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """Spawn moto on a free port (retrying if the port was taken meanwhile)."""
    log_path = workdir / "moto-server.log"
    for attempt in range(3):
        started = time.monotonic()
        port = free_port()
        process = _spawn(port, log_path)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_answering(process, url, log_path)
        except RuntimeError:
            stop_process(process)
            if attempt == 2 or "Address already in use" not in _log_tail(log_path):
                raise
            continue
        return process, url, time.monotonic() - started
    raise AssertionError("unreachable")


@contextlib.contextmanager
def start_moto_server(workdir: Path) -> Iterator[MotoServer]:
    """Run moto with SigV4 enforced behind a logging `HttpProxy`; stop both on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    process, direct_url, startup_seconds = _start_process(workdir)
    try:
        access_key_id, secret_access_key = _create_s3_user(direct_url)
        _enforce_authentication(direct_url)
        log_path = workdir / "moto-requests.jsonl"
        with HttpProxy(direct_url, log_path=log_path) as proxy:
            endpoint = S3Endpoint(
                name="moto",
                endpoint_url=proxy.url,
                access_key_id=access_key_id,
                secret_access_key=secret_access_key,
                region=REGION,
                request_log=str(log_path),
            )
            _verify_enforcement(replace(endpoint, endpoint_url=direct_url))
            yield MotoServer(endpoint, proxy, direct_url, process, startup_seconds)
    finally:
        stop_process(process)


@contextlib.contextmanager
def run_moto(workdir: Path) -> Iterator[S3Endpoint]:
    """Run moto (SigV4 enforced) behind a logging proxy and yield its `S3Endpoint`."""
    with start_moto_server(workdir) as server:
        yield server.endpoint
