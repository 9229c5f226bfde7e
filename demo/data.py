"""A small, deterministic online-shop data set: customers and the orders of one day.

Everything is generated from a seed derived from the partition key (no downloads, no clock),
so re-materializing a partition always produces the same rows.
"""

import datetime as dt
import functools
import random
from dataclasses import dataclass

import polars as pl
from dagster import TableColumn, TableSchema

CUSTOMER_COUNT = 600
BASE_ORDERS_PER_DAY = 2_000
REGIONS = ("americas", "emea", "apac")
COUNTRIES: dict[str, str] = {
    "US": "americas",
    "CA": "americas",
    "BR": "americas",
    "MX": "americas",
    "DE": "emea",
    "FR": "emea",
    "GB": "emea",
    "ES": "emea",
    "JP": "apac",
    "AU": "apac",
    "IN": "apac",
    "SG": "apac",
}
# Approximate exchange rates from USD, fixed so the data stays deterministic.
REGION_CURRENCY: dict[str, tuple[str, float]] = {
    "americas": ("USD", 1.0),
    "emea": ("EUR", 0.92),
    "apac": ("JPY", 151.0),
}


@dataclass(frozen=True)
class Product:
    """One catalogue entry."""

    sku: str
    name: str
    category: str
    unit_price: float


CATALOGUE = (
    Product("BK-001", "Dagster in Practice", "books", 39.0),
    Product("BK-002", "Columnar Storage Explained", "books", 29.5),
    Product("EL-001", "USB-C Hub", "electronics", 49.9),
    Product("EL-002", "Noise-cancelling Headphones", "electronics", 199.0),
    Product("EL-003", "Mechanical Keyboard", "electronics", 129.0),
    Product("HM-001", "Coffee Grinder", "home", 89.0),
    Product("HM-002", "Desk Lamp", "home", 34.9),
    Product("SP-001", "Yoga Mat", "sports", 25.0),
    Product("SP-002", "Running Shoes", "sports", 119.0),
    Product("TY-001", "Puzzle 1000 pieces", "toys", 19.9),
)

ORDER_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "order_id": (pl.String(), "Unique order id: date and sequence number"),
    "order_ts": (pl.Datetime("us", "UTC"), "When the order was placed (UTC)"),
    "customer_id": (pl.Int32(), "Customer who placed the order"),
    "country": (pl.String(), "ISO country code of the customer"),
    "region": (pl.String(), "Sales region: americas, emea or apac"),
    "sku": (pl.String(), "Product SKU"),
    "category": (pl.String(), "Product category"),
    "quantity": (pl.Int16(), "Units ordered"),
    "unit_price": (pl.Float64(), "List price per unit (USD)"),
    "discount": (pl.Float64(), "Discount rate applied, 0 to 0.3"),
    "amount": (pl.Float64(), "Order total after discount (USD)"),
    "order_date": (pl.Date(), "Day of the order (hive partition column)"),
}
CUSTOMER_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "customer_id": (pl.Int32(), "Customer id"),
    "name": (pl.String(), "Display name"),
    "segment": (pl.String(), "consumer or business"),
    "signup_date": (pl.Date(), "Day the customer signed up"),
    "region": (pl.String(), "Sales region of the country"),
    "country": (pl.String(), "ISO country code (hive partition column)"),
}


def table_schema(columns: dict[str, tuple[pl.DataType, str]]) -> TableSchema:
    """A Dagster column schema (shown in the UI's Definition tab) from a column table."""
    return TableSchema(
        columns=[
            TableColumn(name, str(dtype), description=text)
            for name, (dtype, text) in columns.items()
        ]
    )


@functools.cache
def customers() -> pl.DataFrame:
    """The customer dimension: CUSTOMER_COUNT customers spread over COUNTRIES."""
    rng = random.Random("customers-v1")
    countries = list(COUNTRIES)
    rows = []
    for customer_id in range(1, CUSTOMER_COUNT + 1):
        country = rng.choice(countries)
        rows.append(
            {
                "customer_id": customer_id,
                "name": f"Customer {customer_id:04d}",
                "segment": "business" if rng.random() < 0.2 else "consumer",
                "signup_date": dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(730)),
                "region": COUNTRIES[country],
                "country": country,
            }
        )
    return pl.DataFrame(rows, schema={name: dtype for name, (dtype, _) in CUSTOMER_COLUMNS.items()})


def orders_for_day(day: dt.date) -> pl.DataFrame:
    """All orders placed on `day`: a few thousand rows, identical on every call."""
    rng = random.Random(f"orders-{day.isoformat()}")
    weekend_boost = 1.3 if day.weekday() >= 5 else 1.0
    count = int(BASE_ORDERS_PER_DAY * weekend_boost) + rng.randrange(500)
    people = customers()
    countries = people["country"].to_list()
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    columns: dict[str, list[object]] = {name: [] for name in ORDER_COLUMNS}
    for sequence in range(count):
        customer = rng.randrange(CUSTOMER_COUNT)
        product = rng.choice(CATALOGUE)
        quantity = 1 + int(rng.expovariate(0.8))
        discount = rng.choice((0.0, 0.0, 0.0, 0.05, 0.1, 0.2, 0.3))
        row = {
            "order_id": f"{day:%Y%m%d}-{sequence:05d}",
            "order_ts": midnight + dt.timedelta(seconds=rng.randrange(86_400)),
            "customer_id": customer + 1,
            "country": countries[customer],
            "region": COUNTRIES[countries[customer]],
            "sku": product.sku,
            "category": product.category,
            "quantity": quantity,
            "unit_price": product.unit_price,
            "discount": discount,
            "amount": round(quantity * product.unit_price * (1 - discount), 2),
            "order_date": day,
        }
        for name, value in row.items():
            columns[name].append(value)
    schema = {name: dtype for name, (dtype, _) in ORDER_COLUMNS.items()}
    return pl.DataFrame(columns, schema=schema).sort("order_ts")


def orders_for_days(days: list[dt.date]) -> pl.DataFrame:
    """Orders of several days (a multi-partition backfill run), in day order."""
    return pl.concat([orders_for_day(day) for day in sorted(days)])
