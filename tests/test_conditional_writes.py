"""The S3 servers honour conditional PUTs (If-None-Match: *, If-Match: etag), even under races.

The schema record and the writer lock rest on these; this is the proof on each real server.
"""

import threading
import uuid
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pq_io_manager.credentials import connection_from_resource
from pq_io_manager.s3_store import S3Store
from pq_io_manager.schema_record import RECORD_NAME
from pq_io_manager.stores import LocalStore, Store
from tests.lake import Lake
from tests.servers import S3Endpoint

pytestmark = pytest.mark.every_s3_server

KEY = "dataset/_pq_schema.json"
RACERS = 16


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code"))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def test_create_only_if_absent(s3_endpoint: S3Endpoint, bucket: str) -> None:
    client = s3_endpoint.client()
    client.put_object(Bucket=bucket, Key=KEY, Body=b"first", IfNoneMatch="*")

    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key=KEY, Body=b"second", IfNoneMatch="*")

    assert _status(refused.value) == 412, refused.value.response
    assert client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"first"


def test_replace_only_if_the_etag_matches_in_the_form_each_server_takes(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    client = s3_endpoint.client()
    first = client.put_object(Bucket=bucket, Key=KEY, Body=b"first")["ETag"]
    # AWS and moto take the ETag as returned (quoted); Ceph radosgw 16 compares If-Match with
    # the bare ETag and refuses the quoted form, so S3Store learns the form on first use.
    bare = first.strip('"')
    if s3_endpoint.name == "radosgw":
        with pytest.raises(ClientError) as quoted_refused:
            client.put_object(Bucket=bucket, Key=KEY, Body=b"quoted", IfMatch=first)
        assert _status(quoted_refused.value) == 412
    second = client.put_object(Bucket=bucket, Key=KEY, Body=b"second", IfMatch=bare)["ETag"]

    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key=KEY, Body=b"stale", IfMatch=bare)

    assert _status(refused.value) == 412, refused.value.response
    body = client.get_object(Bucket=bucket, Key=KEY)
    assert body["Body"].read() == b"second"
    assert body["ETag"] == second


@pytest.mark.s3
@pytest.mark.radosgw
def test_radosgw_ignores_if_match_on_delete(radosgw_endpoint: S3Endpoint) -> None:
    # why the writer lock is never deleted, only marked free by a conditional PUT
    client = radosgw_endpoint.client()
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=KEY, Body=b"held")

    client.delete_object(Bucket=bucket, Key=KEY, IfMatch='"not-the-etag"')

    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def _race(endpoint: S3Endpoint, bucket: str, put: Any) -> Counter[str]:
    """Start RACERS threads at once, each sending one conditional PUT; count outcomes."""
    barrier = threading.Barrier(RACERS)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(index: int) -> None:
        client = endpoint.client()
        barrier.wait()
        try:
            put(client, index)
            outcome = "won"
        except ClientError as error:
            outcome = f"refused {_status(error)} {_code(error)}"
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(index,)) for index in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_racing_creates_have_exactly_one_winner(s3_endpoint: S3Endpoint, bucket: str) -> None:
    def put(client: Any, index: int) -> None:
        client.put_object(Bucket=bucket, Key=KEY, Body=str(index).encode(), IfNoneMatch="*")

    outcomes = _race(s3_endpoint, bucket, put)

    assert outcomes["won"] == 1, outcomes
    assert sum(outcomes.values()) == RACERS


def test_racing_replaces_of_one_version_have_exactly_one_winner(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    etag = s3_endpoint.client().put_object(Bucket=bucket, Key=KEY, Body=b"base")["ETag"]

    def put(client: Any, index: int) -> None:
        client.put_object(Bucket=bucket, Key=KEY, Body=str(index).encode(), IfMatch=etag.strip('"'))

    outcomes = _race(s3_endpoint, bucket, put)

    assert outcomes["won"] == 1, outcomes
    assert sum(outcomes.values()) == RACERS


def test_store_compare_and_swap_has_one_winner_per_version(lake: Lake) -> None:
    store, uri = _store(lake), lake.uri(f"asset/{RECORD_NAME}")
    created = store.write_if(uri, b"base", None)
    assert created is not None
    assert store.write_if(uri, b"again", None) is None
    barrier = threading.Barrier(RACERS)
    winners: list[int] = []

    def swap(index: int) -> None:
        barrier.wait()
        if store.write_if(uri, f"writer {index}".encode(), created) is not None:
            winners.append(index)

    threads = [threading.Thread(target=swap, args=(index,)) for index in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1, winners
    found = store.read_versioned(uri)
    assert found is not None
    assert found.data == f"writer {winners[0]}".encode()
    assert store.write_if(uri, b"stale", created) is None
    assert store.write_if(uri, b"fresh", found.version) is not None


def _store(lake: Lake) -> Store:
    if lake.resource is None:
        return LocalStore(lake.base_path)
    return S3Store(connection_from_resource(lake.resource))
