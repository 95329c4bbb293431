//! The Delta log and the files under the table, as raw JSON and paths.

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;
use serde_json::Value;

use super::{Backend, Lake};

impl Lake {
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

    /// File names in `_delta_log`; none when the log does not exist. Any other listing error
    /// fails the test, so that "nothing was written" is never read off a failed listing.
    pub async fn log_files(&self) -> Vec<String> {
        let log = self.root.clone().join("_delta_log");
        let listed: Vec<_> = match self.store.list(Some(&log)).try_collect().await {
            Ok(listed) => listed,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => panic!("cannot list {log}: {e}"),
        };
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

    /// Data files on storage that no commit of the log ever added: what a run that crashed or
    /// lost a race left behind (removed files of earlier versions are not among them).
    pub async fn files_never_committed(&self) -> Vec<String> {
        let mut added = std::collections::BTreeSet::new();
        for version in self.versions().await {
            added.extend(self.commit(version).await.added());
        }
        let mut files = self.data_files().await;
        files.retain(|file| !added.contains(file));
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

    pub async fn open(&self) -> deltalake::DeltaTable {
        let url = match self.backend {
            Backend::Local => url::Url::from_directory_path(&self.table).unwrap(),
            _ => url::Url::parse(&self.table).unwrap(),
        };
        deltalake::open_table_with_storage_options(url, self.storage_options())
            .await
            .expect("table opens")
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

    /// The table schema of this commit's metaData action, parsed from its `schemaString`.
    pub fn metadata_schema(&self) -> Value {
        let metadata = self
            .actions
            .iter()
            .find_map(|a| a.get("metaData"))
            .expect("commit has metaData");
        serde_json::from_str(metadata["schemaString"].as_str().unwrap()).unwrap()
    }

    /// The commitInfo action.
    pub fn info(&self) -> &Value {
        self.actions
            .iter()
            .find_map(|a| a.get("commitInfo"))
            .expect("commit has commitInfo")
    }
}
