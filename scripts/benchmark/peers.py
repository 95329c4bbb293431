"""The peers scripts/bench compares lakewriter with, each doing lakewriter's job the way a user
of that tool would write it: read the scope's raw CSV files, keep the latest row of each
order_id, and write a date-partitioned table replacing the scope's days.

    python peers.py deltalake|polars|duckdb|spark INPUT_GLOB TABLE FROM TO

The deltalake peer also takes an s3://bucket/... INPUT_GLOB and TABLE (scripts/bench --s3),
reaching S3 through the standard AWS_* environment (S3_ENV), as lakewriter does.

Prints the job's own time as JSON (`job_seconds`): from after the peer's start-up (Python
imports; for Spark also the JVM and its session) to the end of the write, so that the bench
can show start-up beside the whole process's time.
"""

import fnmatch
import glob
import importlib
import json
import os
import sys
import time


# What reaches S3: pyarrow's filesystem for the input and delta-rs's storage options for the
# table are both built from these (lakewriter reads the same variables itself).
S3_ENV = ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP"]


def predicate(first: str, last: str) -> str:
    return f"date >= '{first}' AND date <= '{last}'"


def s3_filesystem(environ=os.environ):
    """pyarrow's S3 filesystem for the endpoint and credentials in `environ`'s AWS_* variables."""
    from pyarrow import fs

    scheme, _, host = environ["AWS_ENDPOINT_URL"].partition("://")
    return fs.S3FileSystem(
        endpoint_override=host, scheme=scheme, region=environ["AWS_REGION"],
        access_key=environ["AWS_ACCESS_KEY_ID"], secret_key=environ["AWS_SECRET_ACCESS_KEY"],
    )


def expand(pattern: str) -> list[str]:
    """The files a glob names, sorted: local paths, or s3:// URIs listed through pyarrow (the
    glob only in the last part of the key)."""
    if not pattern.startswith("s3://"):
        return sorted(glob.glob(pattern))
    from pyarrow import fs

    folder, _, name = pattern.removeprefix("s3://").rpartition("/")
    listed = s3_filesystem().get_file_info(fs.FileSelector(folder))
    return sorted(f"s3://{info.path}" for info in listed if fnmatch.fnmatch(info.base_name, name))


def read_csv(file: str):
    """One CSV file as a pyarrow table, from a local path or an s3:// URI."""
    import pyarrow.csv as pacsv

    if not file.startswith("s3://"):
        return pacsv.read_csv(file)
    with s3_filesystem().open_input_stream(file.removeprefix("s3://")) as stream:
        return pacsv.read_csv(stream)


def storage_options(table: str) -> dict[str, str] | None:
    """delta-rs's options for an s3:// table, from S3_ENV. No locking options: delta-rs, like
    lakewriter, commits with S3's conditional put by default."""
    return {key: os.environ[key] for key in S3_ENV} if table.startswith("s3://") else None


def deltalake_pyarrow(files: list[str], table: str, first: str, last: str) -> None:
    """pyarrow reads and deduplicates; deltalake.write_deltalake replaces the days."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import write_deltalake

    data = pa.concat_tables(read_csv(f) for f in files)
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
        storage_options=storage_options(table),
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
    "deltalake": ["pyarrow", "pyarrow.compute", "pyarrow.csv", "pyarrow.fs", "deltalake"],
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
    PEERS[name](expand(pattern), table, first, last, *extra)
    print(json.dumps({"job_seconds": round(time.perf_counter() - started, 3)}))
    for session in extra:
        session.stop()
