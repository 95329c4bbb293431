//! A lake: a table location on a backend (a local folder, or S3 on LocalStack) and a place
//! for raw input files.

use std::sync::Arc;

use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

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
    pub(super) backend: Backend,
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) root: StorePath,
    pub(super) inputs: tempfile::TempDir,
    pub(super) s3_prefix: String,
    pub(super) _table_dir: Option<tempfile::TempDir>,
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
pub(super) fn s3_env() -> Vec<(&'static str, String)> {
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
    pub(super) fn storage_options(&self) -> std::collections::HashMap<String, String> {
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
}
