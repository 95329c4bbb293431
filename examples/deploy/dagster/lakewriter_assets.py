"""A Dagster daily-partitioned asset that writes each partition into a Delta table with
lakewriter: the partition key is the `--date`, and lakewriter's JSON report becomes the
materialization's metadata (status, version, rows, run id, fingerprint, the whole report).

Materialising a partition again is safe: an unchanged input is skipped without a commit (the
metadata says "skipped" and the version stays), a changed one replaces the day in one commit.
A backfill of many partitions runs them as independent writes; the Delta log orders the commits.

Configure with environment variables (or edit the defaults below):
  LAKEWRITER_BIN        the lakewriter binary (default: lakewriter on PATH)
  LAKEWRITER_TABLE      the table, e.g. s3://lake/sales
  LAKEWRITER_INPUT      the input of one day, {date} standing for it (YYYY-MM-DD)
  LAKEWRITER_ARGS       more options for every write, e.g. "--key order_id --order-by updated_at"
  LAKEWRITER_START      the first partition (default 2024-01-01)
S3 credentials and LAKEWRITER_NOTIFY_URL come from the environment; lakewriter never logs them.
"""

import json
import os
import shlex
import subprocess

import dagster as dg

BIN = os.environ.get("LAKEWRITER_BIN", "lakewriter")
TABLE = os.environ.get("LAKEWRITER_TABLE", "s3://lake/sales")
INPUT = os.environ.get("LAKEWRITER_INPUT", "s3://landing/sales/{date}/*.csv")
ARGS = shlex.split(os.environ.get("LAKEWRITER_ARGS", ""))
# Exit codes a retry cannot cure (lakewriter's README lists them all).
NEEDS_A_PERSON = {2: "bad input or usage", 3: "rerun refused by --on-rerun fail"}

daily = dg.DailyPartitionsDefinition(start_date=os.environ.get("LAKEWRITER_START", "2024-01-01"))


@dg.asset(
    partitions_def=daily,
    retry_policy=dg.RetryPolicy(max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL),
    kinds={"delta"},
)
def sales(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """One day of the table, written by `lakewriter write --date <partition key>`."""
    day = context.partition_key
    command = [BIN, "write", "--table", TABLE, "--date", day,
               "--input", INPUT.replace("{date}", day), "--output", "json", *ARGS]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.stderr:
        context.log.info(done.stderr)
    if done.returncode != 0:
        reason = NEEDS_A_PERSON.get(done.returncode, f"lakewriter exited {done.returncode}")
        raise dg.Failure(
            description=f"{day}: {reason}: {done.stderr.strip()}",
            metadata={"exit_code": done.returncode},
            allow_retries=done.returncode not in NEEDS_A_PERSON,
        )
    report = json.loads(done.stdout)
    return dg.MaterializeResult(
        metadata={
            "status": report["status"],
            "version": report["version"],
            "rows_written": report["rows_written"],
            "run_id": report["run_id"],
            "fingerprint": report["fingerprint"],
            "report": dg.MetadataValue.json(report),
        }
    )


defs = dg.Definitions(assets=[sales])
