//! JSON lines: one object per line.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::error::ArrowError;

use super::text::{Batches, DecodeFrom, InferFrom};
use super::{BATCH_ROWS, CsvDialect};

/// The columns of a JSON-lines file, with the types its values carry (from all its lines).
pub(super) fn columns(reader: InferFrom) -> Result<Schema, ArrowError> {
    Ok(arrow::json::reader::infer_json_schema(reader, None)?.0)
}

/// The batches of a JSON-lines file, with the types its values carry. The table's types are
/// applied later by a cast that refuses to lose information (the JSON decoder would cut 2.5
/// to 2), so they are not used here.
pub(super) fn batches<'a>(
    infer_from: InferFrom,
    decode_from: DecodeFrom<'a>,
    _column_types: Option<&Schema>,
    _dialect: &CsvDialect,
) -> Result<Batches<'a>, ArrowError> {
    let (inferred, _) = arrow::json::reader::infer_json_schema(infer_from, None)?;
    let schema = Arc::new(inferred);
    let reader = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH_ROWS)
        .build(decode_from)?;
    Ok((schema, Box::new(reader)))
}
