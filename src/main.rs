//! The `lakewriter` command: parse arguments, call the library, print, map errors to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lakewriter::{
    ErrorKind, InputFormat, PartitionScope, RerunPolicy, StorageOptions, WriteJob, WriteReport,
};

/// Exit codes, documented in the README and in `--help`.
const EXIT_OTHER: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_RERUN_REFUSED: u8 = 3;
const EXIT_CONFLICT: u8 = 4;

#[derive(Parser)]
#[command(
    name = "lakewriter",
    version,
    about = "Idempotent, date-partitioned writes into Delta Lake tables",
    after_help = "Exit codes: 0 committed, skipped or planned; 1 other error (storage, damaged \
                  table); 2 bad input or usage; 3 rerun refused by --on-rerun fail; 4 commit \
                  conflict that retries could not resolve."
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
    fn storage_options(&self) -> StorageOptions {
        self.storage_options.iter().cloned().collect()
    }
}

#[derive(Args)]
struct WriteArgs {
    #[command(flatten)]
    table: TableArgs,
    /// Input file, glob or URI (repeatable). Format from the extension: .csv, .json/.jsonl, .parquet.
    #[arg(long = "input", required = true)]
    inputs: Vec<String>,
    /// Input format, when extensions do not tell.
    #[arg(long, value_parser = parse_format)]
    format: Option<InputFormat>,
    /// The only day of the scope (YYYY-MM-DD).
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present_all = ["from", "to"])]
    date: Option<String>,
    /// First day of the scope, inclusive (YYYY-MM-DD).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Last day of the scope, inclusive (YYYY-MM-DD).
    #[arg(long, requires = "from")]
    to: Option<String>,
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
    /// Name of the run; default derived from the scope and the input fingerprint.
    #[arg(long)]
    run_id: Option<String>,
    /// auto: skip identical reruns, replace otherwise; skip: skip if this run id wrote the
    /// scope; replace: always rewrite; fail: refuse if another run wrote a partition in scope.
    #[arg(long, default_value = "auto", value_parser = parse_policy)]
    on_rerun: RerunPolicy,
    /// Print what would happen (skip or replace, files to remove) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Memory the run's rows may take, e.g. 512MiB or 4GiB; larger input spills to files in
    /// TMPDIR and is written a part at a time.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size, env = "LAKEWRITER_MEMORY_LIMIT")]
    memory_limit: u64,
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
            return ExitCode::from(EXIT_OTHER);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(match error.kind() {
                ErrorKind::BadInput => EXIT_BAD_INPUT,
                ErrorKind::RerunRefused => EXIT_RERUN_REFUSED,
                ErrorKind::Conflict => EXIT_CONFLICT,
                _ => EXIT_OTHER,
            })
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
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

async fn run(command: Command) -> lakewriter::Result<()> {
    match command {
        Command::Write(args) => write(args).await,
        Command::Runs(args) => {
            let runs = lakewriter::runs(
                &args.table.table,
                &args.partition_column,
                &args.table.storage_options(),
            )
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
            Ok(())
        }
        Command::Vacuum(args) => {
            let report = lakewriter::vacuum(
                &args.table.table,
                args.retain_hours,
                args.force,
                args.dry_run,
                &args.table.storage_options(),
            )
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
            Ok(())
        }
        Command::History(args) => {
            let commits =
                lakewriter::history(&args.table.table, args.limit, &args.table.storage_options())
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
            Ok(())
        }
    }
}

async fn write(args: WriteArgs) -> lakewriter::Result<()> {
    let scope = match (&args.date, &args.from, &args.to) {
        (Some(day), _, _) => PartitionScope::parse(day, day)?,
        (None, Some(from), Some(to)) => PartitionScope::parse(from, to)?,
        _ => unreachable!("clap requires --date or --from with --to"),
    };
    let mut job = WriteJob::new(&args.table.table, scope)
        .partition_column(&args.partition_column)
        .key(args.key.iter().map(|k| k.trim()))
        .on_rerun(args.on_rerun)
        .dry_run(args.dry_run)
        .memory_limit(args.memory_limit);
    for input in &args.inputs {
        job = job.input(input);
    }
    for (key, value) in args.table.storage_options() {
        job = job.storage_option(key, value);
    }
    if let Some(format) = args.format {
        job = job.format(format);
    }
    if let Some(column) = &args.partition_from {
        job = job.partition_from(column);
    }
    if let Some(column) = &args.order_by {
        job = job.order_by(column);
    }
    if let Some(run_id) = &args.run_id {
        job = job.run_id(run_id);
    }

    let progress = if args.table.output == Output::Text && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} input files read {wide_msg}")
                .expect("static template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let result = job
        .run_with_progress(|file| {
            progress.inc(1);
            progress.set_message(file.to_string());
        })
        .await;
    progress.finish_and_clear();
    let report = result?;
    print(args.table.output, &report, describe);
    Ok(())
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
    format!(
        "{headline}\n  run id       {}\n  fingerprint  {}\n  rows         {} read, {} written\n  files        {} added, {} removed\n",
        report.run_id,
        report.fingerprint,
        report.rows_read,
        report.rows_written,
        report.files_added,
        report.files_removed,
    )
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
