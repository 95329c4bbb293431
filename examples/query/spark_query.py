"""Rows per day of a lakewriter table, with PySpark and Delta Lake.   usage: spark_query.py TABLE

Spark 4.0.x reads Delta with the delta-spark_2.13 and delta-storage 4.0.x jars: pass their
paths, comma-separated, in DELTA_JARS (or use spark.jars.packages with network access).
"""
import os
import sys

from pyspark.sql import SparkSession

spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.jars", os.environ["DELTA_JARS"])
    .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
    .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
per_day = spark.read.format("delta").load(sys.argv[1]).groupBy("date").count().orderBy("date")
for row in per_day.collect():
    print(row["date"], row["count"])
