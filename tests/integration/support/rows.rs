//! A table's rows in one canonical text form, whichever engine read them.

use std::collections::BTreeMap;

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use deltalake::datafusion::prelude::SessionContext;
use serde_json::Value;

use super::Lake;

impl Lake {
    /// The table's rows as lakewriter's own reader (delta-rs + DataFusion) sees them.
    pub async fn rows(&self) -> Rows {
        let table = self.open().await;
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state()).unwrap();
        ctx.register_table("t", table.table_provider().await.unwrap())
            .unwrap();
        let batches = ctx
            .sql("SELECT * FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        Rows::from_batches(&batches)
    }
}

/// A table's rows in canonical text form (one JSON object per row, keys sorted), sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows(pub Vec<String>);

impl Rows {
    pub(super) fn from_batches(batches: &[RecordBatch]) -> Self {
        let mut rows = Vec::new();
        for batch in batches {
            for i in 0..batch.num_rows() {
                let row: BTreeMap<String, Value> = batch
                    .schema()
                    .fields()
                    .iter()
                    .zip(batch.columns())
                    .map(|(field, column)| (field.name().clone(), canonical(column.as_ref(), i)))
                    .collect();
                rows.push(serde_json::to_string(&row).unwrap());
            }
        }
        rows.sort();
        Rows(rows)
    }

    /// Rows given as JSON objects (values as the readers print them: dates and timestamps as
    /// text), in canonical form.
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> Self {
        let mut rows: Vec<String> = values
            .into_iter()
            .map(|v| {
                let row: BTreeMap<String, Value> = serde_json::from_value(v).unwrap();
                serde_json::to_string(&row).unwrap()
            })
            .collect();
        rows.sort();
        Rows(rows)
    }

    /// The rows whose `column` equals `value`, parsed.
    pub fn filter(&self, column: &str, value: &str) -> Vec<Value> {
        self.parsed()
            .into_iter()
            .filter(|r| r[column] == value)
            .collect()
    }

    /// All rows, parsed.
    pub fn parsed(&self) -> Vec<Value> {
        self.0
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Row counts per `date`.
    pub fn per_date(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for row in self.parsed() {
            *counts
                .entry(row["date"].as_str().unwrap_or("null").to_string())
                .or_default() += 1;
        }
        counts
    }

    /// SHA-256 of the sorted rows joined by newlines, as the reader harness computes it.
    pub fn checksum(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.0.join("\n").as_bytes()))
    }
}

/// The same canonical form the Python reader harness produces.
fn canonical(column: &dyn Array, i: usize) -> Value {
    if column.is_null(i) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Int64 => column.as_primitive::<Int64Type>().value(i).into(),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(i).into(),
        DataType::Float64 => column.as_primitive::<Float64Type>().value(i).into(),
        DataType::Utf8 => column.as_string::<i32>().value(i).into(),
        DataType::Utf8View => column.as_string_view().value(i).into(),
        DataType::Boolean => column.as_boolean().value(i).into(),
        DataType::Date32 => {
            let days = column.as_primitive::<Date32Type>().value(i);
            (chrono::NaiveDate::default() + chrono::TimeDelta::days(days.into()))
                .to_string()
                .into()
        }
        DataType::Timestamp(_, _) => {
            let micros = column.as_primitive::<TimestampMicrosecondType>().value(i);
            chrono::DateTime::from_timestamp_micros(micros)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string()
                .into()
        }
        // As text, exactly: `12.50`.
        DataType::Decimal128(_, _) => {
            let array = deltalake::arrow::array::make_array(column.to_data());
            let text = deltalake::arrow::compute::cast(&array, &DataType::Utf8).unwrap();
            canonical(text.as_ref(), i)
        }
        // delta-rs hands STRING partition values back dictionary-encoded.
        DataType::Dictionary(_, _) => {
            let array = deltalake::arrow::array::make_array(column.to_data());
            let text = deltalake::arrow::compute::cast(&array, &DataType::Utf8).unwrap();
            canonical(text.as_ref(), i)
        }
        // Nested values as the reader harness gives them: a struct as an object, a list as
        // an array, a map as an object keyed by its keys' text.
        DataType::Struct(fields) => {
            let fields = fields.iter().zip(column.as_struct().columns());
            let object: BTreeMap<String, Value> = fields
                .map(|(field, values)| (field.name().clone(), canonical(values.as_ref(), i)))
                .collect();
            serde_json::to_value(object).unwrap()
        }
        DataType::List(_) => {
            let values = column.as_list::<i32>().value(i);
            Value::Array((0..values.len()).map(|j| canonical(&values, j)).collect())
        }
        DataType::Map(_, _) => {
            let entries = column.as_map().value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            let object: BTreeMap<String, Value> = (0..entries.len())
                .map(|j| {
                    let key = match canonical(keys.as_ref(), j) {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (key, canonical(values.as_ref(), j))
                })
                .collect();
            serde_json::to_value(object).unwrap()
        }
        other => panic!("the test reader does not handle {other}"),
    }
}
