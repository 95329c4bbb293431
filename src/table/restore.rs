//! Restore: some days made again what they were at an earlier version, by adding back that
//! version's files of those days (with their run records) and removing today's, in one commit.

use chrono::NaiveDate;
use deltalake::kernel::transaction::{CommitBuilder, TableReference};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::protocol::DeltaOperation;
use object_store::ObjectStoreExt as _;
use object_store::path::Path;

use super::commit::properties_with;
use super::{CommitOutcome, Table};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::scope::PartitionScope;

/// The tag that marks a file a restore added back: the version it came from.
const TAG_RESTORED_FROM: &str = "lakewriter.restoredFrom";

impl Table {
    /// The files of `scope`'s days at `version`, each checked to be still on storage (a vacuum
    /// may have deleted it since it was removed).
    pub(crate) async fn files_at(
        &self,
        version: u64,
        column: &str,
        scope: &PartitionScope,
    ) -> Result<Vec<(NaiveDate, Add)>> {
        let mut then = self.delta.clone();
        then.load_version(version).await.map_err(|e| {
            Error::InvalidOption(format!(
                "cannot read version {version} of {}: {e}",
                self.uri
            ))
        })?;
        let snapshot = then
            .snapshot()
            .map_err(|e| Error::internal(format!("reading version {version}"), e))?;
        let files: Vec<(NaiveDate, Add)> = self
            .files_in(snapshot, column)?
            .into_iter()
            .filter(|(day, _)| scope.contains(*day))
            .collect();
        let store = self.delta.object_store();
        for (day, add) in &files {
            let path = Path::parse(&add.path).unwrap_or_else(|_| Path::from(add.path.as_str()));
            if store.head(&path).await.is_err() {
                return Err(Error::InvalidOption(format!(
                    "version {version}'s files of {day} are gone ({} was deleted, by a vacuum): \
                     that version can no longer be restored",
                    add.path
                )));
            }
        }
        Ok(files)
    }

    /// The version at which the run `run_id` committed, from the commit records the log still
    /// holds (newest first).
    pub(crate) async fn version_of_run(&self, run_id: &str) -> Result<Option<u64>> {
        for commit in self.commits(None).await? {
            let Some(record) = commit.info.get("lakewriter") else {
                continue;
            };
            if record.get("runId").and_then(|v| v.as_str()) == Some(run_id) {
                return Ok(record.get("version").and_then(|v| v.as_u64()));
            }
        }
        Ok(None)
    }

    /// Commits the restore of `scope`'s days to `from` at `version`: today's files removed,
    /// `restored` (that version's files) added back with their records, marked restored.
    pub(crate) async fn commit_restore(
        &self,
        version: u64,
        from: u64,
        scope: &PartitionScope,
        removes: Vec<Remove>,
        restored: &[Add],
    ) -> Result<CommitOutcome> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut actions: Vec<Action> = removes.into_iter().map(Action::Remove).collect();
        actions.extend(restored.iter().map(|add| {
            let mut tags = add.tags.clone().unwrap_or_default();
            if tags.keys().any(|k| k.starts_with("lakewriter.")) {
                tags.insert(TAG_RESTORED_FROM.to_string(), Some(from.to_string()));
            }
            Action::Add(Add {
                data_change: true,
                modification_time: now,
                tags: (!tags.is_empty()).then_some(tags),
                ..add.clone()
            })
        }));
        let properties = properties_with([(
            "lakewriter".to_string(),
            serde_json::json!({
                "version": version,
                "restore": {"fromVersion": from, "scope": scope.to_string()},
            }),
        )]);
        let operation = DeltaOperation::Restore {
            version: Some(from),
            datetime: None,
        };
        failpoint::hit("before-commit");
        let result = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(self.snapshot()? as &dyn TableReference),
                self.delta.log_store(),
                operation,
            )
            .await;
        Ok(CommitOutcome::of(result.map(|_| ()), || {
            format!("committing the restore of {}", self.uri)
        }))
    }
}
