//! Transform: give every input file the table's shape, check it against the run's contract,
//! then deduplicate and order the rows so that the output never depends on input order.
//!
//! Validation runs per file, before anything is written, so an error names the file and row.

use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef, TimeUnit};

use crate::cast::{cast_lossless, cast_strict, display_value, parse_formatted};
use crate::constraints::RowChecks;
use crate::error::{Error, InputLocation, Result};
use crate::evolve::SchemaEvolution;
use crate::rules::RowRules;
use crate::scope::{PartitionScope, date_from_days};
use crate::source::{BatchSink, Sampled, delta_type};
use crate::spill::{RowStore, Spreader};

/// A decoded batch and where it came from, for error messages.
struct InputBatch<'a> {
    /// The input file.
    file: &'a str,
    /// Some of its rows, as decoded.
    batch: &'a RecordBatch,
    /// The 0-based data row of the batch's first row.
    first_row: usize,
}

impl InputBatch<'_> {
    /// The 1-based data row of the batch's row `index`.
    fn row(&self, index: usize) -> usize {
        self.first_row + index + 1
    }

    /// Reports a refused value of the batch (its index, if one) as bad input at its row.
    fn locate(&self) -> impl Fn(Option<usize>, String) -> Error + '_ {
        |index, message| Error::bad_input(self.file, index.map(|i| self.row(i)), message)
    }
}

/// The schema a run writes: the table's when it exists, else one built from the columns of
/// the first file, `file`, whose columns are `input`.
pub(crate) fn target_schema(
    file: &str,
    input: &Schema,
    table: Option<SchemaRef>,
    rules: &RowRules,
) -> Result<SchemaRef> {
    let schema = match table {
        Some(table) => table,
        None => new_table_schema(file, input, rules)?,
    };
    if schema.field_with_name(&rules.partition_column).is_err() {
        return Err(Error::SchemaMismatch {
            file: file.to_string(),
            message: format!(
                "there is no '{0}' column; add one or pass --partition-from COL to derive '{0}' \
                 from a date or timestamp column",
                rules.partition_column
            ),
        });
    }
    for column in rules.key.iter().chain(&rules.order_by) {
        let message = match schema.field_with_name(column) {
            Err(_) => format!(
                "there is no column '{column}' (named by --key or --order-by); columns: {}",
                column_list(&schema)
            ),
            Ok(field) if field.data_type().is_nested() => format!(
                "column '{column}' (named by --key or --order-by) is {}; name a column of \
                 plain values (numbers, text, dates, timestamps) instead",
                field.data_type()
            ),
            Ok(_) => continue,
        };
        return Err(Error::SchemaMismatch {
            file: file.to_string(),
            message,
        });
    }
    Ok(schema)
}

/// A new table takes the first file's columns, as Delta types, plus the partition column.
/// The types go through the Delta kernel's conversion and back, so that they are exactly the
/// types the table gives later runs (nested field names included): the first run's files and
/// fingerprint are those of a rerun.
fn new_table_schema(file: &str, input: &Schema, rules: &RowRules) -> Result<SchemaRef> {
    let mut fields: Vec<Field> = Vec::with_capacity(input.fields().len() + 1);
    for f in input.fields() {
        let data_type = match *f.name() == rules.partition_column {
            true => DataType::Date32,
            false => table_type(file, f)?,
        };
        fields.push(Field::new(f.name(), data_type, true));
    }
    if rules.derives_partition(input) {
        fields.push(Field::new(&rules.partition_column, DataType::Date32, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The type an input column of `file` gets as a new column of the table: see
/// [`kernel_type`]. Refuses a name Spark cannot take without column mapping.
pub(crate) fn table_type(file: &str, field: &Field) -> Result<DataType> {
    if let Some(name) = spark_refused_name(field.name(), field.data_type()) {
        return Err(Error::SchemaMismatch {
            file: file.to_string(),
            message: format!(
                "column name '{}' holds a space or one of ,;{{}}()= or a tab or line break, \
             which Spark refuses in a table without column mapping; rename it in the input \
             (or write to a table created with column mapping){}",
                name.escape_debug(),
                delimiter_hint(name)
            ),
        });
    }
    kernel_type(file, field)
}

/// The type of an input column of `file` in a table: its Delta type, through the Delta
/// kernel's conversion and back, so that it is the type the table gives later runs. Refuses
/// a type Delta cannot hold.
pub(crate) fn kernel_type(file: &str, field: &Field) -> Result<DataType> {
    use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow as _, TryIntoKernel as _};
    let refused = |message: String| Error::SchemaMismatch {
        file: file.to_string(),
        message,
    };
    let delta: deltalake::kernel::DataType = (&delta_type(field.data_type()))
        .try_into_kernel()
        .map_err(|e| {
            refused(format!(
                "column '{}' is {}, which a Delta table cannot hold ({e}); cast it in the input",
                field.name(),
                field.data_type()
            ))
        })?;
    (&delta)
        .try_into_arrow()
        .map_err(|e| Error::internal("converting a Delta type to Arrow", e))
}

/// The first name, of the column `name` or of a field nested in it, that Spark refuses in a
/// table without column mapping (its `checkFieldNames`: a space or any of `,;{}()=`, a tab or
/// a line break).
fn spark_refused_name<'a>(name: &'a str, data_type: &'a DataType) -> Option<&'a str> {
    if name.contains([' ', ',', ';', '{', '}', '(', ')', '\n', '\t', '=']) {
        return Some(name);
    }
    match data_type {
        DataType::Struct(fields) => fields
            .iter()
            .find_map(|f| spark_refused_name(f.name(), f.data_type())),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        // A list's item and a map's entries are named by Arrow, not by the input.
        | DataType::Map(item, _) => spark_refused_name("", item.data_type()),
        _ => None,
    }
}

/// Casts one file to `target`, derives the partition column if needed, and checks the contract:
/// no unknown or missing columns, no null keys or dates, no date outside the scope.
fn conform(
    file: &InputBatch<'_>,
    target: &SchemaRef,
    rules: &RowRules,
    scope: &PartitionScope,
    sample: Option<&Sampled>,
) -> Result<RecordBatch> {
    let input = file.batch.schema();
    let mismatch = |message: String| Error::SchemaMismatch {
        file: file.file.to_string(),
        message,
    };
    if let Some(extra) = input
        .fields()
        .iter()
        .find(|f| target.field_with_name(f.name()).is_err())
    {
        return Err(mismatch(format!(
            "column '{}' is not in the table (columns: {}); drop it from the input, or pass \
             --schema-evolution add-columns to add it to the table{}",
            extra.name(),
            column_list(target),
            delimiter_hint(extra.name())
        )));
    }
    let derive = rules.derives_partition(&input);
    let evolving = rules.schema_evolution != SchemaEvolution::None;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = if *field.name() == rules.partition_column {
            let (source, source_name) = if derive {
                let from = rules.partition_from.as_deref().unwrap_or_default();
                (input_column(file, from).map_err(mismatch)?, from)
            } else {
                (
                    input_column(file, &rules.partition_column).map_err(|_| {
                        mismatch(format!(
                            "there is no '{0}' column; add one or pass --partition-from COL \
                             to derive '{0}' from a date or timestamp column",
                            rules.partition_column
                        ))
                    })?,
                    rules.partition_column.as_str(),
                )
            };
            let source_type = target
                .field_with_name(source_name)
                .map_or(DataType::Utf8, |f| f.data_type().clone());
            let source = match partition_text_format(rules, &source, &source_type) {
                Some((to, format)) => {
                    parse_formatted(source_name, &source, &to, format, &file.locate())?
                }
                None => source,
            };
            to_date(file, source_name, source)?
        } else if evolving && file.batch.column_by_name(field.name()).is_none() {
            // Evolving: a table column this file lacks is null (NOT NULL ones fail the checks).
            arrow::array::new_null_array(field.data_type(), file.batch.num_rows())
        } else {
            let column = input_column(file, field.name()).map_err(mismatch)?;
            let to = field.data_type();
            let checked = match sample.filter(|sample| sample.checks(field.name())) {
                Some(sample) => check_sample(file, field.name(), &column, to, sample)?,
                None => None,
            };
            match (checked, rules.text_format(to).filter(|_| is_text(&column))) {
                (Some(parsed), _) => parsed,
                (None, Some(format)) => {
                    parse_formatted(field.name(), &column, to, format, &file.locate())?
                }
                (None, None) => cast_lossless(field.name(), &column, to, &file.locate())?,
            }
        };
        columns.push(column);
    }
    let batch = RecordBatch::try_new(target.clone(), columns)
        .map_err(|e| Error::internal(format!("cannot shape {}", file.file), e))?;
    check_rows(file, &batch, rules, scope)?;
    Ok(batch)
}

fn is_text(array: &ArrayRef) -> bool {
    matches!(
        array.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// The type and format the text of the partition column's source (of table type
/// `source_type`: DATE for the partition column itself) is parsed with, when the run gives
/// `--date-format` or `--timestamp-format`: the one for the source's type, else either.
fn partition_text_format<'a>(
    rules: &'a RowRules,
    source: &ArrayRef,
    source_type: &DataType,
) -> Option<(DataType, &'a str)> {
    if !is_text(source) {
        return None;
    }
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let date = rules.date_format.as_deref().map(|f| (DataType::Date32, f));
    let timestamp = rules.timestamp_format.as_deref().map(|f| (utc, f));
    match source_type {
        DataType::Timestamp(_, _) => timestamp.or(date),
        _ => date.or(timestamp),
    }
}

/// A hint for a column name that looks like a whole header row: the file's delimiter is
/// likely not the one the run reads with.
fn delimiter_hint(name: &str) -> &'static str {
    match name.contains([',', ';', '|', '\t']) {
        true => {
            "; if that is a whole header row, the file's delimiter is another: pass it \
                 with --csv-delimiter"
        }
        false => "",
    }
}

fn column_list(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

fn input_column(file: &InputBatch<'_>, name: &str) -> std::result::Result<ArrayRef, String> {
    file.batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| format!("the column '{name}' is missing; the table has it"))
}

/// Fails on the first value of `column` (read as text) that would have given the column
/// another type than `sample`'s, had the inference seen it. The run then infers the types
/// from all rows and reads its input again: this error is never the run's. A column of
/// integers (type `to`) is parsed as it is checked, and returned.
fn check_sample(
    file: &InputBatch<'_>,
    column: &str,
    array: &ArrayRef,
    to: &DataType,
    sample: &Sampled,
) -> Result<Option<ArrayRef>> {
    let misfit = |row| {
        Error::bad_input(
            file.file,
            Some(file.row(row)),
            format!(
                "column '{column}': value '{}' does not fit the type the file's first rows gave it",
                display_value(array.as_ref(), row)
            ),
        )
    };
    let Some(text) = array.as_string_opt::<i32>() else {
        return Ok(None);
    };
    if to == &DataType::Int64
        && let Some(integers) = sample.integers(column, text)
    {
        return Ok(Some(Arc::new(integers.map_err(misfit)?)));
    }
    match sample.first_misfit(column, text) {
        None => Ok(None),
        Some(row) => Err(misfit(row)),
    }
}

/// The types text input is parsed with, given the table's (or a new table's first file's):
/// the same, except dates, timestamps and decimals (and every column whose type comes from a
/// sample, checked by [`check_sample`]). arrow's parsers for those drop what does not fit (a
/// time of day, digits below the unit or scale) without an error, so they are read as text
/// and cast by [`cast_lossless`], which refuses any such loss; the partition column's text is
/// cut to its day by [`to_date`]. Text in the common shape is parsed by [`crate::rfc3339`].
pub(crate) fn text_types(columns: &Schema, sample: Option<&Sampled>) -> Schema {
    let fields: Vec<Field> = columns
        .fields()
        .iter()
        .map(|field| {
            let lossy = matches!(
                field.data_type(),
                DataType::Date32
                    | DataType::Date64
                    | DataType::Timestamp(_, _)
                    | DataType::Decimal128(_, _)
                    | DataType::Decimal256(_, _)
            );
            let sampled = sample.is_some_and(|sample| sample.checks(field.name()));
            // A column without a value in the first file is text in the table; read as Null,
            // a later file's values there would be dropped.
            let empty = field.data_type() == &DataType::Null;
            match lossy || sampled || empty {
                true => field.as_ref().clone().with_data_type(DataType::Utf8),
                false => field.as_ref().clone(),
            }
        })
        .collect();
    Schema::new(fields)
}

/// Turns a date, timestamp or text column into DATE values, cutting timestamps to the UTC day.
fn to_date(file: &InputBatch<'_>, column: &str, array: ArrayRef) -> Result<ArrayRef> {
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let array = match array.data_type() {
        DataType::Date32 => return Ok(array),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            // arrow's DATE parser cuts a date-time to its UTC day, as the timestamps below are.
            if let Some(text) = array.as_string_opt::<i32>() {
                if let Some(days) = crate::rfc3339::dates(text) {
                    return Ok(Arc::new(days));
                }
                if let Some(micros) = crate::rfc3339::timestamps(text) {
                    let day = |micros: i64| micros.div_euclid(86_400_000_000) as i32;
                    return Ok(Arc::new(arrow::compute::unary::<_, _, Date32Type>(
                        &micros, day,
                    )));
                }
            }
            return cast_strict(column, &array, &DataType::Date32, &file.locate());
        }
        DataType::Timestamp(_, _) | DataType::Date64 => {
            cast_strict(column, &array, &utc, &file.locate())?
        }
        other => {
            return Err(Error::bad_input(
                file.file,
                None,
                format!("column '{column}' is {other}, not a date or timestamp"),
            ));
        }
    };
    cast_strict(column, &array, &DataType::Date32, &file.locate())
}

fn check_rows(
    file: &InputBatch<'_>,
    batch: &RecordBatch,
    rules: &RowRules,
    scope: &PartitionScope,
) -> Result<()> {
    for column in rules.key.iter().chain([&rules.partition_column]) {
        let array = batch.column_by_name(column).expect("conformed column");
        let nulls = array.logical_nulls();
        if let Some(row) = nulls.and_then(|nulls| nulls.iter().position(|valid| !valid)) {
            return Err(Error::bad_input(
                file.file,
                Some(file.row(row)),
                format!("column '{column}' is empty; every row needs a value there"),
            ));
        }
    }
    let dates = batch
        .column_by_name(&rules.partition_column)
        .expect("conformed column")
        .as_primitive::<Date32Type>();
    let in_scope = scope.epoch_days();
    for (i, days) in dates.values().iter().enumerate() {
        if !in_scope.contains(days) {
            let date = date_from_days(*days);
            return Err(Error::bad_input(
                file.file,
                Some(file.row(i)),
                format!(
                    "'{}' is {date}, outside the run's scope {scope}; widen --from/--to \
                     or remove the row (nothing was written)",
                    rules.partition_column
                ),
            ));
        }
    }
    Ok(())
}

/// Takes decoded batches from the source, shapes each like the table, checks it (an error
/// names the file and row) and keeps the rows in a [`RowStore`]. Clones share the store, so
/// that files decode and conform in parallel, one clone each.
#[derive(Clone)]
pub(crate) struct Intake {
    table_schema: Option<SchemaRef>,
    /// The table's constraints, checked on every conformed row.
    checks: Arc<RowChecks>,
    rules: Arc<RowRules>,
    scope: PartitionScope,
    buckets: usize,
    /// With a new table's types from its first file's first rows: what every row must fit.
    sample: Option<Arc<Sampled>>,
    taken: Arc<Mutex<Taken>>,
}

/// What an intake has taken so far.
#[derive(Default)]
struct Taken {
    /// Created at the first batch, which decides the schema when there is no table yet.
    store: Option<RowStore>,
    rows: u64,
}

impl Intake {
    /// An intake for rows of `table_schema` (`None`: a new table's, taken from the first
    /// batch), spilling rows into `buckets` buckets when that is more than one.
    pub(crate) fn new(
        table_schema: Option<SchemaRef>,
        checks: RowChecks,
        rules: RowRules,
        scope: PartitionScope,
        buckets: usize,
    ) -> Self {
        Self {
            table_schema,
            checks: Arc::new(checks),
            rules: Arc::new(rules),
            scope,
            buckets,
            sample: None,
            taken: Arc::default(),
        }
    }

    /// This intake, failing on any value that does not fit the types `sample` gave.
    pub(crate) fn checking(mut self, sample: Option<Arc<Sampled>>) -> Self {
        self.sample = sample;
        self
    }

    /// The rows taken in, and how many there were. Call it once every file is in.
    pub(crate) fn finish(self) -> Result<(RowStore, u64)> {
        let taken = std::mem::take(&mut *self.lock());
        let store = taken
            .store
            .ok_or_else(|| Error::InvalidOption("the input holds no files".into()))?;
        Ok((store, taken.rows))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Taken> {
        // A panic while holding the lock ends the run anyway; the data is not needed then.
        self.taken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The schema rows are shaped to, decided (and the store created) by the first batch, and
    /// what cuts rows by the store's buckets.
    fn schema_for(&self, first: &InputBatch<'_>) -> Result<(SchemaRef, Spreader)> {
        let mut taken = self.lock();
        if let Some(store) = &taken.store {
            return Ok((store.schema().clone(), store.spreader()));
        }
        let schema = target_schema(
            first.file,
            &first.batch.schema(),
            self.table_schema.clone(),
            &self.rules,
        )?;
        // Rows are spread over buckets by key, or by the whole row without a key.
        let spread_by = if self.rules.key.is_empty() {
            schema.fields().iter().map(|f| f.name().clone()).collect()
        } else {
            self.rules.key.clone()
        };
        let store = RowStore::new(schema.clone(), &spread_by, self.buckets)?;
        let spreader = store.spreader();
        taken.store = Some(store);
        Ok((schema, spreader))
    }
}

impl BatchSink for Intake {
    fn accept(&mut self, file: &str, batch: RecordBatch, first_row: usize) -> Result<()> {
        let input = InputBatch {
            file,
            batch: &batch,
            first_row,
        };
        let (schema, spreader) = self.schema_for(&input)?;
        // Shaping, checking and cutting by bucket, the costly part, run outside the lock.
        let sample = self.sample.as_deref();
        let conformed = conform(&input, &schema, &self.rules, &self.scope, sample)?;
        let violation = self
            .checks
            .first_violation(&conformed)
            .map_err(|message| Error::bad_input(file, None, message))?;
        if let Some(violation) = violation {
            return Err(Error::ConstraintViolated {
                at: InputLocation {
                    file: file.to_string(),
                    row: Some(input.row(violation.row)),
                },
                constraint: violation.constraint,
                expression: violation.expression,
                values: violation.values,
            });
        }
        let rows = conformed.num_rows() as u64;
        let spread = spreader.spread(conformed)?;
        let mut taken = self.lock();
        taken.rows += rows;
        taken
            .store
            .as_mut()
            .expect("created by schema_for")
            .push(spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    #[test]
    fn partition_text_gets_the_utc_day_arrows_date_parser_gives() {
        let texts = [
            "2024-01-01T23:30:00-02:00",
            "2024-01-01T00:30:00+02:00",
            "1969-12-31T23:59:59.999999Z",
            "2024-02-29 12:00:00",
            "2024-03-01T00:00:00Z",
        ];
        let batch = RecordBatch::new_empty(Arc::new(Schema::empty()));
        let file = InputBatch {
            file: "in.csv",
            batch: &batch,
            first_row: 0,
        };
        let text: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
        let days = to_date(&file, "at", text.clone()).unwrap();
        let arrow = cast_strict("at", &text, &DataType::Date32, &file.locate()).unwrap();
        assert_eq!(days.as_ref(), arrow.as_ref());
        let first = days.as_primitive::<Date32Type>().value(0);
        assert_eq!(date_from_days(first).to_string(), "2024-01-02");
    }
}
