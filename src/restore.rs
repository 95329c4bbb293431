//! Restore: a scope's days made again what they were at an earlier version (or what a run
//! wrote), in one commit: that version's files of those days added back with their run
//! records, today's removed. Delta's RESTORE is whole-table; this is per day. `runs` then
//! shows the restored run, so an identical rerun of that run's input is skipped and the next
//! run of newer input replaces the days again. Refused when the files are gone (vacuumed).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::failpoint;
use crate::features::Access;
use crate::scope::PartitionScope;
use crate::storage::StorageOptions;
use crate::table::{CommitOutcome, MAX_COMMIT_ATTEMPTS, Table, back_off};

/// Which state the days go back to.
#[derive(Debug, Clone)]
enum Target {
    Version(u64),
    Run(String),
}

/// A restore of a scope's days.
///
/// ```no_run
/// # async fn example() -> lakewriter::Result<()> {
/// use lakewriter::{PartitionScope, Restore};
/// let report = Restore::to_version("./lake/sales", PartitionScope::parse("2024-01-02", "2024-01-02")?, 3)
///     .run()
///     .await?;
/// println!("{:?}", report.version);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Restore {
    table: String,
    scope: PartitionScope,
    target: Target,
    partition_column: String,
    storage_options: StorageOptions,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// `committed`, or `skipped` when the days already were as at that version.
    pub status: &'static str,
    /// The table's version after the restore.
    pub version: Option<u64>,
    /// The version the days were restored to.
    pub restored_from: u64,
    /// The files removed (today's files of the days).
    pub files_removed: u64,
    /// The files added back (that version's files of the days).
    pub files_added: u64,
}

impl Restore {
    /// Restores `scope`'s days of the table at `table` to what they were at `version`.
    pub fn to_version(table: impl Into<String>, scope: PartitionScope, version: u64) -> Self {
        Self::new(table.into(), scope, Target::Version(version))
    }

    /// Restores `scope`'s days to what the run `run_id` wrote (the version it committed, found
    /// in the log's commit records).
    pub fn to_run(
        table: impl Into<String>,
        scope: PartitionScope,
        run_id: impl Into<String>,
    ) -> Self {
        Self::new(table.into(), scope, Target::Run(run_id.into()))
    }

    fn new(table: String, scope: PartitionScope, target: Target) -> Self {
        Self {
            table,
            scope,
            target,
            partition_column: "date".into(),
            storage_options: StorageOptions::new(),
        }
    }

    /// The table's DATE partition column (default `date`).
    pub fn partition_column(mut self, column: impl Into<String>) -> Self {
        self.partition_column = column.into();
        self
    }

    /// Adds an object-store option (e.g. `aws_endpoint`, `allow_http`).
    pub fn storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.insert(key.into(), value.into());
        self
    }

    /// Restores the days in one commit.
    pub async fn run(&self) -> Result<RestoreReport> {
        let mut table = Table::open(&self.table, &self.storage_options).await?;
        table.check_access(Access::Replace)?;
        table.check_partitioning(&self.partition_column)?;
        let column = &self.partition_column;
        let from = match &self.target {
            Target::Version(version) => *version,
            Target::Run(run_id) => table.version_of_run(run_id).await?.ok_or_else(|| {
                Error::InvalidOption(format!(
                    "no commit of run '{run_id}' is in the table's log (it may be older than the \
                     log's retention): restore by --version instead"
                ))
            })?,
        };
        if table.version().is_none_or(|latest| from > latest) {
            return Err(Error::InvalidOption(format!(
                "the table has no version {from}: see `lakewriter history`"
            )));
        }
        let restored: Vec<_> = table
            .files_at(from, column, &self.scope)
            .await?
            .into_iter()
            .map(|(_, add)| add)
            .collect();
        for attempt in 1..=MAX_COMMIT_ATTEMPTS {
            // As Delta's RESTORE: remove what the days hold and did not then, add back what
            // they held then and do not now. A file is its path and its deletion vector.
            let (_, mut removes) = table.ledger_and_removals(column, &self.scope)?;
            let added: Vec<_> = restored
                .iter()
                .filter(|then| {
                    !removes.iter().any(|now| {
                        now.path == then.path && now.deletion_vector == then.deletion_vector
                    })
                })
                .cloned()
                .collect();
            removes.retain(|now| {
                !restored.iter().any(|then| {
                    now.path == then.path && now.deletion_vector == then.deletion_vector
                })
            });
            if removes.is_empty() && added.is_empty() {
                return Ok(self.report("skipped", table.version(), from, 0, 0));
            }
            let counts = (removes.len() as u64, added.len() as u64);
            let version = table.version().map_or(0, |v| v + 1);
            let outcome = table
                .commit_restore(version, from, &self.scope, removes, &added)
                .await?;
            match outcome {
                CommitOutcome::Committed(()) => {
                    failpoint::hit("after-commit");
                    table.checkpoint_if_due(version).await;
                    return Ok(self.report("committed", Some(version), from, counts.0, counts.1));
                }
                CommitOutcome::Unknown(error) => return Err(error),
                // Another writer took the version: decide again on the table as it is now.
                CommitOutcome::LostRace => {
                    back_off(attempt).await;
                    table.reload().await?;
                }
            }
        }
        Err(Error::CommitConflict {
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    fn report(
        &self,
        status: &'static str,
        version: Option<u64>,
        restored_from: u64,
        files_removed: u64,
        files_added: u64,
    ) -> RestoreReport {
        RestoreReport {
            status,
            version,
            restored_from,
            files_removed,
            files_added,
        }
    }
}
