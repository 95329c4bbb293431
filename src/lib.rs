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
//! Before any of it, `features` reads what the table's Delta protocol and properties ask of a
//! writer (deletion vectors, column mapping, constraints, ...) and refuses the run if
//! lakewriter does not follow one of them (COMPATIBILITY.md); `constraints` checks the
//! table's CHECK constraints and NOT NULL columns on every row `transform` shapes.
//!
//! The modules, in pipeline order; each uses only those above it (and the leaves):
//!
//! | file | what it does |
//! |---|---|
//! | `error.rs`, `scope.rs`, `rules.rs`, `rows.rs`, `failpoint.rs` | leaves: typed errors, the date scope, the row rules (key, order, partition column), Arrow row encoding, the crash and race tests' fail and pause points |
//! | `storage.rs` | table URLs, object stores, input globs |
//! | `features.rs` | what the table's protocol asks of writers: honour or refuse |
//! | `constraints.rs` | the table's constraints compiled and checked per row |
//! | `source/` | find, decode and fingerprint the input files: `mod.rs` finds and hashes, `text.rs` drives the text formats, `csv.rs`, `json.rs` and `parquet.rs` decode one format each (`csv.rs` also cuts a large file into byte ranges), `csv_types.rs` infers a new table's CSV types |
//! | `spill.rs` | hold rows in memory or in key-hash buckets on disk |
//! | `transform.rs` | shape rows like the table, check them, keep them in the store |
//! | `dedupe.rs` | deduplicate and order a bucket's rows (one key range per core) |
//! | `ledger.rs` | who wrote each day; skip, replace or refuse |
//! | `table/` | the Delta table: `mod.rs` opens it, `snapshot.rs` reads files and ledger, `files.rs` writes Parquet, `commit.rs` commits, `merge.rs` upserts, `maintenance.rs` vacuums and checkpoints |
//! | `notify.rs` | announce each commit exactly once |
//! | `job/` | one write run: `mod.rs` builds it and prepares the input, `driver.rs` owns the commit attempts (retries, backoff, lost answers, clean-up), `replace.rs` and `merge.rs` are the write modes |
//! | `backfill.rs` | a range of days as one run each |
//! | `inspect.rs` | `runs`, `history`, `vacuum` |
//! | `cli/` (the binary) | `main.rs` parses and starts, `args.rs` the options, `render.rs` the reports, `exit.rs` the exit codes |
//!
//! Around that: [`Backfill`] runs a range of days as one run per day, resumably;
//! [`WriteMode::Merge`] upserts by key instead of replacing days; [`WriteJob::notify_url`]
//! announces each commit exactly once; [`WriteJob::memory_limit`] bounds memory by spilling.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> lakewriter::Result<()> {
//! use lakewriter::{PartitionScope, RunStatus, WriteJob};
//! # let dir = std::env::temp_dir().join(format!("lakewriter-doc-{}", std::process::id()));
//! # let table = dir.join("sales").to_string_lossy().into_owned();
//! # let sales = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sales/*.csv");
//! let job = WriteJob::new(&table, PartitionScope::parse("2024-01-01", "2024-01-03")?)
//!     .input(sales)
//!     .key(["order_id"])
//!     .order_by("updated_at")
//!     .run_id("airflow-2024-01-03T00");
//! let first = job.run().await?;
//! assert_eq!(first.status, RunStatus::Committed);
//! let again = job.run().await?; // an orchestrator retry
//! assert_eq!(again.status, RunStatus::Skipped);
//! assert_eq!(again.version, first.version);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```
#![warn(missing_docs, unreachable_pub)]

mod backfill;
mod cast;
mod constraints;
mod dedupe;
mod error;
mod evolve;
mod failpoint;
mod features;
mod inspect;
mod job;
mod ledger;
mod notify;
mod optimize;
mod restore;
mod rfc3339;
mod rows;
mod rules;
mod scope;
mod source;
mod spill;
mod storage;
mod table;
mod transform;

/// Seeded pseudo-random numbers for the unit tests' generated cases (xorshift): the same
/// cases on every run.
#[cfg(test)]
pub(crate) fn test_numbers(seed: u64) -> impl FnMut(usize) -> usize {
    let mut state = seed;
    move |below| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    }
}

pub use backfill::{Backfill, DayOutcome, Shard};
pub use error::{Error, ErrorKind, InputLocation, Result};
pub use evolve::{SchemaChange, SchemaEvolution};
pub use inspect::{CommitSummary, History, PartitionRun, Runs, Vacuum, VacuumReport};
pub use job::{RunStatus, WriteJob, WriteMode, WriteReport};
pub use ledger::RerunPolicy;
pub use notify::NotificationStatus;
pub use optimize::{DEFAULT_TARGET_FILE_SIZE, Optimize, OptimizeReport};
pub use restore::{Restore, RestoreReport};
pub use scope::{DEFAULT_MAX_DAYS, PartitionScope};
pub use source::{Compression, CsvDialect, InputFormat, decode_for_fuzzing};
pub use storage::StorageOptions;
pub use table::parquet_writer_properties;
