"""A private moto server (SigV4 enforced) with an IAM admin, for tests that change IAM users."""

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from tests.servers import S3Endpoint
from tests.servers.moto_server import MotoServer, start_moto_server

ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
S3_STATEMENTS = [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}]


class IamMoto:
    """A private moto server and its admin key, to create users with their own policies."""

    def __init__(self, server: MotoServer, admin: tuple[str, str]) -> None:
        self.server = server
        self.admin = admin

    def iam(self) -> Any:
        """An IAM client signed with the admin key."""
        return boto3.client(
            "iam",
            endpoint_url=self.server.direct_url,
            region_name="us-east-1",
            aws_access_key_id=self.admin[0],
            aws_secret_access_key=self.admin[1],
        )

    def admin_endpoint(self) -> S3Endpoint:
        """The server as the admin sees it."""
        return S3Endpoint("moto", self.server.direct_url, *self.admin)

    def user(self, name: str, statements: list[dict[str, Any]] | None = None) -> None:
        """A user allowed `statements` (default: all of S3)."""
        document = {"Version": "2012-10-17", "Statement": statements or S3_STATEMENTS}
        iam = self.iam()
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(document))

    def key(self, user: str) -> tuple[str, str]:
        """A new access key of `user`."""
        created = self.iam().create_access_key(UserName=user)["AccessKey"]
        return created["AccessKeyId"], created["SecretAccessKey"]


@contextlib.contextmanager
def start_iam_moto(workdir: Path) -> Iterator[IamMoto]:
    """Its own moto: IAM changes (new users, deleted keys) never disturb the shared server."""
    with start_moto_server(workdir) as server:
        _reset_auth(server.direct_url, 4)  # the next 4 requests create the admin unsigned
        iam = boto3.client(
            "iam",
            endpoint_url=server.direct_url,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="admin")
        policy = iam.create_policy(PolicyName="all", PolicyDocument=json.dumps(ADMIN_POLICY))
        iam.attach_user_policy(UserName="admin", PolicyArn=policy["Policy"]["Arn"])
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        _reset_auth(server.direct_url, 0)
        yield IamMoto(server, (key["AccessKeyId"], key["SecretAccessKey"]))


def _reset_auth(url: str, free_requests: int) -> None:
    request = urllib.request.Request(
        url + "/moto-api/reset-auth",
        data=str(free_requests).encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
