//! `--mode replace`: the scope's days become exactly the input's rows. Decides from the
//! ledger (skip, replace or refuse), writes the data files once, and commits the scope's
//! removes with the new files.

use deltalake::kernel::{Add, Remove};

use super::driver::{Decided, Strategy};
use super::{Outcome, PreparedInput, WriteJob, Written};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::ledger::{CommitAttempt, Decision, Ledger, RunIdentity, decide};
use crate::notify::CommitEvent;
use crate::spill::RowStore;
use crate::table::{CommitOutcome, Replacement, Table};

/// A replace run between its decision and its commit.
pub(super) struct Replace<'a> {
    job: &'a WriteJob,
    input: &'a PreparedInput,
    /// The rows, until they are written (once: later attempts reuse the files).
    rows: Option<RowStore>,
    written: Option<Written>,
    /// The removes the latest decision found for the scope's days.
    removes: Vec<Remove>,
    /// How many files the latest commit attempt removed.
    attempted_removes: u64,
}

impl<'a> Replace<'a> {
    pub(super) fn new(job: &'a WriteJob, input: &'a PreparedInput, rows: RowStore) -> Self {
        Self {
            job,
            input,
            rows: Some(rows),
            written: None,
            removes: Vec::new(),
            attempted_removes: 0,
        }
    }

    fn take_rows(&mut self) -> RowStore {
        self.rows
            .take()
            .expect("rows are written once; later attempts reuse the files")
    }

    /// The outcome of this run's commit at `attempt`.
    fn committed(&self, table: &Table, attempt: &CommitAttempt) -> Outcome {
        let files = self.written.as_ref().expect("committed files were written");
        let rows_per_day = self
            .job
            .scope
            .days()
            .map(|day| (day, files.rows_per_day.get(&day).copied().unwrap_or(0)));
        let event = CommitEvent::of_commit(
            table.url(),
            &self.input.run,
            attempt.version,
            &attempt.committed_at,
            rows_per_day,
        );
        Outcome::Committed {
            version: attempt.version,
            files_added: files.adds.len() as u64,
            files_removed: self.attempted_removes,
            rows: files.rows(),
            events: vec![event],
        }
    }
}

/// The outcome of a run the table already holds (planned, for a dry run): no commit, and for
/// notifications the commits that wrote the scope, to announce if they never were.
pub(super) fn skipped(
    job: &WriteJob,
    table: &Table,
    ledger: &Ledger,
    run: &RunIdentity,
    files_in_scope: usize,
) -> Outcome {
    if job.dry_run {
        return Outcome::Planned {
            decision: Decision::Skip,
            version: table.version(),
            files_to_add: 0,
            files_to_remove: files_in_scope as u64,
            rows: 0,
        };
    }
    tracing::info!(run_id = %run.run_id, "the table already holds this run: skipped");
    let events = if job.notify.is_empty() {
        Vec::new()
    } else {
        CommitEvent::from_ledger(table.url(), ledger, &run.run_id, job.scope.days())
    };
    Outcome::Skipped {
        version: table.version(),
        events,
    }
}

impl Strategy for Replace<'_> {
    async fn decide(&mut self, table: &Table) -> Result<Decided> {
        let job = self.job;
        let (ledger, removes) =
            table.ledger_and_removals(&job.rules.partition_column, &job.scope)?;
        let decision = decide(job.policy, &ledger, &self.input.run)?;
        let refusal = match decision {
            Decision::Replace => table.features().removal_refusal(removes.len()),
            Decision::Skip => None,
        };
        if let Some((feature, message)) = refusal {
            return Err(Error::UnsupportedTableFeature {
                table: job.table.clone(),
                feature,
                message,
            });
        }
        if decision == Decision::Skip {
            return Ok(Decided::Done(skipped(
                job,
                table,
                &ledger,
                &self.input.run,
                removes.len(),
            )));
        }
        if job.dry_run {
            let planned = job.write_rows(self.take_rows(), None).await?;
            return Ok(Decided::Done(Outcome::Planned {
                decision,
                version: table.version(),
                files_to_add: planned.files,
                files_to_remove: removes.len() as u64,
                rows: planned.rows(),
            }));
        }
        self.removes = removes;
        Ok(Decided::Commit)
    }

    async fn commit(
        &mut self,
        table: &Table,
        attempt: &CommitAttempt,
    ) -> Result<CommitOutcome<Outcome>> {
        if self.written.is_none() {
            let started = std::time::Instant::now();
            let rows = self.take_rows();
            let files = self.job.write_rows(rows, Some(table)).await?;
            tracing::debug!(elapsed = ?started.elapsed(), files = files.adds.len(), "rows deduplicated, ordered and written");
            failpoint::hit("after-upload");
            self.written = Some(files);
        }
        let files = self.written.as_ref().expect("written above");
        let removes = std::mem::take(&mut self.removes);
        self.attempted_removes = removes.len() as u64;
        let change = Replacement {
            schema: &self.input.schema,
            column: &self.job.rules.partition_column,
            run: &self.input.run,
            removes,
            adds: &files.adds,
            rows_per_day: &files.rows_per_day,
            schema_changes: &self.input.schema_changes,
        };
        let outcome = table.commit(attempt, change).await?;
        Ok(outcome.map(|()| self.committed(table, attempt)))
    }

    fn landed(&self, table: &Table, attempt: &CommitAttempt) -> Result<Option<Outcome>> {
        // Data file names carry a random UUID: finding ours means our commit landed.
        let ours = table.references(self.uncommitted())?;
        Ok(ours.then(|| self.committed(table, attempt)))
    }

    fn uncommitted(&self) -> &[Add] {
        self.written.as_ref().map_or(&[], |files| &files.adds)
    }
}
