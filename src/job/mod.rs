//! The write job: the whole run, from input files to one commit, as the crate docs draw it.
//! This file builds the job and prepares its input; `driver` runs the commit attempts of a
//! write mode, `replace` and `merge` are the write modes.

mod driver;
mod merge;
mod replace;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use chrono::NaiveDate;
use deltalake::kernel::Add;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::constraints::RowChecks;
use crate::dedupe::{dedup_and_order, split_by_day};
use crate::error::{Error, Result};
use crate::evolve::{Evolved, SchemaChange, SchemaEvolution, evolve};
use crate::failpoint;
use crate::features::{Access, ColumnMapping, TableFeatures};
use crate::ledger::{Decision, PartitionOwner, RerunPolicy, RunIdentity, decide};
use crate::notify::{Channel, CommitEvent, NotificationStatus, announce};
use crate::rules::RowRules;
use crate::scope::{DEFAULT_MAX_DAYS, PartitionScope};
use crate::source::{
    Compression, CsvDialect, Inferred, InputFile, InputFormat, InputOptions, Sampled,
    columns as source_columns, decode, find_inputs, fingerprint, hash, infer_columns,
};
use crate::spill::{DEFAULT_MEMORY_LIMIT, RowStore};
use crate::storage::StorageOptions;
use crate::table::Table;
use crate::transform::{Intake, kernel_type, table_type, target_schema, text_types};
use driver::drive;
use merge::Merge;
use replace::Replace;

/// One idempotent write of a date scope into a table. Build it, then [`WriteJob::run`] it.
///
/// ```no_run
/// # async fn example() -> lakewriter::Result<()> {
/// use lakewriter::{PartitionScope, RerunPolicy, WriteJob};
/// let report = WriteJob::new("./lake/sales", PartitionScope::parse("2024-01-01", "2024-01-03")?)
///     .input("raw/sales/2024-01-0*.csv")
///     .key(["order_id"])
///     .order_by("updated_at")
///     .on_rerun(RerunPolicy::Auto)
///     .run()
///     .await?;
/// println!("{:?} at version {:?}", report.status, report.version);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WriteJob {
    table: String,
    inputs: Vec<String>,
    input: InputOptions,
    scope: PartitionScope,
    rules: RowRules,
    run_id: Option<String>,
    policy: RerunPolicy,
    dry_run: bool,
    mode: WriteMode,
    memory_limit: u64,
    max_days: u64,
    notify: Vec<Channel>,
    storage_options: StorageOptions,
}

/// How a run changes the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Replace the scope's date partitions with the input's rows (replaceWhere).
    #[default]
    Replace,
    /// Upsert by key: update the rows whose key (and date) the input holds, insert the others,
    /// leave every other row as it is. Needs a key.
    Merge,
}

impl std::str::FromStr for WriteMode {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "replace" => Ok(Self::Replace),
            "merge" => Ok(Self::Merge),
            _ => Err(Error::InvalidOption(format!(
                "unknown mode '{text}': use replace or merge"
            ))),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The scope was replaced in a new commit.
    Committed,
    /// The table already held this run; no commit was made.
    Skipped,
    /// A dry run: nothing was changed.
    Planned,
}

/// What a run did (or, for a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct WriteReport {
    /// Committed, skipped or planned.
    pub status: RunStatus,
    /// The table version after the run (`None` for a dry run on a table that does not exist).
    pub version: Option<u64>,
    /// The run id.
    pub run_id: String,
    /// The input fingerprint.
    pub fingerprint: String,
    /// The dates of the scope.
    pub partitions: Vec<String>,
    /// Rows read from the input.
    pub rows_read: u64,
    /// Rows written after deduplication (0 when skipped).
    pub rows_written: u64,
    /// Data files added.
    pub files_added: u64,
    /// Data files removed (for a dry run: that would be removed).
    pub files_removed: u64,
    /// For a dry run: `replace` or `skip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_action: Option<&'static str>,
    /// With notifications configured: whether the commit (made or matched) was announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationStatus>,
    /// The columns the run added (or, for a dry run, would add) to the table's schema.
    pub schema_changes: Vec<SchemaChange>,
    /// Commit races lost to other writers before the run ended: each one a backoff, a reload
    /// and a new decision. Steadily above 0: writers are contending for the table's log.
    pub lost_races: u32,
}

impl WriteJob {
    /// A job writing `scope` into the table at `table` (a folder, `file://` or `s3://` URI).
    pub fn new(table: impl Into<String>, scope: PartitionScope) -> Self {
        Self {
            table: table.into(),
            inputs: Vec::new(),
            input: InputOptions::default(),
            scope,
            rules: RowRules::default(),
            run_id: None,
            policy: RerunPolicy::default(),
            dry_run: false,
            mode: WriteMode::default(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            max_days: DEFAULT_MAX_DAYS,
            notify: Vec::new(),
            storage_options: StorageOptions::new(),
        }
    }

    /// Adds an input path, glob or URI.
    pub fn input(mut self, pattern: impl Into<String>) -> Self {
        self.inputs.push(pattern.into());
        self
    }

    /// Sets how input files are compressed, instead of taking it from their extensions
    /// (`.gz`, `.zst`, `.bz2`) or first bytes ([`Compression::Auto`], the default).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.input.compression = compression;
        self
    }

    /// Sets the input format instead of taking it from file extensions.
    pub fn format(mut self, format: InputFormat) -> Self {
        self.input.format = Some(format);
        self
    }

    /// Sets how CSV input is written (delimiter, quote, escape, null texts, header row),
    /// instead of the default [`CsvDialect`].
    pub fn csv(mut self, dialect: CsvDialect) -> Self {
        self.input.csv = dialect;
        self
    }

    /// Deduplicates by these columns: one row per key.
    pub fn key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.rules.key = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Among rows with the same key, keeps the one with the largest value in `column`.
    pub fn order_by(mut self, column: impl Into<String>) -> Self {
        self.rules.order_by = Some(column.into());
        self
    }

    /// Names the table's DATE partition column (default `date`).
    pub fn partition_column(mut self, column: impl Into<String>) -> Self {
        self.rules.partition_column = column.into();
        self
    }

    /// Derives the partition column from this date or timestamp column (cut to the UTC day).
    pub fn partition_from(mut self, column: impl Into<String>) -> Self {
        self.rules.partition_from = Some(column.into());
        self
    }

    /// Whether the run may add the input's new columns to the table (default
    /// [`SchemaEvolution::None`]); see [`SchemaEvolution::AddColumns`].
    pub fn schema_evolution(mut self, evolution: SchemaEvolution) -> Self {
        self.rules.schema_evolution = evolution;
        self
    }

    /// How text in DATE columns is written, in chrono's strftime (`%d/%m/%Y` for 31/01/2024),
    /// when not `YYYY-MM-DD`: for the partition column, a `--partition-from` column and the
    /// table's DATE columns.
    pub fn date_format(mut self, format: impl Into<String>) -> Self {
        self.rules.date_format = Some(format.into());
        self
    }

    /// How text in TIMESTAMP columns is written (`%d/%m/%Y %H:%M:%S`; read as UTC unless the
    /// format holds an offset, `%z`), when not RFC 3339 or ISO 8601.
    pub fn timestamp_format(mut self, format: impl Into<String>) -> Self {
        self.rules.timestamp_format = Some(format.into());
        self
    }

    /// Names the run; by default the id is derived from the scope and the input fingerprint.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// What to do when the scope was written before.
    pub fn on_rerun(mut self, policy: RerunPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Decide and report, but change nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Replace the scope's partitions (the default) or merge the input into them by key.
    pub fn mode(mut self, mode: WriteMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many bytes of rows the run may hold in memory (default 1 GiB). Larger input is
    /// spread over buckets in spill files under `TMPDIR` and processed a bucket at a time, so
    /// peak memory follows this limit, not the input's size. Each bucket becomes its own data
    /// files, so a spilled day has one file per bucket.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The widest scope the job takes, in days (default [`DEFAULT_MAX_DAYS`], ten years); a
    /// wider one is refused before anything is read. For a backfill, the range's days.
    pub fn max_days(mut self, days: u64) -> Self {
        self.max_days = days;
        self
    }

    /// Announces each commit with an HTTP POST of a JSON event to `url`, with an
    /// `Idempotency-Key` header that is the same each time the commit is announced. A skipped
    /// rerun announces the commit it matches only if that was never delivered (see
    /// [`NotificationStatus`]).
    pub fn notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify.push(Channel::Url(url.into()));
        self
    }

    /// Announces each commit by running `sh -c command` with the JSON event on stdin and
    /// `LAKEWRITER_IDEMPOTENCY_KEY` in its environment; exit status 0 means delivered.
    pub fn notify_command(mut self, command: impl Into<String>) -> Self {
        self.notify.push(Channel::Command(command.into()));
        self
    }

    /// Adds an object-store option (e.g. `aws_endpoint`, `allow_http`).
    pub fn storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.insert(key.into(), value.into());
        self
    }

    /// The inputs as given: templates, for a backfill.
    pub(crate) fn inputs(&self) -> &[String] {
        &self.inputs
    }

    pub(crate) fn scope(&self) -> PartitionScope {
        self.scope
    }

    /// Refuses a scope wider than the job's `max_days`.
    pub(crate) fn check_scope_width(&self) -> Result<()> {
        self.scope.check_width(self.max_days)
    }

    pub(crate) fn explicit_run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// This job for one day of a backfill: `fill` turns the input and run id templates into
    /// the day's, and the memory limit is shared among `sharing` days running at once.
    pub(crate) fn for_day(
        &self,
        day: NaiveDate,
        sharing: usize,
        fill: impl Fn(&str) -> Result<String>,
    ) -> Result<WriteJob> {
        Ok(WriteJob {
            scope: PartitionScope::day(day),
            inputs: self
                .inputs
                .iter()
                .map(|template| fill(template))
                .collect::<Result<_>>()?,
            run_id: self.run_id.as_deref().map(&fill).transpose()?,
            memory_limit: self.memory_limit / sharing.max(1) as u64,
            ..self.clone()
        })
    }

    /// Refuses the job's table if it uses a feature lakewriter does not follow for this
    /// mode (nothing is read or written).
    pub(crate) async fn check_table(&self) -> Result<()> {
        Table::open(&self.table, &self.storage_options)
            .await?
            .check_access(self.access())
    }

    /// Runs the job.
    pub async fn run(&self) -> Result<WriteReport> {
        self.run_with_progress(|_| {}).await
    }

    /// Runs the job, calling `on_file_read` with each input file's name once it is decoded.
    pub async fn run_with_progress(&self, on_file_read: impl FnMut(&str)) -> Result<WriteReport> {
        self.validate()?;
        let mut table = Table::open(&self.table, &self.storage_options).await?;
        // Features first: a clustered table, say, is better refused for its clustering than
        // for its missing partitions.
        table.check_access(self.access())?;
        table.check_partitioning(&self.rules.partition_column)?;
        let reading = self.reading(&table)?;
        let files = find_inputs(&self.inputs, &reading, &self.storage_options).await?;
        let (input, outcome, lost_races) = match self.skip_unread(&table, &files).await? {
            Some((input, skipped)) => (input, skipped, 0),
            None => {
                self.read_and_write(&mut table, &files, on_file_read)
                    .await?
            }
        };
        let notification = match &outcome {
            Outcome::Committed { events, .. } | Outcome::Skipped { events, .. } => {
                announce(table.object_store().as_ref(), &self.notify, events).await
            }
            Outcome::Planned { .. } => None,
        };
        let mut report = input.report(outcome);
        report.notification = notification;
        report.lost_races = lost_races;
        Ok(report)
    }

    /// How the input is read: the job's options, with the columns of CSV files without a
    /// header row named by the table's, in its order (the partition column left out when
    /// `--partition-from` derives it).
    fn reading(&self, table: &Table) -> Result<InputOptions> {
        let mut reading = self.input.clone();
        let formats = (
            self.rules.date_format.clone(),
            self.rules.timestamp_format.clone(),
        );
        reading.csv = reading.csv.with_text_formats(formats.0, formats.1);
        if reading.csv.has_header() {
            return Ok(reading);
        }
        let schema = table.schema()?.ok_or_else(|| {
            Error::InvalidOption(
                "--csv-no-header takes the columns' names from the table, which does not exist \
                 yet: write its first run from files with a header row"
                    .into(),
            )
        })?;
        let derived = self.rules.partition_from.is_some();
        let names = schema
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .filter(|name| !(derived && *name == self.rules.partition_column))
            .collect();
        reading.csv = reading.csv.with_columns(names);
        Ok(reading)
    }

    /// An identical rerun, told from the input's bytes before any row is parsed: when the
    /// table's ledger holds a run for every day of the scope, the input files are hashed (all
    /// at once) into the fingerprint a full read would give. On a table that exists the rows
    /// take the table's columns, so the fingerprint's column list is the table's. `None`: the
    /// run must read its input (a first write, a changed input, another mode or policy).
    async fn skip_unread(
        &self,
        table: &Table,
        files: &[InputFile],
    ) -> Result<Option<(PreparedInput, Outcome)>> {
        let Some(schema) = table.schema()? else {
            return Ok(None);
        };
        if self.mode != WriteMode::Replace || self.policy == RerunPolicy::Replace {
            return Ok(None);
        }
        let (ledger, removes) =
            table.ledger_and_removals(&self.rules.partition_column, &self.scope)?;
        let every_day_has_a_run = self
            .scope
            .days()
            .all(|day| matches!(ledger.owner(day), Some(PartitionOwner::Run(_))));
        if !every_day_has_a_run {
            return Ok(None);
        }
        let hashes: Vec<[u8; 32]> = futures::stream::iter(files.iter().map(hash))
            .buffered(parallelism())
            .try_collect()
            .await?;
        let run = self.identity(fingerprint(&hashes, &self.shaping_options(&schema)));
        if !matches!(decide(self.policy, &ledger, &run), Ok(Decision::Skip)) {
            return Ok(None);
        }
        let outcome = replace::skipped(self, table, &ledger, &run, removes.len());
        let input = PreparedInput {
            checked_against: table.features().clone(),
            run,
            schema,
            rows_read: 0,
            schema_changes: Vec::new(),
        };
        Ok(Some((input, outcome)))
    }

    /// Reads the input, then commits it as the job's mode does; also gives the commit races
    /// the run lost.
    async fn read_and_write(
        &self,
        table: &mut Table,
        files: &[InputFile],
        on_file_read: impl FnMut(&str),
    ) -> Result<(PreparedInput, Outcome, u32)> {
        let (input, rows) = self.prepare(table, files, on_file_read).await?;
        failpoint::hit("after-read");
        let (outcome, lost_races) = match self.mode {
            WriteMode::Replace => {
                let mut replace = Replace::new(self, &input, rows);
                drive(self, table, &input, &mut replace).await?
            }
            // Nothing to upsert: no commit (and no table created for it), whatever the policy.
            WriteMode::Merge if input.rows_read == 0 => {
                tracing::info!("the input holds no rows: nothing to merge");
                let outcome = match self.dry_run {
                    true => Outcome::Planned {
                        decision: Decision::Skip,
                        version: table.version(),
                        files_to_add: 0,
                        files_to_remove: 0,
                        rows: 0,
                    },
                    false => Outcome::Skipped {
                        version: table.version(),
                        events: Vec::new(),
                    },
                };
                (outcome, 0)
            }
            WriteMode::Merge => {
                let mut merge = Merge::new(self, table, &input, rows).await?;
                drive(self, table, &input, &mut merge).await?
            }
        };
        Ok((input, outcome, lost_races))
    }

    /// Reads and validates the input into a row store (spilling past the memory limit), and
    /// fingerprints it.
    async fn prepare(
        &self,
        table: &Table,
        files: &[InputFile],
        mut on_file_read: impl FnMut(&str),
    ) -> Result<(PreparedInput, RowStore)> {
        let started = std::time::Instant::now();
        let (table_schema, schema_changes) = match table.schema()? {
            Some(schema) if self.rules.schema_evolution != SchemaEvolution::None => {
                let evolved = self.evolved(table, &schema, files).await?;
                (Some(evolved.schema), evolved.changes)
            }
            schema => (schema, Vec::new()),
        };
        let estimate = files.iter().map(InputFile::decoded_size_estimate).sum();
        let buckets = RowStore::bucket_count(estimate, self.memory_limit);
        let checks = match &table_schema {
            Some(schema) => {
                let features = table.features();
                RowChecks::compile(schema, &features.constraints(), features.not_null_columns())
                    .map_err(|e| Error::UnsupportedTableFeature {
                        table: self.table.clone(),
                        feature: e.feature.into(),
                        message: format!(
                            "{}; write with Spark, or change the constraint \
                             (ALTER TABLE ... DROP CONSTRAINT / ADD CONSTRAINT)",
                            e.message
                        ),
                    })?
            }
            None => RowChecks::default(),
        };
        let first = files.first().expect("find_inputs finds files");
        // Fewer files than cores: each is cut into byte ranges, read at once.
        let ranges = parallelism() / files.len();
        let (rows, rows_read, hashes) = match table_schema {
            Some(schema) => {
                let reading = Reading::table(schema, buckets, ranges);
                self.read_files(files, reading, checks, &mut on_file_read)
                    .await?
            }
            // A new table takes the first file's columns. A CSV file's types come from all
            // its rows, in a pass of their own, or, when it is most of the input, from its
            // first rows, with every row of every file checked against them as it is read
            // (less work than a second pass there, more than one over a small first file).
            // Should a value not fit them, the types are inferred from all of the file's rows
            // and the input is read again. Other formats give their columns with the first
            // batch: that file goes alone.
            None => {
                let input_bytes: u64 = files.iter().map(InputFile::size).sum();
                let sample = first.size() * 2 >= input_bytes;
                let inferred = infer_columns(first, ranges, sample).await?;
                let sampled = matches!(inferred, Some(Inferred::Sampled(_)));
                let reading = Reading::new(first, inferred, &self.rules, buckets, ranges)?;
                match self
                    .read_files(files, reading, checks, &mut on_file_read)
                    .await
                {
                    Err(error) if sampled => {
                        tracing::info!(%error, "the types of the first rows do not fit every row: inferring them from all rows");
                        let inferred = infer_columns(first, ranges, false).await?;
                        let reading = Reading::new(first, inferred, &self.rules, buckets, ranges)?;
                        self.read_files(files, reading, RowChecks::default(), &mut on_file_read)
                            .await?
                    }
                    read => read?,
                }
            }
        };
        tracing::debug!(elapsed = ?started.elapsed(), files = files.len(), rows_read, buckets, "input read and checked");
        let fingerprint = fingerprint(&hashes, &self.shaping_options(rows.schema()));
        let input = PreparedInput {
            checked_against: table.features().clone(),
            run: self.identity(fingerprint),
            schema: rows.schema().clone(),
            rows_read,
            schema_changes,
        };
        Ok((input, rows))
    }

    /// The table's schema grown by the columns the input files bring (see `evolve`), found
    /// from each file's columns before any row is read.
    async fn evolved(
        &self,
        table: &Table,
        schema: &arrow::datatypes::Schema,
        files: &[InputFile],
    ) -> Result<Evolved> {
        let partition = &self.rules.partition_column;
        // Built as a list first, as in `read_files`: `Send` for every lifetime.
        let reads: Vec<_> = files
            .iter()
            .map(|file| async move {
                let input = source_columns(file, schema).await?;
                let fields = input
                    .fields()
                    .iter()
                    .filter(|f| f.name() != partition)
                    .map(|f| {
                        // A column the table has keeps its name as it is (other engines' tables
                        // may hold names lakewriter would not create).
                        let data_type = match schema.field_with_name(f.name()) {
                            Ok(_) => kernel_type(&file.name, f)?,
                            Err(_) => table_type(&file.name, f)?,
                        };
                        Ok(arrow::datatypes::Field::new(f.name(), data_type, true))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok::<_, Error>((file.name.clone(), arrow::datatypes::Schema::new(fields)))
            })
            .collect();
        let columns: Vec<_> = futures::stream::iter(reads)
            .buffered(parallelism())
            .try_collect()
            .await?;
        let evolved = evolve(schema, &columns, partition)?;
        if !evolved.changes.is_empty() && table.features().column_mapping() != ColumnMapping::None {
            return Err(Error::UnsupportedTableFeature {
                table: self.table.clone(),
                feature: "columnMapping".into(),
                message: "adding columns to a table with column mapping needs field ids and \
                          physical names, which lakewriter does not assign: add the columns \
                          with Spark (ALTER TABLE ... ADD COLUMNS) and rerun"
                    .into(),
            });
        }
        Ok(evolved)
    }

    /// Reads every input file as `reading` says into a row store, checking each row:
    /// the rows, how many there were, and each file's hash.
    async fn read_files(
        &self,
        files: &[InputFile],
        reading: Reading,
        checks: RowChecks,
        on_file_read: &mut impl FnMut(&str),
    ) -> Result<(RowStore, u64, Vec<[u8; 32]>)> {
        let Reading {
            target,
            types,
            sample,
            buckets,
            ranges,
        } = reading;
        let types = types.as_ref();
        let intake = Intake::new(
            target.clone(),
            checks,
            self.rules.clone(),
            self.scope,
            buckets,
        )
        .checking(sample);
        let mut hashes = Vec::with_capacity(files.len());
        let (alone, others) = files.split_at(usize::from(target.is_none()));
        for file in alone {
            hashes.push(decode(file, types, ranges, intake.clone()).await?.1);
            on_file_read(&file.name);
        }
        // The others as many at once as there are cores; `buffered` keeps file order, so the
        // error reported is the first bad file's.
        // Built as a list first: a closure over `&InputFile` in the stream's type would not
        // be `Send` for every lifetime, which `tokio::spawn` (in backfills) needs.
        let decodes: Vec<_> = others
            .iter()
            .map(|file| {
                let intake = intake.clone();
                async move {
                    let (_, hash) = decode(file, types, ranges, intake).await?;
                    Ok::<_, Error>((file, hash))
                }
            })
            .collect();
        let mut decoded = futures::stream::iter(decodes).buffered(parallelism());
        while let Some((file, hash)) = decoded.try_next().await? {
            hashes.push(hash);
            on_file_read(&file.name);
        }
        let (rows, rows_read) = intake.finish()?;
        Ok((rows, rows_read, hashes))
    }

    /// The run's identity given its input's fingerprint: the run id given, or one derived from
    /// the scope and the fingerprint.
    fn identity(&self, fingerprint: String) -> RunIdentity {
        let run_id = match &self.run_id {
            Some(id) => id.clone(),
            None => format!("{}-{}", self.scope, &fingerprint[..16]),
        };
        RunIdentity {
            run_id,
            fingerprint,
            scope: self.scope,
        }
    }

    /// What this job does to a table, for the feature check.
    fn access(&self) -> Access {
        match self.mode {
            WriteMode::Replace => Access::Replace,
            WriteMode::Merge => Access::Merge,
        }
    }

    /// Every row, deduplicated and ordered bucket by bucket, with the rows per day.
    fn ordered_rows(
        &self,
        rows: RowStore,
    ) -> Result<(Vec<arrow::array::RecordBatch>, HashMap<NaiveDate, u64>)> {
        let mut batches = Vec::new();
        let mut rows_per_day = HashMap::new();
        let schema = rows.schema().clone();
        for bucket in rows.into_buckets()? {
            let days = self.bucket_days(&schema, bucket?, &mut rows_per_day)?;
            batches.extend(days.into_iter().flat_map(|(_, slices)| slices));
        }
        Ok((batches, rows_per_day))
    }

    /// One bucket deduplicated, ordered and cut by day (each day's rows in one or more slices,
    /// in order); its rows are added to `rows_per_day`.
    fn bucket_days(
        &self,
        schema: &SchemaRef,
        bucket: Vec<arrow::array::RecordBatch>,
        rows_per_day: &mut HashMap<NaiveDate, u64>,
    ) -> Result<Vec<(NaiveDate, Vec<arrow::array::RecordBatch>)>> {
        let ordered = dedup_and_order(schema, bucket, &self.rules)?;
        let days = split_by_day(&ordered, &self.rules.partition_column);
        for (day, slices) in &days {
            let rows: usize = slices.iter().map(|slice| slice.num_rows()).sum();
            *rows_per_day.entry(*day).or_default() += rows as u64;
        }
        Ok(days)
    }

    /// Deduplicates and orders the rows a bucket at a time and writes each bucket's days as
    /// data files into `table`, plus an empty file for each day of the scope without rows.
    /// Without a table (a dry run) it only counts. Files of a write that fails are deleted.
    async fn write_rows(&self, rows: RowStore, table: Option<&Table>) -> Result<Written> {
        let mut written = Written::default();
        let result = self.write_buckets(rows, table, &mut written).await;
        if let (Err(_), Some(table)) = (&result, table) {
            table.discard(&written.adds).await;
        }
        result.map(|()| written)
    }

    async fn write_buckets(
        &self,
        rows: RowStore,
        table: Option<&Table>,
        written: &mut Written,
    ) -> Result<()> {
        let column = &self.rules.partition_column;
        let schema = rows.schema().clone();
        for bucket in rows.into_buckets()? {
            let started = std::time::Instant::now();
            let days = self.bucket_days(&schema, bucket?, &mut written.rows_per_day)?;
            tracing::debug!(elapsed = ?started.elapsed(), "bucket deduplicated and ordered");
            match table {
                Some(table) => {
                    let started = std::time::Instant::now();
                    written
                        .adds
                        .extend(table.write_days(&schema, column, days).await?);
                    tracing::debug!(elapsed = ?started.elapsed(), "bucket encoded and stored");
                }
                // At least a file per day and bucket: more only when a large day is cut.
                None => written.files += days.len() as u64,
            }
        }
        let empty = self
            .scope
            .days()
            .filter(|day| !written.rows_per_day.contains_key(day));
        match table {
            Some(table) => written
                .adds
                .extend(table.write_empty_days(&schema, column, empty).await?),
            None => written.files += empty.count() as u64,
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        self.check_scope_width()?;
        self.input.csv.check()?;
        if let Some(format) = &self.rules.date_format {
            crate::cast::check_format("--date-format", format, false)?;
        }
        if let Some(format) = &self.rules.timestamp_format {
            crate::cast::check_format("--timestamp-format", format, true)?;
        }
        if let Some(run_id) = &self.run_id
            && (run_id.is_empty() || run_id.len() > 256 || run_id.chars().any(char::is_control))
        {
            return Err(Error::InvalidOption(format!(
                "run id {run_id:?} must be 1 to 256 characters without control characters"
            )));
        }
        if self.mode == WriteMode::Merge {
            if self.rules.schema_evolution != SchemaEvolution::None {
                return Err(Error::InvalidOption(
                    "--schema-evolution takes --mode replace: a merge keeps the table's \
                     columns"
                        .into(),
                ));
            }
            if self.rules.key.is_empty() {
                return Err(Error::InvalidOption(
                    "--mode merge needs --key: the columns that identify a row".into(),
                ));
            }
            if self.policy == RerunPolicy::Fail {
                return Err(Error::InvalidOption(
                    "--on-rerun fail refuses partitions other runs wrote; a merge owns no \
                     partition: use auto, skip or replace"
                        .into(),
                ));
            }
        }
        let rules = &self.rules;
        let named = rules
            .key
            .iter()
            .chain(&rules.order_by)
            .chain(&rules.partition_from);
        if let Some(empty) = named
            .chain([&rules.partition_column])
            .find(|c| c.trim().is_empty())
        {
            return Err(Error::InvalidOption(format!(
                "column name {empty:?} is empty: check --key, --order-by and the partition options"
            )));
        }
        Ok(())
    }

    /// Every option that changes the table's content, for the fingerprint. Options added
    /// since the first release enter it only when they are not the default, so that the runs
    /// of earlier versions keep matching.
    fn shaping_options(&self, schema: &arrow::datatypes::Schema) -> Vec<(&'static str, String)> {
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{}:{}", f.name(), f.data_type()))
            .collect();
        let mut options = vec![
            ("scope", self.scope.to_string()),
            ("partition_column", self.rules.partition_column.clone()),
            (
                "partition_from",
                self.rules.partition_from.clone().unwrap_or_default(),
            ),
            ("key", self.rules.key.join(",")),
            ("order_by", self.rules.order_by.clone().unwrap_or_default()),
            ("schema", columns.join(",")),
        ];
        options.extend(self.input.csv.fingerprint_text().map(|text| ("csv", text)));
        options.extend(self.rules.date_format.clone().map(|f| ("date_format", f)));
        if self.rules.schema_evolution != SchemaEvolution::None {
            options.push(("schema_evolution", self.rules.schema_evolution.to_string()));
        }
        options.extend((self.rules.timestamp_format.clone()).map(|f| ("timestamp_format", f)));
        options
    }
}

/// How a run reads its input files.
struct Reading {
    /// The schema rows take: the table's, or a new table's from its first file (`None`: from
    /// that file's first batch).
    target: Option<SchemaRef>,
    /// The types text is parsed with.
    types: Option<Schema>,
    /// With types from the first file's first rows: what every row must fit.
    sample: Option<Arc<Sampled>>,
    /// Buckets rows are spread over (one: in memory).
    buckets: usize,
    /// Byte ranges a large file is cut into.
    ranges: usize,
}

impl Reading {
    /// Reading into an existing table of `schema`.
    fn table(schema: SchemaRef, buckets: usize, ranges: usize) -> Self {
        Reading {
            types: Some(text_types(&schema, None)),
            target: Some(schema),
            sample: None,
            buckets,
            ranges,
        }
    }

    /// Reading into a new table whose first file, `first`, has the `inferred` columns.
    fn new(
        first: &InputFile,
        inferred: Option<Inferred>,
        rules: &RowRules,
        buckets: usize,
        ranges: usize,
    ) -> Result<Self> {
        let (columns, sample) = match inferred {
            Some(Inferred::Whole(columns)) if !columns.fields().is_empty() => (columns, None),
            Some(Inferred::Sampled(sampled)) => (sampled.columns.clone(), Some(Arc::new(sampled))),
            // Another format (its first batch gives the columns), or no columns: decoding the
            // empty file says so.
            _ => {
                return Ok(Reading {
                    target: None,
                    types: None,
                    sample: None,
                    buckets,
                    ranges,
                });
            }
        };
        Ok(Reading {
            target: Some(target_schema(&first.name, &columns, None, rules)?),
            types: Some(text_types(&columns, sample.as_deref())),
            sample,
            buckets,
            ranges,
        })
    }
}

/// How many files are read at once: one per core.
fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The input of a run, read and checked.
struct PreparedInput {
    /// The table rules the rows were checked against (constraints, column mapping ...).
    checked_against: TableFeatures,
    run: RunIdentity,
    schema: SchemaRef,
    rows_read: u64,
    /// The columns the run adds to the table (`--schema-evolution add-columns`).
    schema_changes: Vec<SchemaChange>,
}

/// The data files a run wrote, not yet committed.
#[derive(Default)]
struct Written {
    adds: Vec<Add>,
    rows_per_day: HashMap<NaiveDate, u64>,
    /// Without a table (a dry run): the files the run would write, at the least.
    files: u64,
}

impl Written {
    fn rows(&self) -> u64 {
        self.rows_per_day.values().sum()
    }
}

/// What the run did to the table.
enum Outcome {
    Planned {
        decision: Decision,
        version: Option<u64>,
        files_to_add: u64,
        files_to_remove: u64,
        rows: u64,
    },
    Skipped {
        version: Option<u64>,
        /// The commits this run matched, to announce if they never were.
        events: Vec<CommitEvent>,
    },
    Committed {
        version: u64,
        files_added: u64,
        files_removed: u64,
        rows: u64,
        events: Vec<CommitEvent>,
    },
}

impl PreparedInput {
    fn report(&self, outcome: Outcome) -> WriteReport {
        let (status, version, rows_written, files_added, files_removed, planned_action) =
            match outcome {
                Outcome::Planned {
                    decision: Decision::Skip,
                    version,
                    ..
                } => (RunStatus::Planned, version, 0, 0, 0, Some("skip")),
                Outcome::Planned {
                    decision: Decision::Replace,
                    version,
                    files_to_add,
                    files_to_remove,
                    rows,
                } => (
                    RunStatus::Planned,
                    version,
                    rows,
                    files_to_add,
                    files_to_remove,
                    Some("replace"),
                ),
                Outcome::Skipped { version, .. } => (RunStatus::Skipped, version, 0, 0, 0, None),
                Outcome::Committed {
                    version,
                    files_added,
                    files_removed,
                    rows,
                    ..
                } => (
                    RunStatus::Committed,
                    Some(version),
                    rows,
                    files_added,
                    files_removed,
                    None,
                ),
            };
        WriteReport {
            status,
            version,
            run_id: self.run.run_id.clone(),
            fingerprint: self.run.fingerprint.clone(),
            partitions: self.run.scope.days().map(|d| d.to_string()).collect(),
            rows_read: self.rows_read,
            rows_written,
            files_added,
            files_removed,
            planned_action,
            notification: None,
            lost_races: 0,
            schema_changes: match status {
                RunStatus::Committed | RunStatus::Planned => self.schema_changes.clone(),
                _ => Vec::new(),
            },
        }
    }
}
