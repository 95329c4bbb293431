//! The CLI: `lakewriter` commands against a lake, and what a run printed, typed as the
//! `--output json` contract documents it. A field the CLI adds, drops or renames fails here.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Lake;

/// The signal `abort()` raises.
const SIGABRT: i32 = 6;

impl Lake {
    /// A `lakewriter` command with this lake's storage environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lakewriter"));
        command.args(args).envs(self.storage_env());
        command
    }

    /// A `lakewriter SUBCOMMAND --table <this table> --output json ARGS` command.
    pub fn json_command(&self, subcommand: &str, args: &[&str]) -> Command {
        let mut all = vec![subcommand, "--table", &self.table, "--output", "json"];
        all.extend_from_slice(args);
        self.command(&all)
    }

    /// Runs `lakewriter SUBCOMMAND --table <this table> --output json ARGS`.
    pub fn run(&self, subcommand: &str, args: &[&str]) -> Run {
        Run::of(
            self.json_command(subcommand, args)
                .output()
                .expect("lakewriter runs"),
        )
    }

    /// Runs `lakewriter write --table <this table> --output json ARGS`.
    pub fn write(&self, args: &[&str]) -> Run {
        self.run("write", args)
    }

    /// Races one `lakewriter write --table <this table> --output json ARGS` per argument list.
    /// A barrier (`LAKEWRITER_PAUSE_AT`) holds each writer after it read the table and wrote
    /// its files, right before its first commit, until all have arrived: they all decided on
    /// the same table, and all but one lose the first commit. Every writer must reach that
    /// point (none may skip before committing), or the barrier aborts them.
    pub fn race_writes(&self, runs: &[Vec<String>]) -> Vec<Run> {
        let barrier = tempfile::tempdir().expect("temp dir");
        let pause = format!("before-commit:{}:{}", runs.len(), barrier.path().display());
        let commands = runs.iter().map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut command = self.json_command("write", &args);
            command
                .env("LAKEWRITER_PAUSE_AT", &pause)
                .env("RUST_LOG", "lakewriter=info");
            command
        });
        let runs = run_at_once(commands);
        let lost = runs.iter().filter(|run| run.lost_a_race()).count();
        assert_eq!(
            lost,
            runs.len() - 1,
            "all writers but the first to commit lost the race and reloaded: {runs:#?}"
        );
        // A report, where the run printed one, counts the races its log mentions.
        for run in &runs {
            if let Some(report) = run.printed::<Report>() {
                assert_eq!(report.lost_races > 0, run.lost_a_race(), "{run:#?}");
            }
        }
        runs
    }

    /// Runs `lakewriter backfill --table <this table> --output json ARGS`.
    pub fn backfill(&self, args: &[&str]) -> Run {
        self.run("backfill", args)
    }

    /// Runs `lakewriter runs` and returns its rows, asserting that it succeeded.
    pub fn runs(&self) -> Vec<PartitionRun> {
        self.run("runs", &[]).parse()
    }

    /// Runs `lakewriter vacuum ARGS` and returns its report, asserting that it succeeded.
    pub fn vacuum(&self, args: &[&str]) -> VacuumReport {
        self.run("vacuum", args).parse()
    }
}

/// A write's fail points (`LAKEWRITER_FAIL_AT`) in the order a run passes them, each with
/// whether the run's commit has landed when the process dies there.
pub const WRITE_FAIL_POINTS: [(&str, bool); 6] = [
    ("after-read", false),
    ("after-upload", false),
    ("before-commit", false),
    ("after-commit", true),
    ("between-checkpoint-writes", true),
    ("during-checkpoint", true),
];

/// Starts every command at once and waits for them all: their runs, in order.
pub fn run_at_once(commands: impl IntoIterator<Item = Command>) -> Vec<Run> {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut command| {
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("lakewriter starts")
        })
        .collect();
    children
        .into_iter()
        .map(|child| Run::of(child.wait_with_output().expect("lakewriter runs")))
        .collect()
}

/// Runs the CLI.
pub fn lakewriter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lakewriter"))
        .args(args)
        .output()
        .expect("lakewriter runs")
}

/// One CLI run: exit code (-1 when a signal ended it), the signal, standard output and
/// standard error.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            signal: output.status.signal(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Whether the run aborted at the fail point `point` (`LAKEWRITER_FAIL_AT`): SIGABRT
    /// after the fail point's message, not an ordinary error exit.
    pub fn aborted_at(&self, point: &str) -> bool {
        self.signal == Some(SIGABRT)
            && self
                .stderr
                .contains(&format!("fail point '{point}' reached"))
    }

    /// Asserts that the run aborted at the fail point `point`.
    pub fn assert_aborted_at(&self, point: &str) {
        assert!(
            self.aborted_at(point),
            "expected an abort at '{point}', got exit {} signal {:?}: {}",
            self.code,
            self.signal,
            self.stderr
        );
    }

    /// Whether the run lost a commit to another writer and read the table again (its log
    /// says so at info level).
    pub fn lost_a_race(&self) -> bool {
        self.stderr.contains("another writer committed first")
    }

    /// Asserts exit 0 and returns the printed JSON as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> T {
        assert_eq!(self.code, 0, "lakewriter failed: {}", self.stderr);
        self.printed()
            .unwrap_or_else(|| panic!("no report in: {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// The printed JSON as `T`, whatever the exit code; `None` when nothing of that shape was
    /// printed (a failed run prints no report).
    pub fn printed<T: DeserializeOwned>(&self) -> Option<T> {
        if self.stdout.trim().is_empty() {
            return None;
        }
        let parsed = serde_json::from_str(&self.stdout);
        Some(parsed.unwrap_or_else(|e| panic!("unexpected output ({e}): {}", self.stdout)))
    }

    /// Asserts exit 0 and the given status; returns the write report.
    pub fn expect(&self, status: Status) -> Report {
        let report: Report = self.parse();
        assert_eq!(report.status, status, "report: {}", self.stdout);
        report
    }

    /// The write report of a run that printed one, whatever its exit code (a run whose
    /// notification is pending exits 5 after committing).
    pub fn report(&self) -> Option<Report> {
        self.printed()
    }
}

/// How a write (or a day of a backfill) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Committed,
    Skipped,
    Planned,
    /// Only a backfill's day: the day's run failed.
    Failed,
}

/// Whether a run's commit was announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notification {
    Delivered,
    AlreadyDelivered,
    Pending,
}

/// `write --output json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub status: Status,
    pub version: Option<u64>,
    pub run_id: String,
    pub fingerprint: String,
    pub partitions: Vec<String>,
    pub rows_read: u64,
    pub rows_written: u64,
    pub files_added: u64,
    pub files_removed: u64,
    /// Dry runs only: `replace` or `skip`.
    #[serde(default)]
    pub planned_action: Option<String>,
    /// With notifications configured only.
    #[serde(default)]
    pub notification: Option<Notification>,
    /// The columns the run added: `column`, `change`, `data_type`.
    pub schema_changes: Vec<serde_json::Value>,
    /// Commit races the run lost to other writers.
    pub lost_races: u32,
}

/// `backfill --output json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillReport {
    pub table: String,
    pub from: String,
    pub to: String,
    pub committed: u64,
    pub skipped: u64,
    pub planned: u64,
    pub failed: u64,
    pub days: Vec<Day>,
}

/// One day of a backfill: its date and status, and for a failed day the error. (A day that
/// ran also carries its run's report fields, which the tests read through `runs`.)
#[derive(Debug, Clone, Deserialize)]
pub struct Day {
    pub date: String,
    pub status: Status,
    pub error: Option<String>,
    pub exit_code: Option<u8>,
}

/// A row of `runs --output json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRun {
    pub date: String,
    pub run_id: Option<String>,
    pub fingerprint: Option<String>,
    pub version: Option<u64>,
    pub committed_at: Option<String>,
    pub rows: Option<u64>,
    pub files: u64,
}

/// A commit as `history --output json` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryCommit {
    pub version: Option<u64>,
    pub timestamp: Option<i64>,
    pub operation: Option<String>,
    pub user_metadata: Option<String>,
    pub lakewriter: Option<serde_json::Value>,
}

/// `vacuum --output json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VacuumReport {
    pub dry_run: bool,
    pub files: Vec<String>,
    pub log_files_deleted: usize,
}
