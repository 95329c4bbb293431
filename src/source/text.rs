//! Text formats (CSV, JSON lines): decoded in two streamed passes, one to infer the columns
//! (for CSV with a known table, just the header), one to decode while hashing the bytes. Each
//! format's file gives [`Batches`] for the second pass.

use std::io::BufRead;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;

use super::{
    BatchSink, CsvDialect, EMPTY_SHA256, HashingReader, InputFile, compression, feed, open_reader,
    open_text, read_error,
};
use crate::error::{Error, Result};

/// A reader of the whole file (decompressed), for inferring its columns.
pub(super) type InferFrom = Box<dyn BufRead + Send>;

/// The reader the batches are decoded from (decompressed, over a reader that hashes every
/// byte of the file as stored).
pub(super) type DecodeFrom<'a> = Box<dyn BufRead + Send + 'a>;

/// A text format's decoded batches, with the columns they have.
pub(super) type Batches<'a> = (
    SchemaRef,
    Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + 'a>,
);

/// How a text format decodes: its columns from the first reader (the table's column types
/// known or not), its batches from the second; CSV in the run's dialect.
pub(super) type TextFormat = for<'a> fn(
    InferFrom,
    DecodeFrom<'a>,
    Option<&Schema>,
    &CsvDialect,
) -> Result<Batches<'a>, ArrowError>;

/// Decodes `file` with `format` into `sink`; returns the sink and the SHA-256 of the file's
/// bytes as stored.
pub(super) async fn decode<S: BatchSink>(
    file: &InputFile,
    format: TextFormat,
    column_types: Option<&Schema>,
    mut sink: S,
) -> Result<(S, [u8; 32])> {
    let name = file.name.clone();
    let codec = file.compression;
    let dialect = file.csv.clone();
    let column_types = column_types.cloned();
    let infer_from = open_text(file).await?;
    let decode_from = open_reader(&file.object).await?;
    let decoding = tokio::task::spawn_blocking(move || {
        let bad = |e: ArrowError| Error::bad_input(&name, None, e.to_string());
        let mut hashed = HashingReader::new(decode_from);
        let plain = compression::decompress(&mut hashed, codec);
        let (schema, batches) =
            format(infer_from, plain, column_types.as_ref(), &dialect).map_err(bad)?;
        if schema.fields().is_empty() {
            drop(batches);
            let hash = hashed.finish().map_err(|e| read_error(&name, e))?;
            let message = if hash == EMPTY_SHA256 {
                "the file is empty; remove it from the input or give it at least a header row"
            } else {
                "the file holds no columns"
            };
            return Err(Error::bad_input(&name, None, message));
        }
        feed(&name, &schema, batches, 0, &mut sink).map_err(|e| e.into_error(&name))?;
        let hash = hashed.finish().map_err(|e| read_error(&name, e))?;
        Ok((sink, hash))
    });
    Error::rejoin(decoding.await, "decoding input")?
}
