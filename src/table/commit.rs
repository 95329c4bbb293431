//! Commits: the scope's removes and the run's adds in one Delta commit, tagged with the run,
//! creating the table in the same commit when there is none.

use std::collections::HashMap;

use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;
use deltalake::DeltaTableError;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitProperties, TableReference, TransactionError,
};
use deltalake::kernel::{
    Action, Add, Metadata, MetadataExt as _, Protocol, Remove, StructField, StructType,
    new_metadata,
};
use deltalake::protocol::{DeltaOperation, SaveMode};

use super::{CHECKPOINT_INTERVAL, Table};
use crate::error::{Error, Result};
use crate::evolve::{SchemaChange, is_struct_growth};
use crate::failpoint;
use crate::ledger::{CommitAttempt, RunIdentity};

/// How many commit attempts a write, an optimize or a restore makes before it gives up with
/// exit 4. Every lost race means another writer's commit landed, so giving up never helps the
/// table; the budget only bounds the time a run waits (a few minutes of contention). At 32
/// writers on one table the unluckiest run lost 79 races (BENCHMARKS.md, `--commits`): the
/// losses are near memoryless, so a budget near that would fail a run now and then.
pub(crate) const MAX_COMMIT_ATTEMPTS: usize = 500;

/// Waits after the `lost_races`-th lost race, before reloading: exponential backoff with full
/// jitter, a random wait up to a ceiling that doubles with each lost race, so racing writers
/// spread out instead of colliding again. The ceiling stays low (320 ms): contention is
/// progress, and a long wait would leave the log idle while every writer sleeps.
pub(crate) async fn back_off(lost_races: usize) {
    let ceiling_ms = 20u64 << lost_races.min(4);
    // A UUID's random bits serve as jitter without adding a random-number crate.
    let wait = (uuid::Uuid::new_v4().as_u128() % (u128::from(ceiling_ms) + 1)) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
}

/// What became of a commit attempt; `T` is what a landed commit reports.
pub(crate) enum CommitOutcome<T = ()> {
    /// Landed at the attempt's version.
    Committed(T),
    /// Another writer took the version: reload and decide again.
    LostRace,
    /// The request failed in a way that does not say whether the log entry was written (a
    /// lost response, a timeout): read the log to find out.
    Unknown(Error),
}

impl<T> CommitOutcome<T> {
    /// The same outcome, with what a landed commit reports turned by `report`.
    pub(crate) fn map<U>(self, report: impl FnOnce(T) -> U) -> CommitOutcome<U> {
        match self {
            CommitOutcome::Committed(landed) => CommitOutcome::Committed(report(landed)),
            CommitOutcome::LostRace => CommitOutcome::LostRace,
            CommitOutcome::Unknown(error) => CommitOutcome::Unknown(error),
        }
    }

    /// Classifies what delta-rs answered to a commit (with its retries off): taking a version
    /// another writer took first, in any of the ways delta-rs reports it, is a lost race;
    /// any other failure leaves the commit's fate unknown.
    pub(super) fn of(result: Result<T, DeltaTableError>, context: impl FnOnce() -> String) -> Self {
        match result {
            Ok(landed) => CommitOutcome::Committed(landed),
            Err(DeltaTableError::VersionAlreadyExists(_))
            | Err(DeltaTableError::Transaction {
                source:
                    TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
                    | TransactionError::CommitConflict(_),
            }) => CommitOutcome::LostRace,
            Err(e) => CommitOutcome::Unknown(Error::internal(context(), e)),
        }
    }
}

/// What a replacing commit changes: the scope's old files out, the run's new files in.
pub(crate) struct Replacement<'a> {
    /// The table's columns (for a commit that creates the table).
    pub(crate) schema: &'a SchemaRef,
    /// The partition column.
    pub(crate) column: &'a str,
    /// The run, whose record tags every added file.
    pub(crate) run: &'a RunIdentity,
    /// Removes for the scope's files.
    pub(crate) removes: Vec<Remove>,
    /// The run's data files, untagged.
    pub(crate) adds: &'a [Add],
    /// The rows each day holds, for the record.
    pub(crate) rows_per_day: &'a HashMap<NaiveDate, u64>,
    /// The columns the run adds to the table's schema (in the commit's record too).
    pub(crate) schema_changes: &'a [SchemaChange],
}

/// The properties of every lakewriter commit: the run in the commit's metadata (Spark's
/// `DESCRIBE HISTORY` shows `userMetadata`), no retries inside delta-rs (see the module docs)
/// and no post-commit hook: the checkpoint runs in `checkpoint_if_due`, so that its failure
/// cannot make a landed commit look failed.
pub(super) fn commit_properties(
    run: &RunIdentity,
    attempt: &CommitAttempt,
    rows: u64,
    schema_changes: &[SchemaChange],
) -> CommitProperties {
    let mut record = serde_json::json!({
        "runId": run.run_id,
        "version": attempt.version,
        "committedAt": attempt.committed_at,
        "fingerprint": run.fingerprint,
        "scope": run.scope.to_string(),
        "rows": rows,
    });
    if !schema_changes.is_empty() {
        record["schemaChanges"] = serde_json::json!(schema_changes);
    }
    let metadata = [
        ("userMetadata".to_string(), serde_json::json!(run.run_id)),
        ("lakewriter".to_string(), record),
    ];
    properties_with(metadata)
}

/// The properties every lakewriter commit has (see [`commit_properties`]), with `metadata` in
/// its commit info; maintenance commits (optimize, restore) record themselves there.
pub(super) fn properties_with(
    metadata: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> CommitProperties {
    CommitProperties::default()
        .with_max_retries(0)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false))
        .with_metadata(metadata)
}

impl Table {
    /// The next commit's version and time. Retries inside delta-rs are off (see the module
    /// docs), so a commit lands at exactly this version or not at all.
    pub(crate) fn next_attempt(&self) -> CommitAttempt {
        CommitAttempt {
            version: self.version().map_or(0, |v| v + 1),
            committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// Commits `change` as `attempt`, each add tagged with the run's record for its
    /// partition. Creates the table in the same commit when there is none yet.
    pub(crate) async fn commit(
        &self,
        attempt: &CommitAttempt,
        change: Replacement<'_>,
    ) -> Result<CommitOutcome> {
        let Replacement {
            schema,
            column,
            run,
            removes,
            adds,
            rows_per_day,
            schema_changes,
        } = change;
        let mut actions = Vec::with_capacity(adds.len() + removes.len() + 2);
        if !self.exists {
            actions.extend(self.create_actions(schema, column)?);
        } else if let Some(metadata) = self.evolved_metadata(schema, column)? {
            actions.push(Action::Metadata(metadata));
        }
        actions.extend(removes.into_iter().map(Action::Remove));
        let key = self.partition_key(column);
        actions.extend(adds.iter().map(|add| {
            let day = add.partition_values.get(&key).cloned().flatten();
            let rows = day
                .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
                .and_then(|d| rows_per_day.get(&d).copied())
                .unwrap_or(0);
            Action::Add(Add {
                tags: Some(run.record(rows, attempt).to_tags()),
                ..add.clone()
            })
        }));
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(vec![column.to_string()]),
            predicate: Some(format!(
                "`{column}` >= '{}' AND `{column}` <= '{}'",
                run.scope.from(),
                run.scope.to()
            )),
        };
        let rows = rows_per_day.values().sum::<u64>();
        let properties = commit_properties(run, attempt, rows, schema_changes);
        failpoint::hit("before-commit");
        let snapshot = if self.exists {
            Some(self.snapshot()?)
        } else {
            None
        };
        let result = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                snapshot.map(|s| s as &dyn TableReference),
                self.delta.log_store(),
                operation,
            )
            .await;
        Ok(CommitOutcome::of(result.map(|_| ()), || {
            format!("committing to {}", self.uri)
        }))
    }

    /// The table's metadata with the columns of `schema` it lacks appended and its struct
    /// columns grown as `schema` grows them (the partition column `column` aside), when there
    /// are any: the `metaData` action of a commit that adds columns. Built on the table as
    /// loaded now, so that columns another writer added meanwhile are kept.
    fn evolved_metadata(&self, schema: &SchemaRef, column: &str) -> Result<Option<Metadata>> {
        let table = self.schema()?.expect("an existing table has columns");
        let snapshot = self.snapshot()?;
        let mut fields: Vec<StructField> = snapshot.schema().fields().cloned().collect();
        let mut changed = false;
        let internal = |e| Error::internal("converting the schema to Delta", e);
        for field in schema.fields().iter().filter(|f| f.name() != column) {
            let ours: StructField = field.as_ref().try_into_kernel().map_err(internal)?;
            match table.field_with_name(field.name()) {
                Err(_) => fields.push(ours),
                Ok(theirs) if is_struct_growth(theirs.data_type(), field.data_type()) => {
                    let at = fields.iter().position(|f| f.name() == field.name());
                    let at = at.expect("the table's arrow and Delta schemas name the same columns");
                    fields[at].data_type = ours.data_type;
                }
                Ok(_) => continue,
            }
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        let merged =
            StructType::try_new(fields).map_err(|e| Error::internal("evolving the schema", e))?;
        let metadata = snapshot.metadata().clone().with_schema(&merged);
        metadata
            .map(Some)
            .map_err(|e| Error::internal("evolving the table's metadata", e))
    }

    fn create_actions(&self, schema: &SchemaRef, column: &str) -> Result<[Action; 2]> {
        let delta_schema: StructType = schema
            .as_ref()
            .try_into_kernel()
            .map_err(|e| Error::internal("converting the schema to Delta", e))?;
        let metadata = new_metadata(
            &delta_schema,
            [column],
            [("delta.checkpointInterval", CHECKPOINT_INTERVAL.to_string())],
        )
        .map_err(|e| Error::internal("creating table metadata", e))?;
        // Reader 1 / writer 2: the lowest protocol that holds everything lakewriter writes, so
        // every Delta reader can open the table.
        let protocol: Protocol = serde_json::from_value(
            serde_json::json!({"minReaderVersion": 1, "minWriterVersion": 2}),
        )
        .map_err(|e| Error::internal("creating the table protocol", e))?;
        Ok([Action::Protocol(protocol), Action::Metadata(metadata)])
    }
}
