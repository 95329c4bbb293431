//! Command-line arguments: what each subcommand takes, parsed by clap, and how a write's
//! arguments become a [`WriteJob`].

use clap::{Args, Parser, Subcommand, ValueEnum};
use lakewriter::{
    Compression, CsvDialect, InputFormat, PartitionScope, RerunPolicy, SchemaEvolution, Shard,
    WriteJob, WriteMode,
};

#[derive(Parser)]
#[command(
    name = "lakewriter",
    version,
    about = "Idempotent, date-partitioned writes into Delta Lake tables",
    after_help = "Exit codes: 0 committed, skipped or planned; 1 other error (a damaged table, \
                  refused credentials); 2 bad input or usage (a row breaking a table constraint too), or a \
                  table feature lakewriter does not write; 3 rerun refused by --on-rerun fail; \
                  4 commit conflict that retries could not resolve; 5 some days of a backfill failed \
                  (the others ran; rerun the backfill); 6 the commit stands but its notification \
                  is pending (the next run sends it); 7 the storage failed or did not answer \
                  (network, throttling): nothing is half-done, rerun later."
)]
pub(crate) struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Compact each day's small files into as few as its bytes need, keeping the days' run
    /// records; one commit that changes no data. A compact day is left alone.
    Optimize(OptimizeArgs),
    /// Make a scope's days what they were at an earlier version (or what a run wrote), in
    /// one commit; the restored run shows in `runs`.
    Restore(RestoreArgs),
}

#[derive(Args)]
pub(crate) struct TableArgs {
    /// The table: a folder path, file:// URL or s3://bucket/prefix. Created on first write.
    #[arg(long)]
    pub(crate) table: String,
    /// An object-store option KEY=VALUE (e.g. aws_endpoint=http://..., allow_http=true).
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub(crate) storage_options: Vec<(String, String)>,
    /// text for people, json for programs (one JSON document on stdout).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
}

impl TableArgs {
    /// Gives `builder` every `--storage-option`, through its `add` (`storage_option`).
    pub(crate) fn with_storage_options<B>(
        &self,
        builder: B,
        add: impl Fn(B, String, String) -> B,
    ) -> B {
        self.storage_options
            .iter()
            .cloned()
            .fold(builder, |builder, (key, value)| add(builder, key, value))
    }
}

#[derive(Args)]
pub(crate) struct WriteArgs {
    #[command(flatten)]
    pub(crate) job: JobArgs,
    /// The only day of the scope (YYYY-MM-DD).
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present_all = ["from", "to"])]
    pub(crate) date: Option<String>,
    /// First day of the scope, inclusive (YYYY-MM-DD).
    #[arg(long, requires = "to")]
    pub(crate) from: Option<String>,
    /// Last day of the scope, inclusive (YYYY-MM-DD).
    #[arg(long, requires = "from")]
    pub(crate) to: Option<String>,
}

#[derive(Args)]
pub(crate) struct BackfillArgs {
    #[command(flatten)]
    pub(crate) job: JobArgs,
    /// First day, inclusive (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) from: String,
    /// Last day, inclusive (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) to: String,
    /// Days run at once; they share --memory-limit.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) parallel: u16,
    /// Run only shard K of N (K from 0): the days whose number since 1970-01-01 leaves K
    /// divided by N. Shards may run at once on any machines.
    #[arg(long, value_name = "K/N", conflicts_with = "shards", value_parser = parse_shard)]
    pub(crate) shard: Option<Shard>,
    /// Run shard JOB_COMPLETION_INDEX of N (a Kubernetes Indexed Job sets that variable).
    #[arg(long, value_name = "N")]
    pub(crate) shards: Option<u32>,
}

/// What a write and each day of a backfill are made of.
#[derive(Args)]
pub(crate) struct JobArgs {
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// Input file, glob or URI (repeatable). Format from the extension: .csv, .json/.jsonl,
    /// .parquet. In a backfill, {date} or {date:FORMAT} (strftime) stands for each day.
    #[arg(long = "input", required = true)]
    pub(crate) inputs: Vec<String>,
    /// Input format, when extensions do not tell.
    #[arg(long, value_parser = parse_format)]
    pub(crate) format: Option<InputFormat>,
    /// How inputs are compressed: auto (from a .gz, .zst or .bz2 extension, else from the
    /// first bytes), none, gzip, zstd or bzip2. CSV and JSON lines only.
    #[arg(long, default_value = "auto", value_parser = parse_compression)]
    pub(crate) compression: Compression,
    /// CSV: the character between fields, e.g. ';', '|' or 'tab'.
    #[arg(long, value_name = "CHAR", default_value = ",", value_parser = parse_byte)]
    pub(crate) csv_delimiter: u8,
    /// CSV: the character that quotes a field (doubled inside one, it stands for itself).
    #[arg(long, value_name = "CHAR", default_value = "\"", value_parser = parse_byte)]
    pub(crate) csv_quote: u8,
    /// CSV: a character that makes the next one in a quoted field stand for itself, e.g. '\'.
    #[arg(long, value_name = "CHAR", value_parser = parse_byte)]
    pub(crate) csv_escape: Option<u8>,
    /// CSV: a field text that means null (repeatable), replacing the default, an empty
    /// field: e.g. --csv-null '\N', or --csv-null '' --csv-null NULL.
    #[arg(long, value_name = "TEXT")]
    pub(crate) csv_null: Vec<String>,
    /// CSV: files have no header row; their columns are the table's, in its order (without
    /// the partition column when --partition-from derives it).
    #[arg(long)]
    pub(crate) csv_no_header: bool,
    /// none: the input's columns must be the table's. add-columns: input columns the table
    /// lacks are added (nullable, at the end) in the run's commit, and table columns the
    /// input lacks are written as nulls.
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = parse_evolution)]
    pub(crate) schema_evolution: SchemaEvolution,
    /// How dates are written in the input, in strftime, e.g. '%d/%m/%Y' for 31/01/2024
    /// (default: YYYY-MM-DD); for the partition column, --partition-from and DATE columns.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) date_format: Option<String>,
    /// How timestamps are written in the input, e.g. '%d/%m/%Y %H:%M:%S' (UTC unless the
    /// format holds %z); for --partition-from and TIMESTAMP columns.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) timestamp_format: Option<String>,
    /// The table's DATE partition column.
    #[arg(long, default_value = "date")]
    pub(crate) partition_column: String,
    /// Derive the partition column from this date or timestamp column (UTC day).
    #[arg(long)]
    pub(crate) partition_from: Option<String>,
    /// Deduplicate: one row per key (comma-separated columns).
    #[arg(long, value_delimiter = ',')]
    pub(crate) key: Vec<String>,
    /// Among rows with the same key, keep the one with the largest value here.
    #[arg(long, requires = "key")]
    pub(crate) order_by: Option<String>,
    /// Name of the run; default derived from the scope and the input fingerprint. In a
    /// backfill, {date} stands for each day.
    #[arg(long)]
    pub(crate) run_id: Option<String>,
    /// auto: skip identical reruns, replace otherwise; skip: skip if this run id wrote the
    /// scope; replace: always rewrite; fail: refuse if another run wrote a partition in scope.
    #[arg(long, default_value = "auto", value_parser = parse_policy)]
    pub(crate) on_rerun: RerunPolicy,
    /// replace: the scope's days become exactly the input's rows. merge: upsert by --key,
    /// updating the rows whose key (and date) the input holds and inserting the others.
    #[arg(long, default_value = "replace", value_parser = parse_mode)]
    pub(crate) mode: WriteMode,
    /// Print what would happen (skip or replace, files to remove) and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Memory the run's rows may take, e.g. 512MiB or 4GiB; larger input spills to files in
    /// TMPDIR and is written a part at a time.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size, env = "LAKEWRITER_MEMORY_LIMIT")]
    pub(crate) memory_limit: u64,
    /// The widest scope (for a backfill, range) in days; a wider one is refused before
    /// anything is read, as a mistyped year would be. Default: ten years.
    #[arg(long, value_name = "DAYS", default_value_t = lakewriter::DEFAULT_MAX_DAYS)]
    pub(crate) max_days: u64,
    /// POST a JSON event announcing each commit to this URL, with an Idempotency-Key header
    /// (set LAKEWRITER_NOTIFY_URL instead to keep a secret URL out of the process list).
    #[arg(
        long,
        value_name = "URL",
        env = "LAKEWRITER_NOTIFY_URL",
        hide_env_values = true
    )]
    pub(crate) notify_url: Option<String>,
    /// Run this shell command for each commit, with the JSON event on stdin and
    /// LAKEWRITER_IDEMPOTENCY_KEY set; exit status 0 means delivered.
    #[arg(long, value_name = "COMMAND")]
    pub(crate) notify_command: Option<String>,
}

impl JobArgs {
    fn csv_dialect(&self) -> CsvDialect {
        let dialect = CsvDialect::default()
            .delimiter(self.csv_delimiter)
            .quote(self.csv_quote)
            .escape(self.csv_escape)
            .header(!self.csv_no_header);
        match self.csv_null.is_empty() {
            true => dialect,
            false => dialect.nulls(self.csv_null.iter().cloned()),
        }
    }

    pub(crate) fn job(&self, scope: PartitionScope) -> WriteJob {
        let mut job = WriteJob::new(&self.table.table, scope)
            .partition_column(&self.partition_column)
            .key(self.key.iter().map(|k| k.trim()))
            .on_rerun(self.on_rerun)
            .mode(self.mode)
            .dry_run(self.dry_run)
            .memory_limit(self.memory_limit)
            .max_days(self.max_days)
            .compression(self.compression)
            .schema_evolution(self.schema_evolution)
            .csv(self.csv_dialect());
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
        if let Some(format) = &self.date_format {
            job = job.date_format(format);
        }
        if let Some(format) = &self.timestamp_format {
            job = job.timestamp_format(format);
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
pub(crate) struct RunsArgs {
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// The table's DATE partition column.
    #[arg(long, default_value = "date")]
    pub(crate) partition_column: String,
}

#[derive(Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// Show at most this many commits.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
}

#[derive(Args)]
pub(crate) struct VacuumArgs {
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// Keep files that versions of the last N hours reference (time travel stays possible
    /// that far back), and unreferenced files younger than that (a running writer's).
    #[arg(long, default_value_t = 168)]
    pub(crate) retain_hours: u64,
    /// Allow a retention below the table's delta.deletedFileRetentionDuration.
    #[arg(long)]
    pub(crate) force: bool,
    /// List the files that would be deleted, delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Also delete the log's expired commit files (older than the table's
    /// delta.logRetentionDuration, or --log-retain-hours) that a checkpoint makes unneeded.
    #[arg(long)]
    pub(crate) log: bool,
    /// With --log: the log's retention in hours instead of the table's.
    #[arg(long, requires = "log")]
    pub(crate) log_retain_hours: Option<u64>,
}

#[derive(Args)]
pub(crate) struct OptimizeArgs {
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// Only this day (YYYY-MM-DD); default: every day.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub(crate) date: Option<String>,
    /// First day to compact, inclusive.
    #[arg(long, requires = "to")]
    pub(crate) from: Option<String>,
    /// Last day to compact, inclusive.
    #[arg(long, requires = "from")]
    pub(crate) to: Option<String>,
    /// A day with more files than its bytes need at this size is compacted, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = parse_size)]
    pub(crate) target_file_size: u64,
    /// The table's DATE partition column.
    #[arg(long, default_value = "date")]
    pub(crate) partition_column: String,
}

#[derive(Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub(crate) table: TableArgs,
    /// The only day to restore (YYYY-MM-DD).
    #[arg(long, conflicts_with = "from", required_unless_present = "from")]
    pub(crate) date: Option<String>,
    /// First day to restore, inclusive.
    #[arg(long, requires = "to")]
    pub(crate) from: Option<String>,
    /// Last day to restore, inclusive.
    #[arg(long, requires = "from")]
    pub(crate) to: Option<String>,
    /// The table version whose files of those days come back (see `history`).
    #[arg(long, conflicts_with = "run_id", required_unless_present = "run_id")]
    pub(crate) version: Option<u64>,
    /// The run whose files of those days come back (the version it committed).
    #[arg(long)]
    pub(crate) run_id: Option<String>,
    /// The table's DATE partition column.
    #[arg(long, default_value = "date")]
    pub(crate) partition_column: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
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

/// One ASCII character, or `tab` (`\t`) for a tab.
fn parse_byte(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() => Ok(text.as_bytes()[0]),
        _ => Err(format!(
            "'{text}' is not one ASCII character: give one, e.g. ';' or '|', or 'tab'"
        )),
    }
}

fn parse_evolution(text: &str) -> Result<SchemaEvolution, String> {
    text.parse().map_err(|e: lakewriter::Error| e.to_string())
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    text.parse().map_err(|e: lakewriter::Error| e.to_string())
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    text.parse().map_err(|e: lakewriter::Error| e.to_string())
}

fn parse_policy(text: &str) -> Result<RerunPolicy, String> {
    text.parse().map_err(|e: lakewriter::Error| e.to_string())
}
