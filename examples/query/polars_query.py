"""Rows per day of a lakewriter table, with Polars.   usage: polars_query.py TABLE

For s3:// tables, Polars (through delta-rs) reads the standard AWS_* variables; for an
S3-compatible endpoint over http also set AWS_ALLOW_HTTP=true.
"""
import sys

import polars as pl

per_day = pl.read_delta(sys.argv[1]).group_by("date").len().sort("date")
for day, rows in per_day.iter_rows():
    print(day, rows)
