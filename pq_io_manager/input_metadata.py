"""The metadata of one load, shown on the input's LOADED_INPUT event in the Dagster UI.

Built only from what the load already did: the files it chose to scan and the sizes its listing
returned (several files are proven by one listing, which carries their sizes). It never asks
the store anything and never collects a frame. A single file is proven by reading its footer,
which tells no size: a local file's size is one `stat` (no request), an S3 object's would be an
extra HEAD request, so a one-file load on S3 reports no `size_bytes`.
"""

import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import InputContext, MetadataValue, get_dagster_logger

from pq_io_manager.layout import PartitionColumn, is_s3_uri

LoadedFiles = Sequence[tuple[str, str, tuple[PartitionColumn, ...]]]  # (key, uri, columns)


def input_metadata(
    root: str, files: LoadedFiles, listed_sizes: Mapping[str, int]
) -> dict[str, Any]:
    """`partitions`, `files`, `size_bytes` (when every file's size is known without a
    request) and `uri` (the one partition's directory, or the asset's root) of a load."""
    uris = [uri for _, uri, _ in files]
    metadata: dict[str, Any] = {
        "partitions": len({key for key, _, columns in files if columns}),
        "files": len(uris),
        "uri": MetadataValue.path(posixpath.dirname(uris[0]) if len(uris) == 1 else root),
    }
    sizes = [_size(uri, listed_sizes) for uri in uris]
    if all(size is not None for size in sizes):
        metadata["size_bytes"] = sum(size for size in sizes if size is not None)
    return metadata


def add_input_metadata(context: InputContext, metadata: Mapping[str, Any], spans_one: bool) -> None:
    """Attach the metadata to the input's LOADED_INPUT event through Dagster's
    `add_input_metadata`, which also records it as an observation of the upstream asset when
    the input `spans_one` partition or the whole of an unpartitioned asset."""
    try:
        context.add_input_metadata(metadata)
    except Exception:
        if spans_one:
            raise
        # dagster#27940/#9054: for a range (or none) of an upstream's partitions it stores the
        # metadata for LOADED_INPUT first, then fails building the observation of "the"
        # partition key; the load itself is fine, so only the observation is given up.
        get_dagster_logger().debug("input metadata not recorded as an upstream observation")


def _size(uri: str, listed_sizes: Mapping[str, int]) -> int | None:
    if uri in listed_sizes:
        return listed_sizes[uri]
    if is_s3_uri(uri):
        return None  # would cost a HEAD request per load: see the module docstring
    try:
        return os.stat(uri).st_size
    except OSError:  # removed since it was read: the metadata must never fail a load
        return None
