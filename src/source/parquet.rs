//! Apache Parquet.

use ::parquet::arrow::ProjectionMask;
use ::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use ::parquet::file::metadata::ParquetMetaData;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

use super::{BATCH_ROWS, BatchSink, HashingReader, feed, joined, open_reader, read_error};
use crate::error::{Error, Result};
use crate::storage::InputObject;

/// The columns of a Parquet file, from its footer alone: two ranged reads (the footer's
/// length, then the footer), however large the file.
pub(super) async fn columns(object: &InputObject) -> Result<arrow::datatypes::Schema> {
    use ::parquet::file::metadata::ParquetMetaDataReader;
    use object_store::ObjectStoreExt as _;
    let bad = |message: String| Error::bad_input(&object.display, None, message);
    let read = |range: std::ops::Range<u64>| {
        let store = object.store.clone();
        async move {
            store
                .get_range(&object.path, range)
                .await
                .map_err(|e| read_error(&object.display, e))
        }
    };
    // The last 8 bytes: the footer's length (little-endian) and the magic number PAR1.
    let size = object.size;
    let tail = match size >= 12 {
        true => read(size - 8..size).await?,
        false => return Err(bad("not a Parquet file: too short".into())),
    };
    if &tail[4..] != b"PAR1" {
        return Err(bad("not a Parquet file: no PAR1 at its end".into()));
    }
    let length = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    if length + 8 > size - 4 {
        return Err(bad(
            "not a readable Parquet file: its footer is longer than the file".into(),
        ));
    }
    let footer = read(size - 8 - length..size - 8).await?;
    let unreadable =
        |e: ::parquet::errors::ParquetError| bad(format!("not a readable Parquet file: {e}"));
    let metadata = ParquetMetaDataReader::decode_metadata(&footer).map_err(unreadable)?;
    // Without the embedded Arrow schema, as `decode` reads the rows.
    ::parquet::arrow::parquet_to_arrow_schema(metadata.file_metadata().schema_descr(), None)
        .map_err(unreadable)
}

/// Decodes a Parquet file, its columns in up to `parts` groups at once. Parquet needs random
/// access: a local file is read where it is (hashed on a thread of its own while it decodes);
/// anything else is copied to a temporary file by one streamed GET that hashes the bytes on
/// the way. Memory stays flat however large the file is.
pub(super) async fn decode<S: BatchSink>(
    object: &InputObject,
    parts: usize,
    mut sink: S,
) -> Result<(S, [u8; 32])> {
    let name = object.display.clone();
    let local_file = object.local_file.clone();
    let mut hashed = HashingReader::new(open_reader(object).await?);
    let decoding = tokio::task::spawn_blocking(move || {
        let cannot_read = |e: std::io::Error| read_error(&name, e);
        // Named, so that each column group's reader opens it again (a cloned descriptor
        // would share one read position with the others), and named as lakewriter's spill
        // directories are, so that a copy a killed run leaves behind is recognised.
        let (path, _copy) = match local_file {
            Some(path) => (path, None),
            None => {
                let mut copy = tempfile::Builder::new()
                    .prefix("lakewriter-input-")
                    .tempfile()
                    .map_err(cannot_read)?;
                std::io::copy(&mut hashed, copy.as_file_mut()).map_err(cannot_read)?;
                (copy.path().to_path_buf(), Some(copy))
            }
        };
        std::thread::scope(|scope| {
            let hashing = scope.spawn(|| hashed.finish().map_err(cannot_read));
            let decoded = decode_file(&name, &path, parts, &mut sink);
            let hash = joined(hashing);
            decoded?;
            Ok((sink, hash?))
        })
    });
    Error::rejoin(decoding.await, "decoding input")?
}

/// Feeds the rows of the Parquet file `name` to `sink`, its columns decoded in up to `parts`
/// groups at once.
fn decode_file(
    name: &str,
    path: &std::path::Path,
    parts: usize,
    sink: &mut impl BatchSink,
) -> Result<()> {
    let open = || std::fs::File::open(path).map_err(|e| read_error(name, e));
    let parquet_error = |e: ::parquet::errors::ParquetError| {
        Error::bad_input(name, None, format!("not a readable Parquet file: {e}"))
    };
    // The Arrow schema a writer may embed (`ARROW:schema`) is only a hint: the types it
    // restores (large strings, time zones, Date64) become the same Delta types as the plain
    // Parquet ones (`delta_type`), and without it a dictionary column reads as its values.
    // It is not read: arrow-ipc 59, the version deltalake pins, panics on a damaged one
    // instead of returning an error (apache/arrow-rs#10437, fixed after 59 by #10647); the
    // mutation test found such a file.
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let metadata = ArrowReaderMetadata::load(&open()?, options).map_err(parquet_error)?;
    let schema = metadata.schema().clone();
    if schema.fields().is_empty() {
        return Err(Error::bad_input(name, None, "the file holds no columns"));
    }
    let groups = column_groups(metadata.metadata(), schema.fields().len(), parts);
    let readers = groups
        .iter()
        .map(|columns| {
            let file = open()?;
            let descriptor = metadata.metadata().file_metadata().schema_descr();
            let columns = ProjectionMask::roots(descriptor, columns.iter().copied());
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone())
                .with_projection(columns)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(parquet_error)
        })
        .collect::<Result<Vec<_>>>()?;
    let fed = match <[_; 1]>::try_from(readers) {
        Ok([reader]) => feed(name, &schema, reader, 0, sink),
        Err(readers) => std::thread::scope(|scope| {
            let batches = joined_columns(scope, &schema, &groups, readers);
            feed(name, &schema, batches, 0, sink)
        }),
    };
    fed.map_err(|e| e.into_error(name))
}

/// The indices of a file's `roots` columns in up to `parts` groups of about the same decoded
/// size, each in order: one group for a file of one batch or less. arrow-rs decodes a file's
/// columns one after the other on one thread, so a single large file was read on one core
/// (Polars, too, can decode a file's columns in parallel; DuckDB splits by row group, which
/// gains nothing on a file of one row group).
fn column_groups(metadata: &ParquetMetaData, roots: usize, parts: usize) -> Vec<Vec<usize>> {
    let rows = usize::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
    let parts = match rows > BATCH_ROWS {
        true => parts.clamp(1, roots),
        false => 1,
    };
    let descriptor = metadata.file_metadata().schema_descr();
    let mut sizes = vec![0i64; roots];
    for row_group in metadata.row_groups() {
        for (leaf, chunk) in row_group.columns().iter().enumerate() {
            sizes[descriptor.get_column_root_idx(leaf)] += chunk.uncompressed_size();
        }
    }
    // The largest first, each to the lightest group so far.
    let mut by_size: Vec<usize> = (0..roots).collect();
    by_size.sort_by_key(|&root| std::cmp::Reverse(sizes[root]));
    let mut groups: Vec<(i64, Vec<usize>)> = vec![(0, Vec::new()); parts];
    for root in by_size {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(size, _)| *size)
            .expect("at least one group");
        lightest.0 += sizes[root];
        lightest.1.push(root);
    }
    groups
        .into_iter()
        .map(|(_, mut columns)| {
            columns.sort_unstable();
            columns
        })
        .collect()
}

/// The batches of `schema`, each put together from the same rows' batches of every reader
/// (reader `g` decodes the columns `groups[g]`), the first reader on the calling thread and
/// each other one on a thread of `scope`.
fn joined_columns<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    schema: &SchemaRef,
    groups: &[Vec<usize>],
    mut readers: Vec<ParquetRecordBatchReader>,
) -> impl Iterator<Item = std::result::Result<RecordBatch, ArrowError>> {
    let others: Vec<_> = readers
        .drain(1..)
        .map(|reader| {
            // At most two batches ahead, as `feed` keeps its sink.
            let (send, receive) = std::sync::mpsc::sync_channel(2);
            scope.spawn(move || {
                for batch in reader {
                    if send.send(batch).is_err() {
                        break; // the file's decoding stopped
                    }
                }
            });
            receive
        })
        .collect();
    let (schema, groups) = (schema.clone(), groups.to_vec());
    let first = readers.pop().expect("a reader per group");
    first.map(move |batch| {
        let mut parts = vec![batch?];
        for other in &others {
            let ended = || ArrowError::ParquetError("a column group ended early".into());
            parts.push(other.recv().map_err(|_| ended())??);
        }
        let mut columns: Vec<Option<ArrayRef>> = vec![None; schema.fields().len()];
        for (group, part) in groups.iter().zip(parts) {
            for (&index, column) in group.iter().zip(part.columns()) {
                columns[index] = Some(column.clone());
            }
        }
        let columns = columns
            .into_iter()
            .map(|c| c.expect("each column in a group"));
        RecordBatch::try_new(schema.clone(), columns.collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ranges::Keep;
    use arrow::array::{Int64Array, ListArray, StringArray, StructArray};
    use arrow::datatypes::{DataType, Field, Int64Type};
    use std::sync::Arc;

    /// A file of `rows` rows in row groups of 50,000: a key, text with nulls, a struct and a
    /// list, so that roots of one and several leaves are grouped.
    fn file(rows: i64) -> tempfile::NamedTempFile {
        let ids = Int64Array::from_iter_values(0..rows);
        let notes =
            StringArray::from_iter((0..rows).map(|i| (i % 7 != 0).then(|| format!("n{i}"))));
        let pair = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Int64, true)),
                Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i * 3))) as ArrayRef,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("b{}", i % 11)),
                )),
            ),
        ]);
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(
            (0..rows).map(|i| Some((0..i % 4).map(Some).collect::<Vec<_>>())),
        );
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(ids) as ArrayRef),
            ("note", Arc::new(notes)),
            ("pair", Arc::new(pair)),
            ("list", Arc::new(list)),
        ])
        .unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        let properties = ::parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(50_000))
            .build();
        let mut writer = ::parquet::arrow::ArrowWriter::try_new(
            file.reopen().unwrap(),
            batch.schema(),
            Some(properties),
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        file
    }

    #[test]
    fn columns_decoded_in_groups_give_the_batches_one_reader_gives() {
        let file = file(180_000);
        let decoded = |parts: usize| {
            let sink = Keep::default();
            decode_file("in.parquet", file.path(), parts, &mut sink.clone()).unwrap();
            sink.in_order()
        };
        let whole = decoded(1);
        assert_eq!(
            whole.iter().map(|(_, b)| b.num_rows()).sum::<usize>(),
            180_000
        );
        for parts in [2, 3, 4, 9] {
            assert_eq!(decoded(parts), whole, "{parts} groups");
        }
    }

    #[test]
    fn column_groups_hold_every_column_once_in_order_and_balance_their_sizes() {
        let file = file(180_000);
        let metadata = file_metadata(&file);
        assert_eq!(column_groups(&metadata, 4, 1), [vec![0, 1, 2, 3]]);
        for parts in [2, 3, 4, 9] {
            let groups = column_groups(&metadata, 4, parts);
            assert_eq!(groups.len(), parts.min(4));
            assert!(groups.iter().all(|g| !g.is_empty() && g.is_sorted()));
            let mut all: Vec<usize> = groups.concat();
            all.sort();
            assert_eq!(all, [0, 1, 2, 3]);
        }
        // Two groups differ by at most the largest column (the struct counts both leaves).
        let descriptor = metadata.file_metadata().schema_descr();
        let mut sizes = [0i64; 4];
        for row_group in metadata.row_groups() {
            for (leaf, chunk) in row_group.columns().iter().enumerate() {
                sizes[descriptor.get_column_root_idx(leaf)] += chunk.uncompressed_size();
            }
        }
        let two = column_groups(&metadata, 4, 2);
        let size = |group: &Vec<usize>| group.iter().map(|&c| sizes[c]).sum::<i64>();
        let largest = *sizes.iter().max().unwrap();
        assert!(
            size(&two[0]).abs_diff(size(&two[1])) <= largest as u64,
            "{two:?} of {sizes:?}"
        );
        // A file of one batch or less is read by one reader.
        let small = file_metadata(&self::file(1_000));
        assert_eq!(column_groups(&small, 4, 2).len(), 1);
    }

    fn file_metadata(file: &tempfile::NamedTempFile) -> Arc<ParquetMetaData> {
        ArrowReaderMetadata::load(&file.reopen().unwrap(), Default::default())
            .unwrap()
            .metadata()
            .clone()
    }
}
