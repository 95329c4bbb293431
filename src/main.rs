//! The `lakewriter` command: parse arguments, call the library, print, map errors to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lakewriter::{
    Backfill, DayOutcome, ErrorKind, History, InputFormat, NotificationStatus, PartitionScope,
    RerunPolicy, RunStatus, Runs, Vacuum, WriteJob, WriteMode, WriteReport,
};

/// The exit codes, documented in the README and in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// Committed, skipped or planned.
    Done = 0,
    /// Storage, a damaged table, anything else.
    Other = 1,
    /// Bad input or usage, or a table feature lakewriter does not write.
    BadInput = 2,
    /// `--on-rerun fail` refused.
    RerunRefused = 3,
    /// Other writers kept winning, or changed the table meanwhile.
    Conflict = 4,
    /// Some days of a backfill failed.
    DaysFailed = 5,
    /// The commit stands; its notification is pending.
    NotificationPending = 6,
}

impl Exit {
    /// The exit code of an error: every kind is mapped here, so a new kind cannot silently
    /// exit 1.
    fn of(error: &lakewriter::Error) -> Self {
        match error.kind() {
            // A table feature lakewriter does not write is, like bad input, fixed by a person
            // (the table or the call), never by a retry.
            ErrorKind::BadInput | ErrorKind::UnsupportedTable => Exit::BadInput,
            ErrorKind::RerunRefused => Exit::RerunRefused,
            ErrorKind::Conflict => Exit::Conflict,
            ErrorKind::Other => Exit::Other,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

#[derive(Parser)]
#[command(
    name = "lakewriter",
    version,
    about = "Idempotent, date-partitioned writes into Delta Lake tables",
    after_help = "Exit codes: 0 committed, skipped or planned; 1 other error (storage, damaged \
                  table); 2 bad input or usage (a row breaking a table constraint too), or a \
                  table feature lakewriter does not write; 3 rerun refused by --on-rerun fail; \
                  4 commit conflict that retries could not resolve; 5 some days of a backfill failed \
                  (the others ran; rerun the backfill); 6 the commit stands but its notification \
                  is pending (the next run sends it)."
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replace the date partitions of a scope with the input's rows, in one commit.
    Write(WriteArgs),
    /// Write a range of days, each day as its own run reading its own inputs ({date} in
    /// --input); started again, it skips the days already written with the same input.
    Backfill(BackfillArgs),
    /// List, per partition, the run that last wrote it.
    Runs(RunsArgs),
    /// Show the commits the table's log still holds, newest first.
    History(HistoryArgs),
    /// Delete data files no retained version references (removed ones, and files left by
    /// crashed runs).
    Vacuum(VacuumArgs),
}

#[derive(Args)]
struct TableArgs {
    /// The table: a folder path, file:// URL or s3://bucket/prefix. Created on first write.
    #[arg(long)]
    table: String,
    /// An object-store option KEY=VALUE (e.g. aws_endpoint=http://..., allow_http=true).
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    storage_options: Vec<(String, String)>,
    /// text for people, json for programs (one JSON document on stdout).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

impl TableArgs {
    /// Gives `builder` every `--storage-option`, through its `add` (`storage_option`).
    fn with_storage_options<B>(&self, builder: B, add: impl Fn(B, String, String) -> B) -> B {
        self.storage_options
            .iter()
            .cloned()
            .fold(builder, |builder, (key, value)| add(builder, key, value))
    }
}

#[derive(Args)]
struct WriteArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The only day of the scope (YYYY-MM-DD).
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present_all = ["from", "to"])]
    date: Option<String>,
    /// First day of the scope, inclusive (YYYY-MM-DD).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Last day of the scope, inclusive (YYYY-MM-DD).
    #[arg(long, requires = "from")]
    to: Option<String>,
}

#[derive(Args)]
struct BackfillArgs {
    #[command(flatten)]
    job: JobArgs,
    /// First day, inclusive (YYYY-MM-DD).
    #[arg(long)]
    from: String,
    /// Last day, inclusive (YYYY-MM-DD).
    #[arg(long)]
    to: String,
    /// Days run at once; they share --memory-limit.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
}

/// What a write and each day of a backfill are made of.
#[derive(Args)]
struct JobArgs {
    #[command(flatten)]
    table: TableArgs,
    /// Input file, glob or URI (repeatable). Format from the extension: .csv, .json/.jsonl,
    /// .parquet. In a backfill, {date} or {date:FORMAT} (strftime) stands for each day.
    #[arg(long = "input", required = true)]
    inputs: Vec<String>,
    /// Input format, when extensions do not tell.
    #[arg(long, value_parser = parse_format)]
    format: Option<InputFormat>,
    /// The table's DATE partition column.
    #[arg(long, default_value = "date")]
    partition_column: String,
    /// Derive the partition column from this date or timestamp column (UTC day).
    #[arg(long)]
    partition_from: Option<String>,
    /// Deduplicate: one row per key (comma-separated columns).
    #[arg(long, value_delimiter = ',')]
    key: Vec<String>,
    /// Among rows with the same key, keep the one with the largest value here.
    #[arg(long, requires = "key")]
    order_by: Option<String>,
    /// Name of the run; default derived from the scope and the input fingerprint. In a
    /// backfill, {date} stands for each day.
    #[arg(long)]
    run_id: Option<String>,
    /// auto: skip identical reruns, replace otherwise; skip: skip if this run id wrote the
    /// scope; replace: always rewrite; fail: refuse if another run wrote a partition in scope.
    #[arg(long, default_value = "auto", value_parser = parse_policy)]
    on_rerun: RerunPolicy,
    /// replace: the scope's days become exactly the input's rows. merge: upsert by --key,
    /// updating the rows whose key (and date) the input holds and inserting the others.
    #[arg(long, default_value = "replace", value_parser = parse_mode)]
    mode: WriteMode,
    /// Print what would happen (skip or replace, files to remove) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Memory the run's rows may take, e.g. 512MiB or 4GiB; larger input spills to files in
    /// TMPDIR and is written a part at a time.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size, env = "LAKEWRITER_MEMORY_LIMIT")]
    memory_limit: u64,
    /// POST a JSON event announcing each commit to this URL, with an Idempotency-Key header
    /// (set LAKEWRITER_NOTIFY_URL instead to keep a secret URL out of the process list).
    #[arg(
        long,
        value_name = "URL",
        env = "LAKEWRITER_NOTIFY_URL",
        hide_env_values = true
    )]
    notify_url: Option<String>,
    /// Run this shell command for each commit, with the JSON event on stdin and
    /// LAKEWRITER_IDEMPOTENCY_KEY set; exit status 0 means delivered.
    #[arg(long, value_name = "COMMAND")]
    notify_command: Option<String>,
}

impl JobArgs {
    fn job(&self, scope: PartitionScope) -> WriteJob {
        let mut job = WriteJob::new(&self.table.table, scope)
            .partition_column(&self.partition_column)
            .key(self.key.iter().map(|k| k.trim()))
            .on_rerun(self.on_rerun)
            .mode(self.mode)
            .dry_run(self.dry_run)
            .memory_limit(self.memory_limit);
        for input in &self.inputs {
            job = job.input(input);
        }
        job = self
            .table
            .with_storage_options(job, WriteJob::storage_option);
        if let Some(format) = self.format {
            job = job.format(format);
        }
        if let Some(column) = &self.partition_from {
            job = job.partition_from(column);
        }
        if let Some(column) = &self.order_by {
            job = job.order_by(column);
        }
        if let Some(run_id) = &self.run_id {
            job = job.run_id(run_id);
        }
        if let Some(url) = &self.notify_url {
            job = job.notify_url(url);
        }
        if let Some(command) = &self.notify_command {
            job = job.notify_command(command);
        }
        job
    }
}

#[derive(Args)]
struct RunsArgs {
    #[command(flatten)]
    table: TableArgs,
    /// The table's DATE partition column.
    #[arg(long, default_value = "date")]
    partition_column: String,
}

#[derive(Args)]
struct HistoryArgs {
    #[command(flatten)]
    table: TableArgs,
    /// Show at most this many commits.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Args)]
struct VacuumArgs {
    #[command(flatten)]
    table: TableArgs,
    /// Keep files that versions of the last N hours reference (time travel stays possible
    /// that far back), and unreferenced files younger than that (a running writer's).
    #[arg(long, default_value_t = 168)]
    retain_hours: u64,
    /// Allow a retention below the table's delta.deletedFileRetentionDuration.
    #[arg(long)]
    force: bool,
    /// List the files that would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

fn parse_format(text: &str) -> Result<InputFormat, String> {
    text.parse().map_err(|e: lakewriter::Error| e.to_string())
}

/// A size such as `512MiB`, `4GiB`, `2G` or a plain number of bytes (binary units: K, M, G
/// and T are powers of 1024, with or without `iB`/`B`). Twelve lines do not warrant a crate.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "'{text}' is not a size: write it like 512MiB or 4GiB"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| format!("'{text}' is not a size: write it like 512MiB or 4GiB"))
}

fn parse_mode(text: &str) -> Result<WriteMode, String> {
    text.parse().map_err(|e: lakewriter::Error| e.to_string())
}

fn parse_policy(text: &str) -> Result<RerunPolicy, String> {
    text.parse().map_err(|e: lakewriter::Error| e.to_string())
}

// mimalloc keeps freed memory for reuse where glibc's malloc returns large blocks to the
// system at once; each run allocates a few copies of its whole input, and faulting fresh pages
// in was a large share of a run's time in the profile (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Other.into();
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("error: {error}");
            Exit::of(&error).into()
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,deltalake_core::operations::merge=error",
        1 => "lakewriter=info,warn",
        _ => "lakewriter=debug,deltalake=info,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs a command and returns its exit code: 0, or one that says part of the work is left
/// (failed backfill days, a pending notification).
async fn run(command: Command) -> lakewriter::Result<Exit> {
    match command {
        Command::Write(args) => write(args).await,
        Command::Backfill(args) => backfill(args).await,
        Command::Runs(args) => {
            let runs = Runs::new(&args.table.table).partition_column(&args.partition_column);
            let runs = args
                .table
                .with_storage_options(runs, Runs::storage_option)
                .run()
                .await?;
            print(args.table.output, &runs, |runs| {
                let mut text = String::from(
                    "date        run id                              version  rows  committed at\n",
                );
                for run in runs {
                    text.push_str(&format!(
                        "{:<11} {:<35} {:>7} {:>5}  {}\n",
                        run.date,
                        run.run_id
                            .as_deref()
                            .unwrap_or("<not written by lakewriter>"),
                        run.version.map(|v| v.to_string()).unwrap_or_default(),
                        run.rows.map(|r| r.to_string()).unwrap_or_default(),
                        run.committed_at.as_deref().unwrap_or_default(),
                    ));
                }
                text
            });
            Ok(Exit::Done)
        }
        Command::Vacuum(args) => {
            let vacuum = Vacuum::new(&args.table.table)
                .retain_hours(args.retain_hours)
                .force(args.force)
                .dry_run(args.dry_run);
            let report = args
                .table
                .with_storage_options(vacuum, Vacuum::storage_option)
                .run()
                .await?;
            print(args.table.output, &report, |report| {
                let verb = if report.dry_run {
                    "would delete"
                } else {
                    "deleted"
                };
                let mut text = format!("{verb} {} files\n", report.files.len());
                for file in &report.files {
                    text.push_str(&format!("  {file}\n"));
                }
                text
            });
            Ok(Exit::Done)
        }
        Command::History(args) => {
            let history = History::new(&args.table.table).limit(args.limit);
            let commits = args
                .table
                .with_storage_options(history, History::storage_option)
                .run()
                .await?;
            print(args.table.output, &commits, |commits| {
                let mut text = String::new();
                for c in commits {
                    text.push_str(&format!(
                        "version {:>5}  {}  {}\n",
                        c.version
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "?".into()),
                        c.operation.as_deref().unwrap_or("?"),
                        c.user_metadata.as_deref().unwrap_or(""),
                    ));
                }
                text
            });
            Ok(Exit::Done)
        }
    }
}

/// Runs one write and prints its report. Returns the exit code.
async fn write(args: WriteArgs) -> lakewriter::Result<Exit> {
    let scope = match (&args.date, &args.from, &args.to) {
        (Some(day), _, _) => PartitionScope::parse(day, day)?,
        (None, Some(from), Some(to)) => PartitionScope::parse(from, to)?,
        _ => unreachable!("clap requires --date or --from with --to"),
    };
    let job = args.job.job(scope);
    let output = args.job.table.output;
    let progress = progress_bar(
        output,
        ProgressBar::new_spinner(),
        "{spinner} {pos} input files read {wide_msg}",
    );
    let result = job
        .run_with_progress(|file| {
            progress.inc(1);
            progress.set_message(file.to_string());
        })
        .await;
    progress.finish_and_clear();
    let report = result?;
    print(output, &report, describe);
    Ok(
        if report.notification == Some(NotificationStatus::Pending) {
            Exit::NotificationPending
        } else {
            Exit::Done
        },
    )
}

/// Runs a backfill and prints one line (or JSON object) per day. Returns the exit code.
async fn backfill(args: BackfillArgs) -> lakewriter::Result<Exit> {
    let scope = PartitionScope::parse(&args.from, &args.to)?;
    let output = args.job.table.output;
    let progress = progress_bar(
        output,
        ProgressBar::new(scope.days().count() as u64),
        "{bar:30} {pos}/{len} days  {msg}  ({elapsed})",
    );
    let mut tally = Tally::default();
    let days = Backfill::new(args.job.job(scope))
        .parallel(args.parallel.into())
        .run(|day| {
            tally.add(day);
            progress.inc(1);
            progress.set_message(tally.to_string());
        })
        .await;
    progress.finish_and_clear();
    let days = days?;
    let summary: Vec<serde_json::Value> = days.iter().map(day_summary).collect();
    let document = serde_json::json!({
        "table": args.job.table.table,
        "from": args.from,
        "to": args.to,
        "committed": tally.committed,
        "skipped": tally.skipped,
        "planned": tally.planned,
        "failed": tally.failed,
        "days": summary,
    });
    print(output, &document, |_| {
        let mut text = String::new();
        for day in &days {
            let line = match &day.outcome {
                Ok(report) => format!(
                    "{}  {:<9} version {:>5}  {} rows written",
                    day.date,
                    format!("{:?}", report.status).to_lowercase(),
                    report
                        .version
                        .map_or_else(|| "-".to_string(), |v| v.to_string()),
                    report.rows_written
                ),
                Err(error) => format!("{}  failed     {error}", day.date),
            };
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str(&format!("{tally}\n"));
        text
    });
    let pending = days.iter().any(|day| {
        day.outcome
            .as_ref()
            .is_ok_and(|report| report.notification == Some(NotificationStatus::Pending))
    });
    Ok(match (tally.failed, pending) {
        (0, false) => Exit::Done,
        (0, true) => Exit::NotificationPending,
        _ => Exit::DaysFailed,
    })
}

/// How many days of a backfill ended which way.
#[derive(Default)]
struct Tally {
    committed: u64,
    skipped: u64,
    planned: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, day: &DayOutcome) {
        match &day.outcome {
            Ok(report) => match report.status {
                RunStatus::Committed => self.committed += 1,
                RunStatus::Skipped => self.skipped += 1,
                RunStatus::Planned => self.planned += 1,
            },
            Err(_) => self.failed += 1,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} committed, {} skipped, {} failed",
            self.committed, self.skipped, self.failed
        )?;
        if self.planned > 0 {
            write!(f, ", {} planned", self.planned)?;
        }
        Ok(())
    }
}

/// One day of a backfill as JSON: its run's report, or its error and exit code.
fn day_summary(day: &DayOutcome) -> serde_json::Value {
    match &day.outcome {
        Ok(report) => {
            let mut value = serde_json::to_value(report).expect("serializable report");
            value["date"] = day.date.to_string().into();
            value
        }
        Err(error) => serde_json::json!({
            "date": day.date.to_string(),
            "status": "failed",
            "error": error.to_string(),
            "exit_code": Exit::of(error) as u8,
        }),
    }
}

/// A progress bar on stderr for people; hidden for JSON output or when stderr is no terminal.
fn progress_bar(output: Output, bar: ProgressBar, template: &str) -> ProgressBar {
    if output != Output::Text || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = bar.with_style(ProgressStyle::with_template(template).expect("static template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn describe(report: &WriteReport) -> String {
    let partitions = match (report.partitions.first(), report.partitions.last()) {
        (Some(first), Some(last)) if first != last => format!("{first}..{last}"),
        (Some(day), _) => day.clone(),
        _ => String::new(),
    };
    let version = report
        .version
        .map(|v| format!("version {v}"))
        .unwrap_or_else(|| "no table yet".into());
    let headline = match report.planned_action {
        Some(action) => format!("dry run: would {action} {partitions} ({version})"),
        None => format!("{:?} {partitions} at {version}", report.status).to_lowercase(),
    };
    let mut text = format!(
        "{headline}\n  run id       {}\n  fingerprint  {}\n  rows         {} read, {} written\n  files        {} added, {} removed\n",
        report.run_id,
        report.fingerprint,
        report.rows_read,
        report.rows_written,
        report.files_added,
        report.files_removed,
    );
    if let Some(status) = report.notification {
        let status = match status {
            NotificationStatus::Delivered => "delivered",
            NotificationStatus::AlreadyDelivered => "delivered before",
            NotificationStatus::Pending => "PENDING: the next run sends it",
        };
        text.push_str(&format!("  notification {status}\n"));
    }
    text
}

fn print<T: serde::Serialize + ?Sized>(output: Output, value: &T, text: impl Fn(&T) -> String) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string(value).expect("serializable report")
        ),
        Output::Text => print!("{}", text(value)),
    }
}
