//! Apache Parquet.

use ::parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

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

/// Decodes a Parquet file. Parquet needs random access: a local file is read where it is
/// (hashed on a thread of its own while it decodes); anything else is copied to a temporary
/// file by one streamed GET that hashes the bytes on the way. Memory stays flat however large
/// the file is.
pub(super) async fn decode<S: BatchSink>(
    object: &InputObject,
    mut sink: S,
) -> Result<(S, [u8; 32])> {
    let name = object.display.clone();
    let local_file = object.local_file.clone();
    let mut hashed = HashingReader::new(open_reader(object).await?);
    let decoding = tokio::task::spawn_blocking(move || {
        let cannot_read = |e: std::io::Error| read_error(&name, e);
        let file = match local_file {
            Some(path) => std::fs::File::open(path).map_err(cannot_read)?,
            None => {
                let mut file = tempfile::tempfile().map_err(cannot_read)?;
                std::io::copy(&mut hashed, &mut file).map_err(cannot_read)?;
                file
            }
        };
        std::thread::scope(|scope| {
            let hashing = scope.spawn(|| hashed.finish().map_err(cannot_read));
            let decoded = decode_file(&name, file, &mut sink);
            let hash = joined(hashing);
            decoded?;
            Ok((sink, hash?))
        })
    });
    Error::rejoin(decoding.await, "decoding input")?
}

/// Feeds the rows of the Parquet file `name` to `sink`.
fn decode_file(name: &str, file: std::fs::File, sink: &mut impl BatchSink) -> Result<()> {
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
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(parquet_error)?;
    let schema = builder.schema().clone();
    if schema.fields().is_empty() {
        return Err(Error::bad_input(name, None, "the file holds no columns"));
    }
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(parquet_error)?;
    feed(name, &schema, reader, 0, sink).map_err(|e| e.into_error(name))
}
