"""Compression codecs: write time and file size of one partition of the benchmark frame with
`PartitionedParquetIOManager(compression=...)`, zstd (polars' default) as the baseline.

    python -m benchmarks.codecs            # full size (5M rows), local disk
    python -m benchmarks.codecs --quick    # smoke size

Rounds alternate the codecs (rotating the order), after one warm-up round; the ratios are to
zstd's median in the same run. Prints a Markdown table and writes it with the raw timings to
`--output` (default `benchmarks/results/codecs/`).
"""

import argparse
import contextlib
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.contenders import Contender, _initialise
from benchmarks.data import FULL, QUICK, Sizes, dated_frame, partition_key
from benchmarks.measure import Case, alternate

CODECS = ("zstd", "snappy", "lz4")
BASELINE = "zstd"
DAY = 0
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "codecs"


@dataclass
class CodecRow:
    """One codec's write time and stored size, and both as ratios to zstd's."""

    codec: str
    rows: int
    median_s: float | None
    seconds: list[float]
    size_bytes: int
    time_ratio: float | None = None
    size_ratio: float | None = None


def measure(sizes: Sizes, workdir: Path) -> list[CodecRow]:
    """Time each codec's write of `sizes.write_rows` rows to one partition on local disk."""
    from pq_io_manager import PartitionedParquetIOManager

    frame = dated_frame(1, sizes.write_rows, first_day=DAY)
    key = partition_key(DAY)
    with contextlib.ExitStack() as stack:
        cases: dict[str, Case] = {}
        for codec in CODECS:
            manager = PartitionedParquetIOManager(base_path=str(workdir / codec), compression=codec)
            contender = Contender(codec, _initialise(stack, manager))
            cases[codec] = _write_case(contender, key, frame)
        timed = alternate("codecs", "local", cases, sizes.rounds)
    rows = [
        CodecRow(row.contender, frame.height, row.median_s, row.seconds, _stored(workdir, codec))
        for codec, row in zip(CODECS, timed, strict=True)
    ]
    return _with_ratios(rows)


def _write_case(contender: Contender, key: str, frame: object) -> Case:
    return lambda: contender.write("codecs", key, frame)


def _stored(workdir: Path, codec: str) -> int:
    return sum(path.stat().st_size for path in (workdir / codec / "codecs").rglob("*.parquet"))


def _with_ratios(rows: list[CodecRow]) -> list[CodecRow]:
    [baseline] = [row for row in rows if row.codec == BASELINE]
    for row in rows:
        row.size_ratio = row.size_bytes / baseline.size_bytes
        if row.median_s is not None and baseline.median_s:
            row.time_ratio = row.median_s / baseline.median_s
    return rows


def table(rows: list[CodecRow]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| Codec | Rows | Write median (s) | x zstd time | Size (MB) | x zstd size |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        median = "failed" if row.median_s is None else f"{row.median_s:.4f}"
        ratio = "" if row.time_ratio is None else f"{row.time_ratio:.2f}x"
        lines.append(
            f"| {row.codec} | {row.rows:,} | {median} | {ratio} | "
            f"{row.size_bytes / 1e6:.2f} | {row.size_ratio:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print and save the codec comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results directory")
    arguments = parser.parse_args(argv)
    sizes = QUICK if arguments.quick else FULL
    with tempfile.TemporaryDirectory(prefix="pq-codecs-") as workdir:
        rows = measure(sizes, Path(workdir))
    markdown = table(rows)
    print(markdown)
    arguments.output.mkdir(parents=True, exist_ok=True)
    (arguments.output / "codecs.md").write_text(markdown + "\n")
    results = {"mode": sizes.mode, "rows": [asdict(row) for row in rows]}
    (arguments.output / "codecs.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(row.median_s is not None for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
