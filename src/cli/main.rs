//! The `lakewriter` command: parse the arguments (`args`), call the library, print the
//! result (`render`), and map errors to exit codes (`exit`).

mod args;
mod exit;
mod render;

use std::process::ExitCode;

use clap::Parser;
use indicatif::ProgressBar;
use lakewriter::{
    Backfill, History, NotificationStatus, Optimize, PartitionScope, Restore, Runs, Shard, Vacuum,
};

use args::{BackfillArgs, Cli, Command, WriteArgs};
use exit::Exit;
use render::{Tally, day_summary, print, progress_bar};

fn main() -> ExitCode {
    tune_malloc();
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

/// Tunes glibc's malloc for a run's large, short-lived buffers, each setting unless the
/// environment sets it (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`,
/// or the same in `GLIBC_TUNABLES`):
/// - One arena for all threads instead of up to eight per core. Reading, deduplicating and
///   encoding hand buffers from thread to thread (and tokio runs blocking work on threads that
///   come and go), so memory freed in one thread's arena sat unused while another grew. One
///   10-million-row file peaked at 500-504 MiB against 703-875 MiB (BENCHMARKS.md, item 32).
/// - Buffers up to 32 MiB (glibc's largest threshold) taken from the heap, and up to 64 MiB
///   of freed heap kept for the next ones, instead of each large buffer mapped fresh and
///   unmapped when freed: a page touched for the first time costs a fault (on this kind of VM
///   also one on the host), and a day's ranks, sort entries and copies of the winners are
///   each tens of MiB, one after the other. A quarter to a half fewer page faults and 4-10%
///   less time (BENCHMARKS.md, item 35), for a peak 1-6% higher, 10% under `--memory-limit`
///   (freed memory is reused, but not every freed piece fits the next buffer). Keeping 256
///   MiB gained no time over 64 and rose the peak under `--memory-limit` by another 10%.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        let settings = [
            ("MALLOC_ARENA_MAX", "arena_max", libc::M_ARENA_MAX, 1),
            (
                "MALLOC_MMAP_THRESHOLD_",
                "mmap_threshold",
                libc::M_MMAP_THRESHOLD,
                32 << 20,
            ),
            (
                "MALLOC_TRIM_THRESHOLD_",
                "trim_threshold",
                libc::M_TRIM_THRESHOLD,
                64 << 20,
            ),
        ];
        for (variable, tunable, parameter, value) in settings {
            if std::env::var_os(variable).is_none() && !tunables.contains(tunable) {
                // SAFETY: called first in `main`, before any other thread exists; `mallopt`
                // only sets one of malloc's parameters. Its result (0 when refused) changes
                // nothing here.
                unsafe {
                    libc::mallopt(parameter, value);
                }
            }
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
            print(args.table.output, &runs, |runs| render::runs(runs));
            Ok(Exit::Done)
        }
        Command::Vacuum(args) => {
            let vacuum = Vacuum::new(&args.table.table)
                .retain_hours(args.retain_hours)
                .force(args.force)
                .dry_run(args.dry_run);
            let vacuum = match args.log {
                true => vacuum.log(args.log_retain_hours),
                false => vacuum,
            };
            let report = args
                .table
                .with_storage_options(vacuum, Vacuum::storage_option)
                .run()
                .await?;
            print(args.table.output, &report, render::vacuum);
            Ok(Exit::Done)
        }
        Command::Optimize(args) => {
            let mut optimize = Optimize::new(&args.table.table)
                .partition_column(&args.partition_column)
                .target_file_size(args.target_file_size);
            if let Some(scope) = scope_of(&args.date, &args.from, &args.to)? {
                optimize = optimize.scope(scope);
            }
            let report = args
                .table
                .with_storage_options(optimize, Optimize::storage_option)
                .run()
                .await?;
            print(args.table.output, &report, render::optimize);
            Ok(Exit::Done)
        }
        Command::Restore(args) => {
            let scope = scope_of(&args.date, &args.from, &args.to)?
                .expect("clap requires --date or --from and --to");
            let restore = match (args.version, &args.run_id) {
                (Some(version), _) => Restore::to_version(&args.table.table, scope, version),
                (None, Some(run_id)) => Restore::to_run(&args.table.table, scope, run_id),
                (None, None) => unreachable!("clap requires --version or --run-id"),
            };
            let report = args
                .table
                .with_storage_options(
                    restore.partition_column(&args.partition_column),
                    Restore::storage_option,
                )
                .run()
                .await?;
            print(args.table.output, &report, render::restore);
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
                render::history(commits)
            });
            Ok(Exit::Done)
        }
    }
}

/// The scope `--date D` or `--from D1 --to D2` name, if any (clap has checked that they come
/// alone or in pairs).
fn scope_of(
    date: &Option<String>,
    from: &Option<String>,
    to: &Option<String>,
) -> lakewriter::Result<Option<PartitionScope>> {
    match (date, from, to) {
        (Some(day), _, _) => PartitionScope::parse(day, day).map(Some),
        (None, Some(from), Some(to)) => PartitionScope::parse(from, to).map(Some),
        _ => Ok(None),
    }
}

/// Runs one write and prints its report. Returns the exit code.
async fn write(args: WriteArgs) -> lakewriter::Result<Exit> {
    let scope = scope_of(&args.date, &args.from, &args.to)?
        .expect("clap requires --date or --from with --to");
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
    print(output, &report, render::describe);
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
    let shard = match (args.shard, args.shards) {
        (Some(shard), _) => Some(shard),
        (None, Some(count)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                lakewriter::Error::InvalidOption(
                    "--shards N takes the shard's index from JOB_COMPLETION_INDEX, which is not \
                     set: run it as a Kubernetes Indexed Job, or pass --shard K/N"
                        .into(),
                )
            })?;
            let index = index.trim().parse().map_err(|_| {
                lakewriter::Error::InvalidOption(format!(
                    "JOB_COMPLETION_INDEX '{index}' is not a shard number"
                ))
            })?;
            Some(Shard::new(index, count)?)
        }
        (None, None) => None,
    };
    let progress = progress_bar(
        output,
        ProgressBar::new(
            scope
                .days()
                .filter(|day| shard.is_none_or(|s| s.holds(*day)))
                .count() as u64,
        ),
        "{bar:30} {pos}/{len} days  {msg}  ({elapsed})",
    );
    let mut tally = Tally::default();
    let mut backfill = Backfill::new(args.job.job(scope)).parallel(args.parallel.into());
    if let Some(shard) = shard {
        backfill = backfill.shard(shard);
    }
    let days = backfill
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
    print(output, &document, |_| render::backfill(&days, &tally));
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
