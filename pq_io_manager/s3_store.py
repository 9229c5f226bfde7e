"""The S3 store: object operations polars cannot do (publish, delete, list, abort) on a bucket.

No Dagster import.
"""

import posixpath
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pq_io_manager.credentials import S3Connection
from pq_io_manager.stores import list_each

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

    @property
    def client(self) -> "S3Client":
        """A boto3 client, created on first use."""
        if self._client is None:
            self._client = self.connection.client()
        return self._client

    def polars_options(self) -> dict[str, Any]:
        """Region and endpoint as options; keys only through the credential provider."""
        return {
            "storage_options": self.connection.storage_options(),
            "credential_provider": self._credential_provider,
        }

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

    def publish(self, staged: str, final: str) -> int:
        """Copy server-side in one request (multipart above 5 GB: one atomic completion too),
        then drop the staged object."""
        source = dict(zip(("Bucket", "Key"), split_s3_uri(staged), strict=True))
        bucket, key = split_s3_uri(final)
        size = self.size(staged)
        if size <= _SINGLE_COPY_LIMIT:
            self.client.copy_object(CopySource=source, Bucket=bucket, Key=key)  # type: ignore[arg-type]
        else:
            self.client.copy(source, bucket, key)  # type: ignore[arg-type]
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

    def abort_uploads(self, uri: str) -> int:
        """Abort the multipart uploads to exactly this key."""
        return self._abort_uploads(uri, older_than=None, exact=True)

    def discard(self, staged: str) -> bool:
        """Delete the staged object and abort multipart uploads polars left open for it."""
        aborted = self._abort_uploads(staged, older_than=None, exact=True)
        found = self.exists(staged)
        if found:
            self.delete([staged])
        return found or aborted > 0

    def sweep(self, base_path: str, staging: str, older_than: float) -> int:
        """Delete staged objects and abort unfinished uploads (staged or written directly by a
        killed run) started before `older_than`."""
        bucket, prefix = split_s3_uri(staging.rstrip("/") + "/")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        stale = [
            f"s3://{bucket}/{item['Key']}"
            for page in pages
            for item in page.get("Contents", [])
            if item["LastModified"].timestamp() < older_than
        ]
        self.delete(stale)
        return len(stale) + self._abort_uploads(base_path.rstrip("/") + "/", older_than)

    def _abort_uploads(self, prefix_uri: str, older_than: float | None, exact: bool = False) -> int:
        bucket, prefix = split_s3_uri(prefix_uri)
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=prefix
        )
        aborted = 0
        for upload in (upload for page in pages for upload in page.get("Uploads", [])):
            if exact and upload["Key"] != prefix:
                continue
            if older_than is None or upload["Initiated"].timestamp() < older_than:
                self.client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted += 1
        return aborted


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` into `(bucket, key)`."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _parent(uri: str) -> str:
    return uri.rpartition("/")[0]
