//! Named crash points for the crash suite (tests/integration/crash.rs).
//!
//! `LAKEWRITER_FAIL_AT=<name>` makes the process abort at that point, as a power cut or
//! `kill -9` would: no destructor, no cleanup, no flush. Unset, a point costs one environment
//! lookup per run. The names are listed in RELIABILITY.md.

/// Aborts the process if `LAKEWRITER_FAIL_AT` names this point.
pub(crate) fn hit(name: &str) {
    if std::env::var("LAKEWRITER_FAIL_AT").is_ok_and(|wanted| wanted == name) {
        eprintln!("lakewriter: fail point '{name}' reached: aborting");
        std::process::abort();
    }
}
