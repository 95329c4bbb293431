//! The library's typed errors. The CLI maps [`Error::kind`] to exit codes; callers match on
//! meaning, never on message text.

use std::fmt;

/// A place in the input: the file and, where known, the 1-based data row (header excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLocation {
    /// The input file as the user named it (path or URI).
    pub file: String,
    /// 1-based data row inside the file, if the problem is in one row.
    pub row: Option<usize>,
}

impl fmt::Display for InputLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            Some(row) => write!(f, "{} row {row}", self.file),
            None => write!(f, "{}", self.file),
        }
    }
}

/// Everything that can go wrong in a lakewriter run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option or argument is invalid (bad date, empty key, unknown format ...).
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// No input file matched a path or glob.
    #[error("no input file matches '{pattern}': check the path, the glob and the date scope")]
    NoInputFiles {
        /// The pattern as given.
        pattern: String,
    },

    /// The input cannot be decoded or violates the run's contract; nothing was written.
    #[error("bad input at {at}: {message}")]
    BadInput {
        /// Where the problem is.
        at: InputLocation,
        /// What is wrong and what to do about it.
        message: String,
    },

    /// The input's columns do not fit the table's schema; nothing was written.
    #[error("schema mismatch in {file}: {message}")]
    SchemaMismatch {
        /// The input file.
        file: String,
        /// What differs.
        message: String,
    },

    /// The table location holds something that is not a usable Delta table for lakewriter.
    #[error("table {table}: {message}")]
    BadTable {
        /// The table URI.
        table: String,
        /// What is wrong with it.
        message: String,
    },

    /// An input row breaks one of the table's constraints (a CHECK constraint, a column
    /// invariant, a NOT NULL column); nothing was written.
    #[error(
        "bad input at {at}: the row violates {constraint} ({expression}) with {values}; fix \
         the row or the constraint (nothing was written)"
    )]
    ConstraintViolated {
        /// The file and row.
        at: InputLocation,
        /// The constraint, e.g. `CHECK constraint quantity_positive`.
        constraint: String,
        /// Its expression, e.g. `quantity > 0`.
        expression: String,
        /// The row's values of the columns the expression reads.
        values: String,
    },

    /// The table uses a Delta table feature lakewriter does not write (or not for this
    /// operation); refused before anything was written.
    #[error("table {table} uses the Delta table feature '{feature}': {message}")]
    UnsupportedTableFeature {
        /// The table URI.
        table: String,
        /// The feature's protocol name (e.g. `rowTracking`) or table property.
        feature: String,
        /// Why lakewriter refuses, and what the user can do.
        message: String,
    },

    /// `--on-rerun fail` found partitions written by another run.
    #[error(
        "partition {partition} already holds data from run '{other_run}'; \
         rerun with --on-rerun replace to overwrite it, or fix the run id"
    )]
    RerunRefused {
        /// The first partition in scope that another run wrote.
        partition: String,
        /// The run that wrote it (`<unknown>` when the files carry no lakewriter run id).
        other_run: String,
    },

    /// Concurrent writers kept winning the race for the next table version.
    #[error(
        "could not commit after {attempts} attempts: other writers kept committing first; retry the run"
    )]
    CommitConflict {
        /// How many commits were attempted.
        attempts: usize,
    },

    /// Another writer created the table, with other column types, while this run was
    /// writing its first commit.
    #[error(
        "table {table}: another writer created it with other column types while this run was \
         writing; rerun (the input is then read with the table's types)"
    )]
    TableCreatedMeanwhile {
        /// The table URI.
        table: String,
    },

    /// Another writer changed the table's rules (constraints, column mapping, table
    /// features) while this run was writing; the run's files were deleted.
    #[error(
        "table {table}: another writer changed its {what} while this run was writing; rerun \
         (the input is then checked against the table as it is now)"
    )]
    TableChangedMeanwhile {
        /// The table URI.
        table: String,
        /// What changed.
        what: String,
    },

    /// A storage, Delta or Arrow failure underneath.
    #[error("{context}: {source}")]
    Internal {
        /// What lakewriter was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The broad class of an [`Error`]; the CLI turns it into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad options or bad input: fix the call or the data.
    BadInput,
    /// A rerun refused by the `fail` policy.
    RerunRefused,
    /// A commit conflict that retries could not resolve.
    Conflict,
    /// The table needs a Delta feature lakewriter does not write: change the table or use
    /// another writer.
    UnsupportedTable,
    /// The storage did not answer or failed on its side (network, timeouts, throttling,
    /// server errors): nothing half-done is left (the table holds the run's whole commit or
    /// none of it), so the same run can simply be tried again later.
    Storage,
    /// Anything else (a damaged table, refused credentials, local I/O).
    Other,
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidOption(_)
            | Error::NoInputFiles { .. }
            | Error::BadInput { .. }
            | Error::SchemaMismatch { .. }
            | Error::ConstraintViolated { .. } => ErrorKind::BadInput,
            Error::UnsupportedTableFeature { .. } => ErrorKind::UnsupportedTable,
            Error::RerunRefused { .. } => ErrorKind::RerunRefused,
            Error::CommitConflict { .. }
            | Error::TableCreatedMeanwhile { .. }
            | Error::TableChangedMeanwhile { .. } => ErrorKind::Conflict,
            Error::Internal { source, .. } if is_transient(source.as_ref()) => ErrorKind::Storage,
            Error::BadTable { .. } | Error::Internal { .. } => ErrorKind::Other,
        }
    }

    pub(crate) fn internal(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Internal {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// The result of a task that was joined. A panic in the task is raised again here: a
    /// panic is a bug, never an answer to input, and must not pass as an error a caller
    /// handles (a test, the fuzzer, a backfill counting failed days). A cancelled task is an
    /// internal error.
    pub(crate) fn rejoin<T>(
        joined: std::result::Result<T, tokio::task::JoinError>,
        context: impl Into<String>,
    ) -> Result<T> {
        joined.map_err(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(cancelled) => Error::internal(context, cancelled),
        })
    }

    pub(crate) fn bad_input(file: &str, row: Option<usize>, message: impl Into<String>) -> Self {
        Error::BadInput {
            at: InputLocation {
                file: file.to_string(),
                row,
            },
            message: message.into(),
        }
    }
}

/// Whether `error` (or an error it was caused by) is a storage failure that may pass: a remote
/// object store's catch-all error (network, timeouts, HTTP 5xx and throttling once its own
/// retries are spent; not-found, permission, precondition and configuration errors have kinds
/// of their own) or a dropped connection.
fn is_transient(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind as Io;
    let mut cause = Some(error);
    while let Some(error) = cause {
        match error.downcast_ref::<object_store::Error>() {
            // A local folder's catch-all covers full disks and denied permissions too: its
            // I/O error, further down, decides.
            Some(object_store::Error::Generic {
                store: "LocalFileSystem",
                ..
            }) => {}
            Some(store) => return matches!(store, object_store::Error::Generic { .. }),
            None => {}
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                Io::TimedOut
                    | Io::ConnectionReset
                    | Io::ConnectionRefused
                    | Io::ConnectionAborted
                    | Io::NotConnected
                    | Io::BrokenPipe
                    | Io::UnexpectedEof
            )
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn store_error(error: object_store::Error) -> Error {
        // As delta-rs hands storage failures on: wrapped in its own error type.
        Error::internal(
            "writing data files",
            deltalake::DeltaTableError::from(error),
        )
    }

    #[test]
    fn storage_failures_that_may_pass_are_told_from_fatal_ones() {
        let network = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let transient = [
            store_error(object_store::Error::Generic {
                store: "S3",
                source: "HTTP 503 Slow Down after 10 retries".into(),
            }),
            Error::internal("reading input", network),
        ];
        for error in transient {
            assert_eq!(error.kind(), ErrorKind::Storage, "{error}");
        }
        let fatal = [
            store_error(object_store::Error::PermissionDenied {
                path: "t/_delta_log".into(),
                source: "403".into(),
            }),
            store_error(object_store::Error::NotFound {
                path: "t/x.parquet".into(),
                source: "404".into(),
            }),
            Error::internal(
                "reading input",
                std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
            ),
            store_error(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "read-only folder",
                )),
            }),
        ];
        for error in fatal {
            assert_eq!(error.kind(), ErrorKind::Other, "{error}");
        }
    }
}
