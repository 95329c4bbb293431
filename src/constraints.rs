//! Constraints: the table's CHECK constraints, column invariants and NOT NULL columns,
//! checked on every input row before anything is written, as Spark checks the rows it writes.
//!
//! delta-rs 1.1 checks constraints only inside its own write plans (its `DataValidationExec`
//! is crate-private), and lakewriter writes its files itself to tag them with the run. So
//! the expressions are compiled here with DataFusion, the engine delta-rs uses for the same
//! job, in the Databricks SQL dialect the constraints were written in. As in Delta, a row
//! violates a constraint when the expression is false or NULL.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use deltalake::datafusion::common::DFSchema;
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode};
use deltalake::datafusion::logical_expr::{BinaryExpr, Expr, Operator, cast};
use deltalake::datafusion::physical_expr::utils::collect_columns;
use deltalake::datafusion::physical_plan::PhysicalExpr;
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};

use crate::features::Constraint;

/// A row that breaks a constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The 0-based row in the checked batch.
    pub(crate) row: usize,
    /// How the constraint is named, e.g. `CHECK constraint positive`.
    pub(crate) constraint: String,
    /// The constraint's expression.
    pub(crate) expression: String,
    /// The row's values of the columns the expression reads, e.g. `quantity = 0`.
    pub(crate) values: String,
}

/// A constraint lakewriter cannot evaluate; the table is refused for it.
#[derive(Debug)]
pub(crate) struct CompileError {
    /// The table feature the constraint belongs to (`checkConstraints`, `invariants`).
    pub(crate) feature: &'static str,
    /// Which constraint, and why.
    pub(crate) message: String,
}

/// The compiled checks of one table.
#[derive(Debug, Default)]
pub(crate) struct RowChecks {
    not_null: Vec<String>,
    checks: Vec<CompiledCheck>,
}

#[derive(Debug)]
struct CompiledCheck {
    constraint: Constraint,
    expression: Arc<dyn PhysicalExpr>,
    /// The columns it reads, in name order.
    columns: Vec<String>,
}

impl RowChecks {
    /// Compiles `constraints` against the table's columns (`schema`, by column name).
    /// A constraint that does not compile is an error naming it: lakewriter never writes a
    /// table whose rules it cannot check.
    pub(crate) fn compile(
        schema: &SchemaRef,
        constraints: &[Constraint],
        not_null: Vec<String>,
    ) -> Result<Self, CompileError> {
        if constraints.is_empty() {
            return Ok(Self {
                not_null,
                checks: Vec::new(),
            });
        }
        // Spark resolves column names ignoring case, DataFusion by exact name. So each
        // expression is compiled as written first (quoted mixed-case names), then, if that
        // fails, with unquoted names and the columns lower-cased: Delta forbids two columns
        // that differ only in case. The columns keep their positions, which is what the
        // compiled expression reads, so it runs on the table-shaped batch either way.
        let setup = |e: String| CompileError {
            feature: constraints[0].feature,
            message: e,
        };
        let exact = Compiler::new(schema.as_ref().clone(), false).map_err(setup)?;
        let lowered = Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_name(f.name().to_lowercase()))
                .collect::<Vec<_>>(),
        );
        let folded = Compiler::new(lowered, true).map_err(setup)?;
        let checks = constraints
            .iter()
            .map(|constraint| {
                let expression = exact
                    .compile(&constraint.expression)
                    .or_else(|first| folded.compile(&constraint.expression).map_err(|_| first))
                    .map_err(|e| CompileError {
                        feature: constraint.feature,
                        message: format!(
                            "{} ({}) cannot be checked by lakewriter: {e}",
                            constraint.name, constraint.expression
                        ),
                    })?;
                let columns: BTreeSet<String> = collect_columns(&expression)
                    .into_iter()
                    .map(|c| schema.field(c.index()).name().clone())
                    .collect();
                Ok(CompiledCheck {
                    constraint: constraint.clone(),
                    expression,
                    columns: columns.into_iter().collect(),
                })
            })
            .collect::<Result<_, CompileError>>()?;
        Ok(Self { not_null, checks })
    }

    /// The first row of `batch` (shaped like the table) that breaks a constraint: NOT NULL
    /// columns first, then the constraints in name order.
    pub(crate) fn first_violation(&self, batch: &RecordBatch) -> Result<Option<Violation>, String> {
        for column in &self.not_null {
            let Some(array) = batch.column_by_name(column) else {
                continue;
            };
            if let Some(row) = (0..array.len()).find(|&i| array.is_null(i)) {
                return Ok(Some(Violation {
                    row,
                    constraint: format!("NOT NULL column '{column}'"),
                    expression: format!("{column} IS NOT NULL"),
                    values: format!("{column} = NULL"),
                }));
            }
        }
        for check in &self.checks {
            let evaluated = check
                .expression
                .evaluate(batch)
                .and_then(|value| value.into_array(batch.num_rows()))
                .map_err(|e| format!("checking {}: {e}", check.constraint.name))?;
            let verdicts = evaluated.as_boolean();
            if let Some(row) =
                (0..verdicts.len()).find(|&i| !verdicts.is_valid(i) || !verdicts.value(i))
            {
                return Ok(Some(Violation {
                    row,
                    constraint: check.constraint.name.clone(),
                    expression: check.constraint.expression.clone(),
                    values: row_values(batch, &check.columns, row),
                }));
            }
        }
        Ok(None)
    }
}

/// Turns Databricks SQL boolean expressions into DataFusion physical expressions over one
/// schema.
struct Compiler {
    context: SessionContext,
    schema: DFSchema,
}

impl Compiler {
    /// `normalize`: whether unquoted names are lower-cased, as DataFusion does by default.
    fn new(schema: Schema, normalize: bool) -> Result<Self, String> {
        let mut config = SessionConfig::new();
        let options = config.options_mut();
        options.sql_parser.dialect = "databricks".parse().map_err(|e| format!("{e}"))?;
        options.sql_parser.enable_ident_normalization = normalize;
        Ok(Self {
            context: SessionContext::new_with_config(config),
            schema: DFSchema::try_from(schema).map_err(|e| e.to_string())?,
        })
    }

    fn compile(&self, sql: &str) -> Result<Arc<dyn PhysicalExpr>, String> {
        let logical = self
            .context
            .parse_sql_expr(sql, &self.schema)
            .map_err(|e| e.to_string())?;
        // Spark's `/` divides as fractions (5 / 2 = 2.5), DataFusion's divides integers as
        // integers: cast both sides, as Spark does.
        let logical = logical
            .transform(|expr| match expr {
                Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::Divide,
                    right,
                }) => Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(cast(*left, DataType::Float64)),
                    Operator::Divide,
                    Box::new(cast(*right, DataType::Float64)),
                )))),
                other => Ok(Transformed::no(other)),
            })
            .map_err(|e| e.to_string())?
            .data;
        let expression = self
            .context
            .create_physical_expr(logical, &self.schema)
            .map_err(|e| e.to_string())?;
        match expression.data_type(self.schema.as_arrow()) {
            Ok(DataType::Boolean) => Ok(expression),
            Ok(other) => Err(format!("it gives {other}, not true or false")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `a = 1, b = NULL`: the named columns of one row, for messages.
fn row_values(batch: &RecordBatch, columns: &[String], row: usize) -> String {
    let options = FormatOptions::default().with_null("NULL");
    columns
        .iter()
        .filter_map(|name| {
            let array = batch.column_by_name(name)?;
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options).ok()?;
            Some(format!("{name} = {}", formatter.value(row)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("Quantity", DataType::Int32, true),
            Field::new("note col", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(3), None])),
                Arc::new(Int32Array::from(vec![Some(5), None, Some(0), Some(1)])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
        )
        .unwrap()
    }

    fn check(expression: &str) -> Constraint {
        Constraint {
            name: "CHECK constraint c".into(),
            expression: expression.into(),
            feature: "checkConstraints",
        }
    }

    #[test]
    fn a_false_or_null_result_is_a_violation_named_with_its_values() {
        let rows = batch();
        let checks =
            RowChecks::compile(&rows.schema(), &[check("Quantity > 0")], Vec::new()).unwrap();
        let violation = checks.first_violation(&rows).unwrap().unwrap();
        assert_eq!(
            violation.row, 1,
            "NULL breaks a CHECK in Delta, as false does"
        );
        assert_eq!(violation.values, "Quantity = NULL");
        let checks = RowChecks::compile(
            &rows.schema(),
            &[check("Quantity IS NULL OR Quantity >= 0")],
            Vec::new(),
        )
        .unwrap();
        assert_eq!(checks.first_violation(&rows).unwrap(), None);
    }

    #[test]
    fn not_null_columns_come_first_and_spark_quoting_parses() {
        let rows = batch();
        let checks = RowChecks::compile(
            &rows.schema(),
            &[check("length(`note col`) = 1 AND id < 3")],
            vec!["id".into()],
        )
        .unwrap();
        let violation = checks.first_violation(&rows).unwrap().unwrap();
        assert_eq!(
            (violation.row, violation.constraint.as_str()),
            (3, "NOT NULL column 'id'")
        );
        let checks = RowChecks::compile(
            &rows.schema(),
            &[check("length(`note col`) = 1 AND id < 3")],
            Vec::new(),
        )
        .unwrap();
        let violation = checks.first_violation(&rows).unwrap().unwrap();
        assert_eq!(violation.row, 2);
        assert_eq!(violation.values, "id = 3, note col = c");
    }

    #[test]
    fn division_gives_fractions_as_in_spark() {
        let rows = batch();
        // Rows: id 1, 2, 3 (and NULL). 3 / 2 = 1.5 > 1 in Spark; integer division says 1.
        let checks =
            RowChecks::compile(&rows.schema(), &[check("id / 2 <= 1")], Vec::new()).unwrap();
        let violation = checks.first_violation(&rows).unwrap().unwrap();
        assert_eq!((violation.row, violation.values.as_str()), (2, "id = 3"));
    }

    #[test]
    fn column_names_match_ignoring_case_as_in_spark() {
        let rows = batch();
        for written in ["quantity > 0", "QUANTITY > 0", "`Quantity` > 0"] {
            let checks = RowChecks::compile(&rows.schema(), &[check(written)], Vec::new()).unwrap();
            let violation = checks.first_violation(&rows).unwrap().unwrap();
            assert_eq!(
                (violation.row, violation.values.as_str()),
                (1, "Quantity = NULL"),
                "{written}"
            );
        }
    }

    #[test]
    fn a_constraint_that_cannot_be_checked_is_refused_by_name() {
        let rows = batch();
        for bad in [
            "no_such_column > 1",
            "Quantity + 1",
            "spark_only_function(id)",
        ] {
            let error = RowChecks::compile(&rows.schema(), &[check(bad)], Vec::new()).unwrap_err();
            assert!(error.message.contains("CHECK constraint c"), "{error:?}");
            assert_eq!(error.feature, "checkConstraints");
        }
    }
}
