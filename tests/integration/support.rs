//! Test support: a lake (a table location plus a folder of raw inputs), the CLI, the Delta log
//! as raw JSON, the table's rows as lakewriter's DataFusion reads them, and the same rows as
//! DuckDB reads them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use deltalake::datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;

/// A table location and a folder for raw input files.
pub struct Lake {
    pub table: String,
    store: Arc<dyn ObjectStore>,
    root: StorePath,
    inputs: tempfile::TempDir,
    _table_dir: Option<tempfile::TempDir>,
}

impl Lake {
    /// A table in a fresh local folder.
    pub fn local() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let table = dir.path().join("sales").to_string_lossy().into_owned();
        let url = url::Url::from_directory_path(&table).unwrap();
        let (store, root) = object_store::parse_url(&url).unwrap();
        Self {
            table,
            store: Arc::from(store),
            root,
            inputs: tempfile::tempdir().expect("temp dir"),
            _table_dir: Some(dir),
        }
    }

    /// Another, empty lake on the same backend.
    pub fn sibling(&self) -> Self {
        Self::local()
    }

    /// Writes a raw input file and returns its path.
    pub fn input(&self, name: &str, content: &str) -> String {
        let path = self.inputs.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// Writes raw input bytes and returns the path.
    pub fn input_bytes(&self, name: &str, content: &[u8]) -> String {
        let path = self.inputs.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// The input folder, for globs.
    pub fn inputs_dir(&self) -> &Path {
        self.inputs.path()
    }

    /// Runs `lakewriter write --table <this table> ARGS --output json`.
    pub fn write(&self, args: &[&str]) -> Run {
        let mut all = vec!["write", "--table", &self.table, "--output", "json"];
        all.extend_from_slice(args);
        Run::of(lakewriter(&all))
    }

    /// Runs `lakewriter runs --output json` and returns the rows.
    pub fn runs(&self) -> Vec<Value> {
        let run = Run::of(lakewriter(&[
            "runs",
            "--table",
            &self.table,
            "--output",
            "json",
        ]));
        assert_eq!(run.code, 0, "runs failed: {}", run.stderr);
        run.json.as_array().expect("runs prints an array").clone()
    }

    /// Table versions present as JSON commits in `_delta_log`, ascending.
    pub async fn versions(&self) -> Vec<u64> {
        let mut versions: Vec<u64> = self
            .log_files()
            .await
            .iter()
            .filter_map(|name| name.strip_suffix(".json")?.parse().ok())
            .collect();
        versions.sort();
        versions
    }

    /// File names in `_delta_log`.
    pub async fn log_files(&self) -> Vec<String> {
        let log = self.root.clone().join("_delta_log");
        let listed: Vec<_> = self
            .store
            .list(Some(&log))
            .try_collect()
            .await
            .unwrap_or_default();
        listed
            .into_iter()
            .filter_map(|meta| meta.location.filename().map(str::to_string))
            .collect()
    }

    /// Deletes one file of the log (to simulate log retention or damage).
    pub async fn delete_log_file(&self, name: &str) {
        let path = self.root.clone().join("_delta_log").join(name);
        self.store.delete(&path).await.unwrap();
    }

    /// Overwrites one file of the log.
    pub async fn put_log_file(&self, name: &str, bytes: &[u8]) {
        let path = self.root.clone().join("_delta_log").join(name);
        self.store.put(&path, bytes.to_vec().into()).await.unwrap();
    }

    /// The actions of one commit, as JSON values.
    pub async fn commit(&self, version: u64) -> Commit {
        let path = self
            .root
            .clone()
            .join("_delta_log")
            .join(format!("{version:020}.json"));
        let bytes = self.store.get(&path).await.unwrap().bytes().await.unwrap();
        let actions = String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        Commit { actions }
    }

    /// Every data file under the table (committed or not), relative paths, sorted.
    pub async fn data_files(&self) -> Vec<String> {
        let listed: Vec<_> = self
            .store
            .list(Some(&self.root))
            .try_collect()
            .await
            .unwrap();
        let prefix = format!("{}/", self.root);
        let mut files: Vec<String> = listed
            .into_iter()
            .map(|m| m.location.to_string())
            .map(|p| p.strip_prefix(&prefix).unwrap_or(&p).to_string())
            .filter(|p| p.ends_with(".parquet") && !p.starts_with("_delta_log"))
            .collect();
        files.sort();
        files
    }

    /// The table's rows as lakewriter's own reader (delta-rs + DataFusion) sees them.
    pub async fn rows(&self) -> Rows {
        let url = lakewriter_url(&self.table);
        let table = deltalake::open_table(url).await.expect("table opens");
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state()).unwrap();
        ctx.register_table("t", table.table_provider().await.unwrap())
            .unwrap();
        let batches = ctx
            .sql("SELECT * FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        Rows::from_batches(&batches)
    }

    /// The table's rows as DuckDB's delta extension sees them.
    pub fn duckdb_rows(&self) -> Rows {
        let python = std::env::var("LAKEWRITER_READERS_PYTHON").unwrap_or_else(|_| {
            panic!(
                "LAKEWRITER_READERS_PYTHON is not set: run the suite with scripts/test, which \
                 builds the reader virtualenv (DuckDB) and sets it"
            )
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/readers/read_table.py");
        let output = Command::new(python)
            .arg(script)
            .args(["--engine", "duckdb", &self.table])
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "DuckDB could not read the table: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
        let rows = seen["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        Rows(rows)
    }

    /// Asserts that DuckDB sees exactly the rows lakewriter's reader sees, and returns them.
    pub async fn rows_agreed_by_duckdb(&self) -> Rows {
        let ours = self.rows().await;
        let duckdb = self.duckdb_rows();
        assert_eq!(
            ours, duckdb,
            "DuckDB and delta-rs disagree on the table's rows"
        );
        ours
    }
}

fn lakewriter_url(table: &str) -> url::Url {
    url::Url::from_directory_path(table).unwrap()
}

/// Runs the CLI.
pub fn lakewriter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lakewriter"))
        .args(args)
        .output()
        .expect("lakewriter runs")
}

/// One CLI run: exit code, parsed JSON stdout (or Null), stderr.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

impl Run {
    fn of(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            json: serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and the given status; returns the report.
    pub fn expect(&self, status: &str) -> &Value {
        assert_eq!(self.code, 0, "lakewriter failed: {}", self.stderr);
        assert_eq!(self.json["status"], status, "report: {}", self.json);
        &self.json
    }
}

/// The actions of one commit.
pub struct Commit {
    pub actions: Vec<Value>,
}

impl Commit {
    fn paths(&self, kind: &str) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| a.get(kind))
            .map(|a| a["path"].as_str().unwrap().to_string())
            .collect()
    }

    /// Paths of the files this commit adds.
    pub fn added(&self) -> Vec<String> {
        self.paths("add")
    }

    /// Paths of the files this commit removes.
    pub fn removed(&self) -> Vec<String> {
        self.paths("remove")
    }

    /// The commitInfo action.
    pub fn info(&self) -> &Value {
        self.actions
            .iter()
            .find_map(|a| a.get("commitInfo"))
            .expect("commit has commitInfo")
    }
}

/// A table's rows in canonical text form (one JSON object per row, keys sorted), sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows(pub Vec<String>);

impl Rows {
    fn from_batches(batches: &[RecordBatch]) -> Self {
        let mut rows = Vec::new();
        for batch in batches {
            for i in 0..batch.num_rows() {
                let row: BTreeMap<String, Value> = batch
                    .schema()
                    .fields()
                    .iter()
                    .zip(batch.columns())
                    .map(|(field, column)| (field.name().clone(), canonical(column.as_ref(), i)))
                    .collect();
                rows.push(serde_json::to_string(&row).unwrap());
            }
        }
        rows.sort();
        Rows(rows)
    }

    /// The rows whose `column` equals `value`, parsed.
    pub fn filter(&self, column: &str, value: &str) -> Vec<Value> {
        self.parsed()
            .into_iter()
            .filter(|r| r[column] == value)
            .collect()
    }

    /// All rows, parsed.
    pub fn parsed(&self) -> Vec<Value> {
        self.0
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The same canonical form the Python reader harness produces.
fn canonical(column: &dyn Array, i: usize) -> Value {
    if column.is_null(i) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Int64 => column.as_primitive::<Int64Type>().value(i).into(),
        DataType::Float64 => column.as_primitive::<Float64Type>().value(i).into(),
        DataType::Utf8 => column.as_string::<i32>().value(i).into(),
        DataType::Utf8View => column.as_string_view().value(i).into(),
        DataType::Boolean => column.as_boolean().value(i).into(),
        DataType::Date32 => {
            let days = column.as_primitive::<Date32Type>().value(i);
            (chrono::NaiveDate::default() + chrono::TimeDelta::days(days.into()))
                .to_string()
                .into()
        }
        DataType::Timestamp(_, _) => {
            let micros = column.as_primitive::<TimestampMicrosecondType>().value(i);
            chrono::DateTime::from_timestamp_micros(micros)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string()
                .into()
        }
        other => panic!("the test reader does not handle {other}"),
    }
}

/// A path inside this repository (sample data).
pub fn repo_path(relative: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .to_string_lossy()
        .into_owned()
}
