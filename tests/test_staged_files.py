"""Cleaning up after a failed polars write (`staged_files.discard_in_flight`), on local disk."""

import threading
import time
from pathlib import Path

from pq_io_manager.staged_files import discard_in_flight
from pq_io_manager.stores import LocalStore


def test_a_file_named_and_committed_while_cleaning_is_removed_too(tmp_path: Path) -> None:
    # polars' threads can name a file after the sink raised and commit it later still: the
    # cleanup reads the names again on every pass, not once when it starts.
    first, late = (str(tmp_path / f"{name}.parquet") for name in ("first", "late"))
    Path(first).write_bytes(b"truncated")
    names = [first]

    def name_then_commit() -> None:
        time.sleep(0.3)
        names.append(late)
        time.sleep(0.5)
        Path(late).write_bytes(b"committed late")

    writer = threading.Thread(target=name_then_commit)
    writer.start()
    discard_in_flight(LocalStore(str(tmp_path)), lambda: list(names))
    writer.join()

    assert sorted(path.name for path in tmp_path.iterdir()) == []
