//! Merge: upsert rows by key in one commit through delta-rs, recorded as a `txn` action.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::datafusion::common::Column;
use deltalake::datafusion::prelude::{Expr, SessionContext};
use deltalake::kernel::Transaction;

use super::Table;
use super::commit::{CommitOutcome, commit_properties};
use super::files::parquet_writer_properties;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::ledger::{CommitAttempt, RunIdentity};
use crate::rules::RowRules;

/// How many of the newest commits a skipped merge rerun searches for its own commit, to
/// announce it again; each is one log read.
pub(super) const MERGE_LOOKBACK: usize = 100;

/// What a merge upserts.
pub(crate) struct Upsert<'a> {
    /// The rows, deduplicated: one per key.
    pub(crate) rows: Vec<RecordBatch>,
    /// Their (the table's) columns.
    pub(crate) schema: &'a SchemaRef,
    /// The key, the partition column and the order that decides which row wins.
    pub(crate) rules: &'a RowRules,
    /// The run, recorded in the commit.
    pub(crate) run: &'a RunIdentity,
    /// How many rows, for the commit's record.
    pub(crate) rows_total: u64,
}

/// What a landed merge changed.
pub(crate) struct Merged {
    /// Data files the merge added.
    pub(crate) files_added: u64,
    /// Data files it removed (rewritten).
    pub(crate) files_removed: u64,
}

/// The `txn` action a merge run leaves: the app id names the run, the version carries the
/// first 60 bits of its input fingerprint. Like Spark's idempotent writes (`txnAppId`,
/// `txnVersion`), it lives in the snapshot and in checkpoints, so finding it does not read
/// history; unlike them the version is not a counter, which no reader relies on.
pub(super) fn merge_transaction(run: &RunIdentity) -> Transaction {
    Transaction::new(
        merge_app_id(&run.run_id),
        fingerprint_as_version(&run.fingerprint),
    )
}

pub(super) fn merge_app_id(run_id: &str) -> String {
    format!("lakewriter-merge:{run_id}")
}

/// The first 60 bits of a hex fingerprint: a positive `txn` version.
pub(crate) fn fingerprint_as_version(fingerprint: &str) -> i64 {
    i64::from_str_radix(&fingerprint[..15], 16).expect("a hex fingerprint")
}

impl Table {
    /// The input fingerprint a merge run with this id recorded (see [`merge_transaction`]),
    /// if any: read from the snapshot's `txn` actions, not from history.
    pub(crate) async fn merged_input(&self, run_id: &str) -> Result<Option<i64>> {
        if !self.exists {
            return Ok(None);
        }
        self.snapshot()?
            .transaction_version(self.delta.log_store().as_ref(), merge_app_id(run_id))
            .await
            .map_err(|e| Error::internal(format!("reading the runs of {}", self.uri), e))
    }

    /// The version and commit time of this run's merge, looked up in the commit metadata of
    /// the newest `MERGE_LOOKBACK` commits (only for announcing it again: a skipped merge
    /// rerun whose notification is pending).
    pub(crate) async fn merge_commit(&self, run: &RunIdentity) -> Result<Option<(u64, String)>> {
        for commit in self.commits(Some(MERGE_LOOKBACK)).await? {
            let Some(record) = commit.info.get("lakewriter") else {
                continue;
            };
            let field = |name: &str| record.get(name).and_then(|v| v.as_str());
            if field("runId") == Some(run.run_id.as_str())
                && field("fingerprint") == Some(run.fingerprint.as_str())
            {
                let version = record.get("version").and_then(|v| v.as_u64());
                let committed_at = field("committedAt").map(str::to_string);
                return Ok(version.zip(committed_at));
            }
        }
        Ok(None)
    }

    /// Merges `rows` (deduplicated, one row per key) into the table in one commit: a row whose
    /// key and partition match a row of the table replaces it (with `order_by`: only when
    /// its value there is not smaller), any other row is inserted. Matching only within the
    /// partitions the rows touch lets delta-rs skip every other partition's files. The commit
    /// records the run as a `txn` action.
    pub(crate) async fn merge(
        &self,
        attempt: &CommitAttempt,
        upsert: Upsert<'_>,
    ) -> Result<CommitOutcome<Merged>> {
        let Upsert {
            rows,
            schema,
            rules,
            run,
            rows_total,
        } = upsert;
        let target = |name: &str| Expr::Column(Column::new(Some("target"), name));
        let source = |name: &str| Expr::Column(Column::new(Some("source"), name));
        let predicate = rules
            .key
            .iter()
            .chain([&rules.partition_column])
            .map(|name| target(name).eq(source(name)))
            .reduce(Expr::and)
            .expect("merge runs have a key");
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let source_rows = SessionContext::new()
            .read_batches(rows)
            .map_err(|e| Error::internal("preparing the merge", e))?;
        let properties = commit_properties(run, attempt, rows_total, &[])
            .with_application_transaction(merge_transaction(run));
        let merge = self
            .delta
            .clone()
            .merge(source_rows, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_writer_properties(parquet_writer_properties(&[]))
            .with_commit_properties(properties)
            .when_matched_update(|update| {
                let update = match &rules.order_by {
                    Some(order) => update.predicate(
                        target(order)
                            .is_null()
                            .or(source(order).gt_eq(target(order))),
                    ),
                    None => update,
                };
                columns.iter().fold(update, |update, name| {
                    update.update(Column::new_unqualified(name), source(name))
                })
            })
            .and_then(|merge| {
                merge.when_not_matched_insert(|insert| {
                    columns.iter().fold(insert, |insert, name| {
                        insert.set(Column::new_unqualified(name), source(name))
                    })
                })
            })
            .map_err(|e| Error::internal("preparing the merge", e))?;
        failpoint::hit("before-commit");
        let result = merge.await.map(|(_, metrics)| Merged {
            files_added: metrics.num_target_files_added as u64,
            files_removed: metrics.num_target_files_removed as u64,
        });
        Ok(CommitOutcome::of(result, || {
            format!("merging into {}", self.uri)
        }))
    }
}
