//! Spill: the conformed rows of a run, held within a memory limit.
//!
//! Deduplication needs every row of a key side by side, and the writer needs each day's rows
//! in order. When the scope's rows fit the limit they stay in memory as one bucket. Otherwise
//! they are spread over buckets by a hash of the key (of the whole row, without a key) and
//! each bucket but the first goes to an Arrow IPC file on local disk as rows arrive; the job
//! then deduplicates, orders and writes one bucket at a time. A key never spans two buckets,
//! so deduplicating each bucket deduplicates the whole. The first bucket stays in memory: it
//! fits its share of the limit, and reading takes less memory than deduplicating a bucket
//! does, so keeping it spares its trip through the disk without raising the peak.
//!
//! Why not DataFusion's spilling sort: keeping the latest row per key and then ordering by day
//! would take two external sorts of every row (by key, then by day and key), where buckets
//! keep the in-memory deduplication of dedupe.rs, which ranks the key columns only, and
//! touch the disk only when the rows do not fit. The spill files are Arrow IPC, read and
//! written by arrow-rs.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{SortOptions, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use crate::error::{Error, Result};
use crate::rows::{encode_rows, hash};

/// The memory a run may use for rows unless told otherwise.
pub(crate) const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;

/// A bucket may hold this share of the memory limit: deduplicating it builds a sorted copy,
/// and writing it holds encoded Parquet, each about as large again.
const BUCKET_SHARE: u64 = 3;

/// At most this many bucket files are open at once (each holds a file descriptor); an input
/// that would need more gets larger buckets, and memory above the limit.
const MAX_BUCKETS: u64 = 256;

/// The rows of a run, in memory or spread over bucket files.
pub(crate) struct RowStore {
    schema: SchemaRef,
    spreader: Spreader,
    storage: Storage,
}

/// Cuts batches by bucket for a [`RowStore`]: the costly part of storing rows (encoding,
/// hashing, copying), done without the store so that files decoding at once do it at once.
#[derive(Clone)]
pub(crate) struct Spreader {
    /// Indices of the columns whose hash picks a row's bucket.
    spread_by: Vec<usize>,
    buckets: usize,
}

/// A batch's rows by bucket: (bucket, rows), the buckets without rows left out.
pub(crate) struct Spread(Vec<(usize, RecordBatch)>);

impl Spreader {
    /// `batch`'s rows by bucket; with one bucket, the batch as it is.
    pub(crate) fn spread(&self, batch: RecordBatch) -> Result<Spread> {
        if self.buckets <= 1 {
            return Ok(Spread(vec![(0, batch)]));
        }
        let columns: Vec<(ArrayRef, SortOptions)> = self
            .spread_by
            .iter()
            .map(|&i| (batch.column(i).clone(), SortOptions::default()))
            .collect();
        let encoded = encode_rows(&columns)?;
        let buckets = self.buckets as u64;
        let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); self.buckets];
        for (index, row) in encoded.iter().enumerate() {
            // A fixed hash: the same row lands in the same bucket on every run.
            // (SipHash, the standard library's, took 2.7% of a 30-day run's profile
            // and is not promised to stay the same between Rust releases.)
            rows_of[(hash(row.as_ref()) % buckets) as usize].push(index as u32);
        }
        let mut parts = Vec::new();
        for (bucket, rows) in rows_of.into_iter().enumerate() {
            if !rows.is_empty() {
                let part = take_record_batch(&batch, &UInt32Array::from(rows))
                    .map_err(|e| Error::internal("spreading rows over buckets", e))?;
                parts.push((bucket, part));
            }
        }
        Ok(Spread(parts))
    }
}

enum Storage {
    Memory(Vec<RecordBatch>),
    Disk {
        /// The first bucket's rows.
        kept: Vec<RecordBatch>,
        /// Removed, with the bucket files, when the store is dropped.
        dir: tempfile::TempDir,
        /// The files of the other buckets.
        writers: Vec<FileWriter<BufWriter<File>>>,
    },
}

impl RowStore {
    /// How many buckets rows of about `estimated_bytes` need so that one bucket stays within
    /// its share of `memory_limit`. One means no spilling.
    pub(crate) fn bucket_count(estimated_bytes: u64, memory_limit: u64) -> usize {
        let per_bucket = (memory_limit / BUCKET_SHARE).max(1);
        estimated_bytes.div_ceil(per_bucket).clamp(1, MAX_BUCKETS) as usize
    }

    /// A store for rows of `schema`, spread over `buckets` buckets by the `spread_by` columns.
    pub(crate) fn new(schema: SchemaRef, spread_by: &[String], buckets: usize) -> Result<Self> {
        let spread_by = spread_by
            .iter()
            .map(|name| schema.index_of(name).expect("a column of the schema"))
            .collect();
        let storage = if buckets <= 1 {
            Storage::Memory(Vec::new())
        } else {
            let dir = tempfile::Builder::new()
                .prefix("lakewriter-spill-")
                .tempdir()
                .map_err(|e| spill_error("creating a spill folder", e))?;
            let writers = (1..buckets)
                .map(|bucket| {
                    let file = File::create(bucket_path(&dir, bucket))
                        .map_err(|e| spill_error("creating a spill file", e))?;
                    FileWriter::try_new(BufWriter::new(file), &schema)
                        .map_err(|e| spill_error("creating a spill file", e))
                })
                .collect::<Result<_>>()?;
            tracing::info!(buckets, folder = %dir.path().display(), "the input exceeds the memory limit: spilling rows to disk");
            Storage::Disk {
                kept: Vec::new(),
                dir,
                writers,
            }
        };
        Ok(Self {
            schema,
            spreader: Spreader {
                spread_by,
                buckets: buckets.max(1),
            },
            storage,
        })
    }

    /// The rows' schema.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// What cuts rows by bucket for [`RowStore::push`].
    pub(crate) fn spreader(&self) -> Spreader {
        self.spreader.clone()
    }

    /// Adds conformed rows, cut by this store's [`RowStore::spreader`].
    pub(crate) fn push(&mut self, spread: Spread) -> Result<()> {
        for (bucket, part) in spread.0 {
            match &mut self.storage {
                Storage::Memory(batches) => batches.push(part),
                Storage::Disk { kept, writers, .. } => match bucket.checked_sub(1) {
                    None => kept.push(part),
                    Some(file) => writers[file]
                        .write(&part)
                        .map_err(|e| spill_error("writing a spill file", e))?,
                },
            }
        }
        Ok(())
    }

    /// The rows bucket by bucket, each read into memory when the iterator reaches it.
    pub(crate) fn into_buckets(self) -> Result<Buckets> {
        let (kept, files) = match self.storage {
            Storage::Memory(batches) => (batches, None),
            Storage::Disk { kept, dir, writers } => {
                let count = writers.len();
                for mut writer in writers {
                    writer
                        .finish()
                        .map_err(|e| spill_error("finishing a spill file", e))?;
                }
                let paths: Vec<PathBuf> = (1..=count).map(|b| bucket_path(&dir, b)).collect();
                (kept, Some((dir, paths)))
            }
        };
        let (dir, paths) = files.unzip();
        Ok(Buckets {
            kept: Some(kept),
            paths: paths.unwrap_or_default().into_iter(),
            _dir: dir,
        })
    }
}

/// The buckets of a [`RowStore`], each in the batches its rows came in.
pub(crate) struct Buckets {
    /// The bucket in memory (the only one, or the first of a spilled store) until it is read.
    kept: Option<Vec<RecordBatch>>,
    paths: std::vec::IntoIter<PathBuf>,
    /// Keeps the spill files until the last bucket is read.
    _dir: Option<tempfile::TempDir>,
}

impl Iterator for Buckets {
    type Item = Result<Vec<RecordBatch>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(kept) = self.kept.take() {
            return Some(Ok(kept));
        }
        let path = self.paths.next()?;
        Some(read_bucket(&path))
    }
}

fn read_bucket(path: &std::path::Path) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(|e| spill_error("reading a spill file", e))?;
    FileReader::try_new(file, None)
        .map_err(|e| spill_error("reading a spill file", e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| spill_error("reading a spill file", e))
}

fn bucket_path(dir: &tempfile::TempDir, bucket: usize) -> PathBuf {
    dir.path().join(format!("bucket-{bucket:04}.arrow"))
}

fn spill_error(context: &str, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::internal(
        format!("{context} (spill files go to TMPDIR; check its free space)"),
        error,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use std::sync::Arc;

    #[test]
    fn bucket_count_follows_the_memory_limit() {
        assert_eq!(RowStore::bucket_count(100, 3_000), 1);
        assert_eq!(RowStore::bucket_count(1_000, 3_000), 1);
        assert_eq!(RowStore::bucket_count(1_001, 3_000), 2);
        assert_eq!(RowStore::bucket_count(10_000, 3_000), 10);
        assert_eq!(RowStore::bucket_count(u64::MAX, 3), MAX_BUCKETS as usize);
    }

    #[test]
    fn spilled_buckets_hold_every_row_once_and_each_key_in_one_bucket() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let mut store = RowStore::new(schema.clone(), &["id".to_string()], 4).unwrap();
        for part in 0..3i64 {
            let ids: Vec<i64> = (0..100).map(|i| i % 37).collect();
            let values: Vec<i64> = (0..100).map(|i| part * 1000 + i).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(Int64Array::from(values)),
                ],
            )
            .unwrap();
            let spread = store.spreader().spread(batch).unwrap();
            store.push(spread).unwrap();
        }
        let buckets: Vec<RecordBatch> = store
            .into_buckets()
            .unwrap()
            .map(|bucket| arrow::compute::concat_batches(&schema, &bucket.unwrap()).unwrap())
            .collect();
        assert_eq!(buckets.len(), 4);
        let mut seen_values = Vec::new();
        let mut bucket_of_id = std::collections::HashMap::new();
        for (bucket, batch) in buckets.iter().enumerate() {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let values = batch.column(1).as_primitive::<Int64Type>();
            for (id, value) in ids.values().iter().zip(values.values()) {
                assert_eq!(*bucket_of_id.entry(*id).or_insert(bucket), bucket);
                seen_values.push(*value);
            }
        }
        seen_values.sort();
        let expected: Vec<i64> = (0..3)
            .flat_map(|part| (0..100).map(move |i| part * 1000 + i))
            .collect();
        assert_eq!(seen_values, expected);
        assert!(
            buckets.iter().filter(|b| b.num_rows() > 0).count() > 1,
            "37 keys spread over more than one of 4 buckets"
        );
    }
}
