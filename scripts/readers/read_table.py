"""Read a Delta table with another engine and print what it sees, as one JSON document.

    python read_table.py --engine duckdb TABLE_URI

Prints {"engine", "rows", "rows_per_date", "checksum"}: "rows" are the table's rows in a
canonical text form (one JSON object per row, keys sorted, timestamps in UTC ISO form with
microseconds, dates as YYYY-MM-DD), sorted, so that the Rust tests can compare them exactly
with what lakewriter wrote. "checksum" is the SHA-256 of the sorted rows joined by newlines:
it does not depend on row or file order.
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


def canonical(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def load_shipped_extension(con, package):
    """LOAD the extension file a duckdb-extension-* pip package ships: no download, offline."""
    module = importlib.import_module(package)
    folder = os.path.dirname(module.__file__)
    name = package.removeprefix("duckdb_extension_")
    (path,) = glob.glob(os.path.join(folder, "extensions", "*", f"{name}.duckdb_extension"))
    con.execute(f"LOAD '{path}'")


def duckdb_rows(table):
    import duckdb

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    if table.startswith("s3://"):
        # S3 (or LocalStack): the same standard AWS variables lakewriter reads.
        load_shipped_extension(con, "duckdb_extension_httpfs")
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        secret = {
            "TYPE": "s3",
            "KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
            "SECRET": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            "REGION": os.environ.get("AWS_REGION", "us-east-1"),
        }
        if endpoint:
            secret["ENDPOINT"] = endpoint.split("://", 1)[-1]
            secret["URL_STYLE"] = "path"
            secret["USE_SSL"] = str(endpoint.startswith("https://")).lower()
        options = ", ".join(
            f"{key} {value}" if key in ("TYPE", "USE_SSL") else f"{key} '{value}'"
            for key, value in secret.items()
        )
        con.execute(f"CREATE SECRET lakewriter_s3 ({options})")
    load_shipped_extension(con, "duckdb_extension_delta")
    cursor = con.execute("SELECT * FROM delta_scan(?)", [table])
    columns = [d[0] for d in cursor.description]
    return columns, cursor.fetchall()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["duckdb"], default="duckdb")
    parser.add_argument("--partition-column", default="date")
    parser.add_argument("table")
    args = parser.parse_args()

    columns, records = duckdb_rows(args.table)
    rows = sorted(
        json.dumps(
            {c: canonical(v) for c, v in zip(columns, record)},
            sort_keys=True,
            separators=(",", ":"),
        )
        for record in records
    )
    per_date = {}
    index = columns.index(args.partition_column)
    for record in records:
        key = canonical(record[index])
        per_date[key] = per_date.get(key, 0) + 1
    json.dump(
        {
            "engine": args.engine,
            "rows": rows,
            "rows_per_date": dict(sorted(per_date.items())),
            "checksum": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
