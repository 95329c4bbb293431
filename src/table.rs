//! Table: the Delta side of a run. Open or create the table, read the ledger from its snapshot,
//! write Parquet files, and replace the scope's partitions in one commit.
//!
//! Commits go through delta-rs's `CommitBuilder` with its own retries switched off: when another
//! writer wins the race for the next version, the run reloads the table and decides again
//! (the winner may have written this very run), instead of delta-rs replaying stale actions.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use chrono::NaiveDate;
use delta_kernel::expressions::Scalar;
use delta_kernel::table_properties::DataSkippingNumIndexedCols;
use deltalake::datafusion::common::Column;
use deltalake::datafusion::prelude::{Expr, SessionContext};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitProperties, TableReference, TransactionError,
};
use deltalake::kernel::{
    Action, Add, CommitInfo, Protocol, Remove, StructType, Transaction, new_metadata,
};
use deltalake::operations::vacuum::VacuumMode;
use deltalake::operations::write::writer::{DeltaWriter, WriterConfig};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt as _;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore, checkpoints};
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::failpoint;
use crate::features::{Access, TableFeatures};
use crate::ledger::{CommitAttempt, Ledger, RunIdentity};
use crate::rules::RowRules;
use crate::scope::PartitionScope;
use crate::storage::{StorageOptions, table_url};

/// Files are rolled over at about this size; one day of data usually fits one file.
const TARGET_FILE_SIZE: u64 = 128 * 1024 * 1024;
/// A day of at least this many rows, written with fewer days than cores, is cut into one file
/// per core; smaller days stay one file (splitting them gains little and makes small files).
const MIN_ROWS_TO_SPLIT: usize = 2 * 1024 * 1024;
/// The properties of every Parquet data file lakewriter writes: Snappy, as Spark and delta-rs
/// write by default. Public (but hidden) so that the benchmark's encoding limit,
/// `src/bin/parquet_limit.rs`, encodes exactly the same files.
#[doc(hidden)]
pub fn parquet_writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build()
}

/// How many of the newest commits a skipped merge rerun searches for its own commit, to
/// announce it again; each is one log read.
const MERGE_LOOKBACK: usize = 100;

/// Checkpoint every this many commits (Spark's default), so loading the snapshot stays cheap
/// however many runs the table has seen.
const CHECKPOINT_INTERVAL: u64 = 10;

/// A Delta table location, loaded if a table exists there.
pub(crate) struct Table {
    delta: DeltaTable,
    /// The location as the user gave it, for messages.
    uri: String,
    /// The location as an absolute URL, however it was spelled.
    url: String,
    options: StorageOptions,
    exists: bool,
    /// What the table's protocol and properties ask of writers (nothing, without a table).
    features: TableFeatures,
}

/// What became of a commit.
pub(crate) enum CommitOutcome {
    /// Landed at the attempt's version.
    Committed,
    /// Another writer took the version: reload and decide again.
    LostRace,
    /// The request failed in a way that does not say whether the log entry was written (a
    /// lost response, a timeout): read the log to find out.
    Unknown(Error),
}

impl Table {
    /// Opens the location; a missing table is not an error (the first write creates it).
    pub(crate) async fn open(location: &str, options: &StorageOptions) -> Result<Self> {
        let url = table_url(location)?;
        let canonical = url.to_string();
        let bad_table = |message: String| Error::BadTable {
            table: location.to_string(),
            message,
        };
        let mut delta = DeltaTableBuilder::from_url(url)
            .and_then(|b| b.with_storage_options(options.clone()).build())
            .map_err(|e| bad_table(format!("cannot open: {e}")))?;
        let exists = delta
            .log_store()
            .is_delta_table_location()
            .await
            .map_err(|e| Error::internal(format!("cannot read table {location}"), e))?;
        if exists {
            delta.load().await.map_err(|e| match e {
                // A reader feature the Delta kernel does not know: the log is fine.
                DeltaTableError::KernelError(delta_kernel::Error::Unsupported(what)) => {
                    // "Feature 'x' is not supported", or a protocol version it cannot read.
                    let feature = match what.strip_prefix("Feature '") {
                        Some(rest) => rest.split('\'').next().unwrap_or(rest).to_string(),
                        None => "protocol".to_string(),
                    };
                    Error::UnsupportedTableFeature {
                        table: location.to_string(),
                        feature,
                        message: format!(
                            "delta-rs, lakewriter's Delta engine, cannot read this table \
                             ({what}); use an engine that supports it (Spark)"
                        ),
                    }
                }
                e => bad_table(format!(
                    "the Delta log cannot be read ({e}); restore the damaged _delta_log entry \
                     or its checkpoint from a backup"
                )),
            })?;
        } else {
            // Data files of a first write that has not committed yet (a concurrent writer, or
            // a crashed run) may already be here, and a concurrent writer's first commit may
            // have landed since the check above (this run's commit then loses the race and
            // reloads); anything else means a wrong location.
            let mut listing = delta.object_store().list(None);
            while let Some(found) = listing.next().await {
                let found =
                    found.map_err(|e| Error::internal(format!("cannot list {location}"), e))?;
                let path = found.location.as_ref();
                if !path.starts_with("_delta_log/") && !is_partition_data_file(path) {
                    return Err(bad_table(format!(
                        "the location holds other files ({} ...) and no Delta log; point \
                         --table at a Delta table or at an empty or new folder",
                        found.location
                    )));
                }
            }
        }
        let features = if exists {
            let state = delta
                .snapshot()
                .map_err(|e| Error::internal(format!("cannot read table {location}"), e))?;
            let as_json = |e| Error::internal(format!("reading the protocol of {location}"), e);
            TableFeatures::from_log(
                &serde_json::to_value(state.protocol()).map_err(as_json)?,
                &serde_json::to_value(state.metadata()).map_err(as_json)?,
            )
        } else {
            TableFeatures::default()
        };
        Ok(Self {
            delta,
            uri: location.to_string(),
            url: canonical,
            options: options.clone(),
            exists,
            features,
        })
    }

    /// What the table's protocol and properties ask of writers.
    pub(crate) fn features(&self) -> &TableFeatures {
        &self.features
    }

    /// Refuses `access` when the table uses a feature lakewriter does not follow for it:
    /// called before anything is written.
    pub(crate) fn check_access(&self, access: Access) -> Result<()> {
        match self.features.refusal(access) {
            None => Ok(()),
            Some((feature, message)) => Err(Error::UnsupportedTableFeature {
                table: self.uri.clone(),
                feature,
                message,
            }),
        }
    }

    /// How data files name the columns of `schema` (the table's, by column name) and the
    /// partition `column`: the same names, or with column mapping each column's physical name
    /// and Parquet field id, as the protocol asks of files and of partition values.
    fn file_columns(&self, schema: &SchemaRef, column: &str) -> FileColumns {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|field| {
                let (name, id) = self.features.name_in_files(field.name());
                let metadata = id
                    .map(|id| {
                        HashMap::from([(
                            parquet::arrow::PARQUET_FIELD_ID_META_KEY.to_string(),
                            id.to_string(),
                        )])
                    })
                    .unwrap_or_default();
                field
                    .as_ref()
                    .clone()
                    .with_name(name)
                    .with_metadata(metadata)
            })
            .collect();
        FileColumns {
            schema: Arc::new(Schema::new(fields)),
            partition: self.partition_key(column),
        }
    }

    /// The name partition values of `column` go by in the log (its physical name under
    /// column mapping).
    fn partition_key(&self, column: &str) -> String {
        self.features.name_in_files(column).0.to_string()
    }

    /// The table's absolute URL: the same however the location was spelled
    /// (`./lake/sales`, an absolute path, `file://...`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The store under the table's location (paths relative to the table).
    pub(crate) fn object_store(&self) -> deltalake::logstore::ObjectStoreRef {
        self.delta.object_store()
    }

    /// Reads the latest version again after losing a commit race.
    pub(crate) async fn reload(&mut self) -> Result<()> {
        *self = Self::open(&self.uri, &self.options).await?;
        Ok(())
    }

    /// The current version, or `None` when there is no table yet.
    pub(crate) fn version(&self) -> Option<u64> {
        self.exists
            .then(|| self.delta.version().unwrap_or_default() as u64)
    }

    /// The table's columns as Arrow types, or `None` when there is no table yet.
    pub(crate) fn schema(&self) -> Result<Option<SchemaRef>> {
        if !self.exists {
            return Ok(None);
        }
        // The table's own types, as the Delta kernel maps them to Arrow: TIMESTAMP is UTC,
        // TIMESTAMP_NTZ has no time zone (its files must say so: isAdjustedToUTC = false).
        let schema = self.snapshot()?.snapshot().arrow_schema();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        Ok(Some(Arc::new(Schema::new(fields))))
    }

    /// Whether the table, if there is one, has exactly these column names and types.
    pub(crate) fn has_columns(&self, schema: &Schema) -> Result<bool> {
        let Some(table) = self.schema()? else {
            return Ok(true);
        };
        // `equals_datatype` ignores the names of nested fields: Arrow calls a list's items
        // `item`, the Delta log gives them back as `element`.
        Ok(table.fields().len() == schema.fields().len()
            && table
                .fields()
                .iter()
                .zip(schema.fields())
                .all(|(ours, theirs)| {
                    ours.name() == theirs.name()
                        && ours.data_type().equals_datatype(theirs.data_type())
                }))
    }

    /// Checks that the table is partitioned by exactly `column`, as lakewriter writes it.
    pub(crate) fn check_partitioning(&self, column: &str) -> Result<()> {
        if !self.exists {
            return Ok(());
        }
        let partitions = self.snapshot()?.metadata().partition_columns();
        if partitions.len() != 1 || partitions[0] != column {
            return Err(Error::BadTable {
                table: self.uri.clone(),
                message: format!(
                    "it is partitioned by {partitions:?}, not by '{column}'; pass \
                     --partition-column to match the table"
                ),
            });
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<&deltalake::table::state::DeltaTableState> {
        self.delta
            .snapshot()
            .map_err(|e| Error::internal(format!("cannot read table {}", self.uri), e))
    }

    /// The table's active files as (partition date, file).
    fn files(&self, column: &str) -> Result<Vec<(NaiveDate, Add)>> {
        if !self.exists {
            return Ok(Vec::new());
        }
        let snapshot = self.snapshot()?;
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

    /// Writes one or more Parquet files per day, days in parallel. Returns the files as `add`
    /// actions without tags (those depend on the version the commit lands at).
    pub(crate) async fn write_days(
        &self,
        schema: &SchemaRef,
        column: &str,
        days: Vec<(NaiveDate, RecordBatch)>,
    ) -> Result<Vec<Add>> {
        let store = self.delta.object_store();
        let files = self.file_columns(schema, column);
        let config = writer_config(&files.schema, &files.partition);
        // One writer per file, as many at once as there are cores: encoding is the CPU-bound
        // part and files are independent. `buffered` keeps the files in day order.
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pieces = file_pieces(days, parallelism, MIN_ROWS_TO_SPLIT);
        let written: Vec<Vec<Add>> = futures::stream::iter(pieces)
            .map(|(day, batch)| {
                let (store, config) = (store.clone(), config.clone());
                let values = IndexMap::from([(
                    files.partition.clone(),
                    Scalar::Date(days_since_epoch(day)),
                )]);
                // Column mapping renames columns only: the arrays stay as they are.
                let batch = RecordBatch::try_new(files.schema.clone(), batch.columns().to_vec());
                tokio::spawn(async move {
                    let batch = batch?;
                    let mut writer = DeltaWriter::new(store, config);
                    writer.write_partition(batch, &values).await?;
                    writer.close().await
                })
            })
            .buffered(parallelism)
            .map(|joined| match joined {
                Ok(result) => result.map_err(|e| Error::internal("writing data files", e)),
                Err(e) => Err(Error::internal("writing data files", e)),
            })
            .try_collect()
            .await?;
        Ok(written.into_iter().flatten().collect())
    }

    /// Writes one empty Parquet file per day, so that a day of the scope without rows still
    /// carries the run's record.
    pub(crate) async fn write_empty_days(
        &self,
        schema: &SchemaRef,
        column: &str,
        days: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Vec<Add>> {
        let store = self.delta.object_store();
        let files = self.file_columns(schema, column);
        let file_schema = writer_config(&files.schema, &files.partition).file_schema();
        let mut adds = Vec::new();
        for day in days {
            adds.push(write_empty_file(store.as_ref(), &file_schema, &files.partition, day).await?);
        }
        Ok(adds)
    }

    /// Deletes files this run wrote but will not commit (best effort: vacuum removes leftovers).
    pub(crate) async fn discard(&self, files: &[Add]) {
        let store = self.delta.object_store();
        for add in files {
            if let Err(e) = store.delete(&Path::from(add.path.as_str())).await {
                tracing::warn!(path = %add.path, error = %e, "could not delete an uncommitted file");
            }
        }
    }

    /// The next commit's version and time. Retries inside delta-rs are off (see the module
    /// docs), so a commit lands at exactly this version or not at all.
    pub(crate) fn next_attempt(&self) -> CommitAttempt {
        CommitAttempt {
            version: self.version().map_or(0, |v| v + 1),
            committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// Commits `removes` and `adds` as `attempt`, each add tagged with the run's record for its
    /// partition. Creates the table in the same commit when there is none yet.
    pub(crate) async fn commit(
        &self,
        schema: &SchemaRef,
        column: &str,
        run: &RunIdentity,
        attempt: &CommitAttempt,
        removes: Vec<Remove>,
        adds: &[Add],
        rows_per_day: &HashMap<NaiveDate, u64>,
    ) -> Result<CommitOutcome> {
        let mut actions = Vec::with_capacity(adds.len() + removes.len() + 2);
        if !self.exists {
            actions.extend(self.create_actions(schema, column)?);
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
        let properties = commit_properties(run, attempt, rows_per_day.values().sum::<u64>());
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
        match result {
            Ok(_) => Ok(CommitOutcome::Committed),
            Err(DeltaTableError::VersionAlreadyExists(_))
            | Err(DeltaTableError::Transaction {
                source:
                    TransactionError::MaxCommitAttempts(_) | TransactionError::VersionAlreadyExists(_),
            }) => Ok(CommitOutcome::LostRace),
            Err(e) => Ok(CommitOutcome::Unknown(Error::internal(
                format!("committing to {}", self.uri),
                e,
            ))),
        }
    }

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
        rows: Vec<RecordBatch>,
        schema: &SchemaRef,
        rules: &RowRules,
        run: &RunIdentity,
        attempt: &CommitAttempt,
        rows_total: u64,
    ) -> Result<MergeOutcome> {
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
        let properties = commit_properties(run, attempt, rows_total)
            .with_application_transaction(merge_transaction(run));
        let merge = self
            .delta
            .clone()
            .merge(source_rows, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_writer_properties(parquet_writer_properties())
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
        match merge.await {
            Ok((_, metrics)) => Ok(MergeOutcome::Committed {
                version: attempt.version,
                files_added: metrics.num_target_files_added as u64,
                files_removed: metrics.num_target_files_removed as u64,
            }),
            Err(DeltaTableError::VersionAlreadyExists(_))
            | Err(DeltaTableError::Transaction {
                source:
                    TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
                    | TransactionError::CommitConflict(_),
            }) => Ok(MergeOutcome::LostRace),
            Err(e) => Err(Error::internal(format!("merging into {}", self.uri), e)),
        }
    }

    /// Deletes data files that no version within `retain` references: files removed longer ago
    /// than that, and files no commit ever referenced (left by a crashed or losing run) that
    /// are older than that. Returns the deleted (or, for a dry run, deletable) files.
    pub(crate) async fn vacuum(
        &self,
        retain: chrono::Duration,
        force: bool,
        dry_run: bool,
    ) -> Result<Vec<String>> {
        if !self.exists {
            return Err(Error::BadTable {
                table: self.uri.clone(),
                message: "there is no Delta table here to vacuum".into(),
            });
        }
        let minimum = self
            .snapshot()?
            .table_config()
            .deleted_file_retention_duration();
        if !force && retain.to_std().is_ok_and(|retain| retain < minimum) {
            return Err(Error::InvalidOption(format!(
                "a retention of {} hours is shorter than the table's {} hours \
                 (delta.deletedFileRetentionDuration); it breaks time travel to older versions \
                 and may delete the files of a run still writing: pass --force if you mean it",
                retain.num_hours(),
                minimum.as_secs() / 3600
            )));
        }
        let (_, metrics) = self
            .delta
            .clone()
            .vacuum()
            .with_retention_period(retain)
            .with_enforce_retention_duration(false)
            .with_mode(self.vacuum_mode())
            .with_dry_run(dry_run)
            .await
            .map_err(|e| Error::internal(format!("vacuuming {}", self.uri), e))?;
        Ok(metrics.files_deleted)
    }

    /// How vacuum finds files to delete. Full mode also deletes files no commit references
    /// (left by crashed runs); but delta-rs's full mode protects only the deletion vectors of
    /// live files, and would delete an older vector that time travel to a version within the
    /// retention still reads. On tables with deletion vectors, vacuum therefore deletes only
    /// files removed longer ago than the retention, and leaves the rest to Spark's VACUUM.
    fn vacuum_mode(&self) -> VacuumMode {
        if self.features.deletion_vectors() {
            VacuumMode::Lite
        } else {
            VacuumMode::Full
        }
    }

    /// Writes a checkpoint when `version` completes an interval, then drops log files past the
    /// table's log retention (if the table allows it). The commit stands whatever happens here,
    /// so a failure is logged, not returned: the next interval tries again.
    pub(crate) async fn checkpoint_if_due(&self, version: u64) {
        if !self.features.classic_checkpoints() {
            return;
        }
        let interval = match self.snapshot() {
            Ok(state) => state.table_config().checkpoint_interval().get(),
            Err(_) => CHECKPOINT_INTERVAL,
        };
        if (version + 1) % interval != 0 {
            return;
        }
        let mut table = self.delta.clone();
        let result = async {
            table.load_version(version).await?;
            checkpoints::create_checkpoint(&table, None).await?;
            failpoint::hit("during-checkpoint");
            let cleanup = table
                .snapshot()?
                .table_config()
                .enable_expired_log_cleanup()
                && self.features.log_clean_up();
            if cleanup {
                checkpoints::cleanup_metadata(&table, None).await?;
            }
            Ok::<_, DeltaTableError>(())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(version, "checkpoint written"),
            Err(e) => tracing::warn!(version, error = %e, "checkpoint failed; the commit stands"),
        }
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

/// How the data files of a table name its columns; see [`Table::file_columns`].
struct FileColumns {
    /// The columns as files name them (with Parquet field ids under column mapping).
    schema: SchemaRef,
    /// The partition column as files and partition values name it.
    partition: String,
}

/// What became of a merge.
pub(crate) enum MergeOutcome {
    Committed {
        version: u64,
        files_added: u64,
        files_removed: u64,
    },
    /// Another writer committed first: reload and decide again.
    LostRace,
}

/// The properties of every lakewriter commit: the run in the commit's metadata (Spark's
/// `DESCRIBE HISTORY` shows `userMetadata`), no retries inside delta-rs (see the module docs)
/// and no post-commit hook: the checkpoint runs in `checkpoint_if_due`, so that its failure
/// cannot make a landed commit look failed.
fn commit_properties(run: &RunIdentity, attempt: &CommitAttempt, rows: u64) -> CommitProperties {
    let metadata = [
        ("userMetadata".to_string(), serde_json::json!(run.run_id)),
        (
            "lakewriter".to_string(),
            serde_json::json!({
                "runId": run.run_id,
                "version": attempt.version,
                "committedAt": attempt.committed_at,
                "fingerprint": run.fingerprint,
                "scope": run.scope.to_string(),
                "rows": rows,
            }),
        ),
    ];
    CommitProperties::default()
        .with_max_retries(0)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false))
        .with_metadata(metadata)
}

/// The `txn` action a merge run leaves: the app id names the run, the version carries the
/// first 60 bits of its input fingerprint. Like Spark's idempotent writes (`txnAppId`,
/// `txnVersion`), it lives in the snapshot and in checkpoints, so finding it does not read
/// history; unlike them the version is not a counter, which no reader relies on.
fn merge_transaction(run: &RunIdentity) -> Transaction {
    Transaction::new(
        merge_app_id(&run.run_id),
        fingerprint_as_version(&run.fingerprint),
    )
}

fn merge_app_id(run_id: &str) -> String {
    format!("lakewriter-merge:{run_id}")
}

/// The first 60 bits of a hex fingerprint: a positive `txn` version.
pub(crate) fn fingerprint_as_version(fingerprint: &str) -> i64 {
    i64::from_str_radix(&fingerprint[..15], 16).expect("a hex fingerprint")
}

/// The ledger of the active files. A file with a deletion vector lost rows to another
/// writer's DELETE, UPDATE or MERGE after the run that wrote it, so its day counts as another
/// writer's data whatever its tags say (Spark keeps a file's tags when it adds the vector).
fn ledger_of(files: &[(NaiveDate, Add)]) -> Ledger {
    Ledger::from_files(files.iter().map(|(date, add)| {
        let tags = match add.deletion_vector {
            Some(_) => None,
            None => add.tags.as_ref(),
        };
        (*date, tags)
    }))
}

/// Whether a path looks like a data file a Delta writer puts in a partition:
/// `column=value/part-....parquet`.
fn is_partition_data_file(path: &str) -> bool {
    match path.split_once('/') {
        Some((folder, file)) => {
            folder.contains('=')
                && !file.contains('/')
                && file.starts_with("part-")
                && file.ends_with(".parquet")
        }
        None => false,
    }
}

/// The last segment of a table-relative path.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The files to write: one per day; with fewer days than `cores`, a day of at least
/// `min_rows` rows is cut into `cores` files of consecutive rows, so that it is encoded on
/// every core.
fn file_pieces(
    days: Vec<(NaiveDate, RecordBatch)>,
    cores: usize,
    min_rows: usize,
) -> Vec<(NaiveDate, RecordBatch)> {
    if days.len() >= cores {
        return days;
    }
    days.into_iter()
        .flat_map(|(day, batch)| {
            let total = batch.num_rows();
            let files = if total >= min_rows { cores } else { 1 };
            let rows = total.div_ceil(files).max(1);
            (0..total)
                .step_by(rows)
                .map(move |start| (day, batch.slice(start, rows.min(total - start))))
        })
        .collect()
}

/// How delta-rs writes the data files of a table partitioned by `column`.
fn writer_config(schema: &SchemaRef, column: &str) -> WriterConfig {
    WriterConfig::new(
        schema.clone(),
        vec![column.to_string()],
        Some(parquet_writer_properties()),
        NonZeroU64::new(TARGET_FILE_SIZE),
        None,
        DataSkippingNumIndexedCols::NumColumns(32),
        None,
    )
}

/// Days since 1970-01-01, the physical value of a Delta DATE.
fn days_since_epoch(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

async fn write_empty_file(
    store: &dyn ObjectStore,
    file_schema: &SchemaRef,
    column: &str,
    day: NaiveDate,
) -> Result<Add> {
    let encode_error =
        |e: parquet::errors::ParquetError| Error::internal("writing an empty day", e);
    let mut buffer = Vec::new();
    let writer = ArrowWriter::try_new(
        &mut buffer,
        file_schema.clone(),
        Some(parquet_writer_properties()),
    )
    .map_err(encode_error)?;
    writer.close().map_err(encode_error)?;
    let path = format!(
        "{column}={day}/part-00000-{}-c000.snappy.parquet",
        uuid::Uuid::new_v4()
    );
    let size = buffer.len() as i64;
    let location = Path::parse(&path).map_err(|e| Error::internal(format!("writing {path}"), e))?;
    store
        .put(&location, PutPayload::from(buffer))
        .await
        .map_err(|e| Error::internal(format!("writing {path}"), e))?;
    Ok(Add {
        path,
        partition_values: HashMap::from([(column.to_string(), Some(day.to_string()))]),
        size,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: true,
        stats: Some(r#"{"numRecords":0,"minValues":{},"maxValues":{},"nullCount":{}}"#.into()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_day_is_cut_into_one_file_per_core_and_nothing_else_is() {
        let day = |d: u32, rows: i64| {
            let batch = RecordBatch::try_from_iter([(
                "id",
                Arc::new(arrow::array::Int64Array::from_iter_values(0..rows)) as _,
            )])
            .unwrap();
            (NaiveDate::from_ymd_opt(2024, 1, d).unwrap(), batch)
        };
        let pieces = file_pieces(vec![day(1, 10)], 3, 5);
        let sizes: Vec<usize> = pieces.iter().map(|(_, b)| b.num_rows()).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let rejoined =
            arrow::compute::concat_batches(&pieces[0].1.schema(), pieces.iter().map(|(_, b)| b))
                .unwrap();
        assert_eq!(rejoined, day(1, 10).1, "every row once, in order");
        assert_eq!(
            file_pieces(vec![day(1, 4)], 3, 5).len(),
            1,
            "a small day stays whole"
        );
        assert_eq!(
            file_pieces(vec![day(1, 10), day(2, 10), day(3, 10)], 3, 5).len(),
            3,
            "as many days as cores: one file each"
        );
    }

    #[test]
    fn only_partition_part_files_pass_for_a_location_without_a_log() {
        assert!(is_partition_data_file(
            "date=2024-01-01/part-00000-abc-c000.snappy.parquet"
        ));
        assert!(!is_partition_data_file("notes.txt"));
        assert!(!is_partition_data_file("part-00000.parquet"));
        assert!(!is_partition_data_file("raw/2024-01-01.csv"));
        assert!(!is_partition_data_file(
            "date=2024-01-01/nested/part-0.parquet"
        ));
    }
}
