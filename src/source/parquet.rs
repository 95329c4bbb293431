//! Apache Parquet.

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{BATCH_ROWS, BatchSink, HashingReader, feed, open_reader};
use crate::error::{Error, Result};
use crate::storage::InputObject;

/// Decodes a Parquet file. Parquet needs random access: a local file is read where it is
/// (hashed in one pass first); anything else is copied to a temporary file by one streamed GET
/// that hashes the bytes on the way. Memory stays flat however large the file is.
pub(super) async fn decode<S: BatchSink>(
    object: &InputObject,
    mut sink: S,
) -> Result<(S, [u8; 32])> {
    let name = object.display.clone();
    let local_file = object.local_file.clone();
    let mut hashed = HashingReader::new(open_reader(object).await?);
    tokio::task::spawn_blocking(move || {
        let read_error =
            |e: std::io::Error| Error::internal(format!("cannot read input {name}"), e);
        let file = match local_file {
            Some(path) => std::fs::File::open(path).map_err(read_error)?,
            None => {
                let mut file = tempfile::tempfile().map_err(read_error)?;
                std::io::copy(&mut hashed, &mut file).map_err(read_error)?;
                file
            }
        };
        let hash = hashed.finish().map_err(read_error)?;
        let parquet_error = |e: ::parquet::errors::ParquetError| {
            Error::bad_input(&name, None, format!("not a readable Parquet file: {e}"))
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
        let schema = builder.schema().clone();
        if schema.fields().is_empty() {
            return Err(Error::bad_input(&name, None, "the file holds no columns"));
        }
        let reader = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(parquet_error)?;
        feed(&name, &schema, reader, &mut sink, |e| {
            Error::bad_input(&name, None, e.to_string())
        })?;
        Ok((sink, hash))
    })
    .await
    .map_err(|e| Error::internal("decoding input", e))?
}
