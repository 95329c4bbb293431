//! # lakewriter
//!
//! Idempotent, date-partitioned writes into Delta Lake tables: run a day once or ten times,
//! the table ends up the same.
//!
//! A run reads the raw input files of a date scope and replaces exactly the scope's date
//! partitions, old files out and new files in, in one Delta commit. Each run's identity (run
//! id, input fingerprint, rows, scope) is stored in that same commit, so a rerun is detected
//! from the latest snapshot alone: identical input is skipped without a commit.
//!
//! ```text
//!  --input files ──► source ──────────► transform ───────────► ledger ─────────► table
//!                    expand globs,       cast to the table's     who last wrote    write Parquet per
//!                    decode CSV/JSON/    types, derive the       each day? skip,   day, then ONE
//!                    Parquet, hash       date, reject rows out   replace or        commit: remove the
//!                    bytes (fingerprint) of scope, dedup by key, refuse (policy)   scope's old files,
//!                                        order by day and key                      add the new ones,
//!                                                                                  tagged with the run
//!                                                   lost the race? reload ◄────────┘
//!                                                   and decide again
//! ```
//!
//! ```no_run
//! # async fn example() -> lakewriter::Result<()> {
//! use lakewriter::{PartitionScope, RunStatus, WriteJob};
//! let job = WriteJob::new("./lake/sales", PartitionScope::parse("2024-01-01", "2024-01-03")?)
//!     .input("raw/sales/*.csv")
//!     .key(["order_id"])
//!     .order_by("updated_at")
//!     .run_id("airflow-2024-01-03T00");
//! let first = job.run().await?;
//! let again = job.run().await?;
//! assert_eq!(again.status, RunStatus::Skipped);
//! assert_eq!(again.version, first.version);
//! # Ok(()) }
//! ```
#![warn(missing_docs, unreachable_pub)]

mod error;
mod inspect;
mod job;
mod ledger;
mod scope;
mod source;
mod storage;
mod table;
mod transform;

pub use error::{Error, ErrorKind, InputLocation, Result};
pub use inspect::{CommitSummary, PartitionRun, history, runs};
pub use job::{RunStatus, WriteJob, WriteReport};
pub use ledger::RerunPolicy;
pub use scope::PartitionScope;
pub use source::InputFormat;
pub use storage::StorageOptions;
