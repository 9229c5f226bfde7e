"""Jobs, schedules and the sensor of the demo.

- `daily_orders_job` (`raw_orders` + `daily_sales`) and `daily_orders_schedule`, built from it:
  every day at `PQ_DEMO_SCHEDULE_TIME` (UTC, `HH:MM`, default 01:00) it materializes the day
  that just ended.
- `weekly_sales_job` and `weekly_sales_schedule` (Mondays 02:00 UTC, the week that ended).
- `regional_orders_job` and `regional_orders_sensor`: when a day of `raw_orders` is
  materialized, the sensor requests that day's `regional_orders` for every region.

Schedules and the sensor start STOPPED (Dagster's default); switch them on in the UI.
"""

import os

from dagster import (
    AssetKey,
    AssetSelection,
    EventLogEntry,
    MultiPartitionKey,
    RunRequest,
    SensorEvaluationContext,
    asset_sensor,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from demo import data
from demo.assets import daily_sales, raw_orders, regional_orders, weekly_sales

SCHEDULE_TIME_VARIABLE = "PQ_DEMO_SCHEDULE_TIME"
DEFAULT_SCHEDULE_TIME = "01:00"


def schedule_time() -> tuple[int, int]:
    """(hour, minute) in UTC of the daily schedule, from `PQ_DEMO_SCHEDULE_TIME`."""
    text = os.environ.get(SCHEDULE_TIME_VARIABLE) or DEFAULT_SCHEDULE_TIME
    hour_text, _, minute_text = text.partition(":")
    try:
        hour, minute = int(hour_text), int(minute_text)
    except ValueError:
        hour, minute = -1, -1
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"{SCHEDULE_TIME_VARIABLE}={text!r} is not a time of day like '01:00'")
    return hour, minute


daily_orders_job = define_asset_job(
    "daily_orders_job",
    selection=AssetSelection.assets(raw_orders, daily_sales),
    description="Extract one day of orders and aggregate it by region and category.",
    tags={"team": "data-platform"},
)

weekly_sales_job = define_asset_job(
    "weekly_sales_job",
    selection=AssetSelection.assets(weekly_sales),
    description="Roll seven days of daily_sales up into one week.",
)

regional_orders_job = define_asset_job(
    "regional_orders_job",
    selection=AssetSelection.assets(regional_orders),
    description="Split one day of raw_orders by region, in local currency.",
)

_HOUR, _MINUTE = schedule_time()
daily_orders_schedule = build_schedule_from_partitioned_job(
    daily_orders_job,
    name="daily_orders_schedule",
    description="Materializes yesterday's orders and daily sales every day (UTC).",
    hour_of_day=_HOUR,
    minute_of_hour=_MINUTE,
)

weekly_sales_schedule = build_schedule_from_partitioned_job(
    weekly_sales_job,
    name="weekly_sales_schedule",
    description="Materializes last week's sales every Monday at 02:00 UTC.",
    hour_of_day=2,
)


@asset_sensor(
    asset_key=AssetKey("raw_orders"),
    job=regional_orders_job,
    name="regional_orders_sensor",
    minimum_interval_seconds=30,
    description="When a day of raw_orders lands, materialize that day for every region.",
)
def regional_orders_sensor(
    context: SensorEvaluationContext, asset_event: EventLogEntry
) -> list[RunRequest]:
    """One run request per region for the day that was just materialized."""
    day = asset_event.dagster_event.partition if asset_event.dagster_event else None
    if day is None:
        return []
    return [
        RunRequest(
            run_key=f"{day}|{region}|{asset_event.timestamp}",
            partition_key=MultiPartitionKey({"date": day, "region": region}),
        )
        for region in data.REGIONS
    ]


JOBS = [daily_orders_job, weekly_sales_job, regional_orders_job]
SCHEDULES = [daily_orders_schedule, weekly_sales_schedule]
SENSORS = [regional_orders_sensor]
