//! Text formats (CSV, JSON lines): decoded in two streamed passes, one to infer the columns
//! (for CSV with a known table, just the header), one to decode while hashing the bytes. Each
//! format's file gives [`Batches`] for the second pass.

use std::io::BufRead;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;

use super::{BatchSink, EMPTY_SHA256, HashingReader, feed, open_reader};
use crate::error::{Error, Result};
use crate::storage::InputObject;

/// A reader of the whole file, for inferring its columns.
pub(super) type InferFrom = Box<dyn BufRead + Send>;

/// The reader the batches are decoded from; it hashes every byte read.
pub(super) type DecodeFrom = HashingReader<Box<dyn BufRead + Send>>;

/// A text format's decoded batches, with the columns they have.
pub(super) type Batches<'a> = (
    SchemaRef,
    Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + 'a>,
);

/// How a text format decodes: its columns from the first reader (the table's column types
/// known or not), its batches from the second.
pub(super) type TextFormat =
    for<'a> fn(InferFrom, &'a mut DecodeFrom, Option<&Schema>) -> Result<Batches<'a>, ArrowError>;

/// Decodes `object` with `format` into `sink`; returns the sink and the file's SHA-256.
pub(super) async fn decode<S: BatchSink>(
    object: &InputObject,
    format: TextFormat,
    column_types: Option<&Schema>,
    mut sink: S,
) -> Result<(S, [u8; 32])> {
    let name = object.display.clone();
    let column_types = column_types.cloned();
    let infer_from = open_reader(object).await?;
    let decode_from = open_reader(object).await?;
    let decoding = tokio::task::spawn_blocking(move || {
        let bad = |e: ArrowError| Error::bad_input(&name, None, e.to_string());
        let mut hashed = HashingReader::new(decode_from);
        let (schema, batches) =
            format(infer_from, &mut hashed, column_types.as_ref()).map_err(bad)?;
        if schema.fields().is_empty() {
            drop(batches);
            let hash = hashed
                .finish()
                .map_err(|e| Error::internal(format!("cannot read input {name}"), e))?;
            let message = if hash == EMPTY_SHA256 {
                "the file is empty; remove it from the input or give it at least a header row"
            } else {
                "the file holds no columns"
            };
            return Err(Error::bad_input(&name, None, message));
        }
        feed(&name, &schema, batches, 0, &mut sink).map_err(|e| e.into_error(&name))?;
        let hash = hashed
            .finish()
            .map_err(|e| Error::internal(format!("cannot read input {name}"), e))?;
        Ok((sink, hash))
    });
    Error::rejoin(decoding.await, "decoding input")?
}
