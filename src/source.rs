//! Source: find the input files, read them, decode them into Arrow, and hash their bytes.
//!
//! Each file is decoded on its own so that an error can name the file and the row. When the
//! table already exists its column types are used to parse CSV and JSON, so a value such as
//! `007` in a string column is never turned into the number 7 by type inference.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::storage::{InputObject, StorageOptions, expand_input};

/// The format of input files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// JSON lines: one object per line.
    Json,
    /// Apache Parquet.
    Parquet,
}

impl FromStr for InputFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Ok(InputFormat::Csv),
            "json" | "jsonl" | "ndjson" => Ok(InputFormat::Json),
            "parquet" => Ok(InputFormat::Parquet),
            _ => Err(Error::InvalidOption(format!(
                "unknown input format '{text}': use csv, json or parquet"
            ))),
        }
    }
}

impl InputFormat {
    /// The format a file name's extension implies, if any.
    fn from_name(name: &str) -> Option<Self> {
        let extension = name.rsplit_once('.')?.1;
        extension.parse().ok()
    }
}

/// One decoded input file.
#[derive(Debug)]
pub(crate) struct DecodedFile {
    /// The file as shown to users.
    pub name: String,
    /// All its rows, in file order (row `i` is data row `i + 1`).
    pub batch: RecordBatch,
    /// SHA-256 of the raw bytes.
    pub content_hash: [u8; 32],
}

/// Expands every pattern, reads each distinct file once and decodes it.
///
/// `column_types` are the table's column types, used to parse text formats when the table exists.
pub(crate) async fn read_inputs(
    patterns: &[String],
    format: Option<InputFormat>,
    options: &StorageOptions,
    column_types: Option<&Schema>,
    mut on_file_done: impl FnMut(&str),
) -> Result<Vec<DecodedFile>> {
    if patterns.is_empty() {
        return Err(Error::InvalidOption(
            "no --input given: name at least one input file or glob".into(),
        ));
    }
    // A BTreeMap keyed by name reads each file once even when two patterns match it, and in
    // name order, so nothing below depends on the order of the patterns or of the listing.
    let mut objects: BTreeMap<String, InputObject> = BTreeMap::new();
    for pattern in patterns {
        for object in expand_input(pattern, options).await? {
            objects.insert(object.display.clone(), object);
        }
    }
    let mut decoded = Vec::with_capacity(objects.len());
    for (name, object) in objects {
        let format = match format.or_else(|| InputFormat::from_name(&name)) {
            Some(format) => format,
            None => {
                return Err(Error::InvalidOption(format!(
                    "cannot tell the format of '{name}' from its extension: pass --format csv|json|parquet"
                )));
            }
        };
        let bytes = object
            .store
            .get(&object.path)
            .await
            .map_err(|e| Error::internal(format!("cannot read input {name}"), e))?
            .bytes()
            .await
            .map_err(|e| Error::internal(format!("cannot read input {name}"), e))?;
        let content_hash = Sha256::digest(&bytes).into();
        let batch = decode(&name, format, bytes, column_types)?;
        on_file_done(&name);
        decoded.push(DecodedFile {
            name,
            batch,
            content_hash,
        });
    }
    Ok(decoded)
}

fn decode(
    name: &str,
    format: InputFormat,
    bytes: Bytes,
    column_types: Option<&Schema>,
) -> Result<RecordBatch> {
    if bytes.is_empty() {
        return Err(Error::bad_input(
            name,
            None,
            "the file is empty; remove it from the input or give it at least a header row",
        ));
    }
    let bad = |e: arrow::error::ArrowError| Error::bad_input(name, None, e.to_string());
    let (schema, batches) = match format {
        InputFormat::Csv => {
            let csv_format = arrow::csv::reader::Format::default().with_header(true);
            let (inferred, _) = csv_format
                .infer_schema(Cursor::new(&bytes), None)
                .map_err(bad)?;
            let schema = with_known_types(inferred, column_types);
            let batches = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_format(csv_format)
                .build(Cursor::new(&bytes))
                .map_err(bad)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            (schema, batches)
        }
        InputFormat::Json => {
            let (inferred, _) =
                arrow::json::reader::infer_json_schema(Cursor::new(&bytes), None).map_err(bad)?;
            let schema = with_known_types(inferred, column_types);
            let batches = arrow::json::ReaderBuilder::new(schema.clone())
                .build(Cursor::new(&bytes))
                .map_err(bad)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            (schema, batches)
        }
        InputFormat::Parquet => {
            let parquet_error = |e: parquet::errors::ParquetError| {
                Error::bad_input(name, None, format!("not a readable Parquet file: {e}"))
            };
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet_error)?;
            let schema = builder.schema().clone();
            let batches = builder
                .build()
                .map_err(parquet_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            (schema, batches)
        }
    };
    if schema.fields().is_empty() {
        return Err(Error::bad_input(name, None, "the file holds no columns"));
    }
    arrow::compute::concat_batches(&schema, &batches).map_err(bad)
}

/// The inferred schema with each column the table already has parsed as the table's type.
fn with_known_types(inferred: Schema, known: Option<&Schema>) -> SchemaRef {
    let Some(known) = known else {
        return Arc::new(inferred);
    };
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

/// The type a decoded column gets in the table: Delta has no unsigned integers, no
/// timezone-less timestamps (without an extra table feature) and no large or view strings.
pub(crate) fn delta_type(data_type: &DataType) -> DataType {
    use arrow::datatypes::TimeUnit;
    match data_type {
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        other => other.clone(),
    }
}

/// A content hash of a run's input and of every option that shapes its output.
///
/// File hashes are sorted first, so the order in which files are listed or named does not
/// matter; renaming a file does not change it either.
pub(crate) fn fingerprint(files: &[DecodedFile], shaping: &[(&str, String)]) -> String {
    let mut hashes: Vec<&[u8; 32]> = files.iter().map(|f| &f.content_hash).collect();
    hashes.sort();
    let mut hasher = Sha256::new();
    hasher.update(b"lakewriter-fingerprint-v1\n");
    for (name, value) in shaping {
        // Length-prefixed so that no two option lists hash alike.
        hasher.update(format!("{}:{name}={}:{value}\n", name.len(), value.len()));
    }
    for hash in hashes {
        hasher.update(hash);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(InputFormat::from_name("a/b.jsonl"), Some(InputFormat::Json));
        assert_eq!(InputFormat::from_name("x.CSV"), Some(InputFormat::Csv));
        assert_eq!(InputFormat::from_name("x.txt"), None);
    }

    #[test]
    fn fingerprint_ignores_file_order_but_not_options() {
        let file = |name: &str, bytes: &[u8]| DecodedFile {
            name: name.into(),
            batch: RecordBatch::new_empty(Arc::new(Schema::empty())),
            content_hash: Sha256::digest(bytes).into(),
        };
        let options = [("key", "id".to_string())];
        let ab = fingerprint(&[file("a", b"1"), file("b", b"2")], &options);
        let ba = fingerprint(&[file("b", b"2"), file("a", b"1")], &options);
        assert_eq!(ab, ba);
        let other = fingerprint(
            &[file("a", b"1"), file("b", b"2")],
            &[("key", "sku".into())],
        );
        assert_ne!(ab, other);
    }

    #[test]
    fn known_types_win_over_inference() {
        let bytes = Bytes::from_static(b"id,code\n1,007\n");
        let known = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("code", DataType::Utf8, true),
        ]);
        let batch = decode("t.csv", InputFormat::Csv, bytes, Some(&known)).unwrap();
        let code = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>();
        assert_eq!(code.unwrap().value(0), "007");
    }
}
