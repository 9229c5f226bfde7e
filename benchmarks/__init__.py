"""Benchmarks: PartitionedParquetIOManager against raw polars and the IO managers users pick.

Run everything with `python -m benchmarks.run` (see docs/benchmarks.md).
"""
