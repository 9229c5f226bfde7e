"""A local pyspark session for interop tests, and the conversions that compare it with polars.

Spark runs in local mode in one JVM that pyspark starts as a child process (`spark-submit`,
then `java`): bound to 127.0.0.1, no UI, small memory, session time zone UTC. The JVM exits
when its stdin closes, so the fixture closes it and waits for that process by its own handle.
"""

import datetime as dt
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
from pyspark import SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as spark_functions
from pyspark.sql import types as spark_types

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
JVM_EXIT_SECONDS = 30


@contextmanager
def local_spark(directory: Path) -> Iterator[SparkSession]:
    """One local Spark session whose scratch files live in `directory`; stopped on exit."""
    if _java_binary() is None:
        raise RuntimeError(
            "Spark needs Java 17 but no `java` is on PATH (nor in $JAVA_HOME): run "
            "`bash scripts/install_java.sh` (installs Debian's openjdk-17-jre-headless)"
        )
    session: SparkSession | None = None
    try:
        session = _build_session(directory)
        yield session
    finally:
        if session is not None:
            session.stop()
        # also when the session failed to start after its JVM was launched
        _stop_gateway()


def read_hive(
    spark: SparkSession, root: str, partition_types: Mapping[str, spark_types.DataType]
) -> DataFrame:
    """Read a hive dataset as a Spark user does, typing the named partition columns explicitly.

    Spark infers the data columns from the files; a user-given schema must list every column,
    so the inferred schema is taken and only the partition columns' types are replaced.
    """
    reader = spark.read.option("basePath", root)
    if not partition_types:
        return reader.parquet(root)
    inferred = reader.parquet(root).schema
    missing = set(partition_types) - set(inferred.fieldNames())
    assert not missing, f"Spark found no partition column(s) {missing} under {root}"
    schema = spark_types.StructType(
        [
            spark_types.StructField(field.name, partition_types.get(field.name, field.dataType))
            for field in inferred.fields
        ]
    )
    return spark.read.schema(schema).option("basePath", root).parquet(root)


def spark_rows(frame: DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, instants (TIMESTAMP) as UTC-aware datetimes, in a canonical order."""
    instants = {
        field.name
        for field in frame.schema.fields
        if isinstance(field.dataType, spark_types.TimestampType)
    }
    # unix_micros: the instant itself, whatever the session or Python process time zone
    columns = [
        spark_functions.unix_micros(name).alias(name) if name in instants else name
        for name in sorted(frame.columns)
    ]
    rows = [
        {
            name: _instant(value) if name in instants else value
            for name, value in row.asDict().items()
        }
        for row in frame.select(columns).collect()
    ]
    return _canonical(rows)


def polars_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, time-zone-aware datetimes as UTC-aware datetimes, in a canonical order."""
    utc = frame.select(
        pl.col(name).dt.convert_time_zone("UTC") if _is_aware(frame.schema[name]) else pl.col(name)
        for name in sorted(frame.columns)
    )
    rows = [
        {name: _as_utc(value) for name, value in row.items()} for row in utc.iter_rows(named=True)
    ]
    return _canonical(rows)


def spark_types_of(frame: DataFrame) -> dict[str, spark_types.DataType]:
    """Column name to Spark type."""
    return {field.name: field.dataType for field in frame.schema.fields}


def expected_spark_types(schema: pl.Schema) -> dict[str, spark_types.DataType]:
    """The Spark type each polars column type must arrive as."""
    return {name: _spark_type(dtype) for name, dtype in schema.items()}


def _spark_type(dtype: pl.DataType) -> spark_types.DataType:
    if isinstance(dtype, pl.Datetime):
        # TIMESTAMP is an instant; TIMESTAMP_NTZ a wall-clock time, like naive polars Datetime
        aware = dtype.time_zone is not None
        return spark_types.TimestampType() if aware else spark_types.TimestampNTZType()
    simple: dict[pl.DataType, spark_types.DataType] = {
        pl.String(): spark_types.StringType(),
        pl.Int64(): spark_types.LongType(),
        pl.Int32(): spark_types.IntegerType(),
        pl.Float64(): spark_types.DoubleType(),
        pl.Boolean(): spark_types.BooleanType(),
        pl.Date(): spark_types.DateType(),
    }
    return simple[dtype]


def _canonical(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: repr(sorted(row.items())))


def _as_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def _is_aware(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Datetime) and dtype.time_zone is not None


def _instant(micros: int | None) -> dt.datetime | None:
    return None if micros is None else EPOCH + dt.timedelta(microseconds=micros)


def _java_binary() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home, "bin", "java")
        return str(candidate) if candidate.exists() else None
    return shutil.which("java")


def _build_session(directory: Path) -> SparkSession:
    previous = os.environ.get("SPARK_LOCAL_IP")
    # read by spark-submit at launch: without it Spark resolves the host name and binds
    # to the machine's external address before the driver settings below apply
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    try:
        session = (
            SparkSession.builder.master("local[1]")
            .appName("pq-io-manager-interop")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.memory", "512m")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "1")
            # C1 only and one GC thread: ~30% less CPU for a short-lived JVM on a small machine
            .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
            .config("spark.local.dir", str(directory / "local"))
            .config("spark.sql.warehouse.dir", str(directory / "warehouse"))
            .getOrCreate()
        )
    finally:
        if previous is None:
            del os.environ["SPARK_LOCAL_IP"]
        else:
            os.environ["SPARK_LOCAL_IP"] = previous
    session.sparkContext.setLogLevel("ERROR")
    return session


def _stop_gateway() -> None:
    gateway: Any = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    process = getattr(gateway, "proc", None)
    if process is not None:
        # the JVM's gateway server exits when its stdin reaches EOF
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=JVM_EXIT_SECONDS)
    SparkContext._gateway = None
    SparkContext._jvm = None
