//! A table for people: which run wrote each partition, the commit log, and vacuum.

use serde::Serialize;

use crate::error::Result;
use crate::features::Access;
use crate::ledger::PartitionOwner;
use crate::storage::StorageOptions;
use crate::table::Table;

/// The run that last wrote one partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionRun {
    /// The partition's date.
    pub date: String,
    /// The run id, or `None` when the partition's files carry no single lakewriter run.
    pub run_id: Option<String>,
    /// The run's input fingerprint.
    pub fingerprint: Option<String>,
    /// The table version that run committed.
    pub version: Option<u64>,
    /// When that run committed (UTC).
    pub committed_at: Option<String>,
    /// Rows that run wrote into the partition.
    pub rows: Option<u64>,
    /// Number of data files in the partition.
    pub files: u64,
}

/// Lists, per partition, the run that last wrote it. Reads only the latest snapshot.
///
/// ```no_run
/// # async fn example() -> lakewriter::Result<()> {
/// for run in lakewriter::Runs::new("./lake/sales").run().await? {
///     println!("{} {:?}", run.date, run.run_id);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Runs {
    table: String,
    partition_column: String,
    storage_options: StorageOptions,
}

impl Runs {
    /// The runs of the table at `table` (a folder, `file://` or `s3://` URI).
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            partition_column: "date".into(),
            storage_options: StorageOptions::new(),
        }
    }

    /// Names the table's DATE partition column (default `date`).
    pub fn partition_column(mut self, column: impl Into<String>) -> Self {
        self.partition_column = column.into();
        self
    }

    /// Adds an object-store option (e.g. `aws_endpoint`, `allow_http`).
    pub fn storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.insert(key.into(), value.into());
        self
    }

    /// Reads the table and lists its partitions in date order.
    pub async fn run(&self) -> Result<Vec<PartitionRun>> {
        let table = Table::open(&self.table, &self.storage_options).await?;
        table.check_partitioning(&self.partition_column)?;
        let ledger = table.ledger(&self.partition_column)?;
        Ok(ledger
            .partitions()
            .map(|(date, owner)| {
                let record = match owner {
                    PartitionOwner::Run(record) => Some(record),
                    PartitionOwner::Unknown => None,
                };
                PartitionRun {
                    date: date.to_string(),
                    run_id: record.map(|r| r.run_id.clone()),
                    fingerprint: record.map(|r| r.fingerprint.clone()),
                    version: record.map(|r| r.version),
                    committed_at: record.map(|r| r.committed_at.clone()),
                    rows: record.map(|r| r.rows),
                    files: ledger.file_count(date),
                }
            })
            .collect())
    }
}

/// One commit of the table's log.
#[derive(Debug, Clone, Serialize)]
pub struct CommitSummary {
    /// The version, when the commit records it (lakewriter's commits do).
    pub version: Option<u64>,
    /// Commit time in milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// The Delta operation (`WRITE`, `OPTIMIZE` ...).
    pub operation: Option<String>,
    /// `userMetadata`: lakewriter puts the run id there.
    pub user_metadata: Option<String>,
    /// lakewriter's own record of the run, if this commit is one.
    pub lakewriter: Option<serde_json::Value>,
}

/// The commits the log still holds, newest first (log retention removes old ones).
#[derive(Debug, Clone)]
pub struct History {
    table: String,
    limit: Option<usize>,
    storage_options: StorageOptions,
}

impl History {
    /// The history of the table at `table` (a folder, `file://` or `s3://` URI).
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            limit: None,
            storage_options: StorageOptions::new(),
        }
    }

    /// Only the newest `limit` commits (default: all the log holds).
    pub fn limit(mut self, limit: Option<usize>) -> Self {
        self.limit = limit;
        self
    }

    /// Adds an object-store option (e.g. `aws_endpoint`, `allow_http`).
    pub fn storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.insert(key.into(), value.into());
        self
    }

    /// Reads the commits.
    pub async fn run(&self) -> Result<Vec<CommitSummary>> {
        let table = Table::open(&self.table, &self.storage_options).await?;
        Ok(table
            .commits(self.limit)
            .await?
            .into_iter()
            .map(|info| {
                let lakewriter = info.info.get("lakewriter").cloned();
                let version = lakewriter
                    .as_ref()
                    .and_then(|l| l.get("version"))
                    .and_then(|v| v.as_u64())
                    .or(info.read_version.map(|v| v + 1));
                CommitSummary {
                    version,
                    timestamp: info.timestamp,
                    operation: info.operation,
                    user_metadata: info.user_metadata,
                    lakewriter,
                }
            })
            .collect())
    }
}

/// What `vacuum` deleted, or would delete on a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct VacuumReport {
    /// Whether nothing was deleted because this was a dry run.
    pub dry_run: bool,
    /// The data files deleted (or deletable), relative to the table.
    pub files: Vec<String>,
    /// With `log`: how many expired commit files of the log were deleted (none on a dry run).
    pub log_files_deleted: usize,
}

/// Deletes the data files that no version within the retention references: files removed
/// longer ago than that, and files no commit ever referenced (left by a crashed run or one that
/// lost a race) that are older than that. A file the current version references is never
/// deleted. Retentions below the table's `delta.deletedFileRetentionDuration` (a week unless
/// set) need [`Vacuum::force`]: they break time travel and can delete a running writer's files.
#[derive(Debug, Clone)]
pub struct Vacuum {
    table: String,
    retain_hours: u64,
    force: bool,
    dry_run: bool,
    log: Option<Option<u64>>,
    storage_options: StorageOptions,
}

impl Vacuum {
    /// A vacuum of the table at `table` (a folder, `file://` or `s3://` URI), keeping a week.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            retain_hours: 168,
            force: false,
            dry_run: false,
            log: None,
            storage_options: StorageOptions::new(),
        }
    }

    /// Keeps the files versions of the last `hours` reference (default 168, a week).
    pub fn retain_hours(mut self, hours: u64) -> Self {
        self.retain_hours = hours;
        self
    }

    /// Allows a retention below the table's `delta.deletedFileRetentionDuration`.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Also deletes the log's expired commit files: older than `retain_hours` (the table's
    /// `delta.logRetentionDuration` when `None`, 30 days unless set) and before a checkpoint
    /// that makes them unneeded. Time travel to those versions ends.
    pub fn log(mut self, retain_hours: Option<u64>) -> Self {
        self.log = Some(retain_hours);
        self
    }

    /// Lists what would be deleted, deletes nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Adds an object-store option (e.g. `aws_endpoint`, `allow_http`).
    pub fn storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.insert(key.into(), value.into());
        self
    }

    /// Vacuums (or, for a dry run, lists).
    pub async fn run(&self) -> Result<VacuumReport> {
        let table = Table::open(&self.table, &self.storage_options).await?;
        table.check_access(Access::Vacuum)?;
        let hours = self.retain_hours.try_into().unwrap_or(i64::MAX / 3_600_000);
        let files = table
            .vacuum(chrono::Duration::hours(hours), self.force, self.dry_run)
            .await?;
        let log_files_deleted = match self.log {
            Some(log_hours) if !self.dry_run => {
                let retention = log_hours
                    .map(|h| chrono::Duration::hours(h.min(i64::MAX as u64 / 3_600_000) as i64));
                table.expire_log(retention).await?
            }
            _ => 0,
        };
        Ok(VacuumReport {
            dry_run: self.dry_run,
            files,
            log_files_deleted,
        })
    }
}
