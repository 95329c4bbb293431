//! Snapshot reads: the table's active files by day, the ledger they carry, the removes that
//! replacing a scope needs, and the commit history.

use chrono::NaiveDate;
use deltalake::kernel::{Add, CommitInfo, Remove};
use futures::TryStreamExt;

use super::Table;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::scope::PartitionScope;

impl Table {
    /// The table's active files as (partition date, file).
    pub(super) fn files(&self, column: &str) -> Result<Vec<(NaiveDate, Add)>> {
        if !self.exists {
            return Ok(Vec::new());
        }
        self.files_in(self.snapshot()?, column)
    }

    /// The active files of `snapshot` (this table's, at some version) as (partition date,
    /// file).
    pub(super) fn files_in(
        &self,
        snapshot: &deltalake::table::state::DeltaTableState,
        column: &str,
    ) -> Result<Vec<(NaiveDate, Add)>> {
        let key = self.partition_key(column);
        let mut files = Vec::new();
        for view in snapshot.log_data().iter() {
            // `add_action` is deprecated in favour of Arrow arrays, but it is the only public
            // accessor that returns a file's tags, which hold the ledger.
            #[allow(deprecated)]
            let add = view.add_action();
            let value = add.partition_values.get(&key).cloned().flatten();
            let date = value
                .as_deref()
                .and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
                .ok_or_else(|| Error::BadTable {
                    table: self.uri.clone(),
                    message: format!(
                        "file {} has partition value {value:?} for '{column}', not a date",
                        add.path
                    ),
                })?;
            files.push((date, add));
        }
        Ok(files)
    }

    /// Whether the snapshot references the files this process wrote. Data file names carry a
    /// random UUID, so a match means our own commit landed; a run id and commit time could be
    /// shared by a concurrent identical run in the same millisecond.
    pub(crate) fn references(&self, written: &[Add]) -> Result<bool> {
        let Some(first) = written.first() else {
            return Ok(false);
        };
        if !self.exists {
            return Ok(false);
        }
        let name = file_name(&first.path);
        Ok(self
            .snapshot()?
            .log_data()
            .iter()
            .any(|view| file_name(&view.path()) == name))
    }

    /// The newest `limit` commits that the log still holds, newest first.
    pub(crate) async fn commits(&self, limit: Option<usize>) -> Result<Vec<CommitInfo>> {
        if !self.exists {
            return Ok(Vec::new());
        }
        self.delta
            .history(limit)
            .try_collect()
            .await
            .map_err(|e| Error::internal(format!("reading the history of {}", self.uri), e))
    }

    /// The ledger: who last wrote each partition.
    pub(crate) fn ledger(&self, column: &str) -> Result<Ledger> {
        Ok(ledger_of(&self.files(column)?))
    }

    /// The ledger, and remove actions for every file in the scope's partitions: one pass over
    /// the snapshot's files serves both.
    pub(crate) fn ledger_and_removals(
        &self,
        column: &str,
        scope: &PartitionScope,
    ) -> Result<(Ledger, Vec<Remove>)> {
        let files = self.files(column)?;
        let ledger = ledger_of(&files);
        let now = chrono::Utc::now().timestamp_millis();
        let removes = files
            .into_iter()
            .filter(|(date, _)| scope.contains(*date))
            .map(|(_, add)| Remove {
                path: add.path,
                // A file is identified by its path and its deletion vector: a remove without
                // the vector would leave the rows Spark's DELETE kept (PROTOCOL.md,
                // "Deletion Vectors").
                deletion_vector: add.deletion_vector,
                data_change: true,
                deletion_timestamp: Some(now),
                extended_file_metadata: Some(true),
                partition_values: Some(add.partition_values),
                size: Some(add.size),
                ..Default::default()
            })
            .collect();
        Ok((ledger, removes))
    }
}

/// The ledger of the active files. A file with a deletion vector lost rows to another
/// writer's DELETE, UPDATE or MERGE after the run that wrote it, so its day counts as another
/// writer's data whatever its tags say (Spark keeps a file's tags when it adds the vector).
pub(super) fn ledger_of(files: &[(NaiveDate, Add)]) -> Ledger {
    Ledger::from_files(files.iter().map(|(date, add)| {
        let tags = match add.deletion_vector {
            Some(_) => None,
            None => add.tags.as_ref(),
        };
        (*date, tags)
    }))
}

/// The last segment of a table-relative path.
pub(super) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
