//! Where things live: table and input locations as URLs, object stores for them (and the
//! wrapper data files are written through, [`ChunkedWrites`]), and glob expansion over object
//! listings. Everything goes through `object_store`, so a local folder and an `s3://` bucket
//! take the same code path.

use std::collections::HashMap;
use std::sync::Arc;

use futures::TryStreamExt;
use futures::stream::BoxStream;
use globset::{GlobBuilder, GlobMatcher};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use url::Url;

use crate::error::{Error, Result};

/// Options passed to object stores (`--storage-option KEY=VALUE`), next to the environment.
pub type StorageOptions = HashMap<String, String>;

/// Turns a table argument (a folder path, `file://` or `s3://` URL) into a URL ending in `/`.
pub(crate) fn table_url(location: &str) -> Result<Url> {
    let mut url = if location.contains("://") {
        Url::parse(location).map_err(|e| {
            Error::InvalidOption(format!("table URI '{location}' is not a URL: {e}"))
        })?
    } else {
        let path = absolute(location)?;
        Url::from_directory_path(&path).map_err(|_| {
            Error::InvalidOption(format!("table path '{location}' cannot be made a file URL"))
        })?
    };
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

fn absolute(path: &str) -> Result<std::path::PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Error::InvalidOption(format!("path '{path}' cannot be resolved: {e}")))
}

/// One input object: the store that holds it, its path there, and the name to show users.
#[derive(Debug, Clone)]
pub(crate) struct InputObject {
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    pub display: String,
    /// The file's path when the input is on the local filesystem: the source reads it with
    /// `std::fs` directly, which is what object_store does underneath, minus an async stream
    /// and a sync bridge that tripled the time to decode a 65 MB CSV (BENCHMARKS.md).
    pub local_file: Option<std::path::PathBuf>,
    /// Size in bytes, as listed: sizes the memory a run needs before anything is decoded.
    pub size: u64,
}

const GLOB_CHARS: &[char] = &['*', '?', '[', '{'];

/// Expands one `--input` argument (a path, a glob, or a URI with a glob) into the objects it
/// names, sorted by path. A pattern that matches nothing is an error: a run with no input would
/// silently empty its days.
pub(crate) async fn expand_input(
    pattern: &str,
    options: &StorageOptions,
) -> Result<Vec<InputObject>> {
    let (base_url, key_pattern) = split_pattern(pattern)?;
    let store = input_store(&base_url, options)
        .map_err(|e| Error::internal(format!("cannot open storage for input '{pattern}'"), e))?;
    let display_prefix = if pattern.contains("://") {
        format!(
            "{}://{}/",
            base_url.scheme(),
            base_url.host_str().unwrap_or_default()
        )
    } else {
        "/".to_string()
    };
    let local_root = (base_url.scheme() == "file").then(LocalFileSystem::new);
    let to_object = |path: Path, size: u64| InputObject {
        display: format!("{display_prefix}{path}"),
        store: store.clone(),
        local_file: local_root
            .as_ref()
            .and_then(|root| root.path_to_filesystem(&path).ok()),
        path,
        size,
    };

    if !key_pattern.contains(GLOB_CHARS) {
        let path = Path::from(key_pattern.as_str());
        return match store.head(&path).await {
            Ok(meta) => Ok(vec![to_object(path, meta.size)]),
            Err(object_store::Error::NotFound { .. }) => {
                if is_local_dir(pattern) {
                    Err(Error::InvalidOption(format!(
                        "input '{pattern}' is a directory: name its files or use a glob such as '{}/*.csv'",
                        pattern.trim_end_matches('/')
                    )))
                } else {
                    Err(Error::NoInputFiles {
                        pattern: pattern.to_string(),
                    })
                }
            }
            Err(e) => Err(Error::internal(format!("cannot read input '{pattern}'"), e)),
        };
    }

    let matcher = glob_matcher(&key_pattern)?;
    let prefix = literal_prefix(&key_pattern);
    let listed: Vec<_> = store
        .list(Some(&Path::from(prefix.as_str())))
        .try_collect()
        .await
        .map_err(|e| Error::internal(format!("cannot list input '{pattern}'"), e))?;
    let mut found: Vec<(Path, u64)> = listed
        .into_iter()
        .filter(|meta| matcher.is_match(meta.location.as_ref()))
        .map(|meta| (meta.location, meta.size))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Error::NoInputFiles {
            pattern: pattern.to_string(),
        });
    }
    Ok(found
        .into_iter()
        .map(|(path, size)| to_object(path, size))
        .collect())
}

/// The store for an input URL. S3 reads the standard `AWS_*` environment first, then the
/// `--storage-option`s, as delta-rs does for the table, so both see the same configuration.
fn input_store(url: &Url, options: &StorageOptions) -> object_store::Result<Arc<dyn ObjectStore>> {
    match url.scheme() {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
            for (key, value) in options {
                if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    builder = builder.with_config(key, value);
                }
            }
            Ok(Arc::new(builder.build()?))
        }
        _ => {
            let (store, _) = object_store::parse_url_opts(url, options)?;
            Ok(Arc::from(store))
        }
    }
}

fn is_local_dir(pattern: &str) -> bool {
    !pattern.contains("://") && std::path::Path::new(pattern).is_dir()
}

/// Splits a pattern into the URL of its store root and the object-key pattern inside it.
fn split_pattern(pattern: &str) -> Result<(Url, String)> {
    if pattern.contains("://") {
        let scheme_end = pattern.find("://").unwrap() + 3;
        let after = &pattern[scheme_end..];
        let (authority, key) = after.split_once('/').unwrap_or((after, ""));
        let root = format!("{}{authority}/", &pattern[..scheme_end]);
        let url = Url::parse(&root).map_err(|e| {
            Error::InvalidOption(format!("input URI '{pattern}' is not a URL: {e}"))
        })?;
        Ok((url, key.to_string()))
    } else {
        let path = absolute(pattern)?;
        let text = path.to_string_lossy();
        let key = text.trim_start_matches('/').to_string();
        Ok((Url::parse("file:///").expect("static URL"), key))
    }
}

fn glob_matcher(pattern: &str) -> Result<GlobMatcher> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|e| Error::InvalidOption(format!("input glob '{pattern}' is invalid: {e}")))
}

/// The directory part of a pattern before its first glob character: the listing prefix.
fn literal_prefix(pattern: &str) -> String {
    let first_glob = pattern.find(GLOB_CHARS).unwrap_or(pattern.len());
    match pattern[..first_glob].rfind('/') {
        Some(slash) => pattern[..slash].to_string(),
        None => String::new(),
    }
}

/// The most bytes a data file's writer hands the store in one piece (see [`ChunkedWrites`]).
const WRITE_CHUNK: usize = 256 * 1024;

/// A table's store for writing data files: every put hands its bytes on in slices of at most
/// [`WRITE_CHUNK`] bytes (of the same buffers, not copies).
///
/// Why: the Parquet writer passes a whole row group (usually a whole file) as one buffer, and
/// the local file system's store writes each buffer with one `write` call. Linux backs a
/// write of many MiB with large page-cache folios, and on a VM that reports free memory to
/// its host (as Firecracker's do), taking such blocks back costs a host fault per page. On
/// the 2-core VM of BENCHMARKS.md, `dd` wrote 64 MB with 0.12-0.18 s of system time in
/// writes of 2 to 8 MiB, 0.02-0.06 s in writes of 1 MiB and 0.01-0.02 s in writes of 128 to
/// 512 KiB; copying lakewriter's two 8.5 MB files of the day into the page cache took 6% of
/// its samples, 0.4% in pieces. Remote stores stream the pieces as they streamed the whole.
#[derive(Debug)]
pub(crate) struct ChunkedWrites(pub(crate) Arc<dyn ObjectStore>);

/// `payload`'s bytes in order, in slices of at most [`WRITE_CHUNK`].
fn in_chunks(payload: PutPayload) -> PutPayload {
    payload
        .into_iter()
        .flat_map(|bytes| {
            (0..bytes.len())
                .step_by(WRITE_CHUNK)
                .map(move |start| bytes.slice(start..bytes.len().min(start + WRITE_CHUNK)))
        })
        .collect()
}

impl std::fmt::Display for ChunkedWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait::async_trait]
impl ObjectStore for ChunkedWrites {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        options: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.0.put_opts(location, in_chunks(payload), options).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        options: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let upload = self.0.put_multipart_opts(location, options).await?;
        Ok(Box::new(ChunkedParts(upload)))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

/// A multipart upload whose parts are handed on as [`ChunkedWrites`] hands on its puts.
#[derive(Debug)]
struct ChunkedParts(Box<dyn MultipartUpload>);

#[async_trait::async_trait]
impl MultipartUpload for ChunkedParts {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.0.put_part(in_chunks(data))
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.0.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.0.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_s3_patterns_into_bucket_and_key() {
        let (url, key) = split_pattern("s3://raw/sales/2024-01-0*.csv").unwrap();
        assert_eq!(url.as_str(), "s3://raw/");
        assert_eq!(key, "sales/2024-01-0*.csv");
        assert_eq!(literal_prefix(&key), "sales");
    }

    #[test]
    fn glob_star_does_not_cross_folders() {
        let m = glob_matcher("data/*.csv").unwrap();
        assert!(m.is_match("data/a.csv"));
        assert!(!m.is_match("data/sub/a.csv"));
    }

    /// Pieces of at most `WRITE_CHUNK` bytes, in order, whatever the buffers given; through a
    /// put and a multipart upload the store holds the very bytes.
    #[tokio::test]
    async fn chunked_writes_store_the_same_bytes_in_small_pieces() {
        use bytes::Bytes;
        let sizes = [
            0,
            1,
            WRITE_CHUNK - 1,
            WRITE_CHUNK,
            WRITE_CHUNK + 1,
            3 * WRITE_CHUNK + 7,
        ];
        let mut next = crate::test_numbers(0xC4A2_u64);
        let buffers: Vec<Bytes> = sizes
            .iter()
            .map(|&size| {
                (0..size)
                    .map(|_| next(256) as u8)
                    .collect::<Vec<u8>>()
                    .into()
            })
            .collect();
        let whole: Vec<u8> = buffers.concat();
        let payload = || PutPayload::from_iter(buffers.iter().cloned());

        let pieces = in_chunks(payload());
        assert!(pieces.iter().all(|piece| piece.len() <= WRITE_CHUNK));
        assert_eq!(pieces.iter().map(Bytes::len).sum::<usize>(), whole.len());
        assert_eq!(pieces.iter().flatten().copied().collect::<Vec<u8>>(), whole);

        let store = ChunkedWrites(Arc::new(object_store::memory::InMemory::new()));
        let (put, parts) = (Path::from("put.parquet"), Path::from("parts.parquet"));
        store.put(&put, payload()).await.unwrap();
        let mut upload = store.put_multipart(&parts).await.unwrap();
        upload.put_part(payload()).await.unwrap();
        upload.put_part(payload()).await.unwrap();
        upload.complete().await.unwrap();
        let stored = |path: Path| {
            let store = &store;
            async move { store.get(&path).await.unwrap().bytes().await.unwrap() }
        };
        assert_eq!(stored(put).await, whole);
        assert_eq!(stored(parts).await, [whole.clone(), whole].concat());
    }
}
