"""The S3 store: object operations polars cannot do (publish, delete, list, abort) on a bucket.

No Dagster import.
"""

import posixpath
import uuid
from collections.abc import Iterable, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from pq_io_manager.credentials import S3Connection
from pq_io_manager.errors import brief
from pq_io_manager.s3_housekeeping import Bucket, server_time
from pq_io_manager.s3_timestamps import use_fast_timestamps
from pq_io_manager.stores import SWEEP_MARKER, Presence, Versioned, list_each

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

_DELETE_BATCH = 1000
_SINGLE_COPY_LIMIT = 5 * 1024**3  # S3's limit for one CopyObject
_PARALLEL_REQUESTS = 16
_LISTING_PAGE = 1000  # keys per ListObjectsV2 response
# A common-prefix listing may hold this many keys per wanted directory before per-directory
# listings are cheaper.
_PREFIX_LISTING_FACTOR = 20


class S3Store:
    """An S3 bucket; publishing is a server-side copy, which S3 applies atomically."""

    def __init__(self, connection: S3Connection) -> None:
        self.connection = connection
        self._client: S3Client | None = None
        self._credential_provider = connection.credential_provider()
        # Ceph radosgw (16) compares If-Match with the ETag without its quotes; learnt on use.
        self._bare_etags = False

    @property
    def client(self) -> "S3Client":
        """A boto3 client, created on first use."""
        if self._client is None:
            use_fast_timestamps(self.connection.session)  # listings parse one per key
            self._client = self.connection.client()
        return self._client

    def polars_options(self) -> dict[str, Any]:
        """Region and endpoint as options; keys only through the credential provider."""
        return {
            "storage_options": self.connection.storage_options(),
            "credential_provider": self._credential_provider,
        }

    def prepare(self, uri: str) -> None:
        """An object key needs no parent: nothing to do."""

    def exists(self, uri: str) -> bool:
        """HEAD the object; 404 means absent, any other error propagates."""
        bucket, key = split_s3_uri(uri)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def size(self, uri: str) -> int:
        """ContentLength from a HEAD request."""
        bucket, key = split_s3_uri(uri)
        return int(self.client.head_object(Bucket=bucket, Key=key)["ContentLength"])

    def list_files(
        self, directory: str, recursive: bool = True, limit: int | None = None
    ) -> dict[str, int]:
        """List keys below `directory/` (only this level when not recursive)."""
        return self._list_prefix(directory.rstrip("/") + "/", limit, this_level=not recursive)

    def list_directories(self, directories: Sequence[str]) -> dict[str, int]:
        """One listing of the directories' common key prefix (a backfill's range of partitions
        shares most of its prefix), or one listing per directory when that prefix holds far
        more than the directories (say, a run covering New Year of an hourly asset)."""
        wanted = {directory.rstrip("/") for directory in directories}
        if len(wanted) > 1:
            common = posixpath.commonprefix([directory + "/" for directory in wanted])
            limit = max(_LISTING_PAGE, _PREFIX_LISTING_FACTOR * len(wanted))
            listed = self._list_prefix(common, limit)
            if len(listed) < limit:
                return {uri: size for uri, size in listed.items() if _parent(uri) in wanted}
        return list_each(self, sorted(wanted))

    def existing(self, uris: Sequence[str]) -> dict[str, int]:
        """The files among `uris` that one listing of their directories finds, to sizes."""
        listed = self.list_directories(sorted({posixpath.dirname(uri) for uri in uris}))
        return {uri: listed[uri] for uri in uris if uri in listed}

    def _list_prefix(
        self, prefix_uri: str, limit: int | None, this_level: bool = False
    ) -> dict[str, int]:
        """Keys starting with the prefix (not below a further "/" if `this_level`), to size."""
        bucket, prefix = split_s3_uri(prefix_uri)
        arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if this_level:
            arguments["Delimiter"] = "/"
        if limit is not None:
            arguments["PaginationConfig"] = {
                "MaxItems": limit,
                "PageSize": min(limit, _LISTING_PAGE),
            }
        pages = self.client.get_paginator("list_objects_v2").paginate(**arguments)
        return {
            f"s3://{bucket}/{item['Key']}": int(item["Size"])
            for page in pages
            for item in page.get("Contents", [])
        }

    @property
    def parallel_reads(self) -> int:
        """Requests wait on the network: overlap many."""
        return _PARALLEL_REQUESTS

    @property
    def atomic_uploads(self) -> bool:
        """An object appears only when its PUT or CompleteMultipartUpload succeeds."""
        return True

    def publish(
        self, staged: str, final: str, size: int | None = None, keep_staged: bool = False
    ) -> int:
        """Copy server-side in one request (multipart above 5 GB: one atomic completion too),
        then drop the staged object (unless `keep_staged`: the caller deletes a batch)."""
        source = dict(zip(("Bucket", "Key"), split_s3_uri(staged), strict=True))
        bucket, key = split_s3_uri(final)
        if size is None:
            size = self.size(staged)
        if size <= _SINGLE_COPY_LIMIT:
            self.client.copy_object(CopySource=source, Bucket=bucket, Key=key)  # type: ignore[arg-type]
        else:
            self.client.copy(source, bucket, key)  # type: ignore[arg-type]
        if not keep_staged:
            self.delete([staged])
        return size

    def delete(self, uris: Iterable[str]) -> None:
        """DeleteObjects in batches of 1000 per bucket; errors are raised, not ignored."""
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            bucket, key = split_s3_uri(uri)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), _DELETE_BATCH):
                batch: list[ObjectIdentifierTypeDef] = [
                    {"Key": key} for key in keys[start : start + _DELETE_BATCH]
                ]
                response = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                )
                if response.get("Errors"):
                    failed = response["Errors"][0]
                    raise OSError(f"deleting s3://{bucket}/{failed.get('Key')} failed: {failed}")

    def upload(self, data: bytes, uri: str, staging: str) -> int:
        """One PUT, or a multipart upload of our own registered under `staging` and, on
        failure, aborted by its own UploadId (never another writer's upload of the key)."""
        bucket, key = split_s3_uri(uri)
        try:
            self._bucket(bucket, staging).upload(key, data)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            # a storage failure, reported as polars reports its own (never as a query error)
            raise OSError(f"uploading {uri} failed: {brief(error)}") from error
        return len(data)

    def probe(self, uri: str) -> Presence:
        """A one-byte ranged GET, asked on failure paths only: unlike HEAD, its error body
        tells AccessDenied (a missing key without s3:ListBucket, or no s3:GetObject) from a
        bad signature or key, which must not pass for missing data."""
        bucket, key = split_s3_uri(uri)
        try:
            self.client.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")
        except self.client.exceptions.ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.response.get("Error", {}).get("Code")
            if status == 404:
                return Presence.ABSENT
            if status == 403 and code == "AccessDenied":
                return Presence.DENIED
            if status == 416:  # an empty object has no byte 0, but it exists
                return Presence.PRESENT
            raise
        return Presence.PRESENT

    def discard(self, staged: str) -> bool:
        """Delete the staged object and abort the uploads polars left open for its key (a
        staged key is unique to one writer)."""
        bucket, key = split_s3_uri(staged)
        aborted = Bucket(self.client, bucket, "").abort_staged_uploads(key)
        found = self.exists(staged)
        if found:
            self.delete([staged])
        return found or aborted > 0

    def sweep(self, staging: str, abandoned_seconds: float, interval_seconds: float) -> int | None:
        """Remove our abandoned staging and uploads (see `s3_housekeeping`); None when a
        sweep of this staging was claimed less than `interval_seconds` ago (server clock) or
        another process won the claim just now.

        The claim is a conditional PUT of `.last-sweep` (If-None-Match, or If-Match on the
        ETag just seen), so of many processes starting together exactly one sweeps; the
        others pay one HEAD.
        """
        marker = f"{staging.rstrip('/')}/{SWEEP_MARKER}"
        bucket, key = split_s3_uri(marker)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError as error:
            if _status(error) != 404:
                raise
            now, version = server_time(error.response), None  # type: ignore[arg-type]
        else:
            now, version = server_time(dict(head)), head["ETag"]
            if (now - head["LastModified"]).total_seconds() < interval_seconds:
                return None
        if self.write_if(marker, uuid.uuid4().hex.encode(), version) is None:
            return None
        return self._bucket(bucket, staging).sweep(now, abandoned_seconds)

    def _bucket(self, bucket: str, staging: str) -> Bucket:
        return Bucket(self.client, bucket, split_s3_uri(staging.rstrip("/") + "/")[1])

    def list_prefix(self, prefix: str) -> dict[str, int]:
        """Keys starting with `prefix` (one paginated listing)."""
        return self._list_prefix(prefix, None)

    def read_versioned(self, uri: str) -> Versioned | None:
        """GET the object: its body, ETag, and age by the server's own clock."""
        bucket, key = split_s3_uri(uri)
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        data = response["Body"].read()
        now = parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])
        age = (now - response["LastModified"]).total_seconds()
        return Versioned(data, response["ETag"], max(0.0, age))

    def write_if(self, uri: str, data: bytes, version: str | None) -> str | None:
        """A conditional PUT: `If-None-Match: *` to create, `If-Match: <etag>` to replace."""
        bucket, key = split_s3_uri(uri)
        try:
            if version is None:
                response = self.client.put_object(
                    Bucket=bucket, Key=key, Body=data, IfNoneMatch="*"
                )
            else:
                response = self.client.put_object(
                    Bucket=bucket, Key=key, Body=data, IfMatch=self._etag(version)
                )
        except self.client.exceptions.ClientError as error:
            if not _condition_failed(error, replacing=version is not None):
                raise
            if version is not None and not self._bare_etags and self._etag_of(uri) == version:
                self._bare_etags = True  # the condition held: the server wants the bare form
                return self.write_if(uri, data, version)
            return None
        return response["ETag"]

    def _etag(self, version: str) -> str:
        return version.strip('"') if self._bare_etags else version

    def _etag_of(self, uri: str) -> str | None:
        bucket, key = split_s3_uri(uri)
        try:
            return self.client.head_object(Bucket=bucket, Key=key)["ETag"]
        except self.client.exceptions.ClientError as error:
            if _status(error) == 404:
                return None
            raise


def _status(error: Exception) -> int:
    response = getattr(error, "response", {})
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _condition_failed(error: Exception, replacing: bool) -> bool:
    # 412: the condition did not hold; 409: another conditional write to the key is in flight
    # (AWS); a replace of a key that no longer exists is 404 on some servers (moto).
    status = _status(error)
    return status in (409, 412) or (replacing and status == 404)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` into `(bucket, key)`."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _parent(uri: str) -> str:
    return uri.rpartition("/")[0]
