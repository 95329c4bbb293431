//! Named points for the crash and race tests (tests/integration/crash.rs, the race scenarios).
//!
//! `LAKEWRITER_FAIL_AT=<name>` makes the process abort at that point, as a power cut or
//! `kill -9` would: no destructor, no cleanup, no flush.
//!
//! `LAKEWRITER_PAUSE_AT=<name>:<count>:<folder>` holds the process the first time it reaches
//! that point until `count` processes have reached it: a barrier, so that racing writers have
//! all read the table and uploaded their files before any of them commits, and the race the
//! test names really happens. Each arrival leaves a file in `folder` and waits until the folder
//! holds `count` files.
//!
//! Unset, a point costs two environment lookups. The names are listed in RELIABILITY.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a barrier waits for the others before it gives up: a barrier that never fills is
/// a broken test, and aborting says so instead of hanging the suite.
const PAUSE_LIMIT: Duration = Duration::from_secs(120);

/// Whether `LAKEWRITER_FAIL_AT` names this point: for a point whose crash state takes
/// preparing (see `table::maintenance`).
pub(crate) fn armed(name: &str) -> bool {
    std::env::var("LAKEWRITER_FAIL_AT").is_ok_and(|wanted| wanted == name)
}

/// Aborts the process if `LAKEWRITER_FAIL_AT` names this point; waits at the barrier if
/// `LAKEWRITER_PAUSE_AT` names it.
pub(crate) fn hit(name: &str) {
    if armed(name) {
        eprintln!("lakewriter: fail point '{name}' reached: aborting");
        std::process::abort();
    }
    if let Ok(pause) = std::env::var("LAKEWRITER_PAUSE_AT") {
        pause_at(name, &pause);
    }
}

/// Waits at the barrier `spec` describes if it names this point and this process has not
/// waited yet.
fn pause_at(name: &str, spec: &str) {
    static PAUSED: AtomicBool = AtomicBool::new(false);
    let mut parts = spec.splitn(3, ':');
    let (Some(point), Some(count), Some(folder)) = (parts.next(), parts.next(), parts.next())
    else {
        abort(&format!(
            "LAKEWRITER_PAUSE_AT '{spec}' is not <point>:<count>:<folder>"
        ));
    };
    if point != name || PAUSED.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(count) = count.parse::<usize>() else {
        abort(&format!(
            "LAKEWRITER_PAUSE_AT '{spec}': '{count}' is no count"
        ));
    };
    let folder = std::path::Path::new(folder);
    let arrival = folder.join(std::process::id().to_string());
    if let Err(e) = std::fs::write(&arrival, name) {
        abort(&format!(
            "cannot mark arrival at {}: {e}",
            arrival.display()
        ));
    }
    let started = Instant::now();
    loop {
        let arrived = std::fs::read_dir(folder).map_or(0, |entries| entries.count());
        if arrived >= count {
            return;
        }
        if started.elapsed() > PAUSE_LIMIT {
            abort(&format!(
                "pause point '{name}': {arrived} of {count} processes arrived in {PAUSE_LIMIT:?}"
            ));
        }
        // A test-only hook: blocking this thread is the point.
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn abort(message: &str) -> ! {
    eprintln!("lakewriter: {message}: aborting");
    std::process::abort();
}
