"""An Airflow DAG that writes each day of its data interval, or of a backfill range, into a
Delta table with lakewriter: one mapped `lakewriter write` task per day (dynamic task mapping).

Retries are safe: a rerun of a day whose input did not change is skipped without a commit, and a
changed input replaces the day in one commit. Only failures a retry can cure are retried: bad
input (exit 2) and a refused rerun (exit 3) fail the task at once, for a person to fix.

Configure with environment variables on the workers (or edit the defaults below):
  LAKEWRITER_BIN        the lakewriter binary (default: lakewriter on PATH)
  LAKEWRITER_TABLE      the table, e.g. s3://lake/sales
  LAKEWRITER_INPUT      the input of one day, {date} standing for it (YYYY-MM-DD)
  LAKEWRITER_ARGS       more options for every write, e.g. "--key order_id --order-by updated_at"
S3 credentials and LAKEWRITER_NOTIFY_URL come from the worker's environment (a Secret, a
connection exported by your deployment); lakewriter never logs them.

Trigger with params {"from": "2024-01-01", "to": "2024-03-31"} to backfill a range; without
them the run writes the days of its data interval.
"""

import datetime
import json
import os
import shlex
import subprocess

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

BIN = os.environ.get("LAKEWRITER_BIN", "lakewriter")
TABLE = os.environ.get("LAKEWRITER_TABLE", "s3://lake/sales")
INPUT = os.environ.get("LAKEWRITER_INPUT", "s3://landing/sales/{date}/*.csv")
ARGS = shlex.split(os.environ.get("LAKEWRITER_ARGS", ""))
# Exit codes a retry cannot cure (lakewriter's README lists them all).
NEEDS_A_PERSON = {2: "bad input or usage", 3: "rerun refused by --on-rerun fail"}


@dag(
    dag_id="lakewriter_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    # Days of one run commit to the same table at once; the Delta log serialises them.
    max_active_tasks=8,
    params={
        "from": Param(None, type=["null", "string"], format="date", description="first day of a backfill"),
        "to": Param(None, type=["null", "string"], format="date", description="last day of a backfill"),
    },
    tags=["lakewriter"],
)
def lakewriter_daily():
    @task
    def days() -> list[str]:
        """The days to write: the params' range, else the data interval's days."""
        context = get_current_context()
        params = context["params"]
        if params.get("from") and params.get("to"):
            first = datetime.date.fromisoformat(params["from"])
            last = datetime.date.fromisoformat(params["to"])
        else:
            first = context["data_interval_start"].date()
            # The interval's end is exclusive: a daily run covers one day.
            last = max(first, (context["data_interval_end"] - datetime.timedelta(microseconds=1)).date())
        return [str(first + datetime.timedelta(days=n)) for n in range((last - first).days + 1)]

    @task(retries=3, retry_delay=datetime.timedelta(minutes=1), retry_exponential_backoff=True)
    def write(day: str) -> dict:
        """One day: its report (status, version, rows, fingerprint) becomes the task's XCom."""
        command = [BIN, "write", "--table", TABLE, "--date", day,
                   "--input", INPUT.replace("{date}", day), "--output", "json", *ARGS]
        done = subprocess.run(command, capture_output=True, text=True)
        print(done.stderr, end="")
        if done.returncode in NEEDS_A_PERSON:
            raise AirflowFailException(f"{day}: {NEEDS_A_PERSON[done.returncode]}: {done.stderr.strip()}")
        if done.returncode != 0:
            raise RuntimeError(f"{day}: lakewriter exited {done.returncode}; retrying: {done.stderr.strip()}")
        return json.loads(done.stdout)

    write.expand(day=days())


lakewriter_daily()
