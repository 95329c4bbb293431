//! Ledger: which run last wrote each date partition, and what a new run should therefore do.
//!
//! The record lives in the table itself, as `tags` on the Delta `add` action of every file a run
//! writes, in the same commit as the data: the data and its provenance cannot disagree. A day
//! the run leaves empty gets one empty Parquet file so that it carries the record too.
//!
//! Why tags: they are part of the snapshot (so checkpoints keep them and the decision never
//! reads history), they touch only the partitions a run writes (so writers on other days never
//! conflict), and every reader ignores them. `domainMetadata` would fit too, but delta-rs 1.1
//! refuses to write to tables that enable it; `txn` actions hold only a number.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::scope::PartitionScope;

const TAG_RUN_ID: &str = "lakewriter.runId";
const TAG_FINGERPRINT: &str = "lakewriter.fingerprint";
const TAG_ROWS: &str = "lakewriter.rows";
const TAG_VERSION: &str = "lakewriter.version";
const TAG_COMMITTED_AT: &str = "lakewriter.committedAt";
const TAG_SCOPE: &str = "lakewriter.scope";

/// What a run recorded about one partition it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RunRecord {
    /// The run's id.
    pub(crate) run_id: String,
    /// The run's input fingerprint.
    pub(crate) fingerprint: String,
    /// Rows the run wrote into this partition.
    pub(crate) rows: u64,
    /// The table version the run committed.
    pub(crate) version: u64,
    /// When the run committed (UTC, RFC 3339).
    pub(crate) committed_at: String,
    /// The run's whole scope, `FROM..TO`.
    pub(crate) scope: String,
}

impl RunRecord {
    /// The tags that carry this record on an `add` action.
    pub(crate) fn to_tags(&self) -> HashMap<String, Option<String>> {
        [
            (TAG_RUN_ID, self.run_id.clone()),
            (TAG_FINGERPRINT, self.fingerprint.clone()),
            (TAG_ROWS, self.rows.to_string()),
            (TAG_VERSION, self.version.to_string()),
            (TAG_COMMITTED_AT, self.committed_at.clone()),
            (TAG_SCOPE, self.scope.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Some(v)))
        .collect()
    }

    fn from_tags(tags: &HashMap<String, Option<String>>) -> Option<Self> {
        let get = |key: &str| tags.get(key).cloned().flatten();
        Some(Self {
            run_id: get(TAG_RUN_ID)?,
            fingerprint: get(TAG_FINGERPRINT)?,
            rows: get(TAG_ROWS)?.parse().ok()?,
            version: get(TAG_VERSION)?.parse().ok()?,
            committed_at: get(TAG_COMMITTED_AT)?,
            scope: get(TAG_SCOPE)?,
        })
    }
}

/// Who a run is: what its record says in every partition it writes.
#[derive(Debug, Clone)]
pub(crate) struct RunIdentity {
    pub(crate) run_id: String,
    pub(crate) fingerprint: String,
    pub(crate) scope: PartitionScope,
}

/// One try at committing a run: the version it aims for and its commit time. Together with
/// the run's identity they tell this very commit apart from any other in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitAttempt {
    pub(crate) version: u64,
    pub(crate) committed_at: String,
}

impl RunIdentity {
    /// The record of this run for one partition it commits in `attempt`.
    pub(crate) fn record(&self, rows: u64, attempt: &CommitAttempt) -> RunRecord {
        RunRecord {
            run_id: self.run_id.clone(),
            fingerprint: self.fingerprint.clone(),
            rows,
            version: attempt.version,
            committed_at: attempt.committed_at.clone(),
            scope: self.scope.to_string(),
        }
    }
}

/// Who wrote a partition, as far as the table says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartitionOwner {
    /// Every file of the partition carries the same lakewriter record.
    Run(RunRecord),
    /// Files without a lakewriter record, or with records of different runs (written by another
    /// tool, or rewritten by OPTIMIZE). Treated as another run's data.
    Unknown,
}

/// The owner of every partition that has files, by date.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    partitions: BTreeMap<NaiveDate, (PartitionOwner, usize)>,
}

impl Ledger {
    /// Builds the ledger from the table's active files: their partition date and their tags.
    pub(crate) fn from_files<'a>(
        files: impl IntoIterator<Item = (NaiveDate, Option<&'a HashMap<String, Option<String>>>)>,
    ) -> Self {
        let mut seen: BTreeMap<NaiveDate, (Option<RunRecord>, usize, bool)> = BTreeMap::new();
        for (date, tags) in files {
            let record = tags.and_then(RunRecord::from_tags);
            let entry = seen
                .entry(date)
                .or_insert_with(|| (record.clone(), 0, true));
            entry.1 += 1;
            entry.2 &= record.is_some() && record == entry.0;
        }
        let partitions = seen
            .into_iter()
            .map(|(date, (record, files, consistent))| {
                let owner = match record {
                    Some(record) if consistent => PartitionOwner::Run(record),
                    _ => PartitionOwner::Unknown,
                };
                (date, (owner, files))
            })
            .collect();
        Self { partitions }
    }

    /// The owner of one partition, or `None` if it has no files.
    pub(crate) fn owner(&self, date: NaiveDate) -> Option<&PartitionOwner> {
        self.partitions.get(&date).map(|(owner, _)| owner)
    }

    /// How many data files the partition has.
    pub(crate) fn file_count(&self, date: NaiveDate) -> u64 {
        self.partitions
            .get(&date)
            .map_or(0, |(_, files)| *files as u64)
    }

    /// Every partition with files, in date order.
    pub(crate) fn partitions(&self) -> impl Iterator<Item = (NaiveDate, &PartitionOwner)> {
        self.partitions.iter().map(|(d, (owner, _))| (*d, owner))
    }
}

/// What to do when the scope was written before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RerunPolicy {
    /// Skip when every partition in scope was last written by this run id with this fingerprint;
    /// replace otherwise.
    #[default]
    Auto,
    /// Skip when this run id last wrote every partition in scope, whatever the input.
    Skip,
    /// Always rewrite the scope.
    Replace,
    /// Refuse when any partition in scope holds data from another run.
    Fail,
}

impl FromStr for RerunPolicy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "auto" => Ok(Self::Auto),
            "skip" => Ok(Self::Skip),
            "replace" => Ok(Self::Replace),
            "fail" => Ok(Self::Fail),
            _ => Err(Error::InvalidOption(format!(
                "unknown rerun policy '{text}': use auto, skip, replace or fail"
            ))),
        }
    }
}

impl fmt::Display for RerunPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Auto => "auto",
            Self::Skip => "skip",
            Self::Replace => "replace",
            Self::Fail => "fail",
        };
        f.write_str(name)
    }
}

/// The outcome of checking the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The scope already holds this run: make no commit.
    Skip,
    /// Replace the scope's partitions.
    Replace,
}

/// Decides what a run does given what the table records for its scope.
pub(crate) fn decide(policy: RerunPolicy, ledger: &Ledger, run: &RunIdentity) -> Result<Decision> {
    let (scope, run_id, fingerprint) = (&run.scope, run.run_id.as_str(), run.fingerprint.as_str());
    let written_by = |same_input: bool| {
        scope.days().all(|day| match ledger.owner(day) {
            Some(PartitionOwner::Run(record)) => {
                record.run_id == run_id && (!same_input || record.fingerprint == fingerprint)
            }
            _ => false,
        })
    };
    match policy {
        RerunPolicy::Replace => Ok(Decision::Replace),
        RerunPolicy::Skip if written_by(false) => Ok(Decision::Skip),
        RerunPolicy::Skip => Ok(Decision::Replace),
        RerunPolicy::Auto | RerunPolicy::Fail if written_by(true) => Ok(Decision::Skip),
        RerunPolicy::Auto => Ok(Decision::Replace),
        RerunPolicy::Fail => {
            for day in scope.days() {
                let other_run = match ledger.owner(day) {
                    Some(PartitionOwner::Run(record)) if record.run_id != run_id => {
                        record.run_id.clone()
                    }
                    Some(PartitionOwner::Unknown) => "<unknown>".to_string(),
                    _ => continue,
                };
                return Err(Error::RerunRefused {
                    partition: day.to_string(),
                    other_run,
                });
            }
            Ok(Decision::Replace)
        }
    }
}

/// Decides what a merge run does, given the input fingerprint (as a `txn` version) that the
/// table records for its run id, if any. (`fail` is refused before: merges own no partitions.)
pub(crate) fn decide_merge(policy: RerunPolicy, recorded: Option<i64>, input: i64) -> Decision {
    match (policy, recorded) {
        (RerunPolicy::Replace, _) | (_, None) => Decision::Replace,
        (RerunPolicy::Skip, Some(_)) => Decision::Skip,
        (_, Some(recorded)) if recorded == input => Decision::Skip,
        _ => Decision::Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_policies_decide_on_the_recorded_input() {
        use Decision::{Replace, Skip};
        let cases = [
            (RerunPolicy::Auto, None, Replace),
            (RerunPolicy::Auto, Some(7), Skip),
            (RerunPolicy::Auto, Some(8), Replace),
            (RerunPolicy::Skip, Some(8), Skip),
            (RerunPolicy::Skip, None, Replace),
            (RerunPolicy::Replace, Some(7), Replace),
        ];
        for (policy, recorded, expected) in cases {
            assert_eq!(
                decide_merge(policy, recorded, 7),
                expected,
                "{policy} {recorded:?}"
            );
        }
    }

    fn record(run_id: &str, fingerprint: &str) -> RunRecord {
        RunRecord {
            run_id: run_id.into(),
            fingerprint: fingerprint.into(),
            rows: 1,
            version: 3,
            committed_at: "2024-01-02T00:00:00Z".into(),
            scope: "2024-01-01..2024-01-02".into(),
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, d).unwrap()
    }

    #[test]
    fn tags_round_trip() {
        let r = record("run/1", "abc");
        assert_eq!(RunRecord::from_tags(&r.to_tags()), Some(r));
    }

    #[test]
    fn mixed_or_untagged_partitions_are_unknown() {
        let a = record("a", "1").to_tags();
        let b = record("b", "1").to_tags();
        let ledger = Ledger::from_files([
            (day(1), Some(&a)),
            (day(1), Some(&a)),
            (day(2), Some(&a)),
            (day(2), Some(&b)),
            (day(3), None),
        ]);
        assert_eq!(
            ledger.owner(day(1)),
            Some(&PartitionOwner::Run(record("a", "1")))
        );
        assert_eq!(ledger.owner(day(2)), Some(&PartitionOwner::Unknown));
        assert_eq!(ledger.owner(day(3)), Some(&PartitionOwner::Unknown));
    }

    #[test]
    fn policies_decide_as_documented() {
        let tags = record("r", "f").to_tags();
        let ledger = Ledger::from_files([(day(1), Some(&tags)), (day(2), Some(&tags))]);
        let scope = PartitionScope::new(day(1), day(2)).unwrap();
        let wider = PartitionScope::new(day(1), day(3)).unwrap();
        let run = |run_id: &str, fingerprint: &str, scope: PartitionScope| RunIdentity {
            run_id: run_id.into(),
            fingerprint: fingerprint.into(),
            scope,
        };
        let decide =
            |policy, ledger: &Ledger, identity: RunIdentity| decide(policy, ledger, &identity);
        use Decision::*;
        assert_eq!(
            decide(RerunPolicy::Auto, &ledger, run("r", "f", scope)).unwrap(),
            Skip
        );
        assert_eq!(
            decide(RerunPolicy::Auto, &ledger, run("r", "g", scope)).unwrap(),
            Replace
        );
        assert_eq!(
            decide(RerunPolicy::Auto, &ledger, run("r", "f", wider)).unwrap(),
            Replace
        );
        assert_eq!(
            decide(RerunPolicy::Skip, &ledger, run("r", "g", scope)).unwrap(),
            Skip
        );
        assert_eq!(
            decide(RerunPolicy::Replace, &ledger, run("r", "f", scope)).unwrap(),
            Replace
        );
        assert_eq!(
            decide(RerunPolicy::Fail, &ledger, run("r", "f", scope)).unwrap(),
            Skip
        );
        assert!(matches!(
            decide(RerunPolicy::Fail, &ledger, run("other", "f", scope)),
            Err(Error::RerunRefused { .. })
        ));
        assert_eq!(
            decide(RerunPolicy::Fail, &Ledger::default(), run("x", "f", scope)).unwrap(),
            Replace
        );
    }
}
