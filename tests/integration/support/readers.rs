//! Other engines: the Python reader harness (scripts/readers/read_table.py) with DuckDB and
//! one Spark session for the whole test process, reading tables and running Spark SQL.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::lake::s3_env;
use super::{Lake, Rows};

impl Lake {
    /// What another engine sees of the table (at `version`, or the latest).
    pub fn seen_by(&self, engine: Engine, version: Option<u64>) -> Seen {
        let request = serde_json::json!({
            "engine": engine.name(),
            "table": self.table,
            "version": version,
            "history": engine == Engine::Spark,
        });
        let answer = readers().ask(&request);
        if let Some(error) = answer.get("error") {
            panic!(
                "{} could not read {} (version {version:?}): {error}; its log is in {}",
                engine.name(),
                self.table,
                readers_log().display()
            );
        }
        Seen::from_answer(&answer)
    }

    /// The table as Spark SQL names it: delta.`<location>`.
    pub fn sql_name(&self) -> String {
        format!("delta.`{}`", self.table)
    }

    /// Runs Spark SQL statements in the reader harness's Spark session, `{t}` standing for
    /// this table ([`Lake::sql_name`]); returns the last statement's rows.
    pub fn spark_sql(&self, statements: &[&str]) -> Vec<Value> {
        let statements: Vec<String> = statements
            .iter()
            .map(|s| s.replace("{t}", &self.sql_name()))
            .collect();
        let answer = readers().ask(&serde_json::json!({ "sql": statements }));
        if let Some(error) = answer.get("error") {
            panic!(
                "Spark refused {statements:?}: {error}; its log is in {}",
                readers_log().display()
            );
        }
        parse_rows(&answer)
    }

    /// Creates the table with Delta's `DeltaTableBuilder` in the harness's Spark session:
    /// `spec` holds `columns` (`name`, `type`, optional `generated` expression or `identity`),
    /// `partitioned_by` and `properties`.
    pub fn spark_build_table(&self, mut spec: Value) {
        spec["location"] = Value::from(self.table.as_str());
        let answer = readers().ask(&serde_json::json!({ "build_table": spec }));
        if let Some(error) = answer.get("error") {
            panic!("Spark could not build {}: {error}", self.table);
        }
    }

    /// Spark's change data feed of the table from `version` on: rows with `_change_type`
    /// and `_commit_version`.
    pub fn spark_changes(&self, version: u64) -> Vec<Value> {
        let request = serde_json::json!({
            "engine": "spark", "table": self.table, "changes_from": version,
        });
        let answer = readers().ask(&request);
        if let Some(error) = answer.get("error") {
            panic!(
                "Spark could not read the change feed of {}: {error}",
                self.table
            );
        }
        parse_rows(&answer)
    }

    /// Asserts, when the lake holds a table, that every engine reads what lakewriter's reader
    /// reads (see `rows_agreed_by_readers`).
    pub async fn assert_readers_agree(&self) {
        if !self.versions().await.is_empty() {
            self.rows_agreed_by_readers().await;
        }
    }

    /// Asserts that every engine sees exactly the rows lakewriter's reader sees (same rows,
    /// same rows per date, same checksum), and returns them.
    pub async fn rows_agreed_by_readers(&self) -> Rows {
        let ours = self.rows().await;
        if !readers_available() {
            eprintln!(
                "skipped: DuckDB and Spark reading {} (no reader harness: run scripts/test)",
                self.table
            );
            return ours;
        }
        for engine in ENGINES {
            let seen = self.seen_by(engine, None);
            assert_eq!(
                ours,
                seen.rows,
                "{} and delta-rs disagree on the rows",
                engine.name()
            );
            assert_eq!(
                ours.per_date(),
                seen.rows_per_date,
                "{} rows per date",
                engine.name()
            );
            assert_eq!(ours.checksum(), seen.checksum, "{} checksum", engine.name());
        }
        ours
    }
}

/// The "rows" of a harness answer, parsed.
/// Whether the reader harness can run: scripts/test builds its virtualenv and sets
/// LAKEWRITER_READERS_PYTHON. A plain `cargo test` without it skips the engine cross-checks
/// of [`Lake::rows_agreed_by_readers`], saying so; tests that need Spark to build their tables
/// fail with a message. scripts/test also sets LAKEWRITER_REQUIRE_READERS, so that a
/// harness missing there fails instead of skipping.
pub fn readers_available() -> bool {
    tool("LAKEWRITER_READERS_PYTHON").is_some()
}

/// The path a tool's variable names (scripts/test installs the tool and sets it), or `None`
/// when it is unset and the test should skip, as without the reader harness.
pub fn tool(variable: &str) -> Option<String> {
    let path = std::env::var(variable).ok();
    if path.is_none() && std::env::var_os("LAKEWRITER_REQUIRE_READERS").is_some() {
        panic!("LAKEWRITER_REQUIRE_READERS is set but {variable} is not: run scripts/test");
    }
    if path.is_none() {
        eprintln!("{variable} is not set: skipped (scripts/test sets it)");
    }
    path
}

fn parse_rows(answer: &Value) -> Vec<Value> {
    answer["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| serde_json::from_str(r.as_str().unwrap()).unwrap())
        .collect()
}

/// The engines that read every table in the tests.
pub const ENGINES: [Engine; 2] = [Engine::DuckDb, Engine::Spark];

/// A reader engine of the Python harness (scripts/readers/read_table.py).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Engine {
    DuckDb,
    Spark,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::DuckDb => "duckdb",
            Engine::Spark => "spark",
        }
    }
}

/// One engine's view of a table.
#[derive(Debug)]
pub struct Seen {
    pub rows: Rows,
    pub rows_per_date: BTreeMap<String, u64>,
    pub checksum: String,
    /// Spark's DESCRIBE HISTORY: (version, operation, userMetadata), newest first.
    pub history: Vec<(u64, String, Option<String>)>,
}

impl Seen {
    fn from_answer(answer: &Value) -> Self {
        let rows = answer["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let rows_per_date = answer["rows_per_date"]
            .as_object()
            .expect("rows_per_date")
            .iter()
            .map(|(date, n)| (date.clone(), n.as_u64().unwrap()))
            .collect();
        let history = answer
            .get("history")
            .and_then(Value::as_array)
            .map(|commits| {
                commits
                    .iter()
                    .map(|c| {
                        (
                            c["version"].as_u64().unwrap(),
                            c["operation"].as_str().unwrap().to_string(),
                            c["userMetadata"].as_str().map(str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Seen {
            rows: Rows(rows),
            rows_per_date,
            checksum: answer["checksum"].as_str().unwrap().to_string(),
            history,
        }
    }
}

/// The reader harness, started once per test process: Spark's JVM takes seconds to start, so
/// every test shares one session. Requests are serialised by the mutex.
struct Readers {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _child: Child,
}

fn readers_log() -> PathBuf {
    std::env::temp_dir().join(format!("lakewriter-readers-{}.log", std::process::id()))
}

fn readers() -> ReadersGuard {
    static READERS: OnceLock<Mutex<Readers>> = OnceLock::new();
    let readers = READERS.get_or_init(|| {
        let python = std::env::var("LAKEWRITER_READERS_PYTHON").unwrap_or_else(|_| {
            panic!(
                "LAKEWRITER_READERS_PYTHON is not set: run the suite with scripts/test, which \
                 builds the reader virtualenv (DuckDB, PySpark) and sets it"
            )
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/readers/read_table.py");
        let log = std::fs::File::create(readers_log()).unwrap();
        let mut command = Command::new(python);
        command
            .arg(script)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        if std::env::var("LAKEWRITER_S3_ENDPOINT").is_ok() {
            command.envs(s3_env());
        }
        let mut child = command.spawn().expect("the reader harness starts");
        Mutex::new(Readers {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            _child: child,
        })
    });
    ReadersGuard(
        readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
}

struct ReadersGuard(std::sync::MutexGuard<'static, Readers>);

impl ReadersGuard {
    fn ask(mut self, request: &Value) -> Value {
        let readers = &mut *self.0;
        writeln!(readers.stdin, "{request}").expect("send to the reader harness");
        readers.stdin.flush().unwrap();
        let mut line = String::new();
        readers
            .stdout
            .read_line(&mut line)
            .expect("read from the reader harness");
        assert!(
            !line.is_empty(),
            "the reader harness exited; its log is in {}",
            readers_log().display()
        );
        serde_json::from_str(&line).expect("the harness answers JSON")
    }
}
