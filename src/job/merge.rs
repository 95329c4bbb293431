//! `--mode merge`: upsert by key in one commit (delta-rs merge), unless the table's `txn`
//! action says this run merged this very input before. A first merge creates the table.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use chrono::NaiveDate;
use deltalake::kernel::Add;

use super::driver::{Decided, Strategy};
use super::{Outcome, PreparedInput, WriteJob};
use crate::error::{Error, Result};
use crate::ledger::{CommitAttempt, Decision, decide_merge};
use crate::notify::CommitEvent;
use crate::spill::RowStore;
use crate::table::{CommitOutcome, Merged, Replacement, Table, Upsert, fingerprint_as_version};

/// A merge run between its decision and its commit.
pub(super) struct Merge<'a> {
    job: &'a WriteJob,
    input: &'a PreparedInput,
    /// The rows, until they are deduplicated (once: later attempts reuse them).
    rows: Option<RowStore>,
    /// Deduplicated rows, and rows per day. A merge's rows are held in memory.
    ordered: Option<(Vec<RecordBatch>, HashMap<NaiveDate, u64>)>,
}

impl<'a> Merge<'a> {
    /// A merge of `rows` into `table`, which it creates first (schema and partitioning, no
    /// rows) if there is none and this is no dry run. Losing the race to another writer's
    /// creation is fine: the table exists either way.
    pub(super) async fn new(
        job: &'a WriteJob,
        table: &mut Table,
        input: &'a PreparedInput,
        rows: RowStore,
    ) -> Result<Self> {
        if table.version().is_none() && !job.dry_run {
            let attempt = table.next_attempt();
            let no_rows = HashMap::new();
            let creation = Replacement {
                schema_changes: &[],
                schema: &input.schema,
                column: &job.rules.partition_column,
                run: &input.run,
                removes: Vec::new(),
                adds: &[],
                rows_per_day: &no_rows,
            };
            if let CommitOutcome::Unknown(error) = table.commit(&attempt, creation).await? {
                tracing::warn!(%error, "creating the table: reading the log to see whether it exists");
            }
            table.reload().await?;
            if table.version().is_none() {
                return Err(Error::BadTable {
                    table: job.table.clone(),
                    message: "could not create the table; check the location and rerun".into(),
                });
            }
        }
        Ok(Self {
            job,
            input,
            rows: Some(rows),
            ordered: None,
        })
    }

    /// The deduplicated rows and rows per day, computed on first use.
    fn ordered(&mut self) -> Result<&(Vec<RecordBatch>, HashMap<NaiveDate, u64>)> {
        if self.ordered.is_none() {
            let rows = self.rows.take().expect("rows are ordered once");
            self.ordered = Some(self.job.ordered_rows(rows)?);
        }
        Ok(self.ordered.as_ref().expect("ordered above"))
    }
}

impl Strategy for Merge<'_> {
    async fn decide(&mut self, table: &Table) -> Result<Decided> {
        let job = self.job;
        let run = &self.input.run;
        let recorded = table.merged_input(&run.run_id).await?;
        let decision = decide_merge(
            job.policy,
            recorded,
            fingerprint_as_version(&run.fingerprint),
        );
        if decision == Decision::Skip && !job.dry_run {
            tracing::info!(run_id = %run.run_id, "the table already holds this merge: skipped");
            // The commit this rerun matches, to announce if it never was.
            let matched = if job.notify.is_empty() {
                None
            } else {
                table.merge_commit(run).await?
            };
            let events = match matched {
                Some((version, committed_at)) => {
                    let rows_per_day = self.ordered()?.1.clone();
                    vec![CommitEvent::of_commit(
                        table.url(),
                        run,
                        version,
                        &committed_at,
                        rows_per_day.into_iter(),
                    )]
                }
                None => Vec::new(),
            };
            return Ok(Decided::Done(Outcome::Skipped {
                version: table.version(),
                events,
            }));
        }
        if job.dry_run {
            let days = &self.ordered()?.1;
            let replace = decision == Decision::Replace;
            return Ok(Decided::Done(Outcome::Planned {
                decision,
                version: table.version(),
                // A file per day the input touches, at the least.
                files_to_add: if replace { days.len() as u64 } else { 0 },
                files_to_remove: 0,
                rows: if replace { days.values().sum() } else { 0 },
            }));
        }
        Ok(Decided::Commit)
    }

    async fn commit(
        &mut self,
        table: &Table,
        attempt: &CommitAttempt,
    ) -> Result<CommitOutcome<Outcome>> {
        let (job, input) = (self.job, self.input);
        let (batches, rows_per_day) = self.ordered()?;
        let total = rows_per_day.values().sum();
        let upsert = Upsert {
            rows: batches.clone(),
            schema: &input.schema,
            rules: &job.rules,
            run: &input.run,
            rows_total: total,
        };
        let outcome = table.merge(attempt, upsert).await?;
        Ok(outcome.map(|merged: Merged| {
            let event = CommitEvent::of_commit(
                table.url(),
                &input.run,
                attempt.version,
                &attempt.committed_at,
                rows_per_day.iter().map(|(day, rows)| (*day, *rows)),
            );
            Outcome::Committed {
                version: attempt.version,
                files_added: merged.files_added,
                files_removed: merged.files_removed,
                rows: total,
                events: vec![event],
            }
        }))
    }

    /// A merge that landed unseen is found by the next decision instead: its `txn` action
    /// records this run and input, and the rerun is skipped.
    fn landed(&self, _table: &Table, _attempt: &CommitAttempt) -> Result<Option<Outcome>> {
        Ok(None)
    }

    /// delta-rs writes and cleans up a merge's files itself.
    fn uncommitted(&self) -> &[Add] {
        &[]
    }
}
