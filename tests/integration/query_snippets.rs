//! The README's "Query it" snippets are the files under examples/query, and these tests run
//! them against tables lakewriter wrote: DuckDB (CLI and Python), Polars and Spark.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Backend, Lake, Status, repo_path};

fn readers_bin() -> PathBuf {
    let python = std::env::var("LAKEWRITER_READERS_PYTHON")
        .expect("LAKEWRITER_READERS_PYTHON is not set: run the suite with scripts/test");
    Path::new(&python).parent().unwrap().to_path_buf()
}

/// A HOME whose DuckDB has the delta and httpfs extensions installed from the pinned pip
/// packages, so the snippets' plain `INSTALL delta` works offline.
fn duckdb_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let status = Command::new(readers_bin().join("python"))
        .arg(repo_path("scripts/readers/read_table.py"))
        .arg("--install-duckdb-extensions")
        .env("HOME", home.path())
        .status()
        .unwrap();
    assert!(status.success());
    home
}

/// Runs one snippet on the lake's table and returns its "DATE ROWS" lines.
fn run_snippet(lake: &Lake, home: &Path, program: &str, snippet: &str) -> Vec<String> {
    let bin = readers_bin();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let program = if program == "sh" {
        "sh".into()
    } else {
        bin.join(program)
    };
    let output = Command::new(program)
        .arg(repo_path(&format!("examples/query/{snippet}")))
        .arg(&lake.table)
        .env("HOME", home)
        .env("PATH", path)
        .env(
            "DELTA_JARS",
            std::env::var("LAKEWRITER_SPARK_JARS").unwrap_or_default(),
        )
        .envs(lake.storage_env())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{snippet} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

async fn snippets_count_the_rows(backend: Backend, snippets: &[(&str, &str)]) {
    let lake = Lake::new(backend);
    let sales = repo_path("examples/data/sales/*.csv");
    lake.write(&[
        "--input",
        &sales,
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
        "--key",
        "order_id",
    ])
    .expect(Status::Committed);
    let expected: Vec<String> = lake
        .rows()
        .await
        .per_date()
        .into_iter()
        .map(|(date, rows)| format!("{date} {rows}"))
        .collect();
    let home = duckdb_home();
    for (program, snippet) in snippets {
        assert_eq!(
            run_snippet(&lake, home.path(), program, snippet),
            expected,
            "{snippet}"
        );
    }
}

#[tokio::test]
async fn snippets_read_a_local_table() {
    snippets_count_the_rows(
        Backend::Local,
        &[
            ("sh", "duckdb-cli.sh"),
            ("python", "duckdb_query.py"),
            ("python", "polars_query.py"),
            ("python", "spark_query.py"),
        ],
    )
    .await;
}

#[tokio::test]
async fn snippets_read_an_s3_table() {
    snippets_count_the_rows(
        Backend::S3,
        &[
            ("sh", "duckdb-cli.sh"),
            ("python", "duckdb_query.py"),
            ("python", "polars_query.py"),
        ],
    )
    .await;
}

#[test]
fn the_readme_shows_the_snippets_the_tests_run() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    for snippet in [
        "duckdb-cli.sh",
        "duckdb_query.py",
        "polars_query.py",
        "spark_query.py",
    ] {
        let text =
            std::fs::read_to_string(repo_path(&format!("examples/query/{snippet}"))).unwrap();
        assert!(
            readme.contains(text.trim_end()),
            "README.md does not show examples/query/{snippet} as it is"
        );
    }
}
