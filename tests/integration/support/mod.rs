//! Test support, by concern: a lake on a backend (`lake`), the CLI and its reports (`cli`),
//! the Delta log and the table's files (`log`), rows in canonical form (`rows`), other engines
//! reading the table (`readers`), and a loopback HTTP server (`http`).

mod cli;
mod http;
mod lake;
mod log;
mod readers;
mod rows;

use std::path::PathBuf;

pub use cli::{
    BackfillReport, HistoryCommit, Notification, PartitionRun, Report, Run, Status,
    WRITE_FAIL_POINTS, lakewriter, run_at_once,
};
pub use http::serve_http;
pub use lake::{Backend, Lake, s3_endpoint};
pub use readers::{ENGINES, Engine, readers_available, tool};
pub use rows::Rows;

/// A number from the environment (seeds, iteration counts of the long forms), or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A path inside this repository (sample data).
pub fn repo_path(relative: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

/// Runs each of `tests`, an `async fn(&Lake)` of the calling module, on each backend given as
/// `module: Variant`: one module per backend, one test per function, e.g.
/// `on_backends!([local: Local, s3: S3], [a_scenario, another])` gives `local::a_scenario`,
/// `s3::a_scenario`, ... After each test, DuckDB and Spark read the table it left (if any)
/// and must see exactly the rows lakewriter's reader sees.
macro_rules! on_backends {
    ([$($module:ident: $backend:ident),+ $(,)?], $tests:tt) => {
        $( crate::support::on_backends!(@backend $module, $backend, $tests); )+
    };
    (@backend $module:ident, $backend:ident, [$($test:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let lake = crate::support::Lake::new(crate::support::Backend::$backend);
                    super::$test(&lake).await;
                    lake.assert_readers_agree().await;
                }
            )*
        }
    };
}
pub(crate) use on_backends;
