//! Test support: a lake (a table location plus a folder of raw inputs), the CLI, the Delta log
//! as raw JSON, the table's rows as lakewriter's DataFusion reads them, and the same rows as
//! DuckDB reads them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use deltalake::datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;

/// Where a lake keeps its table and its raw inputs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// Table and inputs in local folders.
    Local,
    /// Table on S3 (LocalStack), inputs in a local folder.
    S3,
    /// Table and inputs on S3 (LocalStack).
    S3Inputs,
}

/// A table location and a place for raw input files.
pub struct Lake {
    pub table: String,
    backend: Backend,
    store: Arc<dyn ObjectStore>,
    root: StorePath,
    inputs: tempfile::TempDir,
    s3_prefix: String,
    _table_dir: Option<tempfile::TempDir>,
}

/// The bucket scripts/test (and localstack/init) creates.
const BUCKET: &str = "lakewriter-test";

/// The LocalStack endpoint, or a panic that says how to get one.
pub fn s3_endpoint() -> String {
    std::env::var("LAKEWRITER_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "LAKEWRITER_S3_ENDPOINT is not set: the S3 tests need LocalStack. Run the suite with \
             scripts/test (it starts LocalStack), or start it with `scripts/localstack start DIR` \
             and export LAKEWRITER_S3_ENDPOINT=<the URL it prints>"
        )
    })
}

/// The standard AWS variables that point lakewriter, delta-rs and DuckDB at LocalStack.
fn s3_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", s3_endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

impl Lake {
    /// A lake on the given backend, with a fresh table location.
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Local => Self::local(),
            Backend::S3 | Backend::S3Inputs => Self::s3(backend),
        }
    }

    /// A table in a fresh local folder.
    pub fn local() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let table = dir.path().join("sales").to_string_lossy().into_owned();
        let url = url::Url::from_directory_path(&table).unwrap();
        let (store, root) = object_store::parse_url(&url).unwrap();
        Self {
            table,
            backend: Backend::Local,
            store: Arc::from(store),
            root,
            inputs: tempfile::tempdir().expect("temp dir"),
            s3_prefix: String::new(),
            _table_dir: Some(dir),
        }
    }

    fn s3(backend: Backend) -> Self {
        let prefix = format!("t-{}", uuid::Uuid::new_v4().simple());
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(s3_endpoint())
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_region("us-east-1")
            .with_allow_http(true)
            .build()
            .expect("S3 store for LocalStack");
        Self {
            table: format!("s3://{BUCKET}/{prefix}/sales"),
            backend,
            store: Arc::new(store),
            root: StorePath::from(format!("{prefix}/sales")),
            inputs: tempfile::tempdir().expect("temp dir"),
            s3_prefix: prefix,
            _table_dir: None,
        }
    }

    /// Another, empty lake on the same backend.
    pub fn sibling(&self) -> Self {
        Self::new(self.backend)
    }

    /// Storage options for opening the table in-process.
    fn storage_options(&self) -> std::collections::HashMap<String, String> {
        match self.backend {
            Backend::Local => Default::default(),
            Backend::S3 | Backend::S3Inputs => [
                ("aws_endpoint", s3_endpoint()),
                ("aws_access_key_id", "test".into()),
                ("aws_secret_access_key", "test".into()),
                ("aws_region", "us-east-1".into()),
                ("allow_http", "true".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }

    /// Writes a raw input file and returns its path or URI.
    pub fn input(&self, name: &str, content: &str) -> String {
        self.input_bytes(name, content.as_bytes())
    }

    /// Writes raw input bytes and returns the path or URI.
    pub fn input_bytes(&self, name: &str, content: &[u8]) -> String {
        if self.backend == Backend::S3Inputs {
            let key = StorePath::from(format!("{}/inputs/{name}", self.s3_prefix));
            let store = self.store.clone();
            let bytes = content.to_vec();
            // Test helpers are synchronous; the upload runs on a small runtime of its own.
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(store.put(&key, bytes.into()))
                    .expect("upload input")
            })
            .join()
            .unwrap();
            return format!("{}/{name}", self.inputs_prefix());
        }
        let path = self.inputs.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// Where inputs live (a folder or an `s3://` prefix), for globs.
    pub fn inputs_prefix(&self) -> String {
        match self.backend {
            Backend::S3Inputs => format!("s3://{BUCKET}/{}/inputs", self.s3_prefix),
            _ => self.inputs.path().to_string_lossy().into_owned(),
        }
    }

    /// The environment a program needs to reach this lake's storage.
    pub fn storage_env(&self) -> Vec<(&'static str, String)> {
        match self.backend {
            Backend::Local => Vec::new(),
            Backend::S3 | Backend::S3Inputs => s3_env(),
        }
    }

    /// A `lakewriter` command with this lake's storage environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lakewriter"));
        command.args(args).envs(self.storage_env());
        command
    }

    /// Runs `lakewriter write --table <this table> ARGS --output json`.
    pub fn write(&self, args: &[&str]) -> Run {
        let mut all = vec!["write", "--table", &self.table, "--output", "json"];
        all.extend_from_slice(args);
        Run::of(self.command(&all).output().expect("lakewriter runs"))
    }

    /// Starts one `lakewriter write --table <this table> --output json ARGS` per argument
    /// list, all at once, and waits for every one.
    pub fn race_writes(&self, runs: &[Vec<String>]) -> Vec<Run> {
        let children: Vec<_> = runs
            .iter()
            .map(|args| {
                let mut all = vec!["write", "--table", &self.table, "--output", "json"];
                all.extend(args.iter().map(String::as_str));
                self.command(&all)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("lakewriter starts")
            })
            .collect();
        children
            .into_iter()
            .map(|child| Run::of(child.wait_with_output().expect("lakewriter runs")))
            .collect()
    }

    /// Runs `lakewriter backfill --table <this table> ARGS --output json`.
    pub fn backfill(&self, args: &[&str]) -> Run {
        let mut all = vec!["backfill", "--table", &self.table, "--output", "json"];
        all.extend_from_slice(args);
        Run::of(self.command(&all).output().expect("lakewriter runs"))
    }

    /// Runs `lakewriter runs --output json` and returns the rows.
    pub fn runs(&self) -> Vec<Value> {
        let args = ["runs", "--table", &self.table, "--output", "json"];
        let run = Run::of(self.command(&args).output().expect("lakewriter runs"));
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

    /// The bytes of one file under the table.
    pub async fn read_file(&self, relative: &str) -> Vec<u8> {
        let path = StorePath::from(format!("{}/{relative}", self.root));
        self.store
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    /// The data files the latest version references, relative paths, sorted.
    pub async fn active_files(&self) -> Vec<String> {
        let table = self.open().await;
        let mut files: Vec<String> = table
            .snapshot()
            .unwrap()
            .log_data()
            .iter()
            .map(|f| f.path().to_string())
            .collect();
        files.sort();
        files
    }

    async fn open(&self) -> deltalake::DeltaTable {
        let url = match self.backend {
            Backend::Local => url::Url::from_directory_path(&self.table).unwrap(),
            _ => url::Url::parse(&self.table).unwrap(),
        };
        deltalake::open_table_with_storage_options(url, self.storage_options())
            .await
            .expect("table opens")
    }

    /// The table's rows as lakewriter's own reader (delta-rs + DataFusion) sees them.
    pub async fn rows(&self) -> Rows {
        let table = self.open().await;
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

    /// Asserts that every engine sees exactly the rows lakewriter's reader sees (same rows,
    /// same rows per date, same checksum), and returns them.
    pub async fn rows_agreed_by_readers(&self) -> Rows {
        let ours = self.rows().await;
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

/// Serves HTTP/1 on a loopback port of its own, each request answered by `handler`; returns
/// the address. A connection the handler fails ends there (a dropped connection, for faults).
pub async fn serve_http<F, Fut, E>(handler: F) -> std::net::SocketAddr
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, E>>
        + Send
        + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(stream),
                        hyper::service::service_fn(handler),
                    )
                    .await;
            });
        }
    });
    addr
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
    pub fn of(output: Output) -> Self {
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

    /// Rows given as JSON objects (values as the readers print them: dates and timestamps as
    /// text), in canonical form.
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> Self {
        let mut rows: Vec<String> = values
            .into_iter()
            .map(|v| {
                let row: BTreeMap<String, Value> = serde_json::from_value(v).unwrap();
                serde_json::to_string(&row).unwrap()
            })
            .collect();
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

    /// Row counts per `date`.
    pub fn per_date(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for row in self.parsed() {
            *counts
                .entry(row["date"].as_str().unwrap_or("null").to_string())
                .or_default() += 1;
        }
        counts
    }

    /// SHA-256 of the sorted rows joined by newlines, as the reader harness computes it.
    pub fn checksum(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.0.join("\n").as_bytes()))
    }
}

/// The same canonical form the Python reader harness produces.
fn canonical(column: &dyn Array, i: usize) -> Value {
    if column.is_null(i) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Int64 => column.as_primitive::<Int64Type>().value(i).into(),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(i).into(),
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
