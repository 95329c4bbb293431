//! Notify: announce each commit exactly once to a webhook or a local program.
//!
//! Exactly once is at-least-once delivery plus a key the receiver deduplicates on. Every
//! event carries an `Idempotency-Key` derived from the table and the commit (version, run id
//! and commit time), so a resent event has the same key. Delivery is retried with backoff; once
//! a receiver has accepted it, a marker object `_lakewriter/notified/<key>.<channel>` is put
//! (if absent) under the table's prefix, where Delta readers and VACUUM ignore it. A run that
//! commits announces its commit; a skipped rerun announces the commit it matches only when that
//! commit's marker is missing (the process died between commit and delivery, or every retry
//! failed). A crash between delivery and marker means one more delivery with the same key.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::ledger::{Ledger, PartitionOwner, RunIdentity};

/// Delivery attempts per event before it is left pending for the next run.
const ATTEMPTS: u32 = 5;
/// The first retry waits this long; each next one twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How long one delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where commits are announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Channel {
    /// An HTTP POST of the event as JSON, with an `Idempotency-Key` header; any 2xx accepts.
    Url(String),
    /// `sh -c COMMAND` with the event as JSON on stdin and `LAKEWRITER_IDEMPOTENCY_KEY` set;
    /// exit status 0 accepts.
    Command(String),
}

impl Channel {
    /// The marker suffix: each channel records its own deliveries.
    fn name(&self) -> &'static str {
        match self {
            Channel::Url(_) => "url",
            Channel::Command(_) => "command",
        }
    }
}

/// What became of a run's notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Every channel accepted the event in this run.
    Delivered,
    /// The matching commit was announced before; nothing was sent.
    AlreadyDelivered,
    /// A channel did not accept the event after every retry; the next run sends it again.
    Pending,
}

/// The event announcing one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CommitEvent {
    /// The table as the run named it.
    pub(crate) table: String,
    /// The commit's table version.
    pub(crate) version: u64,
    pub(crate) run_id: String,
    pub(crate) fingerprint: String,
    pub(crate) committed_at: String,
    /// Rows written per partition (0 for a day the run left empty).
    pub(crate) rows: BTreeMap<String, u64>,
    /// The idempotency key, also sent as the `Idempotency-Key` header.
    pub(crate) idempotency_key: String,
}

impl CommitEvent {
    /// The event of the commit this run just made.
    pub(crate) fn of_commit(
        table: &str,
        run: &RunIdentity,
        version: u64,
        committed_at: &str,
        rows: impl Iterator<Item = (NaiveDate, u64)>,
    ) -> Self {
        Self::new(
            table,
            version,
            run.run_id.clone(),
            run.fingerprint.clone(),
            committed_at.to_string(),
            rows.map(|(day, n)| (day.to_string(), n)).collect(),
        )
    }

    /// The events of the commits by `run_id` that the ledger shows for `days`, rebuilt from
    /// the records those commits left in every partition they wrote.
    pub(crate) fn from_ledger(
        table: &str,
        ledger: &Ledger,
        run_id: &str,
        days: impl Iterator<Item = NaiveDate>,
    ) -> Vec<Self> {
        let mut versions: Vec<u64> = days
            .filter_map(|day| match ledger.owner(day) {
                Some(PartitionOwner::Run(record)) if record.run_id == run_id => {
                    Some(record.version)
                }
                _ => None,
            })
            .collect();
        versions.sort_unstable();
        versions.dedup();
        versions
            .into_iter()
            .filter_map(|version| {
                let mut records = ledger.partitions().filter_map(|(day, owner)| match owner {
                    PartitionOwner::Run(record) if record.version == version => Some((day, record)),
                    _ => None,
                });
                let (first_day, first) = records.next()?;
                let mut rows = BTreeMap::from([(first_day.to_string(), first.rows)]);
                rows.extend(records.map(|(day, record)| (day.to_string(), record.rows)));
                Some(Self::new(
                    table,
                    version,
                    first.run_id.clone(),
                    first.fingerprint.clone(),
                    first.committed_at.clone(),
                    rows,
                ))
            })
            .collect()
    }

    fn new(
        table: &str,
        version: u64,
        run_id: String,
        fingerprint: String,
        committed_at: String,
        rows: BTreeMap<String, u64>,
    ) -> Self {
        let table = table.trim_end_matches('/').to_string();
        let mut hasher = Sha256::new();
        for part in [table.as_str(), &version.to_string(), &run_id, &committed_at] {
            // Length-prefixed, so that no two commits hash alike.
            hasher.update(format!("{}:{part}\n", part.len()));
        }
        let idempotency_key = format!("lakewriter-{}", &hex::encode(hasher.finalize())[..32]);
        Self {
            table,
            version,
            run_id,
            fingerprint,
            committed_at,
            rows,
            idempotency_key,
        }
    }
}

/// Announces each event on each channel unless its marker says it was; returns the overall
/// status (`None` when there is nothing to announce).
pub(crate) async fn announce(
    store: &dyn ObjectStore,
    channels: &[Channel],
    events: &[CommitEvent],
) -> Option<NotificationStatus> {
    if channels.is_empty() || events.is_empty() {
        return None;
    }
    let mut sent = false;
    let mut pending = false;
    for event in events {
        for channel in channels {
            let marker = marker_path(event, channel);
            if store.head(&marker).await.is_ok() {
                continue;
            }
            sent = true;
            match deliver_with_retries(channel, event).await {
                Ok(()) => {
                    let options = PutOptions::from(PutMode::Create);
                    let body = serde_json::to_vec(event).expect("serializable event");
                    let written = match store
                        .put_opts(&marker, PutPayload::from(body.clone()), options)
                        .await
                    {
                        // A store without put-if-absent: a marker's content is fixed by its
                        // key, so overwriting it changes nothing.
                        Err(object_store::Error::NotImplemented { .. }) => {
                            store.put(&marker, PutPayload::from(body)).await
                        }
                        other => other,
                    };
                    match written {
                        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                        // Delivered all the same: the next run delivers again, same key.
                        Err(e) => {
                            tracing::warn!(error = %e, "could not record a delivered notification")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        version = event.version,
                        channel = channel.name(),
                        error = %e,
                        "notification pending: the next run of this job sends it again"
                    );
                    pending = true;
                }
            }
        }
    }
    Some(match (pending, sent) {
        (true, _) => NotificationStatus::Pending,
        (false, true) => NotificationStatus::Delivered,
        (false, false) => NotificationStatus::AlreadyDelivered,
    })
}

fn marker_path(event: &CommitEvent, channel: &Channel) -> Path {
    Path::from(format!(
        "_lakewriter/notified/{}.{}",
        event.idempotency_key,
        channel.name()
    ))
}

async fn deliver_with_retries(channel: &Channel, event: &CommitEvent) -> Result<()> {
    let mut wait = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let result = tokio::time::timeout(DELIVERY_TIMEOUT, deliver(channel, event))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {DELIVERY_TIMEOUT:?}")));
        match result {
            Ok(()) => return Ok(()),
            Err(reason) if attempt >= ATTEMPTS => {
                return Err(Error::internal(
                    format!(
                        "announcing version {} after {attempt} attempts",
                        event.version
                    ),
                    std::io::Error::other(reason),
                ));
            }
            Err(reason) => {
                tracing::info!(attempt, %reason, "notification not accepted; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
        }
    }
}

/// One delivery attempt; the error says why it was not accepted (never the URL, which may
/// hold a secret).
async fn deliver(channel: &Channel, event: &CommitEvent) -> std::result::Result<(), String> {
    let body = serde_json::to_vec(event).expect("serializable event");
    match channel {
        Channel::Url(url) => {
            let response = reqwest::Client::new()
                .post(url)
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", &event.idempotency_key)
                .body(body)
                .send()
                .await
                .map_err(|e| format!("request failed: {}", e.without_url()))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the receiver answered {status}"))
            }
        }
        Channel::Command(command) => {
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .env("LAKEWRITER_IDEMPOTENCY_KEY", &event.idempotency_key)
                .stdin(std::process::Stdio::piped())
                // A command still running at the timeout is stopped, not left behind.
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start the notify command: {e}"))?;
            let mut stdin = child.stdin.take().expect("piped stdin");
            // A command that does not read its input is fine; its exit status decides.
            let _ = stdin.write_all(&body).await;
            drop(stdin);
            let status = child
                .wait()
                .await
                .map_err(|e| format!("the notify command failed: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("the notify command exited with {status}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_the_commit_not_the_table_spelling() {
        let event = |table: &str, version: u64, at: &str| {
            CommitEvent::new(
                table,
                version,
                "r".into(),
                "f".into(),
                at.into(),
                BTreeMap::new(),
            )
        };
        let key = |e: CommitEvent| e.idempotency_key;
        let at = "2024-01-01T00:00:00.000Z";
        assert_eq!(
            key(event("s3://b/t", 3, at)),
            key(event("s3://b/t/", 3, at))
        );
        assert_ne!(key(event("s3://b/t", 3, at)), key(event("s3://b/t", 4, at)));
        assert_ne!(key(event("s3://b/t", 3, at)), key(event("s3://b/u", 3, at)));
        // A table deleted and created again starts at version 0 with other commit times.
        assert_ne!(
            key(event("s3://b/t", 0, at)),
            key(event("s3://b/t", 0, "2024-01-02T00:00:00.000Z"))
        );
    }
}
