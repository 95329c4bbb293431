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
pub async fn runs(
    table: &str,
    partition_column: &str,
    options: &StorageOptions,
) -> Result<Vec<PartitionRun>> {
    let table = Table::open(table, options).await?;
    table.check_partitioning(partition_column)?;
    let ledger = table.ledger(partition_column)?;
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
pub async fn history(
    table: &str,
    limit: Option<usize>,
    options: &StorageOptions,
) -> Result<Vec<CommitSummary>> {
    let table = Table::open(table, options).await?;
    Ok(table
        .commits(limit)
        .await?
        .into_iter()
        .map(|info| {
            let lakewriter = info.info.get("lakewriter").cloned();
            let version = lakewriter
                .as_ref()
                .and_then(|l| l.get("version"))
                .and_then(|v| v.as_u64())
                .or(info.read_version.map(|v| v as u64 + 1));
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

/// What `vacuum` deleted, or would delete on a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct VacuumReport {
    /// Whether nothing was deleted because this was a dry run.
    pub dry_run: bool,
    /// The data files deleted (or deletable), relative to the table.
    pub files: Vec<String>,
}

/// Deletes the data files that no version within `retain_hours` references: files removed
/// longer ago than that, and files no commit ever referenced (left by a crashed run or one that
/// lost a race) that are older than that. A file the current version references is never
/// deleted. Retentions below the table's `delta.deletedFileRetentionDuration` (a week unless
/// set) need `force`: they break time travel and can delete a running writer's files.
pub async fn vacuum(
    table: &str,
    retain_hours: u64,
    force: bool,
    dry_run: bool,
    options: &StorageOptions,
) -> Result<VacuumReport> {
    let table = Table::open(table, options).await?;
    table.check_access(Access::Vacuum)?;
    let retain = chrono::Duration::hours(retain_hours.try_into().unwrap_or(i64::MAX / 3_600_000));
    let files = table.vacuum(retain, force, dry_run).await?;
    Ok(VacuumReport { dry_run, files })
}
