"""scripts/bench's driver: times lakewriter and its peers on the same generated data and writes
the results into BENCHMARKS.md (the block of the size that ran; other sizes stay as they were).

Each contender runs as a whole process under /usr/bin/time: one warm-up, then --runs timed
runs; the report gives the median wall time of the whole process, its ratio to lakewriter's,
the median in-process job time a contender reports (the peers exclude their start-up: Python
imports, the JVM), the median peak RSS and the raw rows per second. Every output is then read
back and compared day by day, every column, so a contender that did less work (kept the
wrong duplicate, dropped or mixed a day) is caught.

--s3 runs the same job from and to S3: the CSV day uploaded to LocalStack, which the driver
starts and stops itself, then lakewriter and pyarrow + deltalake each writing their own table
there from it.
"""

import argparse
import collections
import contextlib
import datetime
import gzip
import importlib.metadata
import math
import os
import pathlib
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIRST_DAY = datetime.date(2024, 1, 1)
# The bucket of --s3, created by scripts/localstack (localstack/init/ready.d/create-buckets.sh).
BUCKET = "lakewriter-test"


@dataclass(frozen=True)
class Dataset:
    label: str
    days: int
    rows_per_day: int

    @property
    def slug(self) -> str:
        return f"{self.days}d-{self.rows_per_day}r"

    @property
    def last_day(self) -> datetime.date:
        return FIRST_DAY + datetime.timedelta(days=self.days - 1)


SIZES = {
    "quick": [Dataset("300,000 rows over 3 days", 3, 100_000)],
    "day": [Dataset("1,000,000 rows in 1 day (64 MB of CSV)", 1, 1_000_000)],
    "full": [
        Dataset("20,000,010 rows over 30 days", 30, 666_667),
        Dataset("10,000,000 rows in 1 day", 1, 10_000_000),
    ],
}
# The peers (scripts/benchmark/peers.py): (name, description, whether it writes Delta).
PEER_DESCRIPTIONS = [
    ("deltalake", "pyarrow + deltalake.write_deltalake(predicate=...)", True),
    ("polars", "Polars + write_delta(predicate=...)", True),
    ("duckdb", "DuckDB COPY ... PARTITION_BY (Parquet, not Delta)", False),
    ("spark", "Spark + Delta replaceWhere, local[2] (RSS of the Python driver only, not the JVM)", True),
]
DEFAULT_CONTENDERS = ["lakewriter", "lakewriter-parquet", "limit", *(p[0] for p in PEER_DESCRIPTIONS),
                      "lakewriter-gzip", "duckdb-gzip"]
S3_CONTENDERS = ["lakewriter", "deltalake"]


@dataclass
class Contender:
    name: str
    description: str
    # A function, so that a command can depend on what an earlier contender wrote.
    command: Callable[[], list[str]]
    writes_delta: bool
    # Set on top of the driver's environment for the process (--s3: where S3 is).
    env: dict[str, str] | None = None


def lakewriter_write(args, dataset: Dataset) -> list[str]:
    """lakewriter's command for the dataset's scope, without --table and --input."""
    return [
        str(args.bin / "lakewriter"), "write", "--key", "order_id", "--order-by", "updated_at",
        "--from", str(FIRST_DAY), "--to", str(dataset.last_day), "--on-rerun", "replace",
        "--run-id", "bench",
    ]


def peer_write(name: str, inputs: str, table: str, dataset: Dataset) -> list[str]:
    """A peer's command (scripts/benchmark/peers.py) for the dataset's scope."""
    return [sys.executable, str(HERE / "peers.py"), name, inputs, table, str(FIRST_DAY),
            str(dataset.last_day)]


def contenders(args, data: pathlib.Path, tables: pathlib.Path, dataset: Dataset) -> list[Contender]:
    lakewriter = lakewriter_write(args, dataset)
    def limit() -> list[str]:
        from deltalake import DeltaTable

        written = tables / "lakewriter"
        if not (written / "_delta_log").exists():
            sys.exit("the limit encodes lakewriter's output: run the lakewriter contender first")
        uris = DeltaTable(str(written)).file_uris()
        files = [str(pathlib.Path(u.removeprefix("file://")).relative_to(written)) for u in uris]
        # Only the files of lakewriter's current version: the contenders take turns, so an
        # earlier run's encodings would be of files lakewriter has since replaced.
        shutil.rmtree(tables / "limit", ignore_errors=True)
        return [str(args.bin / "parquet_limit"), str(tables / "limit"), str(written), *files]

    every = {
        "lakewriter": Contender(
            "lakewriter", "lakewriter, CSV input",
            lambda: [*lakewriter, "--table", str(tables / "lakewriter"), "--input", f"{data}/csv/*.csv"],
            True),
        "lakewriter-parquet": Contender(
            "lakewriter-parquet", "lakewriter, Parquet input",
            lambda: [*lakewriter, "--table", str(tables / "lakewriter-parquet"),
                     "--input", f"{data}/parquet/*.parquet"],
            True),
        "limit": Contender(
            "limit",
            f"limit: ArrowWriter re-encoding lakewriter's own files from memory, {os.cpu_count()} "
            "threads (job: encoding only; whole process: also reading them)",
            limit, False),
    }
    for name, description, writes_delta in PEER_DESCRIPTIONS:
        command = peer_write(name, f"{data}/csv/*.csv", str(tables / name), dataset)
        every[name] = Contender(name, description, lambda command=command: command, writes_delta)
    # The same CSV files gzipped, as landing zones hold them, read by lakewriter and DuckDB.
    gzipped = lambda: f"{gzipped_csv(data)}/*.csv.gz"
    every["lakewriter-gzip"] = Contender(
        "lakewriter-gzip", "lakewriter, gzip CSV input (.csv.gz)",
        lambda: [*lakewriter, "--table", str(tables / "lakewriter-gzip"), "--input", gzipped()],
        True)
    every["duckdb-gzip"] = Contender(
        "duckdb-gzip", "DuckDB COPY ... PARTITION_BY from the gzip CSV (Parquet, not Delta)",
        lambda: peer_write("duckdb", gzipped(), str(tables / "duckdb-gzip"), dataset), False)
    return [every[name] for name in args.only]


def gzipped_csv(data: pathlib.Path) -> pathlib.Path:
    """The dataset's CSV files gzipped at gzip's default level (6), made once and cached."""
    folder = data / "csv-gz"
    if not (folder / ".complete").exists():
        folder.mkdir(exist_ok=True)
        for source in sorted((data / "csv").glob("*.csv")):
            with open(source, "rb") as plain, gzip.open(folder / f"{source.name}.gz", "wb", 6) as packed:
                shutil.copyfileobj(plain, packed, 1 << 20)
        (folder / ".complete").touch()
    return folder


def s3_contenders(args, inputs: str, tables: str, dataset: Dataset, env: dict[str, str]) -> list[Contender]:
    """--s3's contenders: lakewriter and pyarrow + deltalake, each from the `inputs` glob on S3
    into its own table under `tables` (an s3:// prefix), S3 reached through `env`."""
    lakewriter = [*lakewriter_write(args, dataset), "--table", f"{tables}/lakewriter", "--input", inputs]
    deltalake = peer_write("deltalake", inputs, f"{tables}/deltalake", dataset)
    every = {
        "lakewriter": Contender("lakewriter", "lakewriter, CSV input", lambda: lakewriter, True, env),
        "deltalake": Contender(
            "deltalake", "pyarrow (S3FileSystem) + deltalake.write_deltalake(predicate=...)",
            lambda: deltalake, True, env),
    }
    return [every[name] for name in args.only]


@dataclass
class Timing:
    seconds: float
    peak_rss_mib: float
    job_seconds: float | None


def run_once(command: list[str], env: dict[str, str] | None = None) -> Timing:
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "peak-rss-kib %M", *command],
        capture_output=True, text=True, env={**os.environ, **(env or {})},
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    peak = re.findall(r"peak-rss-kib (\d+)", done.stderr)[-1]
    job = re.search(r'"job_seconds": ([0-9.]+)', done.stdout)
    return Timing(seconds, int(peak) / 1024, float(job.group(1)) if job else None)


def digest(contender: Contender, table: pathlib.Path | str,
           storage_options: dict[str, str] | None = None) -> dict:
    """What the output holds, compared across contenders: per day, the row count and a sum of
    row hashes over every column, each in one canonical type (the contenders type the columns
    differently: a timestamp with or without a zone, a date or a string). A Delta table may be
    an s3:// URI, read with delta-rs's `storage_options`."""
    import duckdb

    connection = duckdb.connect()
    connection.sql("SET TimeZone = 'UTC'")
    if contender.writes_delta:
        from deltalake import DeltaTable

        delta = DeltaTable(str(table), storage_options=storage_options)
        rows = delta.to_pyarrow_dataset()  # noqa: F841 (read by DuckDB)
        source = "rows"
    else:
        source = f"read_parquet('{table}/**/*.parquet', hive_partitioning = true)"
    canonical = """CAST(order_id AS BIGINT), CAST(customer_id AS BIGINT), CAST(sku AS VARCHAR),
        CAST(quantity AS BIGINT), CAST(unit_price AS DOUBLE),
        epoch_us(CAST(updated_at AS TIMESTAMPTZ)), CAST(date AS DATE)"""
    per_day = connection.sql(
        f"""SELECT CAST(date AS DATE) AS day, count(*), sum(hash({canonical}))
            FROM {source} GROUP BY day ORDER BY day"""
    ).fetchall()
    return {str(day): (rows, hashed) for day, rows, hashed in per_day}


def machine() -> str:
    memory = next(
        line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")
    )
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores ({model}), {int(memory) / 1024 / 1024:.0f} GiB memory, {platform.system()} {platform.release()}"


def versions(args) -> str:
    lakewriter = subprocess.run(
        [str(args.bin / "lakewriter"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ["deltalake", "pyarrow", "polars", "duckdb", "pyspark"]
    )
    jars = (HERE.parent / "readers" / "spark-jars.txt").read_text().split()
    delta = next(j.split(":")[-1] for j in jars if "delta-spark" in j)
    lock = (ROOT / "Cargo.lock").read_text()

    def locked(crate: str) -> str:
        return re.search('name = "' + crate + '"\nversion = "([^"]+)"', lock).group(1)

    crates = ", ".join(f"{name} {locked(name)}" for name in ["deltalake-core", "arrow", "parquet", "datafusion"])
    return f"{lakewriter} ({crates}); Python {platform.python_version()}: {packages}; Delta Lake for Spark {delta}"


def generated(args, dataset: Dataset) -> pathlib.Path:
    """The dataset's raw files (csv/ and parquet/), generated once and cached."""
    data = args.work / "data" / dataset.slug
    if not (data / ".complete").exists():
        print(f"generating {dataset.label} into {data}", file=sys.stderr)
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), str(data), "--days", str(dataset.days),
             "--rows", str(dataset.rows_per_day), "--seed", str(args.seed)],
            check=True,
        )
        (data / ".complete").touch()
    return data


def measure(args, dataset: Dataset) -> list[str]:
    data = generated(args, dataset)
    tables = args.work / "tables" / dataset.slug
    shutil.rmtree(tables, ignore_errors=True)
    tables.mkdir(parents=True)
    checked = contenders(args, data, tables, dataset)
    results = time_contenders(args, dataset, checked)
    expected = same_outputs(dataset, {c.name: digest(c, tables / c.name) for c in checked})
    lines = results_table(dataset, checked, results, expected)
    writer = next((c for c in checked if c.name == "lakewriter"), None)
    return lines + (first_write(args, writer, tables) + identical_rerun(args, writer) if writer else [])


def first_write(args, writer: Contender, tables: pathlib.Path) -> list[str]:
    """lakewriter's CSV write into a new table (its types inferred), timed like the
    contenders; the table is removed before each run and its rows compared with the table the
    timed replacements left."""
    command = writer.command()
    table = tables / "lakewriter-first"
    command[command.index("--table") + 1] = str(table)
    timings = []
    for _ in range(args.runs):
        shutil.rmtree(table, ignore_errors=True)
        timings.append(run_once(command))
    replaced = digest(writer, tables / "lakewriter")
    if digest(writer, table) != replaced:
        sys.exit("lakewriter's first write holds other rows than its replacements")
    seconds, rss = medians(timings)
    return [
        f"lakewriter's CSV write into a new table (the first write: column types inferred), whole "
        f"process: median {seconds:.2f} s, peak RSS {rss:.0f} MiB; same rows as above.",
        "",
    ]


def identical_rerun(args, writer: Contender) -> list[str]:
    """lakewriter's CSV write run again on its own table with `--on-rerun auto`: the same input
    and run id, so it is skipped (checked), timed like the contenders."""
    command = writer.command()
    command[command.index("--on-rerun") + 1] = "auto"
    done = subprocess.run([*command, "--output", "json"], capture_output=True, text=True)
    if '"status":"skipped"' not in done.stdout:
        sys.exit(f"the identical rerun was not skipped: {done.stdout}{done.stderr}")
    seconds, rss = medians([run_once(command) for _ in range(args.runs)])
    return [
        f"An identical rerun of lakewriter's CSV write (`--on-rerun auto`, skipped before any row "
        f"is parsed), whole process: median {seconds:.3f} s, peak RSS {rss:.0f} MiB.",
        "",
    ]


def medians(timings: list["Timing"]) -> tuple[float, float]:
    """The median wall time (s) and peak RSS (MiB) of some runs."""
    return (statistics.median(t.seconds for t in timings),
            statistics.median(t.peak_rss_mib for t in timings))


def time_contenders(args, dataset: Dataset, checked: list[Contender]) -> dict[str, list[Timing]]:
    """Each contender's --runs timed runs, after a warm-up that for the Delta writers also
    creates the table. The runs take turns (every contender once, then again), so that a slow
    spell of this machine falls on all of them rather than on whichever ran through it. Spark,
    which takes a minute where the others take seconds, has its runs after the turns, so that
    each turn of the others is over in seconds."""
    for contender in checked:
        print(f"{dataset.label}: {contender.name} (warm-up)", file=sys.stderr, flush=True)
        run_once(contender.command(), contender.env)
    results = {contender.name: [] for contender in checked}
    turns = [c for c in checked if c.name != "spark"]
    rounds = [turns] * args.runs + [[c for c in checked if c.name == "spark"]] * args.runs
    for turn, contenders in enumerate(rounds):
        print(f"{dataset.label}: timed round {turn + 1} of {len(rounds)}", file=sys.stderr, flush=True)
        for contender in contenders:
            # The last contender's written files reach the disk first, not during this run.
            os.sync()
            results[contender.name].append(run_once(contender.command(), contender.env))
    return results


def same_outputs(dataset: Dataset, digests: dict[str, dict]) -> dict:
    """The digest every contender's output has, or an exit naming the first that differs."""
    first_name, expected = next(iter(digests.items()))
    for name, held in digests.items():
        if held != expected:
            differing = sorted(d for d in set(held) | set(expected) if held.get(d) != expected.get(d))
            sys.exit(f"{name}'s output differs from {first_name}'s on {differing}: {held} vs {expected}")
    if len(expected) != dataset.days:
        sys.exit(f"the outputs hold {len(expected)} days, not {dataset.days}: {expected}")
    return expected


def results_table(dataset: Dataset, checked: list[Contender], results: dict[str, list[Timing]],
                  expected: dict) -> list[str]:
    """The report's table of the contenders' medians, and what their outputs were checked for."""
    raw_rows = dataset.days * dataset.rows_per_day

    def median(name: str, field: str) -> float | None:
        values = [getattr(t, field) for t in results[name]]
        return None if values[0] is None else statistics.median(values)

    reference = median("lakewriter", "seconds") if "lakewriter" in results else None
    lines = [
        f"#### {dataset.label}",
        "",
        "| contender | whole process, median (s) | ÷ lakewriter | its job alone, median (s) "
        "| median peak RSS (MiB) | raw rows/s (whole process) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for contender in checked:
        seconds = median(contender.name, "seconds")
        job = median(contender.name, "job_seconds")
        job_text = f"{job:.2f}" if job is not None else "= whole (native, no start-up)"
        ratio = f"{seconds / reference:.2f}" if reference else "-"
        rss = median(contender.name, "peak_rss_mib")
        lines.append(
            f"| {contender.description} | {seconds:.2f} | {ratio} | {job_text} | {rss:.0f} "
            f"| {raw_rows / seconds:,.0f} |"
        )
    lines.append("")
    total = sum(rows for rows, _ in expected.values())
    lines.append(
        f"Every output holds the same {total:,} rows over {len(expected)} days: per day, the row "
        f"count and a hash of every column compared."
    )
    lines.append("")
    return lines


def build_history(args, days: int) -> tuple[pathlib.Path, list[list[str]]]:
    """A table of `days` one-row days written by many small runs, as a daily job leaves it.
    Returns the table and each run's arguments. Cached: building 10,000 days takes minutes."""
    base = args.work / "rerun" / f"{days}d"
    table, inputs = base / "table", base / "input"
    per_run = max(1, days // 1000)  # at most 1,000 commits, so the build stays minutes
    runs = []
    for start in range(0, days, per_run):
        scope = [FIRST_DAY + datetime.timedelta(days=d) for d in range(start, min(start + per_run, days))]
        files = [inputs / f"{day}.csv" for day in scope]
        arguments = ["--from", str(scope[0]), "--to", str(scope[-1]), "--key", "order_id"]
        for file in files:
            arguments += ["--input", str(file)]
        runs.append(arguments)
    if (base / ".complete").exists():
        return table, runs
    print(f"building a table of {days} days in {len(runs)} commits", file=sys.stderr, flush=True)
    shutil.rmtree(base, ignore_errors=True)
    inputs.mkdir(parents=True)
    for index in range(days):
        day = FIRST_DAY + datetime.timedelta(days=index)
        (inputs / f"{day}.csv").write_text(f"order_id,quantity,date\n{index},1,{day}\n")
    for arguments in runs:
        write(args, table, arguments, expect="committed")
    (base / ".complete").touch()
    return table, runs


def write(args, table: pathlib.Path, arguments: list[str], expect: str, prefix=()) -> None:
    done = subprocess.run(
        [*prefix, str(args.bin / "lakewriter"), "write", "--table", str(table), "--output", "json",
         *arguments],
        capture_output=True, text=True,
    )
    if f'"status":"{expect}"' not in done.stdout:
        sys.exit(f"expected {expect}: {done.stdout}{done.stderr}")


def timed(command: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of `runs` runs after a warm-up."""
    results = [run_once(command()) for _ in range(runs + 1)][1:]
    return (statistics.median(r.seconds for r in results),
            statistics.median(r.peak_rss_mib for r in results))


def data_files_opened(args, table: pathlib.Path, arguments: list[str]) -> int:
    """Data files of the table a skipped rerun opens, counted with strace."""
    trace = table.parent / "trace.txt"
    write(args, table, arguments, expect="skipped",
          prefix=["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(trace)])
    opened = re.findall(r'openat\([^"]*"([^"]+)"', trace.read_text())
    return sum(1 for path in opened
               if path.startswith(str(table)) and path.endswith(".parquet") and "_delta_log" not in path)


def rerun_cost(args) -> list[str]:
    lines = [
        "| days in the table | commits | identical rerun, skipped (s) | its peak RSS (MiB) | "
        "data files it opens | replacing one day (s) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for days in args.days:
        table, runs = build_history(args, days)
        last = runs[-1]
        skipped, rss = timed(lambda: [str(args.bin / "lakewriter"), "write", "--table", str(table), *last],
                             args.runs)
        opened = data_files_opened(args, table, last)
        # Replace one day in the middle with alternating contents, so that every run commits.
        middle = FIRST_DAY + datetime.timedelta(days=days // 2)
        variants = []
        for quantity in (2, 3):
            path = table.parent / f"replace-{quantity}.csv"
            path.write_text(f"order_id,quantity,date\n{days // 2},{quantity},{middle}\n")
            variants.append(path)
        turn = iter(range(10**6))
        replace, _ = timed(
            lambda: [str(args.bin / "lakewriter"), "write", "--table", str(table), "--date", str(middle),
                     "--key", "order_id", "--input", str(variants[next(turn) % 2])],
            args.runs,
        )
        lines.append(f"| {days:,} | {len(runs):,} | {skipped:.3f} | {rss:.0f} | {opened} | {replace:.3f} |")
    return [
        f"Measured {datetime.date.today()} with `scripts/bench --rerun-cost`, {args.runs} runs after a "
        f"warm-up each, whole `lakewriter write` processes on a local table, on {machine()}.",
        "",
        *lines,
        "",
    ]


def active_files(table: pathlib.Path) -> list[str]:
    from deltalake import DeltaTable

    return [u.removeprefix("file://") for u in DeltaTable(str(table)).file_uris()]


def query_day(table: pathlib.Path, runs: int) -> tuple[float, tuple]:
    """Median seconds of a DuckDB aggregate over the table's active files (what a reader of the
    day opens), and its answer."""
    import duckdb

    files = active_files(table)
    query = f"SELECT count(*), sum(quantity), max(updated_at)::VARCHAR FROM read_parquet({files!r})"
    seconds, answer = [], None
    for _ in range(runs + 1):
        con = duckdb.connect()
        started = time.perf_counter()
        answer = con.execute(query).fetchone()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:]), answer


def optimize_cost(args) -> list[str]:
    """A day written by --merges hourly merges of an hour's new orders, then `lakewriter
    optimize`: files before and after, a DuckDB query over the day's files before and after
    (same answer checked), and the optimize's time and peak RSS. (A merge that also updates
    earlier orders rewrites the files holding them: with an update in every hour, the day
    stays one file, and there is nothing to compact.)"""
    base = args.work / "optimize"
    shutil.rmtree(base, ignore_errors=True)
    inputs, table = base / "input", base / "table"
    inputs.mkdir(parents=True)
    day = FIRST_DAY
    per_hour = args.merge_rows
    print(f"writing one day by {args.merges} merges", file=sys.stderr, flush=True)
    for hour in range(args.merges):
        at = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(minutes=7 * hour)
        lines = ["order_id,quantity,updated_at,date"]
        lines += [f"{i},{hour + 1},{at.isoformat()}Z,{day}"
                  for i in range(hour * per_hour, (hour + 1) * per_hour)]
        path = inputs / f"{hour:03}.csv"
        path.write_text("\n".join(lines) + "\n")
        write(args, table, ["--date", str(day), "--key", "order_id", "--order-by", "updated_at",
                            "--mode", "merge", "--run-id", f"hour-{hour}", "--input", str(path)],
              expect="committed")
    files_before = len(active_files(table))
    query_before, answer_before = query_day(table, args.runs)
    optimized = run_once([str(args.bin / "lakewriter"), "optimize", "--table", str(table)])
    files_after = len(active_files(table))
    query_after, answer_after = query_day(table, args.runs)
    if answer_after != answer_before:
        sys.exit(f"optimize changed the day: {answer_before} before, {answer_after} after")
    return [
        f"Measured {datetime.date.today()} with `scripts/bench --optimize`, on {machine()}: one day "
        f"written by {args.merges} `--mode merge` runs of {per_hour:,} new orders each, then one "
        f"`lakewriter optimize` (whole process). The DuckDB query is "
        f"`count(*), sum, max` over the day's active files, median of {args.runs} after a warm-up; "
        f"its answer before and after is checked equal.",
        "",
        "| | data files of the day | DuckDB query on the day (s) |",
        "|---|---:|---:|",
        f"| before | {files_before:,} | {query_before:.3f} |",
        f"| after | {files_after:,} | {query_after:.3f} |",
        "",
        f"`lakewriter optimize`: {optimized.seconds:.2f} s, peak RSS {optimized.peak_rss_mib:.0f} MiB "
        f"({answer_after[0]:,} rows).",
        "",
    ]


def memory_scaling(args) -> list[str]:
    """lakewriter's wall time and peak RSS on one day of each of --rows rows, with and without
    deduplication, under --memory-limit: RSS should follow the limit, not the input."""
    lines = [
        "| rows in the day | CSV (MB) | dedup | wall (s) | peak RSS (MiB) | data files written |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for rows in args.rows:
        data = generated(args, Dataset(f"{rows:,} rows in 1 day", 1, rows))
        csv_mb = sum(f.stat().st_size for f in (data / "csv").glob("*.csv")) / 1e6
        for dedup in (True, False):
            table = args.work / "tables" / "memory" / f"{rows}-{'dedup' if dedup else 'all'}"
            shutil.rmtree(table, ignore_errors=True)
            arguments = ["--input", f"{data}/csv/*.csv", "--date", str(FIRST_DAY), "--on-rerun", "replace",
                         "--memory-limit", args.memory_limit]
            if dedup:
                arguments += ["--key", "order_id", "--order-by", "updated_at"]
            command = [str(args.bin / "lakewriter"), "write", "--table", str(table), *arguments]
            seconds, rss = timed(lambda: command, args.runs)
            report = subprocess.run([*command, "--output", "json"], capture_output=True, text=True, check=True)
            files = re.search(r'"files_added":(\d+)', report.stdout).group(1)
            lines.append(f"| {rows:,} | {csv_mb:,.0f} | {'yes' if dedup else 'no'} | {seconds:.2f} | {rss:.0f} | {files} |")
    return [
        f"Measured {datetime.date.today()} with `scripts/bench --memory --memory-limit {args.memory_limit}`, "
        f"{args.runs} runs after a warm-up each, on {machine()}.",
        "",
        *lines,
        "",
    ]


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables that point lakewriter, delta-rs and pyarrow at LocalStack, as
    the integration tests set them (tests/integration/support/lake.rs); also delta-rs's storage
    options when the driver reads the tables back."""
    return {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
    }


def measure_s3(args, dataset: Dataset, env: dict[str, str]) -> list[str]:
    """The dataset's CSV files uploaded to the bucket, then lakewriter and deltalake timed from
    them into tables in the bucket and their outputs compared."""
    from pyarrow import fs

    from peers import s3_filesystem

    data = generated(args, dataset)
    inputs = f"{BUCKET}/inputs/{dataset.slug}"
    print(f"uploading {data}/csv to s3://{inputs}", file=sys.stderr, flush=True)
    fs.copy_files(str(data / "csv"), inputs, source_filesystem=fs.LocalFileSystem(),
                  destination_filesystem=s3_filesystem(env))
    # LocalStack starts empty (no persistence), so the tables do not exist before the warm-up.
    tables = f"s3://{BUCKET}/bench/{dataset.slug}"
    checked = s3_contenders(args, f"s3://{inputs}/*.csv", tables, dataset, env)
    results = time_contenders(args, dataset, checked)
    expected = same_outputs(dataset, {c.name: digest(c, f"{tables}/{c.name}", env) for c in checked})
    return results_table(dataset, checked, results, expected)


@contextlib.contextmanager
def localstack(args):
    """LocalStack started under --work for a measurement, its endpoint given, and stopped after
    it, also when the measurement fails."""
    command, state = str(ROOT / "scripts" / "localstack"), str(args.work / "localstack")
    endpoint = subprocess.run(
        [command, "start", state], stdout=subprocess.PIPE, text=True, check=True,
        env={**os.environ, "LAKEWRITER_TEST_BUCKETS": BUCKET},
    ).stdout.strip()
    try:
        yield endpoint
    finally:
        subprocess.run([command, "stop", state], check=True)


def s3_bench(args) -> list[str]:
    """--s3: the datasets from and to S3 on LocalStack."""
    with localstack(args) as endpoint:
        lines = [
            f"Measured {datetime.date.today()} with `scripts/bench --s3 --size {args.size}`, {args.runs} "
            f"runs after a warm-up, on {machine()}, against LocalStack {localstack_version()} (S3 "
            "only, over HTTP on 127.0.0.1) on the same machine: it shares the cores with the contender.",
            f"Versions: {versions(args)}.",
            "",
        ]
        for dataset in SIZES[args.size]:
            lines += measure_s3(args, dataset, s3_env(endpoint))
        return lines


@dataclass
class CommitRun:
    """One `lakewriter write` of the commit-ceiling bench: its wall time from start to exit,
    exit code and the races its report counts."""
    seconds: float
    exit_code: int
    lost_races: int


def commit_writer(args, table: str, days: list[datetime.date], inputs: pathlib.Path,
                  env: dict[str, str], start: threading.Barrier, runs: list[CommitRun]) -> None:
    """One writer process after another for `days`, in order, once every writer is ready."""
    start.wait()
    for day in days:
        started = time.perf_counter()
        done = subprocess.run(
            [str(args.bin / "lakewriter"), "write", "--table", table, "--date", str(day),
             "--input", str(inputs / f"{day}.csv"), "--output", "json"],
            capture_output=True, text=True, env={**os.environ, **env},
        )
        report = re.search(r'"lost_races":(\d+)', done.stdout)
        if done.returncode == 0 and '"status":"committed"' not in done.stdout:
            sys.exit(f"expected a commit of {day}: {done.stdout}")
        runs.append(CommitRun(time.perf_counter() - started, done.returncode,
                              int(report.group(1)) if report else 0))


def commit_ceiling(args) -> list[str]:
    """--commits: W writer processes at once, each writing its own one-row days into one table
    on LocalStack, --commit-count commits in all per W; the table is checked afterwards."""
    inputs = args.work / "commits" / "inputs"
    days = [FIRST_DAY + datetime.timedelta(days=i) for i in range(args.commit_count + 1)]
    inputs.mkdir(parents=True, exist_ok=True)
    for index, day in enumerate(days):
        (inputs / f"{day}.csv").write_text(f"order_id,quantity,date\n{index},1,{day}\n")
    lines = [
        f"Measured {datetime.date.today()} with `scripts/bench --commits --writers "
        f"{','.join(map(str, args.writers))} --commit-count {args.commit_count}`, on {machine()}, "
        f"against LocalStack {localstack_version()} on the same machine (it shares the cores with "
        "the writers). Each writer is a loop of `lakewriter write` processes, one per one-row day of "
        "its own; all writers start at once on a table that holds one day.",
        f"Versions: {versions(args)}.",
        "",
        "| writers | commits | wall (s) | commits/s | lost races per commit: mean, max | "
        "start to commit, p50 (s) | p99 (s) | exit codes |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    with localstack(args) as endpoint:
        env = s3_env(endpoint)
        for writers in args.writers:
            table = f"s3://{BUCKET}/commits/{writers}-writers"
            first = subprocess.run(
                [str(args.bin / "lakewriter"), "write", "--table", table, "--date", str(days[0]),
                 "--input", str(inputs / f"{days[0]}.csv")],
                capture_output=True, text=True, env={**os.environ, **env},
            )
            if first.returncode != 0:
                sys.exit(f"creating {table} failed: {first.stderr}")
            print(f"commit ceiling: {writers} writers", file=sys.stderr, flush=True)
            runs: list[CommitRun] = []
            start = threading.Barrier(writers + 1)
            threads = [
                threading.Thread(target=commit_writer,
                                 args=(args, table, days[1 + w::writers], inputs, env, start, runs))
                for w in range(writers)
            ]
            for thread in threads:
                thread.start()
            start.wait()
            began = time.perf_counter()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - began
            committed = [r for r in runs if r.exit_code == 0]
            check_commit_ceiling_table(args, table, env, 1 + len(committed))
            codes = collections.Counter(r.exit_code for r in runs)
            seconds = sorted(r.seconds for r in committed)
            races = [r.lost_races for r in committed]
            lines.append(
                f"| {writers} | {len(committed)} | {wall:.1f} | {len(committed) / wall:.1f} | "
                f"{statistics.mean(races):.2f}, {max(races)} | {quantile(seconds, 0.5):.2f} | "
                f"{quantile(seconds, 0.99):.2f} | "
                f"{', '.join(f'{code}: {count}' for code, count in sorted(codes.items()))} |"
            )
    return [*lines, ""]


def check_commit_ceiling_table(args, table: str, env: dict[str, str], days: int) -> None:
    """Every committed day is in the table once: `lakewriter runs` lists that many runs and
    the table holds one row per day."""
    listed = subprocess.run(
        [str(args.bin / "lakewriter"), "runs", "--table", table, "--output", "json"],
        capture_output=True, text=True, env={**os.environ, **env}, check=True,
    ).stdout
    runs = listed.count('"run_id"')
    from deltalake import DeltaTable

    rows = DeltaTable(table, storage_options=env).to_pyarrow_table().num_rows
    if runs != days or rows != days:
        sys.exit(f"{table}: expected {days} days of one row, found {runs} runs and {rows} rows")


def quantile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted values."""
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def localstack_version() -> str:
    """The LocalStack version scripts/localstack installs (localstack/requirements.txt)."""
    pins = (ROOT / "localstack" / "requirements.txt").read_text()
    return re.search(r"^localstack-core\S*==(\S+)", pins, flags=re.M).group(1)


def write_report(args, lines: list[str]) -> None:
    report = ROOT / "BENCHMARKS.md"
    text = report.read_text() if report.exists() else "# Benchmarks\n"
    name = ("rerun-cost" if args.rerun_cost else "memory" if args.memory else "s3" if args.s3
            else "optimize" if args.optimize else "commits" if args.commits else args.size)
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = "\n".join([start, *lines, end])
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    report.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, help="default: quick, or day with --s3")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", type=lambda s: s.split(","), default=None,
                        help=f"comma-separated contenders (default: {','.join(DEFAULT_CONTENDERS)}; "
                        f"with --s3, {','.join(S3_CONTENDERS)})")
    parser.add_argument("--bin", type=pathlib.Path, required=True, help="the release build's folder")
    parser.add_argument("--work", type=pathlib.Path, required=True, help="data and tables go here")
    parser.add_argument("--no-report", action="store_true", help="print only; leave BENCHMARKS.md")
    parser.add_argument("--rerun-cost", action="store_true",
                        help="measure reruns on tables of --days days instead of the contenders")
    parser.add_argument("--days", type=lambda s: [int(d) for d in s.split(",")], default=[10, 1000, 10000])
    parser.add_argument("--memory", action="store_true",
                        help="measure lakewriter's peak memory on one day of each of --rows rows")
    parser.add_argument("--rows", type=lambda s: [int(r) for r in s.split(",")],
                        default=[2_000_000, 4_000_000, 8_000_000])
    parser.add_argument("--memory-limit", default="512MiB", help="lakewriter's --memory-limit for --memory")
    parser.add_argument("--s3", action="store_true",
                        help="lakewriter and deltalake from and to S3 on LocalStack (started here)")
    parser.add_argument("--optimize", action="store_true",
                        help="a day written by --merges merges, then lakewriter optimize")
    parser.add_argument("--merges", type=int, default=200)
    parser.add_argument("--merge-rows", type=int, default=1000)
    parser.add_argument("--commits", action="store_true",
                        help="the commit ceiling: --writers concurrent writers on LocalStack")
    parser.add_argument("--writers", type=lambda s: [int(w) for w in s.split(",")], default=[1, 4, 16, 32])
    parser.add_argument("--commit-count", type=int, default=128, help="commits per number of writers")
    args = parser.parse_args()
    args.only = args.only or (S3_CONTENDERS if args.s3 else DEFAULT_CONTENDERS)
    args.size = args.size or ("day" if args.s3 else "quick")
    if args.rerun_cost or args.memory or args.s3 or args.optimize or args.commits:
        mode = (rerun_cost if args.rerun_cost else memory_scaling if args.memory
                else s3_bench if args.s3 else optimize_cost if args.optimize else commit_ceiling)
        lines = mode(args)
        print("\n".join(lines))
        if not args.no_report:
            write_report(args, lines)
        return
    lines = [
        f"Measured {datetime.date.today()} with `scripts/bench --size {args.size}`, {args.runs} runs "
        f"after a warm-up, the contenders taking turns, on {machine()}.",
        f"Versions: {versions(args)}.",
        "",
    ]
    for dataset in SIZES[args.size]:
        lines += measure(args, dataset)
    print("\n".join(lines))
    if not args.no_report:
        write_report(args, lines)


if __name__ == "__main__":
    main()
