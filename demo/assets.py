"""The demo's assets: an online shop's orders, stored by `PartitionedParquetIOManager`.

Lineage: `raw_orders` (daily) -> `daily_sales` (daily) -> `weekly_sales` (weekly, 7 days),
`raw_orders` -> `regional_orders` (date x region), and `customers` (unpartitioned, split by
country). No `from __future__ import annotations` here: Dagster reads the annotations.
"""

import datetime as dt
import warnings

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    BetaWarning,
    DailyPartitionsDefinition,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    WeeklyPartitionsDefinition,
    asset,
)

from demo import data
from demo.resources import uses_s3
from pq_io_manager.checks import build_storage_checks

# The demo shows backfills of several days per run, which need `backfill_policy` (beta in
# Dagster 1.13): without this filter every process that loads the demo (the CLI, each step's
# subprocess, `dagster dev`'s code server) prints Dagster's beta notice three times. Scoped to
# that one parameter, so any other beta or deprecation warning still shows.
warnings.filterwarnings(
    "ignore", message=r"Parameter `backfill_policy` of function `asset`", category=BetaWarning
)

START_DATE = "2025-01-01"
DAILY = DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")
# Weeks start on Monday; the first full week of 2025 starts on 2025-01-06.
WEEKLY = WeeklyPartitionsDefinition(start_date="2025-01-06", day_offset=1, timezone="UTC")
REGION = StaticPartitionsDefinition(list(data.REGIONS))
DATE_BY_REGION = MultiPartitionsDefinition({"date": DAILY, "region": REGION})

GROUP = "sales"
OWNERS = ["team:data-platform"]
KINDS = {"polars", "parquet", "s3" if uses_s3() else "file"}
TAGS = {"domain": "sales", "layer": "raw"}


def _days(context: AssetExecutionContext) -> list[dt.date]:
    """The days a run covers: one partition, or a range in a backfill run."""
    window = context.partition_time_window
    count = (window.end - window.start).days
    return [window.start.date() + dt.timedelta(days=offset) for offset in range(count)]


@asset(
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=7),
    metadata={
        "partition_by": "order_date",
        "dagster/column_schema": data.table_schema(data.ORDER_COLUMNS),
    },
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    tags=TAGS,
    code_version="1",
)
def raw_orders(context: AssetExecutionContext) -> pl.DataFrame:
    """Every order placed on the partition's day (UTC): one row per order, a few thousand a day.

    Generated deterministically from the day, standing in for an extract from the shop's
    database. Backfills materialize up to 7 days per run (the rows carry `order_date`).
    """
    days = _days(context)
    context.log.info(f"generating orders for {len(days)} day(s) from {days[0]}")
    return data.orders_for_days(days)


@asset(
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=7),
    # the first rows as a Markdown table in each materialization's metadata (off by default)
    metadata={"partition_by": "order_date", "preview_rows": 5},
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    tags={**TAGS, "layer": "mart"},
    code_version="1",
)
def daily_sales(raw_orders: pl.LazyFrame) -> pl.LazyFrame:
    """Orders, units, revenue and distinct customers per day, region and product category.

    Reads only the run's partitions of `raw_orders`, lazily: polars streams them from Parquet.
    """
    return (
        raw_orders.group_by("order_date", "region", "category")
        .agg(
            orders=pl.len().cast(pl.Int64),
            units=pl.col("quantity").cast(pl.Int64).sum(),
            revenue=pl.col("amount").sum().round(2),
            customers=pl.col("customer_id").n_unique().cast(pl.Int64),
        )
        .sort("order_date", "region", "category")
    )


@asset(
    partitions_def=WEEKLY,
    ins={"daily_sales": AssetIn(partition_mapping=TimeWindowPartitionMapping())},
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_by": "week_start"},
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    tags={**TAGS, "layer": "mart"},
    code_version="1",
)
def weekly_sales(context: AssetExecutionContext, daily_sales: pl.LazyFrame) -> pl.DataFrame:
    """Weekly (Monday to Sunday) totals per region and category, from seven `daily_sales` days.

    Backfills run as one run over all selected weeks; rows carry `week_start` so the IO manager
    can split them into weekly partitions.
    """
    weekly = (
        daily_sales.with_columns(week_start=pl.col("order_date").dt.truncate("1w"))
        .group_by("week_start", "region", "category")
        .agg(
            days=pl.col("order_date").n_unique().cast(pl.Int64),
            orders=pl.col("orders").sum(),
            units=pl.col("units").sum(),
            revenue=pl.col("revenue").sum().round(2),
        )
        .sort("week_start", "region", "category")
        .collect()
    )
    incomplete = weekly.filter(pl.col("days") < 7)["week_start"].unique().to_list()
    if incomplete:
        context.log.warning(f"weeks with fewer than 7 days of data: {incomplete}")
    return weekly


@asset(
    partitions_def=DATE_BY_REGION,
    metadata={"partition_by": {"date": "order_date", "region": "region"}},
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    tags={**TAGS, "layer": "regional"},
    code_version="1",
)
def regional_orders(context: AssetExecutionContext, raw_orders: pl.LazyFrame) -> pl.LazyFrame:
    """One region's orders of one day, with the amount converted to the region's currency.

    Multi-partitioned by date x region, for the regional teams' reporting. Dagster maps each
    date x region partition to the same date of the daily `raw_orders` by itself.
    """
    # a launched run carries the key as the string "date|region"
    key = DATE_BY_REGION.get_partition_key_from_str(context.partition_key)
    region = key.keys_by_dimension["region"]
    currency, rate = data.REGION_CURRENCY[region]
    return raw_orders.filter(pl.col("region") == region).with_columns(
        currency=pl.lit(currency),
        amount_local=(pl.col("amount") * rate).round(2),
    )


@asset(
    metadata={
        "partition_by": ["country"],
        "dagster/column_schema": data.table_schema(data.CUSTOMER_COLUMNS),
    },
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    tags={**TAGS, "layer": "dimension"},
    code_version="1",
)
def customers() -> pl.DataFrame:
    """The customer dimension, stored as one `country=XX` directory per country."""
    return data.customers()


ASSETS = [raw_orders, daily_sales, weekly_sales, regional_orders, customers]

# Storage checks (issue 12): every materialized partition is stored, and the stored schema is
# the declared `dagster/column_schema`. They run in every job that materializes the asset.
ASSET_CHECKS = [*build_storage_checks(raw_orders), *build_storage_checks(customers)]
