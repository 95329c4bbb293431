//! Rules: how a run's rows map onto the table (the partition column and where it comes
//! from, the key, the order that picks the winning row). Plain data, read by every stage.

use arrow::datatypes::Schema;

use crate::evolve::SchemaEvolution;

/// How rows map onto the table: the partition column, where it comes from, and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowRules {
    /// The DATE column the table is partitioned by.
    pub(crate) partition_column: String,
    /// A date or timestamp column to derive the partition column from, when the input lacks it.
    pub(crate) partition_from: Option<String>,
    /// Columns that identify a row; empty means no deduplication.
    pub(crate) key: Vec<String>,
    /// Among rows with the same key, the one with the largest value here wins.
    pub(crate) order_by: Option<String>,
    /// How text in DATE columns is written (chrono's strftime), when not `YYYY-MM-DD`.
    pub(crate) date_format: Option<String>,
    /// How text in TIMESTAMP columns is written, when not RFC 3339 or ISO 8601.
    pub(crate) timestamp_format: Option<String>,
    /// Whether the run may add columns (then a table column the input lacks is null).
    pub(crate) schema_evolution: SchemaEvolution,
}

impl Default for RowRules {
    fn default() -> Self {
        Self {
            partition_column: "date".into(),
            partition_from: None,
            key: Vec::new(),
            order_by: None,
            date_format: None,
            timestamp_format: None,
            schema_evolution: SchemaEvolution::None,
        }
    }
}

impl RowRules {
    /// The format text of a column of type `to` is written in, if the run names one.
    pub(crate) fn text_format(&self, to: &arrow::datatypes::DataType) -> Option<&str> {
        use arrow::datatypes::DataType;
        match to {
            DataType::Date32 => self.date_format.as_deref(),
            DataType::Timestamp(_, _) => self.timestamp_format.as_deref(),
            _ => None,
        }
    }

    /// Whether the partition column is computed rather than read.
    pub(crate) fn derives_partition(&self, input: &Schema) -> bool {
        input.field_with_name(&self.partition_column).is_err() && self.partition_from.is_some()
    }
}
