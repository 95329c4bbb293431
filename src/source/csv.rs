//! CSV with a header row. When the table exists, its column types parse the values, so a
//! value such as `007` in a string column is never turned into the number 7 by inference.

use std::sync::Arc;

use arrow::csv::reader::Format;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use super::BATCH_ROWS;
use super::text::{Batches, DecodeFrom, InferFrom};

/// The batches of a CSV file: columns from the header (and, without a table, inferred types).
pub(super) fn batches<'a>(
    infer_from: InferFrom,
    decode_from: &'a mut DecodeFrom,
    column_types: Option<&Schema>,
) -> Result<Batches<'a>, ArrowError> {
    let format = Format::default().with_header(true);
    let schema = match column_types {
        // Every column's type is known: the header is all we need.
        Some(known) => with_known_types(format.infer_schema(infer_from, Some(1))?.0, known),
        None => Arc::new(super::csv_types::infer_types(infer_from)?),
    };
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(BATCH_ROWS)
        .build(decode_from)?;
    Ok((schema, Box::new(reader)))
}

/// The inferred schema with each column the table already has parsed as the table's type.
fn with_known_types(inferred: Schema, known: &Schema) -> SchemaRef {
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|field| match known.field_with_name(field.name()) {
            Ok(table_field) => field
                .as_ref()
                .clone()
                .with_data_type(table_field.data_type().clone()),
            Err(_) => field.as_ref().clone(),
        })
        .map(|field| field.with_nullable(true))
        .collect();
    Arc::new(Schema::new(fields))
}
