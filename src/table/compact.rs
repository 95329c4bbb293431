//! Compaction: a day's files rewritten into as few as its bytes need, their run record carried
//! onto the new files, in one commit that changes no data (`dataChange = false` on every
//! action, operation OPTIMIZE), so `runs` and every rerun decision read the same ledger after.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use chrono::NaiveDate;
use deltalake::datafusion::prelude::{SessionContext, cast, ident, lit};
use deltalake::kernel::transaction::{CommitBuilder, TableReference};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::protocol::DeltaOperation;

use super::commit::properties_with;
use super::snapshot::ledger_of;
use super::{CommitOutcome, Table};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::ledger::{PartitionOwner, RunRecord};
use crate::scope::PartitionScope;

/// A day whose files could be fewer, as the snapshot holds it.
#[derive(Debug, Clone)]
pub(crate) struct LooseDay {
    pub(crate) day: NaiveDate,
    /// Every file of the day, all rewritten.
    pub(crate) files: Vec<Add>,
    /// The run record every file carries, carried onto the new files; `None` when the files
    /// carry none or several (the day stays another writer's data).
    pub(crate) record: Option<RunRecord>,
}

impl Table {
    /// The days (of `scope`, or all) with more files than their bytes need at `target` bytes a
    /// file. A day with a deletion vector is left to the engine that wrote the vector.
    pub(crate) fn loose_days(
        &self,
        column: &str,
        scope: Option<PartitionScope>,
        target: u64,
    ) -> Result<Vec<LooseDay>> {
        let files = self.files(column)?;
        let ledger = ledger_of(&files);
        let mut days: BTreeMap<NaiveDate, Vec<Add>> = BTreeMap::new();
        for (day, add) in files {
            if scope.is_none_or(|scope| scope.contains(day)) {
                days.entry(day).or_default().push(add);
            }
        }
        Ok(days
            .into_iter()
            .filter(|(_, files)| files.iter().all(|f| f.deletion_vector.is_none()))
            .filter(|(_, files)| {
                let bytes: u64 = files.iter().map(|f| f.size.max(0) as u64).sum();
                files.len() as u64 > bytes.div_ceil(target).max(1)
            })
            .map(|(day, files)| LooseDay {
                day,
                files,
                record: match ledger.owner(day) {
                    Some(PartitionOwner::Run(record)) => Some(record.clone()),
                    _ => None,
                },
            })
            .collect())
    }

    /// Which of `days` still have exactly the files they were planned with (no writer replaced
    /// or changed them since), from one pass over the snapshot.
    pub(crate) fn unchanged(&self, column: &str, days: &[&LooseDay]) -> Result<Vec<bool>> {
        let mut now: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
        for (day, add) in self.files(column)? {
            now.entry(day).or_default().push(add.path);
        }
        now.values_mut().for_each(|paths| paths.sort());
        Ok(days
            .iter()
            .map(|loose| {
                let mut planned: Vec<&str> = loose.files.iter().map(|f| f.path.as_str()).collect();
                planned.sort();
                now.get(&loose.day)
                    .is_some_and(|paths| paths.iter().map(String::as_str).eq(planned))
            })
            .collect())
    }

    /// The rows of `day`, in the table's columns `schema` (files that lack a column read as
    /// nulls there), as one batch: read by delta-rs' DataFusion provider.
    pub(crate) async fn read_day(
        &self,
        schema: &SchemaRef,
        column: &str,
        day: NaiveDate,
    ) -> Result<RecordBatch> {
        let failed = |e| Error::internal(format!("reading {day} of {}", self.uri), e);
        let context = SessionContext::new();
        self.delta
            .update_datafusion_session(&context.state())
            .map_err(|e| Error::internal("reading the table", e))?;
        let provider = self
            .delta
            .table_provider()
            .await
            .map_err(|e| Error::internal("reading the table", e))?;
        let frame = context.read_table(provider).map_err(failed)?;
        // As text, the day matches a DATE column and a Spark table's STRING one alike.
        let on_day = cast(ident(column), DataType::Utf8).eq(lit(day.to_string()));
        let batches = frame
            .filter(on_day)
            .map_err(failed)?
            .collect()
            .await
            .map_err(failed)?;
        let columns = |batch: &RecordBatch| -> Result<RecordBatch> {
            let arrays = schema
                .fields()
                .iter()
                .map(|field| {
                    let values = batch.column_by_name(field.name()).ok_or_else(|| {
                        Error::internal(
                            format!("reading {day}"),
                            arrow::error::ArrowError::SchemaError(format!(
                                "no column {}",
                                field.name()
                            )),
                        )
                    })?;
                    arrow::compute::cast(values, field.data_type())
                        .map_err(|e| Error::internal(format!("reading {day}"), e))
                })
                .collect::<Result<Vec<_>>>()?;
            RecordBatch::try_new(schema.clone(), arrays)
                .map_err(|e| Error::internal(format!("reading {day}"), e))
        };
        let batches: Vec<RecordBatch> = batches.iter().map(columns).collect::<Result<_>>()?;
        arrow::compute::concat_batches(schema, &batches)
            .map_err(|e| Error::internal(format!("reading {day}"), e))
    }

    /// Commits the compaction of `days` at `version`: each day's old files removed and its new
    /// files (`written`, by day) added with the day's record, all with `dataChange = false`.
    pub(crate) async fn commit_compaction(
        &self,
        version: u64,
        days: &[(LooseDay, Vec<Add>)],
        target: u64,
    ) -> Result<CommitOutcome> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut actions = Vec::new();
        for (loose, written) in days {
            actions.extend(loose.files.iter().map(|old| {
                Action::Remove(Remove {
                    path: old.path.clone(),
                    data_change: false,
                    deletion_timestamp: Some(now),
                    extended_file_metadata: Some(true),
                    partition_values: Some(old.partition_values.clone()),
                    size: Some(old.size),
                    ..Default::default()
                })
            }));
            actions.extend(written.iter().map(|new| {
                Action::Add(Add {
                    data_change: false,
                    tags: loose.record.as_ref().map(RunRecord::to_tags),
                    ..new.clone()
                })
            }));
        }
        let compacted: Vec<String> = days.iter().map(|(l, _)| l.day.to_string()).collect();
        let properties = properties_with([(
            "lakewriter".to_string(),
            serde_json::json!({"version": version, "optimize": {"days": compacted}}),
        )]);
        let operation = DeltaOperation::Optimize {
            predicate: None,
            target_size: target as i64,
        };
        failpoint::hit("before-commit");
        let snapshot = self.snapshot()?;
        let result = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(snapshot as &dyn TableReference),
                self.delta.log_store(),
                operation,
            )
            .await;
        Ok(CommitOutcome::of(result.map(|_| ()), || {
            format!("committing the compaction of {}", self.uri)
        }))
    }
}
