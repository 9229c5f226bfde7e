"""Our own uploads on S3, and the sweep of what killed writers left behind.

What is ours (and nothing else is ever looked at or touched):
- staged objects `{base}/.pq-staging/{32 hex digits}.parquet`, and the multipart uploads to
  those keys (polars' uploads of staged files);
- multipart uploads this package starts itself for an in-memory frame, straight to a final
  key: each is registered under `{base}/.pq-staging/uploads/` (a small object naming the key
  and the UploadId) while it runs, so that the sweep can find exactly those uploads without
  listing anybody else's.

Liveness is decided on the server's clock only (never this machine's): an upload is abandoned
when its last activity (its newest part, or its start when it has none) is older than the
threshold by the `Date` of the server's own response; a staged object when its LastModified is.
No Dagster import.
"""

import contextlib
import datetime as dt
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from pq_io_manager.stores import STAGED_NAME, SWEEP_MARKER

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGISTRY = "uploads"
SINGLE_PUT_LIMIT = 32 * 1024**2  # larger payloads go in parallel parts
PART_SIZE = 16 * 1024**2
_PART_THREADS = 8


def server_time(response: dict[str, Any]) -> dt.datetime:
    """The server's clock, from the `Date` header of any of its responses."""
    return parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])


def _status(error: Exception) -> int:
    response = getattr(error, "response", {})
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


@dataclass(frozen=True)
class Bucket:
    """One bucket and the staging prefix (`{base}/.pq-staging/`) of one base path in it."""

    client: "S3Client"
    name: str
    staging: str

    def upload(self, key: str, data: bytes) -> None:
        """Store `data` at `key` atomically; on failure abort exactly this call's upload."""
        if len(data) <= SINGLE_PUT_LIMIT:
            self.client.put_object(Bucket=self.name, Key=key, Body=data)
            return
        upload_id = self.client.create_multipart_upload(Bucket=self.name, Key=key)["UploadId"]
        # Registered until completed or aborted: if this process dies (or the abort fails),
        # the registration stays and a later sweep finds exactly this upload through it.
        marker = f"{self.staging}{REGISTRY}/{uuid.uuid4().hex}.json"
        body = json.dumps({"key": key, "upload_id": upload_id}).encode()
        self.client.put_object(Bucket=self.name, Key=marker, Body=body)
        try:
            parts = self._upload_parts(key, upload_id, data)
            self.client.complete_multipart_upload(
                Bucket=self.name,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except BaseException:
            with contextlib.suppress(Exception):  # the upload's own error matters more
                self.client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
                self.client.delete_object(Bucket=self.name, Key=marker)
            raise
        with contextlib.suppress(Exception):  # published; a leftover registration is a hint
            self.client.delete_object(Bucket=self.name, Key=marker)

    def _upload_parts(self, key: str, upload_id: str, data: bytes) -> list[dict[str, Any]]:
        view = memoryview(data)
        offsets = range(0, len(data), PART_SIZE)

        def send(number: int) -> dict[str, Any]:
            start = offsets[number - 1]
            response = self.client.upload_part(
                Bucket=self.name,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(view[start : start + PART_SIZE]),
            )
            checksums = {name: value for name, value in response.items() if "Checksum" in name}
            return {"PartNumber": number, "ETag": response["ETag"], **checksums}

        with ThreadPoolExecutor(min(_PART_THREADS, len(offsets))) as pool:
            futures = [pool.submit(send, number) for number in range(1, len(offsets) + 1)]
            try:
                return [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()

    def abort_staged_uploads(self, key: str) -> int:
        """Abort the uploads to one staged key (its name is unique to one writer)."""
        aborted = 0
        for upload in self._uploads(key):
            if upload["Key"] == key:
                aborted += self._abort(key, upload["UploadId"])
        return aborted

    def sweep(self, now: dt.datetime, abandoned_seconds: float) -> int:
        """Remove what is ours and was abandoned `abandoned_seconds` before `now` (the
        server's time); the caller has claimed this sweep (see `S3Store.sweep`)."""
        cutoff = now - dt.timedelta(seconds=abandoned_seconds)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=self.staging
        )
        old = [
            item["Key"]
            for page in pages
            for item in page.get("Contents", [])
            if item["LastModified"] < cutoff and item["Key"] != self.staging + SWEEP_MARKER
        ]
        removed = self._delete([key for key in old if self._is_staged(key)])
        for marker in old:
            if marker.startswith(f"{self.staging}{REGISTRY}/"):
                removed += self._sweep_registered(marker, cutoff)
        for upload in self._uploads(self.staging):
            if self._is_staged(upload["Key"]) and upload["Initiated"] < cutoff:
                removed += self._sweep_staged_upload(upload["Key"], upload["UploadId"], cutoff)
        return removed

    def _sweep_staged_upload(self, key: str, upload_id: str, cutoff: dt.datetime) -> int:
        try:
            last = self._last_activity(key, upload_id, None)
        except self.client.exceptions.ClientError as error:
            if _status(error) == 404:  # completed or aborted since it was listed
                return 0
            raise
        # No part yet: the start counts (moto reports every start as 2010: then it is aborted).
        if last is not None and last >= cutoff:
            return 0
        return self._abort(key, upload_id)

    def _is_staged(self, key: str) -> bool:
        return key.startswith(self.staging) and bool(
            STAGED_NAME.fullmatch(key[len(self.staging) :])
        )

    def _sweep_registered(self, marker: str, cutoff: dt.datetime) -> int:
        try:
            body = self.client.get_object(Bucket=self.name, Key=marker)["Body"].read()
        except self.client.exceptions.NoSuchKey:  # its upload finished, or another sweep ran
            return 0
        registered = json.loads(body)
        key, upload_id = str(registered["key"]), str(registered["upload_id"])
        try:
            last = self._last_activity(key, upload_id, None)
        except self.client.exceptions.ClientError as error:
            if _status(error) != 404:  # NoSuchUpload: completed or aborted since
                raise
            self.client.delete_object(Bucket=self.name, Key=marker)
            return 0
        if last is not None and last >= cutoff:
            return 0
        aborted = self._abort(key, upload_id)
        self.client.delete_object(Bucket=self.name, Key=marker)
        return aborted

    def _last_activity(
        self, key: str, upload_id: str, initiated: dt.datetime | None
    ) -> dt.datetime | None:
        """The newest part's LastModified (the start when there is none), server clock."""
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.name, Key=key, UploadId=upload_id
        )
        times = [part["LastModified"] for page in pages for part in page.get("Parts", [])]
        return max(times, default=initiated)

    def _uploads(self, prefix: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.name, Prefix=prefix
        )
        return [dict(upload) for page in pages for upload in page.get("Uploads", [])]

    def _abort(self, key: str, upload_id: str) -> int:
        try:
            self.client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
        except self.client.exceptions.ClientError as error:
            if _status(error) == 404:  # finished or aborted meanwhile
                return 0
            raise
        return 1

    def _delete(self, keys: list[str]) -> int:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(
                Bucket=self.name,
                Delete={"Objects": batch, "Quiet": True},  # type: ignore[typeddict-item]
            )
        return len(keys)
