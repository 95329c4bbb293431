"""Read a Delta table with another engine and print what it sees, as JSON.

    python read_table.py --engine duckdb|spark [--version N] [--history] TABLE_URI
    python read_table.py --serve      # JSON requests on stdin, one JSON answer per line
    python read_table.py --install-duckdb-extensions   # make `INSTALL delta` work offline

Serve mode also takes {"sql": [statements]}: Spark runs them in order (the tests build tables
the way Spark users do: CREATE TABLE, DELETE, ALTER TABLE, OPTIMIZE) and answers "rows" of the
last statement; a statement may name a table as delta.`s3://...`, read as s3a://. And
{"engine": "spark", "table": T, "changes_from": V} answers the table's change data feed from
version V ("rows" with _change_type and _commit_version). And {"build_table": spec} creates a
table with Delta's DeltaTableBuilder, for what Spark SQL cannot declare on a path (generated
and identity columns); see spark_build_table.

An answer holds "rows": the table's rows in a canonical text form (one JSON object per row, keys
sorted, timestamps as UTC ISO text with microseconds, dates as YYYY-MM-DD), sorted, so the Rust
tests can compare them exactly with what lakewriter wrote; "rows_per_date"; "checksum", the
SHA-256 of the sorted rows joined by newlines (independent of row and file order); for Spark
with --history, "history": DESCRIBE HISTORY's version, operation and userMetadata. Serve mode
keeps one Spark session for every request (the JVM takes seconds to start); a failed request
answers {"error": ...} and the server goes on.

Spark needs LAKEWRITER_SPARK_JARS: the jars of spark-jars.txt, comma-separated. With
AWS_ENDPOINT_URL set, Spark reads s3:// tables as s3a:// through that endpoint.
"""

import argparse
import datetime
import decimal
import glob
import hashlib
import importlib
import json
import os
import sys
import time

# Spark hands back timestamps in the process's time zone: make that UTC for every engine.
os.environ["TZ"] = "UTC"
time.tzset()


def canonical(value):
    # Nested values: a struct as an object (Spark's Row, DuckDB's dict), a list as an
    # array, a map as an object keyed by its keys' text (json.dumps sorts keys everywhere).
    if hasattr(value, "asDict"):
        value = value.asDict()
    if isinstance(value, dict):
        return {str(canonical(k)): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return value


def load_shipped_extension(con, package):
    """LOAD the extension file a duckdb-extension-* pip package ships: no download, offline."""
    module = importlib.import_module(package)
    folder = os.path.dirname(module.__file__)
    name = package.removeprefix("duckdb_extension_")
    (path,) = glob.glob(os.path.join(folder, "extensions", "*", f"{name}.duckdb_extension"))
    con.execute(f"LOAD '{path}'")


def duckdb_read(table, version):
    import duckdb

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    if table.startswith("s3://"):
        # S3 (or LocalStack): the same standard AWS variables lakewriter reads.
        load_shipped_extension(con, "duckdb_extension_httpfs")
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        secret = {
            "KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
            "SECRET": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            "REGION": os.environ.get("AWS_REGION", "us-east-1"),
        }
        options = [f"{key} '{value}'" for key, value in secret.items()]
        if endpoint:
            options.append(f"ENDPOINT '{endpoint.split('://', 1)[-1]}'")
            options.append("URL_STYLE 'path'")
            options.append(f"USE_SSL {str(endpoint.startswith('https://')).lower()}")
        con.execute(f"CREATE SECRET lakewriter_s3 (TYPE s3, {', '.join(options)})")
    load_shipped_extension(con, "duckdb_extension_delta")
    if version is None:
        cursor = con.execute("SELECT * FROM delta_scan(?)", [table])
    else:
        cursor = con.execute("SELECT * FROM delta_scan(?, version => ?)", [table, version])
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, record)) for record in cursor.fetchall()], None


_spark = None


def spark_session():
    global _spark
    if _spark is None:
        from pyspark.sql import SparkSession

        jars = os.environ.get("LAKEWRITER_SPARK_JARS")
        if not jars:
            raise RuntimeError("LAKEWRITER_SPARK_JARS is not set (scripts/test sets it)")
        builder = SparkSession.builder
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            # s3a:// through hadoop-aws, with the same standard AWS variables lakewriter reads.
            for key, value in {
                "fs.s3a.endpoint": endpoint,
                "fs.s3a.endpoint.region": os.environ.get("AWS_REGION", "us-east-1"),
                "fs.s3a.path.style.access": "true",
                "fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https://")).lower(),
                "fs.s3a.aws.credentials.provider": "software.amazon.awssdk.auth.credentials."
                "EnvironmentVariableCredentialsProvider",
            }.items():
                builder = builder.config(f"spark.hadoop.{key}", value)
        _spark = (
            builder.master("local[2]")
            .appName("lakewriter-readers")
            .config("spark.jars", jars)
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config(
                "spark.sql.catalog.spark_catalog",
                "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            )
            .config("spark.driver.memory", "1g")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.databricks.delta.snapshotPartitions", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
            .getOrCreate()
        )
        _spark.sparkContext.setLogLevel("ERROR")
    return _spark


def hadoop_path(table):
    return "s3a://" + table.removeprefix("s3://") if table.startswith("s3://") else table


def spark_read(table, version, history, changes_from=None):
    spark = spark_session()
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    if changes_from is not None:
        reader = reader.option("readChangeFeed", "true").option("startingVersion", changes_from)
    table = hadoop_path(table)
    rows = [row.asDict() for row in reader.load(table).collect()]
    commits = None
    if history:
        described = spark.sql(f"DESCRIBE HISTORY delta.`{table}`")
        commits = [
            {"version": r["version"], "operation": r["operation"], "userMetadata": r["userMetadata"]}
            for r in described.select("version", "operation", "userMetadata").collect()
        ]
    return rows, commits


def spark_sql(statements):
    """Runs Spark SQL statements in order; answers the last one's rows."""
    spark = spark_session()
    records = []
    for statement in statements:
        statement = statement.replace("delta.`s3://", "delta.`s3a://")
        records = [row.asDict() for row in spark.sql(statement).collect()]
    return {"rows": [json.dumps({c: canonical(v) for c, v in r.items()}, sort_keys=True) for r in records]}


def spark_build_table(spec):
    """Creates a table with Delta's DeltaTableBuilder (Spark SQL cannot declare generated or
    identity columns on a path). spec: location, columns [{name, type, generated?,
    identity?}], partitioned_by, properties."""
    spark = spark_session()
    jvm = spark.sparkContext._jvm
    tables = jvm.io.delta.tables.DeltaTable
    builder = tables.create(spark._jsparkSession).location(hadoop_path(spec["location"]))
    for column in spec["columns"]:
        field = tables.columnBuilder(spark._jsparkSession, column["name"]).dataType(column["type"])
        if "generated" in column:
            field = field.generatedAlwaysAs(column["generated"])
        if column.get("identity"):
            field = field.generatedAlwaysAsIdentity(1, 1)
        builder = builder.addColumn(field.build())
    partitions = spark.sparkContext._gateway.new_array(jvm.java.lang.String, len(spec["partitioned_by"]))
    for i, name in enumerate(spec["partitioned_by"]):
        partitions[i] = name
    builder = builder.partitionedBy(partitions)
    for key, value in spec.get("properties", {}).items():
        builder = builder.property(key, value)
    builder.execute()
    return {"rows": []}


def read(engine, table, version=None, history=False, partition_column="date", changes_from=None):
    if engine == "duckdb":
        records, commits = duckdb_read(table, version)
    elif engine == "spark":
        records, commits = spark_read(table, version, history, changes_from)
    else:
        raise ValueError(f"unknown engine {engine!r}")
    rows = sorted(
        json.dumps(
            {c: canonical(v) for c, v in record.items()},
            sort_keys=True,
            separators=(",", ":"),
        )
        for record in records
    )
    per_date = {}
    for record in records:
        key = canonical(record.get(partition_column))
        per_date[key] = per_date.get(key, 0) + 1
    answer = {
        "engine": engine,
        "rows": rows,
        "rows_per_date": dict(sorted(per_date.items())),
        "checksum": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
    }
    if commits is not None:
        answer["history"] = commits
    return answer


def install_duckdb_extensions():
    """INSTALL the shipped extension files into this HOME's DuckDB, so that a plain
    `INSTALL delta; LOAD delta` works offline, as the README's snippets do."""
    import duckdb

    con = duckdb.connect()
    for package in ("duckdb_extension_delta", "duckdb_extension_httpfs"):
        module = importlib.import_module(package)
        name = package.removeprefix("duckdb_extension_")
        pattern = os.path.join(os.path.dirname(module.__file__), "extensions", "*", f"{name}.duckdb_extension")
        (path,) = glob.glob(pattern)
        con.execute(f"INSTALL '{path}'")


def serve():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if "sql" in request:
                answer = spark_sql(request["sql"])
            elif "build_table" in request:
                answer = spark_build_table(request["build_table"])
            else:
                answer = read(
                    request["engine"],
                    request["table"],
                    request.get("version"),
                    request.get("history", False),
                    changes_from=request.get("changes_from"),
                )
        except Exception as error:  # an answer for every request, whatever went wrong
            answer = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--version", type=int)
    parser.add_argument("--history", action="store_true")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--install-duckdb-extensions", action="store_true")
    parser.add_argument("table", nargs="?")
    args = parser.parse_args()
    if args.install_duckdb_extensions:
        install_duckdb_extensions()
    elif args.serve:
        serve()
    elif args.table:
        json.dump(read(args.engine, args.table, args.version, args.history), sys.stdout)
    else:
        parser.error("name a TABLE_URI, or --serve")


if __name__ == "__main__":
    main()
