//! One large local text file read in byte ranges at once, one per core, while it is hashed.
//!
//! Each format finds where its records begin (`csv::record_starts`, `json::line_starts`),
//! counting the rows before each cut so that every range reports the file's own row numbers,
//! and builds a range's batches; this file runs the ranges. Rows reach the sink out of file
//! order, which nothing downstream depends on. The first range's failure is the file's first
//! (the ranges before it had none), and a decoding error is reported as decoding the whole
//! file reports it, since a decoder's text counts rows from the start of its range.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

use super::{BatchSink, HashingReader, READ_BUFFER, Stopped, feed, joined, read_error};
use crate::error::Error;

/// A local text file at least this large, read with fewer files than cores, is cut into byte
/// ranges decoded at once, one per core: one large file is then decoded on every core.
pub(super) const MIN_BYTES_TO_SPLIT: u64 = 16 << 20;

/// Where a range begins: its first byte, and the data rows of the file before it.
pub(super) type Start = (u64, usize);

/// The bytes of one range of a file.
pub(super) type RangeReader = BufReader<std::io::Take<File>>;

/// The batches a format decodes from a range.
pub(super) type RangeBatches =
    Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>>>;

/// How a cut file was decoded.
pub(super) enum Ranged<S> {
    /// Every range decoded into clones of the sink; the sink and the file's SHA-256.
    Decoded(S, [u8; 32]),
    /// The file has no place to cut (one record, or no columns): decode it whole.
    Whole(S),
}

/// Where a format cuts a file (the starts of its ranges after the first) and the schema the
/// ranges decode with; `None` when the file has no place to cut.
pub(super) type Plan = Option<(Vec<Start>, SchemaRef)>;

/// Decodes the local file `name` at `path` in byte ranges at once, each into a clone of
/// `sink`, while the file is hashed on a thread of its own: `plan` (given the file's size)
/// finds the cuts, which parses the file's first part on one core, so the hash takes the
/// other's time. `batches` gives the batches of a range from the schema, the range's index
/// and its bytes. After a decoding failure the whole file is decoded again as one range, so
/// that the error reads as it would without the cuts.
pub(super) fn decode_cut<S: BatchSink + Clone>(
    name: &str,
    path: &Path,
    sink: S,
    plan: impl FnOnce(u64) -> Result<Plan, Error>,
    batches: impl Fn(&SchemaRef, usize, RangeReader) -> Result<RangeBatches, ArrowError> + Sync,
) -> Result<Ranged<S>, Error> {
    let size = open(name, path)?
        .metadata()
        .map_err(|e| read_error(name, e))?
        .len();
    let (decoded, hash) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            let file = open(name, path)?;
            HashingReader::new(BufReader::with_capacity(READ_BUFFER, file))
                .finish()
                .map_err(|e| read_error(name, e))
        });
        let decoded = plan(size).map(|plan| {
            plan.map(|(starts, schema)| {
                let failure = decode(name, path, &starts, size, &schema, &batches, &sink);
                (schema, failure)
            })
        });
        (decoded, joined(hashing))
    });
    match decoded? {
        None => Ok(Ranged::Whole(sink)),
        Some((_, None)) => Ok(Ranged::Decoded(sink, hash?)),
        Some((_, Some(Stopped::Failed(error)))) => Err(error),
        Some((schema, Some(Stopped::Decoder(error)))) => {
            let whole = open_range(path, (0, size)).map_err(|e| read_error(name, e))?;
            let first = match batches(&schema, 0, whole) {
                Ok(mut decoded) => decoded.find_map(Result::err),
                Err(error) => Some(error),
            };
            let error = first.unwrap_or(error);
            Err(Error::bad_input(name, None, error.to_string()))
        }
    }
}

/// The byte ranges of a file of `size` bytes that begin at `starts` (after the first, which
/// begins at 0): each range's start and end.
pub(super) fn bounds(starts: &[Start], size: u64) -> Vec<(u64, u64)> {
    let firsts = std::iter::once(0).chain(starts.iter().map(|&(byte, _)| byte));
    let ends = starts.iter().map(|&(byte, _)| byte).chain([size]);
    firsts.zip(ends).collect()
}

/// A reader of the bytes `start..end` of the file at `path`.
pub(super) fn open_range(path: &Path, (start, end): (u64, u64)) -> std::io::Result<RangeReader> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    Ok(BufReader::with_capacity(
        READ_BUFFER,
        file.take(end - start),
    ))
}

/// `work` on each of `items` (with its index) at once, a thread each; the results in order.
pub(super) fn at_once<I: Send, T: Send>(
    items: Vec<I>,
    work: impl Fn(usize, I) -> T + Sync,
) -> Vec<T> {
    let work = &work;
    std::thread::scope(|scope| {
        let threads: Vec<_> = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| scope.spawn(move || work(index, item)))
            .collect();
        threads.into_iter().map(joined).collect()
    })
}

/// Decodes the ranges of the file `name` at `path` that begin at `starts` (after the first)
/// at once, each into a clone of `sink`. Returns the first range's failure, if any.
fn decode<S: BatchSink + Clone>(
    name: &str,
    path: &Path,
    starts: &[Start],
    size: u64,
    schema: &SchemaRef,
    batches: &(impl Fn(&SchemaRef, usize, RangeReader) -> Result<RangeBatches, ArrowError> + Sync),
    sink: &S,
) -> Option<Stopped> {
    let ranges: Vec<_> = bounds(starts, size)
        .into_iter()
        .map(|range| (range, sink.clone()))
        .collect();
    let failures = at_once(ranges, |index, (range, mut sink)| {
        let first_row = index.checked_sub(1).map_or(0, |before| starts[before].1);
        let reader = open_range(path, range).map_err(|e| Stopped::Failed(read_error(name, e)))?;
        let decoded = batches(schema, index, reader).map_err(Stopped::Decoder)?;
        feed(name, schema, decoded, first_row, &mut sink)
    });
    failures.into_iter().find_map(Result::err)
}

/// Opens the local input file `name` at `path`.
pub(super) fn open(name: &str, path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|e| read_error(name, e))
}

/// A sink for the tests of cut decoding: keeps every batch with its first row; clones share
/// the list.
#[cfg(test)]
#[derive(Clone, Default)]
pub(super) struct Keep(pub(super) std::sync::Arc<std::sync::Mutex<Vec<(usize, RecordBatch)>>>);

#[cfg(test)]
impl BatchSink for Keep {
    fn accept(&mut self, _: &str, batch: RecordBatch, first_row: usize) -> Result<(), Error> {
        self.0.lock().unwrap().push((first_row, batch));
        Ok(())
    }
}

#[cfg(test)]
impl Keep {
    /// The batches kept, without empty ones, in file order.
    pub(super) fn in_order(&self) -> Vec<(usize, RecordBatch)> {
        let mut batches = std::mem::take(&mut *self.0.lock().unwrap());
        batches.retain(|(_, batch)| batch.num_rows() > 0);
        batches.sort_by_key(|(first_row, _)| *first_row);
        batches
    }
}
