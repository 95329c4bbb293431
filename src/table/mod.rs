//! Table: the Delta side of a run. Open the table and read what its protocol asks (here);
//! read the ledger from its snapshot (`snapshot`), write Parquet files (`files`), replace the
//! scope's partitions in one commit (`commit`), merge by key (`merge`), vacuum and checkpoint
//! (`maintenance`).
//!
//! Commits go through delta-rs's `CommitBuilder` with its own retries switched off: when another
//! writer wins the race for the next version, the run reloads the table and decides again
//! (the winner may have written this very run), instead of delta-rs replaying stale actions.

mod commit;
mod compact;
mod files;
mod maintenance;
mod merge;
mod restore;
mod snapshot;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::features::{Access, TableFeatures};
use crate::storage::{StorageOptions, table_url};

pub(crate) use commit::{CommitOutcome, MAX_COMMIT_ATTEMPTS, Replacement, back_off};
pub(crate) use compact::LooseDay;
pub use files::parquet_writer_properties;
pub(crate) use merge::{Merged, Upsert, fingerprint_as_version};

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
        let features = match exists {
            true => features_of(&delta, location)?,
            false => TableFeatures::default(),
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
    /// An existing table is brought forward from the loaded version, reading only the
    /// commits made since (racing writers reload after every lost race, so this is on the
    /// contended path); anything that cannot be brought forward (a table created meanwhile, a
    /// log cut short) is opened afresh, with the error messages of a first open.
    pub(crate) async fn reload(&mut self) -> Result<()> {
        if self.exists && self.delta.update_incremental(None).await.is_ok() {
            self.features = features_of(&self.delta, &self.uri)?;
            return Ok(());
        }
        *self = Self::open(&self.uri, &self.options).await?;
        Ok(())
    }

    /// The current version, or `None` when there is no table yet.
    pub(crate) fn version(&self) -> Option<u64> {
        self.exists
            .then(|| self.delta.version().unwrap_or_default())
    }

    /// The table's columns as Arrow types, or `None` when there is no table yet.
    pub(crate) fn schema(&self) -> Result<Option<SchemaRef>> {
        if !self.exists {
            return Ok(None);
        }
        // The table's own types, as the Delta kernel maps them to Arrow: TIMESTAMP is UTC,
        // TIMESTAMP_NTZ has no time zone (its files must say so: isAdjustedToUTC = false).
        let snapshot = self.snapshot()?;
        let schema = snapshot.snapshot().arrow_schema();
        let partitions = snapshot.metadata().partition_columns();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                // Spark tables are often partitioned by a STRING day. Partition values are
                // text in the log either way and never stored in data files, so lakewriter
                // handles such a column as the DATE it holds ('YYYY-MM-DD').
                let day_as_text = partitions.contains(f.name()) && *f.data_type() == DataType::Utf8;
                let data_type = match day_as_text {
                    true => DataType::Date32,
                    false => f.data_type().clone(),
                };
                Field::new(f.name(), data_type, true)
            })
            .collect();
        Ok(Some(Arc::new(Schema::new(fields))))
    }

    /// Whether rows of `schema`, prepared on an earlier load of the table, fit it now: every
    /// column of `schema` the table has with the same type (for a run that adds columns,
    /// `evolving`, also a struct type `schema` grows), and no other column, unless the run adds
    /// it. Columns the table has and `schema` lacks are fine: another writer added them
    /// meanwhile, and the run's files read as nulls there, as older files do.
    pub(crate) fn takes_columns(&self, schema: &Schema, evolving: bool) -> Result<bool> {
        let Some(table) = self.schema()? else {
            return Ok(true);
        };
        // `equals_datatype` ignores the names of nested fields: Arrow calls a list's items
        // `item`, the Delta log gives them back as `element`.
        Ok(schema
            .fields()
            .iter()
            .all(|ours| match table.field_with_name(ours.name()) {
                Ok(theirs) => {
                    theirs.data_type().equals_datatype(ours.data_type())
                        || (evolving
                            && crate::evolve::is_struct_growth(
                                theirs.data_type(),
                                ours.data_type(),
                            ))
                }
                Err(_) => {
                    evolving
                        && !table
                            .fields()
                            .iter()
                            .any(|f| f.name().eq_ignore_ascii_case(ours.name()))
                }
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
}

/// What the loaded table's protocol and properties ask of writers.
fn features_of(delta: &DeltaTable, location: &str) -> Result<TableFeatures> {
    let state = delta
        .snapshot()
        .map_err(|e| Error::internal(format!("cannot read table {location}"), e))?;
    let as_json = |e| Error::internal(format!("reading the protocol of {location}"), e);
    Ok(TableFeatures::from_log(
        &serde_json::to_value(state.protocol()).map_err(as_json)?,
        &serde_json::to_value(state.metadata()).map_err(as_json)?,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

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
