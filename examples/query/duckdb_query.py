"""Rows per day of a lakewriter table, with DuckDB in Python.   usage: duckdb_query.py TABLE"""
import os
import sys

import duckdb

table = sys.argv[1]
con = duckdb.connect()
con.execute("INSTALL delta; LOAD delta")
if table.startswith("s3://"):
    con.execute("INSTALL httpfs; LOAD httpfs")
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    con.execute(
        "CREATE SECRET (TYPE s3, KEY_ID ?, SECRET ?, REGION ?"
        + (", ENDPOINT ?, URL_STYLE 'path', USE_SSL false" if endpoint else "")
        + ")",
        [os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
         os.environ.get("AWS_REGION", "us-east-1")] + ([endpoint.split("://")[-1]] if endpoint else []),
    )
query = "SELECT date, count(*) FROM delta_scan(?) GROUP BY date ORDER BY date"
for day, rows in con.execute(query, [table]).fetchall():
    print(day, rows)
