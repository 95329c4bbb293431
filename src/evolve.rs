//! Schema evolution, opt-in: the columns a run adds to an existing table (`--schema-evolution
//! add-columns`), decided from every input file's columns before any row is read, and
//! committed with the data in one commit (one `metaData` action with the new schema).
//!
//! New columns are appended, nullable, in the order the files (by name) first name them; a
//! struct column gains the nested fields its input has and the table lacks, at the end of the
//! struct. Nothing is ever dropped, renamed, reordered or retyped: a column of the input that
//! differs from a table column only in case is refused (Delta names are case-insensitive),
//! and so is one new column that two files type differently. Table columns an input lacks are
//! written as nulls (files without them read as nulls in every engine); a NOT NULL one is
//! refused by the row checks. Widening a column's type is not done here (see the README).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use serde::Serialize;

use crate::error::{Error, Result};

/// Whether a run may change the table's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaEvolution {
    /// Never (the default): an input column the table lacks, or a table column the input
    /// lacks, is exit 2.
    #[default]
    None,
    /// Input columns the table lacks are added (nullable, at the end) in the run's commit;
    /// table columns the input lacks are written as nulls.
    AddColumns,
}

impl FromStr for SchemaEvolution {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "none" => Ok(SchemaEvolution::None),
            "add-columns" => Ok(SchemaEvolution::AddColumns),
            "widen" => Err(Error::InvalidOption(
                "--schema-evolution widen is not supported: lakewriter does not write Delta's \
                 typeWidening table feature yet; widen the column with Spark (ALTER TABLE ... \
                 ALTER COLUMN ... TYPE, Delta 4.0) and rerun, or cast the input"
                    .into(),
            )),
            _ => Err(Error::InvalidOption(format!(
                "unknown schema evolution '{text}': use none or add-columns"
            ))),
        }
    }
}

impl fmt::Display for SchemaEvolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaEvolution::None => "none",
            SchemaEvolution::AddColumns => "add-columns",
        })
    }
}

/// A column a run added to the table (a nested field as `column.field`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaChange {
    /// The column or nested field, e.g. `discount` or `address.street`.
    pub column: String,
    /// What happened to it: `added`.
    pub change: String,
    /// Its type, as Arrow names it.
    pub data_type: String,
}

/// The table's schema with the columns the input files bring, and those changes.
pub(crate) struct Evolved {
    pub(crate) schema: SchemaRef,
    pub(crate) changes: Vec<SchemaChange>,
}

/// The schema `table` grows to so that it holds every file's columns: `files` are each file's
/// name and columns, with the types the table would give them (see `transform::table_type`),
/// in name order. `partition` is the partition column, never compared (a STRING day in a
/// Spark table is a DATE to lakewriter).
pub(crate) fn evolve(
    table: &Schema,
    files: &[(String, Schema)],
    partition: &str,
) -> Result<Evolved> {
    let mut fields: Vec<FieldRef> = table.fields().iter().cloned().collect();
    let mut changes = Vec::new();
    let mut first_named: Vec<(String, String)> = Vec::new();
    for (file, columns) in files {
        for input in columns.fields() {
            if input.name() == partition {
                continue;
            }
            let exact = fields.iter().position(|f| f.name() == input.name());
            if let Some(at) = exact {
                let grown = grow(
                    fields[at].data_type(),
                    input.data_type(),
                    input.name(),
                    &mut changes,
                );
                fields[at] = Arc::new(fields[at].as_ref().clone().with_data_type(grown));
                continue;
            }
            if let Some(other) = fields
                .iter()
                .find(|f| f.name().eq_ignore_ascii_case(input.name()))
            {
                return Err(Error::SchemaMismatch {
                    file: file.clone(),
                    message: format!(
                        "column '{}' differs from the table's '{}' only in case, and Delta \
                         column names are case-insensitive: rename it in the input",
                        input.name(),
                        other.name()
                    ),
                });
            }
            fields.push(Arc::new(Field::new(
                input.name(),
                input.data_type().clone(),
                true,
            )));
            first_named.push((input.name().clone(), file.clone()));
            changes.push(added(input.name(), input.data_type()));
        }
    }
    // A new column two files type differently has no one type to add.
    for (file, columns) in files {
        for input in columns.fields() {
            let Some((_, first)) = first_named.iter().find(|(name, _)| name == input.name()) else {
                continue;
            };
            let added = fields
                .iter()
                .find(|f| f.name() == input.name())
                .expect("added above");
            if !added.data_type().equals_datatype(input.data_type())
                && !is_struct_growth(input.data_type(), added.data_type())
            {
                return Err(Error::SchemaMismatch {
                    file: file.clone(),
                    message: format!(
                        "new column '{}' is {} here and {} in {first}: give it one type in \
                         every file before it is added to the table",
                        input.name(),
                        input.data_type(),
                        added.data_type()
                    ),
                });
            }
        }
    }
    Ok(Evolved {
        schema: Arc::new(Schema::new(fields)),
        changes,
    })
}

/// The table's type `table` grown by the nested fields `input` has and it lacks (struct
/// fields, also inside lists and map values), recording each as a change of `path`.
fn grow(
    table: &DataType,
    input: &DataType,
    path: &str,
    changes: &mut Vec<SchemaChange>,
) -> DataType {
    match (table, input) {
        (DataType::Struct(ours), DataType::Struct(theirs)) => {
            let mut fields: Vec<FieldRef> = ours.iter().cloned().collect();
            for field in theirs {
                let nested = format!("{path}.{}", field.name());
                match fields.iter().position(|f| f.name() == field.name()) {
                    Some(at) => {
                        let grown =
                            grow(fields[at].data_type(), field.data_type(), &nested, changes);
                        fields[at] = Arc::new(fields[at].as_ref().clone().with_data_type(grown));
                    }
                    None => {
                        changes.push(added(&nested, field.data_type()));
                        fields.push(Arc::new(field.as_ref().clone().with_nullable(true)));
                    }
                }
            }
            DataType::Struct(Fields::from(fields))
        }
        (DataType::List(ours), DataType::List(theirs) | DataType::LargeList(theirs)) => {
            let item = grow(
                ours.data_type(),
                theirs.data_type(),
                &format!("{path}[]"),
                changes,
            );
            DataType::List(Arc::new(ours.as_ref().clone().with_data_type(item)))
        }
        _ => table.clone(),
    }
}

/// Whether `grown` is `table` with nested fields added (as [`grow`] adds them).
pub(crate) fn is_struct_growth(table: &DataType, grown: &DataType) -> bool {
    match (table, grown) {
        (DataType::Struct(ours), DataType::Struct(theirs)) => {
            ours.len() <= theirs.len()
                && ours.iter().zip(theirs.iter()).all(|(a, b)| {
                    a.name() == b.name()
                        && (a.data_type().equals_datatype(b.data_type())
                            || is_struct_growth(a.data_type(), b.data_type()))
                })
        }
        (DataType::List(ours), DataType::List(theirs)) => {
            ours.data_type().equals_datatype(theirs.data_type())
                || is_struct_growth(ours.data_type(), theirs.data_type())
        }
        _ => false,
    }
}

fn added(column: &str, data_type: &DataType) -> SchemaChange {
    SchemaChange {
        column: column.to_string(),
        change: "added".into(),
        data_type: data_type.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(name, t)| Field::new(*name, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn new_columns_are_appended_in_file_order_once() {
        let table = schema(&[("id", DataType::Int64), ("date", DataType::Date32)]);
        let files = vec![
            (
                "a.csv".to_string(),
                schema(&[("id", DataType::Int64), ("x", DataType::Utf8)]),
            ),
            (
                "b.csv".to_string(),
                schema(&[("y", DataType::Float64), ("x", DataType::Utf8)]),
            ),
        ];
        let evolved = evolve(&table, &files, "date").unwrap();
        let names: Vec<&str> = evolved
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["id", "date", "x", "y"]);
        let changed: Vec<&str> = evolved.changes.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(changed, ["x", "y"]);
    }

    #[test]
    fn case_clashes_and_two_types_for_one_new_column_are_refused() {
        let table = schema(&[("amount", DataType::Int64)]);
        let clash = vec![("a.csv".to_string(), schema(&[("Amount", DataType::Int64)]))];
        assert!(evolve(&table, &clash, "date").is_err());
        let two_types = vec![
            ("a.csv".to_string(), schema(&[("x", DataType::Int64)])),
            ("b.csv".to_string(), schema(&[("x", DataType::Utf8)])),
        ];
        let error = evolve(&table, &two_types, "date")
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("b.csv") && error.contains("a.csv"),
            "{error}"
        );
    }

    #[test]
    fn a_struct_gains_the_fields_its_input_has() {
        let address =
            |fields: &[(&str, DataType)]| DataType::Struct(schema(fields).fields().clone());
        let table = schema(&[("addr", address(&[("city", DataType::Utf8)]))]);
        let files = vec![(
            "a.jsonl".to_string(),
            schema(&[(
                "addr",
                address(&[("street", DataType::Utf8), ("city", DataType::Utf8)]),
            )]),
        )];
        let evolved = evolve(&table, &files, "date").unwrap();
        let grown = evolved.schema.field(0).data_type().clone();
        assert_eq!(
            grown,
            address(&[("city", DataType::Utf8), ("street", DataType::Utf8)])
        );
        assert!(is_struct_growth(table.field(0).data_type(), &grown));
        assert_eq!(evolved.changes[0].column, "addr.street");

        // A new struct column that a later file grows is added once, grown.
        let files = vec![
            (
                "a.jsonl".to_string(),
                schema(&[("geo", address(&[("lat", DataType::Float64)]))]),
            ),
            (
                "b.jsonl".to_string(),
                schema(&[(
                    "geo",
                    address(&[("lat", DataType::Float64), ("lon", DataType::Float64)]),
                )]),
            ),
        ];
        let evolved = evolve(&table, &files, "date").unwrap();
        let geo = evolved
            .schema
            .field_with_name("geo")
            .unwrap()
            .data_type()
            .clone();
        assert_eq!(
            geo,
            address(&[("lat", DataType::Float64), ("lon", DataType::Float64)])
        );
    }
}
