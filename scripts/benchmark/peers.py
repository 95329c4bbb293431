"""The peers scripts/bench compares lakewriter with, each doing lakewriter's job the way a user
of that tool would write it: read the scope's raw CSV files, keep the latest row of each
order_id, and write a date-partitioned table replacing the scope's days.

    python peers.py deltalake|polars|duckdb|spark INPUT_GLOB TABLE FROM TO

Prints the job's own time as JSON (`job_seconds`): from after the peer's start-up (Python
imports; for Spark also the JVM and its session) to the end of the write, so that the bench
can show start-up beside the whole process's time.
"""

import glob
import importlib
import json
import os
import sys
import time


def predicate(first: str, last: str) -> str:
    return f"date >= '{first}' AND date <= '{last}'"


def deltalake_pyarrow(files: list[str], table: str, first: str, last: str) -> None:
    """pyarrow reads and deduplicates; deltalake.write_deltalake replaces the days."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    from deltalake import write_deltalake

    data = pa.concat_tables(pacsv.read_csv(f) for f in files)
    data = data.sort_by([("order_id", "ascending"), ("updated_at", "descending")])
    ids = data["order_id"].combine_chunks()
    first_of_key = pc.not_equal(ids[1:], ids[:-1])
    keep = pa.concat_arrays([pa.array([True]), first_of_key])
    write_deltalake(
        table,
        data.filter(keep),
        mode="overwrite",
        partition_by=["date"],
        predicate=predicate(first, last),
    )


def polars(files: list[str], table: str, first: str, last: str) -> None:
    """Polars reads lazily, keeps the latest row per key and writes with write_delta."""
    import polars as pl

    data = (
        pl.scan_csv(files, try_parse_dates=True)
        .sort("updated_at")
        .unique(subset=["order_id"], keep="last", maintain_order=False)
        .collect()
    )
    data.write_delta(
        table,
        mode="overwrite",
        delta_write_options={"partition_by": ["date"], "predicate": predicate(first, last)},
    )


def duckdb_copy(files: list[str], table: str, first: str, last: str) -> None:
    """DuckDB's partitioned Parquet COPY: no Delta log, no atomic replacement."""
    import duckdb

    listing = ", ".join(f"'{f}'" for f in files)
    duckdb.sql(
        f"""
        COPY (
            SELECT * FROM read_csv([{listing}])
            QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY updated_at DESC) = 1
        ) TO '{table}' (FORMAT parquet, PARTITION_BY (date), OVERWRITE_OR_IGNORE)
        """
    )


def spark_session():
    """Spark's start-up: the JVM and a session with Delta Lake."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.jars", os.environ["LAKEWRITER_SPARK_JARS"])
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark(files: list[str], table: str, first: str, last: str, session) -> None:
    """Spark with Delta Lake: a window keeps the latest row, replaceWhere replaces the days."""
    from pyspark.sql import Window, functions as F

    data = session.read.csv(files, header=True, inferSchema=True)
    latest = Window.partitionBy("order_id").orderBy(F.col("updated_at").desc())
    (
        data.withColumn("date", F.to_date("date"))
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .drop("_rank")
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate(first, last))
        .partitionBy("date")
        .save(table)
    )


PEERS = {
    "deltalake": deltalake_pyarrow,
    "polars": polars,
    "duckdb": duckdb_copy,
    "spark": spark,
}
# What each peer loads before its job starts: start-up, not the job.
START_UP = {
    "deltalake": ["pyarrow", "pyarrow.compute", "pyarrow.csv", "deltalake"],
    "polars": ["polars"],
    "duckdb": ["duckdb"],
    "spark": ["pyspark.sql"],
}

if __name__ == "__main__":
    name, pattern, table, first, last = sys.argv[1:]
    for module in START_UP[name]:
        importlib.import_module(module)
    extra = [spark_session()] if name == "spark" else []
    started = time.perf_counter()
    PEERS[name](sorted(glob.glob(pattern)), table, first, last, *extra)
    print(json.dumps({"job_seconds": round(time.perf_counter() - started, 3)}))
    for session in extra:
        session.stop()
