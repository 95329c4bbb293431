#!/usr/bin/env sh
# Rows per day of a lakewriter table, with the DuckDB CLI.   usage: duckdb-cli.sh TABLE
# For an s3:// table, set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
# (and AWS_ENDPOINT_URL for an S3-compatible store such as LocalStack).
set -eu
secret=""
case "$1" in
s3://*)
    endpoint="${AWS_ENDPOINT_URL:-}"
    secret="INSTALL httpfs; LOAD httpfs;
CREATE SECRET (TYPE s3, KEY_ID '${AWS_ACCESS_KEY_ID}', SECRET '${AWS_SECRET_ACCESS_KEY}',
  REGION '${AWS_REGION:-us-east-1}'${endpoint:+, ENDPOINT '${endpoint#*://}', URL_STYLE 'path', USE_SSL false});"
    ;;
esac
duckdb -list -noheader -separator ' ' <<SQL
.output /dev/null
INSTALL delta; LOAD delta;
$secret
.output
SELECT date, count(*) AS rows FROM delta_scan('$1') GROUP BY date ORDER BY date;
SQL
