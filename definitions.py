"""Dagster definitions of the pq_io_manager demo, loaded by `workspace.yaml`.

With zero configuration the lake is the local directory `data/lake`; set
`PQ_BASE_PATH=s3://bucket/prefix` and the usual `AWS_*` variables to use S3 (demo/resources.py).

    dagster asset materialize -f definitions.py --select raw_orders,daily_sales \
        --partition 2025-01-01
    dagster dev
"""

from demo import build_definitions

defs = build_definitions()
