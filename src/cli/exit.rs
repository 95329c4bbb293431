//! Exit codes: one per way a command can end, so an orchestrator can tell a retry from a fix.

use std::process::ExitCode;

use lakewriter::ErrorKind;

/// The exit codes, documented in the README and in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Committed, skipped or planned.
    Done = 0,
    /// Storage, a damaged table, anything else.
    Other = 1,
    /// Bad input or usage, or a table feature lakewriter does not write.
    BadInput = 2,
    /// `--on-rerun fail` refused.
    RerunRefused = 3,
    /// Other writers kept winning, or changed the table meanwhile.
    Conflict = 4,
    /// Some days of a backfill failed.
    DaysFailed = 5,
    /// The commit stands; its notification is pending.
    NotificationPending = 6,
    /// The storage failed in a way that may pass: rerun later.
    Storage = 7,
}

impl Exit {
    /// The exit code of an error: every kind is mapped here, so a new kind cannot silently
    /// exit 1.
    pub(crate) fn of(error: &lakewriter::Error) -> Self {
        match error.kind() {
            // A table feature lakewriter does not write is, like bad input, fixed by a person
            // (the table or the call), never by a retry.
            ErrorKind::BadInput | ErrorKind::UnsupportedTable => Exit::BadInput,
            ErrorKind::RerunRefused => Exit::RerunRefused,
            ErrorKind::Conflict => Exit::Conflict,
            ErrorKind::Storage => Exit::Storage,
            ErrorKind::Other => Exit::Other,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}
