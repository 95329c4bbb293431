//! The commit driver: every write mode's commit attempts, the backoff and reload after a lost
//! race, "did my commit land although its answer was lost?", and the clean-up of files no
//! commit will reference. A write mode (a [`Strategy`]) only decides and makes one attempt.

use deltalake::kernel::Add;

use super::{Outcome, PreparedInput, WriteJob};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::ledger::CommitAttempt;
use crate::table::{CommitOutcome, MAX_COMMIT_ATTEMPTS, Table, back_off};

/// What a strategy makes of the table as it is now.
pub(super) enum Decided {
    /// The run ends without a commit: skipped, or planned (a dry run).
    Done(Outcome),
    /// Commit.
    Commit,
}

/// A write mode. The driver calls [`Strategy::decide`] on the table as (re)loaded, then
/// [`Strategy::commit`] for one attempt, and after a lost race reloads and asks again.
pub(super) trait Strategy {
    /// Decides against the table as loaded now.
    async fn decide(&mut self, table: &Table) -> Result<Decided>;

    /// Makes one commit attempt at `attempt`'s version; a landed one gives the run's outcome.
    async fn commit(
        &mut self,
        table: &Table,
        attempt: &CommitAttempt,
    ) -> Result<CommitOutcome<Outcome>>;

    /// After a lost race or an unanswered request: the run's outcome if the reloaded `table`
    /// holds this attempt's commit, `None` if it does not (or the strategy cannot tell, and
    /// its next decision will see it).
    fn landed(&self, table: &Table, attempt: &CommitAttempt) -> Result<Option<Outcome>>;

    /// Data files written and not committed: deleted when the run ends without them.
    fn uncommitted(&self) -> &[Add];
}

/// Runs `strategy` until its commit lands, it decides there is nothing to commit, or other
/// writers have won [`MAX_COMMIT_ATTEMPTS`] races. Gives the outcome and how many races the
/// run lost on the way.
pub(super) async fn drive(
    job: &WriteJob,
    table: &mut Table,
    input: &PreparedInput,
    strategy: &mut impl Strategy,
) -> Result<(Outcome, u32)> {
    for try_number in 1..=MAX_COMMIT_ATTEMPTS {
        let decided = match still_fits(job, table, input) {
            Ok(()) => strategy.decide(table).await,
            Err(error) => Err(error),
        };
        // Whatever ends the run here, the files written for it go.
        let decided = match decided {
            Ok(decided) => decided,
            Err(error) => {
                table.discard(strategy.uncommitted()).await;
                return Err(error);
            }
        };
        let lost_races = try_number as u32 - 1;
        if let Decided::Done(outcome) = decided {
            table.discard(strategy.uncommitted()).await;
            return Ok((outcome, lost_races));
        }
        let attempt = table.next_attempt();
        let landed = match strategy.commit(table, &attempt).await? {
            CommitOutcome::Committed(outcome) => Some(outcome),
            // A lost race and a failed request both may hide a commit of ours (a retried PUT
            // whose first try landed, a lost response): the log says which.
            lost_or_unknown => {
                // Backing off first spreads racing writers out and lets a late write land.
                back_off(try_number).await;
                table.reload().await?;
                let ours = strategy.landed(table, &attempt)?;
                match (ours, lost_or_unknown) {
                    (Some(outcome), _) => {
                        tracing::warn!(
                            version = attempt.version,
                            "the commit landed although its response was lost"
                        );
                        Some(outcome)
                    }
                    // Not visible yet, but it may still land: the files stay.
                    (None, CommitOutcome::Unknown(error)) => return Err(error),
                    (None, _) => None,
                }
            }
        };
        if let Some(outcome) = landed {
            tracing::info!(run_id = %input.run.run_id, version = attempt.version, "committed");
            failpoint::hit("after-commit");
            table.checkpoint_if_due(attempt.version).await;
            return Ok((outcome, lost_races));
        }
        tracing::info!(
            attempt = try_number,
            "another writer committed first; deciding again"
        );
    }
    table.discard(strategy.uncommitted()).await;
    Err(Error::CommitConflict {
        attempts: MAX_COMMIT_ATTEMPTS,
    })
}

/// Whether the (possibly reloaded) table still takes what the run prepared: its column types,
/// its features, and the rules the rows were checked against. Another writer may have
/// changed any of them since the run began.
fn still_fits(job: &WriteJob, table: &Table, input: &PreparedInput) -> Result<()> {
    // Only a table created by another writer since this run began can have other column
    // types: a run on an existing table reads its input with the table's types. A run that
    // adds columns takes columns another writer added meanwhile (its files read as nulls
    // there), not a column it adds with another type.
    let evolving = !input.schema_changes.is_empty();
    if !table.takes_columns(&input.schema, evolving)? {
        return Err(match evolving {
            false => Error::TableCreatedMeanwhile {
                table: job.table.clone(),
            },
            true => Error::TableChangedMeanwhile {
                table: job.table.clone(),
                what: "columns: another writer added one of this run's new columns with \
                       another type"
                    .into(),
            },
        });
    }
    table.check_access(job.access())?;
    if !table.features().same_rules(&input.checked_against) {
        return Err(Error::TableChangedMeanwhile {
            table: job.table.clone(),
            what: "constraints, column mapping or append-only setting".into(),
        });
    }
    Ok(())
}
