//! Optimize: compact the small files of a table's days, keeping the run ledger.
//!
//! A day whose files are more than its bytes need at the target size is read whole (delta-rs'
//! DataFusion provider), written again as one file (rolled over at lakewriter's file size),
//! and committed with `dataChange = false`, its files' run record carried onto the new file:
//! `runs` is unchanged and an identical rerun of the day is still skipped. A compact day is
//! left alone, so a rerun of `optimize` commits nothing. The commit is a put-if-absent like
//! every lakewriter commit; after losing a race the table is reloaded and the days another
//! writer changed meanwhile are given up (the writer's data wins), the others committed.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::failpoint;
use crate::features::{Access, ColumnMapping};
use crate::scope::PartitionScope;
use crate::storage::StorageOptions;
use crate::table::{CommitOutcome, LooseDay, MAX_COMMIT_ATTEMPTS, Table, back_off};

/// The target file size unless told otherwise: delta-rs' default for OPTIMIZE (100 MiB).
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 100 * 1024 * 1024;

/// A compaction of a table's days (all, or a scope's).
///
/// ```no_run
/// # async fn example() -> lakewriter::Result<()> {
/// use lakewriter::{Optimize, PartitionScope};
/// let report = Optimize::new("./lake/sales")
///     .scope(PartitionScope::parse("2024-01-01", "2024-01-31")?)
///     .run()
///     .await?;
/// println!("{} files into {}", report.files_removed, report.files_added);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Optimize {
    table: String,
    scope: Option<PartitionScope>,
    partition_column: String,
    target_file_size: u64,
    storage_options: StorageOptions,
}

/// What an optimize did.
#[derive(Debug, Clone, Serialize)]
pub struct OptimizeReport {
    /// `committed`, or `skipped` when every day was compact (or changed meanwhile).
    pub status: &'static str,
    /// The table's version after the optimize.
    pub version: Option<u64>,
    /// The days compacted.
    pub days: Vec<String>,
    /// The small files the compacted days had.
    pub files_removed: u64,
    /// The files they have now.
    pub files_added: u64,
}

impl Optimize {
    /// An optimize of every day of the table at `table` (a folder, `file://` or `s3://` URI).
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            scope: None,
            partition_column: "date".into(),
            target_file_size: DEFAULT_TARGET_FILE_SIZE,
            storage_options: StorageOptions::new(),
        }
    }

    /// Compacts only the days of `scope`.
    pub fn scope(mut self, scope: PartitionScope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// The table's DATE partition column (default `date`).
    pub fn partition_column(mut self, column: impl Into<String>) -> Self {
        self.partition_column = column.into();
        self
    }

    /// A day is compacted when it has more files than its bytes need at this size.
    pub fn target_file_size(mut self, bytes: u64) -> Self {
        self.target_file_size = bytes.max(1);
        self
    }

    /// Adds an object-store option (e.g. `aws_endpoint`, `allow_http`).
    pub fn storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.insert(key.into(), value.into());
        self
    }

    /// Compacts the loose days in one commit.
    pub async fn run(&self) -> Result<OptimizeReport> {
        let mut table = Table::open(&self.table, &self.storage_options).await?;
        table.check_access(Access::Replace)?;
        table.check_partitioning(&self.partition_column)?;
        if table.features().column_mapping() != ColumnMapping::None {
            return Err(Error::UnsupportedTableFeature {
                table: self.table.clone(),
                feature: "columnMapping".into(),
                message: "lakewriter does not compact tables with column mapping yet: use \
                          Spark's OPTIMIZE (lakewriter then replaces such days on their next \
                          rerun, see the README)"
                    .into(),
            });
        }
        let column = &self.partition_column;
        let target = self.target_file_size;
        let planned = table.loose_days(column, self.scope, target)?;
        let mut days = self.rewrite(&table, planned).await?;
        for attempt in 1..=MAX_COMMIT_ATTEMPTS {
            if days.is_empty() {
                return Ok(self.report("skipped", table.version(), &[]));
            }
            let version = table.version().map_or(0, |v| v + 1);
            let outcome = table.commit_compaction(version, &days, target).await?;
            if let CommitOutcome::Committed(()) = outcome {
                failpoint::hit("after-commit");
                table.checkpoint_if_due(version).await;
                return Ok(self.report("committed", Some(version), &days));
            }
            back_off(attempt).await;
            table.reload().await?;
            let written: Vec<_> = days.iter().flat_map(|(_, w)| w.clone()).collect();
            if table.references(&written)? {
                return Ok(self.report("committed", Some(version), &days));
            }
            if let CommitOutcome::Unknown(error) = outcome {
                return Err(error);
            }
            // Days another writer changed meanwhile are its: their new files go.
            let loose: Vec<&LooseDay> = days.iter().map(|(loose, _)| loose).collect();
            let unchanged = table.unchanged(column, &loose)?;
            let mut kept = Vec::with_capacity(days.len());
            for ((loose, written), unchanged) in days.into_iter().zip(unchanged) {
                match unchanged {
                    true => kept.push((loose, written)),
                    false => table.discard(&written).await,
                }
            }
            days = kept;
        }
        let written: Vec<_> = days.into_iter().flat_map(|(_, w)| w).collect();
        table.discard(&written).await;
        Err(Error::CommitConflict {
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// Each loose day read and written again (not yet committed), with its new files.
    async fn rewrite(
        &self,
        table: &Table,
        planned: Vec<LooseDay>,
    ) -> Result<Vec<(LooseDay, Vec<deltalake::kernel::Add>)>> {
        let Some(schema) = table.schema()? else {
            return Ok(Vec::new());
        };
        let mut days = Vec::with_capacity(planned.len());
        for loose in planned {
            let column = &self.partition_column;
            let rows = table.read_day(&schema, column, loose.day).await?;
            // A day of empty files becomes one empty file, which keeps its record.
            let written = match rows.num_rows() {
                0 => table.write_empty_days(&schema, column, [loose.day]).await,
                _ => {
                    let day = vec![(loose.day, vec![rows])];
                    table.write_days(&schema, column, day).await
                }
            };
            match written {
                Ok(written) => days.push((loose, written)),
                Err(error) => {
                    let done: Vec<_> = days.into_iter().flat_map(|(_, w): (_, Vec<_>)| w).collect();
                    table.discard(&done).await;
                    return Err(error);
                }
            }
        }
        failpoint::hit("after-upload");
        Ok(days)
    }

    fn report(
        &self,
        status: &'static str,
        version: Option<u64>,
        days: &[(LooseDay, Vec<deltalake::kernel::Add>)],
    ) -> OptimizeReport {
        OptimizeReport {
            status,
            version,
            days: days.iter().map(|(l, _)| l.day.to_string()).collect(),
            files_removed: days.iter().map(|(l, _)| l.files.len() as u64).sum(),
            files_added: days.iter().map(|(_, w)| w.len() as u64).sum(),
        }
    }
}
