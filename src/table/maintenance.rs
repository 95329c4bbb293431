//! Maintenance: vacuum, and the checkpoints that keep loading the snapshot cheap.

use deltalake::operations::vacuum::VacuumMode;
use deltalake::table::config::TablePropertiesExt as _;
use deltalake::{DeltaTableError, checkpoints};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use super::{CHECKPOINT_INTERVAL, Table};
use crate::error::{Error, Result};
use crate::failpoint;

impl Table {
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

    /// Deletes the log's commit files older than `retention` (the table's
    /// `delta.logRetentionDuration` unless given) that precede the newest checkpoint older than
    /// them, as Delta's log clean-up does: never one a checkpoint still needs, and nothing
    /// without a checkpoint. Returns how many were deleted.
    pub(crate) async fn expire_log(&self, retention: Option<chrono::Duration>) -> Result<usize> {
        if !self.features.log_clean_up() {
            return Err(Error::UnsupportedTableFeature {
                table: self.uri.clone(),
                feature: "checkpointProtection".into(),
                message: "its log is cleaned up under rules lakewriter does not follow: use \
                          Spark's log clean-up"
                    .into(),
            });
        }
        let snapshot = self.snapshot()?;
        let retention = match retention {
            Some(retention) => retention.num_milliseconds(),
            None => snapshot.table_config().log_retention_duration().as_millis() as i64,
        };
        let cutoff = chrono::Utc::now().timestamp_millis() - retention;
        let log_store = self.delta.log_store();
        checkpoints::cleanup_expired_logs_for(snapshot.version(), log_store.as_ref(), cutoff, None)
            .await
            .map_err(|e| Error::internal(format!("expiring the log of {}", self.uri), e))
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
        if !(version + 1).is_multiple_of(interval) {
            return;
        }
        let mut table = self.delta.clone();
        let result = async {
            table.load_version(version).await?;
            let hint = crash_between_checkpoint_writes(self.object_store()).await;
            checkpoints::create_checkpoint(&table, None).await?;
            if let Some(previous) = hint {
                previous.restore().await;
            }
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
}

/// For the crash suite: a checkpoint is two writes, the checkpoint file and then the
/// `_last_checkpoint` hint. With the fail point `between-checkpoint-writes` armed, the hint as
/// it was before is kept, to be put back after the checkpoint and before the abort: the state
/// a crash between the two writes leaves.
async fn crash_between_checkpoint_writes(
    store: deltalake::logstore::ObjectStoreRef,
) -> Option<PreviousHint> {
    if !failpoint::armed("between-checkpoint-writes") {
        return None;
    }
    let path = Path::from("_delta_log/_last_checkpoint");
    let bytes = match store.get(&path).await {
        Ok(found) => found.bytes().await.ok().map(PutPayload::from),
        Err(_) => None,
    };
    Some(PreviousHint { store, path, bytes })
}

/// The `_last_checkpoint` hint before a checkpoint (`None`: there was none).
struct PreviousHint {
    store: deltalake::logstore::ObjectStoreRef,
    path: Path,
    bytes: Option<PutPayload>,
}

impl PreviousHint {
    /// Puts the hint back as it was, then aborts at `between-checkpoint-writes`.
    async fn restore(self) {
        let restored = match self.bytes {
            Some(bytes) => self.store.put(&self.path, bytes).await.map(drop),
            None => self.store.delete(&self.path).await,
        };
        if let Err(e) = restored {
            tracing::warn!(error = %e, "could not put back the checkpoint hint");
        }
        failpoint::hit("between-checkpoint-writes");
    }
}
