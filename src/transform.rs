//! Transform: give every input file the table's shape, check it against the run's contract,
//! then deduplicate and order the rows so that the output never depends on input order.
//!
//! Validation runs per file, before anything is written, so an error names the file and row.

use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::SortOptions;
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;

use crate::cast::{cast_lossless, cast_strict, display_value, parse_formatted};
use crate::constraints::RowChecks;
use crate::error::{Error, InputLocation, Result};
use crate::evolve::SchemaEvolution;
use crate::rows::{encode_rows, encode_rows_of, hash};
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

/// A bucket of at least this many rows per core is deduplicated and ordered on every core.
const ROWS_PER_PART: usize = 128 * 1024;

/// One row per key (the largest `order_by` wins, then the largest whole row), ordered by
/// partition, then key (without a key: partition, then whole row). Nothing here looks at the
/// order rows arrived in.
///
/// A large bucket is cut into one part per core by ranges of the key (of the whole row,
/// without a key), each deduplicated and ordered on a core of its own: a key never spans two
/// parts, and every key of a part sorts before every key of the next. So the parts' rows of
/// one day, taken part after part, are that day's rows in order. Returns the parts in order.
pub(crate) fn dedup_and_order(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    rules: &RowRules,
) -> Result<Vec<RecordBatch>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let parts = cores.min(rows / ROWS_PER_PART).max(1);
    dedup_and_order_in(&Bucket::new(schema, batches), rules, parts)
}

fn dedup_and_order_in(bucket: &Bucket, rules: &RowRules, parts: usize) -> Result<Vec<RecordBatch>> {
    let ascending = SortOptions::default();
    // The rows of each part in output order, found before any row is copied: the encodings
    // are dropped first, so that they and the copies are never in memory together.
    let ordered = if rules.key.is_empty() {
        let mut output_order = vec![(rules.partition_column.as_str(), ascending)];
        output_order.extend(
            bucket
                .schema
                .fields()
                .iter()
                .map(|f| (f.name().as_str(), ascending)),
        );
        let whole = bucket.encode(&output_order)?;
        on_every_core(split_by_range(&whole, parts)?, |rows| {
            Ok(sort_by_encoding(&whole, rows))
        })?
    } else {
        let keys: Vec<(&str, SortOptions)> =
            rules.key.iter().map(|k| (k.as_str(), ascending)).collect();
        let latest_first = SortOptions {
            descending: true,
            nulls_first: false,
        };
        let mut ranking = keys.clone();
        ranking.extend(rules.order_by.iter().map(|c| (c.as_str(), latest_first)));
        // The two encodings on a core each.
        let [key, rank]: [arrow::row::Rows; 2] =
            on_every_core(vec![&keys, &ranking], |columns| bucket.encode(columns))?
                .try_into()
                .expect("two encodings");
        let days: Vec<i32> = bucket
            .column(&rules.partition_column)
            .iter()
            .flat_map(|days| days.as_primitive::<Date32Type>().values().iter().copied())
            .collect();
        on_every_core(split_by_range(&key, parts)?, |rows| {
            // The winners come in key order and keys are now unique, so a stable sort by
            // day gives the (partition, key) order without comparing rows again.
            let mut winners = latest_per_key(bucket, &rank, &key, rows)?;
            winners.sort_by_key(|&row| days[row as usize]);
            Ok(winners)
        })?
    };
    on_every_core(ordered, |rows| bucket.take(&rows))
}

/// The conformed rows of a bucket as the store holds them, in batches: a row is named by its
/// index in all of them, one batch after the other. Not combined into one batch, which would
/// copy every row once more before deduplication copies the winners.
struct Bucket {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// The index of each batch's first row.
    starts: Vec<usize>,
}

impl Bucket {
    fn new(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let starts = batches
            .iter()
            .scan(0, |next, batch| {
                let start = *next;
                *next += batch.num_rows();
                Some(start)
            })
            .collect();
        Self {
            schema: schema.clone(),
            batches,
            starts,
        }
    }

    /// The column `name` of each batch: `conform` guarantees the rules' columns are there.
    fn column(&self, name: &str) -> Vec<ArrayRef> {
        let index = self.schema.index_of(name).expect("conformed column");
        self.batches
            .iter()
            .map(|b| b.column(index).clone())
            .collect()
    }

    /// Every row's encoding by these columns, in row order.
    fn encode(&self, columns: &[(&str, SortOptions)]) -> Result<arrow::row::Rows> {
        let columns: Vec<(Vec<ArrayRef>, SortOptions)> = columns
            .iter()
            .map(|&(name, options)| (self.column(name), options))
            .collect();
        encode_rows_of(&columns)
    }

    /// These rows, in this order.
    fn take(&self, rows: &[u32]) -> Result<RecordBatch> {
        if let [only] = self.batches.as_slice() {
            return take_record_batch(only, &UInt32Array::from(rows.to_vec()))
                .map_err(|e| Error::internal("deduplicating and ordering rows", e));
        }
        let at: Vec<(usize, usize)> = rows
            .iter()
            .map(|&row| {
                let row = row as usize;
                let batch = self.starts.partition_point(|&start| start <= row) - 1;
                (batch, row - self.starts[batch])
            })
            .collect();
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        match batches.is_empty() {
            true => Ok(RecordBatch::new_empty(self.schema.clone())),
            false => arrow::compute::interleave_record_batch(&batches, &at)
                .map_err(|e| Error::internal("deduplicating and ordering rows", e)),
        }
    }
}

/// Runs `work` on each item, one thread per item, and returns the results in item order.
fn on_every_core<I: Send, T: Send>(
    items: Vec<I>,
    work: impl Fn(I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(|| work(item)))
            .collect();
        threads
            .into_iter()
            // A panic is a bug: raised again, as `Error::rejoin` does for tasks.
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect()
    })
}

/// About this many rows are sampled to place the cuts between parts.
const CUT_SAMPLE: usize = 16 * 1024;

/// The rows cut into `parts` ranges of their encodings, as even as equal prefixes allow; rows
/// with equal prefixes (every row of one key) share a range. The cuts are quantiles of the
/// 16-byte prefixes of a sample of the rows, those whose prefix hashes to a multiple of a
/// stride: so they depend on the rows alone, not on their order, and a key's rows are all
/// sampled or none. The rows are sorted into the ranges on every core, a slice of them each.
fn split_by_range(rows: &arrow::row::Rows, parts: usize) -> Result<Vec<Vec<u32>>> {
    let count = rows.num_rows();
    if parts <= 1 {
        return Ok(vec![(0..count as u32).collect()]);
    }
    let stride = (count / CUT_SAMPLE).max(1) as u64;
    let slices: Vec<std::ops::Range<usize>> = (0..parts)
        .map(|slice| slice * count / parts..(slice + 1) * count / parts)
        .collect();
    let samples = on_every_core(slices.clone(), |slice| {
        Ok(slice
            .map(|i| prefix(rows, i))
            .filter(|prefix| hash(&prefix.to_be_bytes()).is_multiple_of(stride))
            .collect::<Vec<u128>>())
    })?;
    let mut sample = samples.concat();
    let sampled = sample.len();
    let mut cuts: Vec<u128> = match sampled {
        0 => Vec::new(),
        _ => (1..parts)
            .map(|part| *sample.select_nth_unstable(part * sampled / parts).1)
            .collect(),
    };
    drop(sample);
    cuts.dedup();
    let sorted = on_every_core(slices, |slice| {
        let mut ranges = vec![Vec::with_capacity(slice.len() / parts + 1); cuts.len() + 1];
        for row in slice {
            let prefix = prefix(rows, row);
            ranges[cuts.partition_point(|&cut| cut <= prefix)].push(row as u32);
        }
        Ok(ranges)
    })?;
    let mut ranges: Vec<Vec<u32>> = (0..=cuts.len())
        .map(|range| {
            let rows = sorted.iter().map(|slices| slices[range].len()).sum();
            let mut joined = Vec::with_capacity(rows);
            for slices in &sorted {
                joined.extend_from_slice(&slices[range]);
            }
            joined
        })
        .collect();
    ranges.retain(|range| !range.is_empty());
    Ok(ranges)
}

/// The winning row of each key among `rows`, in key order. Rows are ranked by key and
/// `order_by` only (`rank`); the whole rows are compared just for the rare rows that tie on both.
fn latest_per_key(
    bucket: &Bucket,
    rank: &arrow::row::Rows,
    key: &arrow::row::Rows,
    rows: Vec<u32>,
) -> Result<Vec<u32>> {
    // Each row with its rank's prefix and a hash of its key, sorted by rank: comparing those
    // first tells almost every two rows apart without reading their encodings (a cache miss
    // each, in this order: the largest cost of this scan in the profile). A hash, not the
    // key's prefix, keeps an entry at 32 bytes.
    let mut sorted: Vec<(u128, u64, u32)> = rows
        .into_iter()
        .map(|row| {
            (
                prefix(rank, row as usize),
                hash(key.row(row as usize).as_ref()),
                row,
            )
        })
        .collect();
    sorted.sort_unstable_by(|a, b| by_encoding(rank, (a.0, a.2), (b.0, b.2)));
    let same_rank = |a: &(u128, u64, u32), b: &(u128, u64, u32)| {
        a.0 == b.0 && rank.row(a.2 as usize) == rank.row(b.2 as usize)
    };
    let same_key = |a: &(u128, u64, u32), b: &(u128, u64, u32)| {
        a.1 == b.1 && key.row(a.2 as usize) == key.row(b.2 as usize)
    };
    let order: Vec<u32> = sorted.iter().map(|&(_, _, row)| row).collect();
    let mut winners = Vec::new();
    // (index into `winners`, the rows that tie with it on key and `order_by`)
    let mut ties: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    let mut start = 0;
    while start < sorted.len() {
        let first = &sorted[start];
        let mut end = start + 1;
        while end < sorted.len() && same_rank(&sorted[end], first) {
            end += 1;
        }
        if end - start > 1 {
            ties.push((winners.len(), start..end));
        }
        winners.push(first.2);
        while end < sorted.len() && same_key(&sorted[end], first) {
            end += 1;
        }
        start = end;
    }
    if !ties.is_empty() {
        let tied: Vec<u32> = ties
            .iter()
            .flat_map(|(_, range)| order[range.clone()].iter().copied())
            .collect();
        let tied_rows = bucket.take(&tied)?;
        let latest_first = SortOptions {
            descending: true,
            nulls_first: false,
        };
        let whole: Vec<(ArrayRef, SortOptions)> = tied_rows
            .columns()
            .iter()
            .map(|c| (c.clone(), latest_first))
            .collect();
        let whole = encode_rows(&whole)?;
        let mut offset = 0;
        for (winner, range) in ties {
            let group = offset..offset + range.len();
            let best = group
                .min_by(|&a, &b| whole.row(a).cmp(&whole.row(b)))
                .expect("a tie has rows");
            winners[winner] = tied[best];
            offset += range.len();
        }
    }
    Ok(winners)
}

/// The first 16 bytes of row `index`'s encoding as one big-endian integer, zero-padded, so
/// that integers order as the encodings do wherever they differ in those bytes.
fn prefix(rows: &arrow::row::Rows, index: usize) -> u128 {
    let bytes = rows.row(index);
    let bytes = bytes.as_ref();
    let mut head = [0u8; 16];
    let length = bytes.len().min(16);
    head[..length].copy_from_slice(&bytes[..length]);
    u128::from_be_bytes(head)
}

/// `rows` sorted by their encodings. The prefixes decide almost every comparison without a
/// call to `memcmp` (which was the largest single cost of deduplication in the profile);
/// equal prefixes fall back to the whole encoding.
fn sort_by_encoding(encodings: &arrow::row::Rows, rows: Vec<u32>) -> Vec<u32> {
    let mut keyed: Vec<(u128, u32)> = rows
        .into_iter()
        .map(|row| (prefix(encodings, row as usize), row))
        .collect();
    keyed.sort_unstable_by(|&a, &b| by_encoding(encodings, a, b));
    keyed.into_iter().map(|(_, row)| row).collect()
}

/// The order of two rows given as (prefix, row): by prefix, then by whole encoding.
fn by_encoding(encodings: &arrow::row::Rows, a: (u128, u32), b: (u128, u32)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| {
        encodings
            .row(a.1 as usize)
            .cmp(&encodings.row(b.1 as usize))
    })
}

/// Splits each part's rows (ordered by partition) by day: for each day, its rows of each part
/// in part order, so that taken in turn they are the day's rows in order.
pub(crate) fn split_by_day(
    parts: &[RecordBatch],
    partition_column: &str,
) -> Vec<(NaiveDate, Vec<RecordBatch>)> {
    let mut days: std::collections::BTreeMap<NaiveDate, Vec<RecordBatch>> = Default::default();
    for batch in parts {
        let dates = batch
            .column_by_name(partition_column)
            .expect("conformed column")
            .as_primitive::<Date32Type>()
            .values()
            .clone();
        let mut start = 0;
        for end in 1..=dates.len() {
            if end == dates.len() || dates[end] != dates[start] {
                days.entry(date_from_days(dates[start]))
                    .or_default()
                    .push(batch.slice(start, end - start));
                start = end;
            }
        }
    }
    days.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, StringArray};

    fn batch(ids: &[i64], versions: &[i64], notes: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("date", DataType::Date32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(Int64Array::from(versions.to_vec())),
                Arc::new(StringArray::from(notes.to_vec())),
                Arc::new(Date32Array::from(vec![19723; ids.len()])),
            ],
        )
        .unwrap()
    }

    fn rules() -> RowRules {
        RowRules {
            key: vec!["id".into()],
            order_by: Some("v".into()),
            ..RowRules::default()
        }
    }

    /// The parts of `dedup_and_order_in`, one after the other.
    fn dedup(batch: RecordBatch, rules: &RowRules, parts: usize) -> RecordBatch {
        let schema = batch.schema();
        let parts = dedup_and_order_in(&Bucket::new(&schema, vec![batch]), rules, parts).unwrap();
        arrow::compute::concat_batches(&schema, &parts).unwrap()
    }

    fn dedup_and_order(batch: RecordBatch, rules: &RowRules) -> Result<RecordBatch> {
        Ok(dedup(batch, rules, 1))
    }

    #[test]
    fn latest_wins_and_ties_break_by_row_not_by_position() {
        let a = dedup_and_order(
            batch(&[1, 1, 1, 2], &[1, 5, 5, 1], &["old", "x", "y", "z"]),
            &rules(),
        )
        .unwrap();
        let b = dedup_and_order(
            batch(&[2, 1, 1, 1], &[1, 5, 5, 1], &["z", "y", "x", "old"]),
            &rules(),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.num_rows(), 2);
        let notes = a.column(2).as_string::<i32>();
        assert_eq!(
            notes.value(0),
            "y",
            "of the two latest rows, the larger whole row wins"
        );
    }

    #[test]
    fn dedup_matches_a_naive_reference_in_any_input_order() {
        // Small domains so that keys repeat and many rows tie on key and version.
        let mut next = crate::test_numbers(0x2545_f491_u64);
        let notes = ["a", "b", "c"];
        for _ in 0..50 {
            let rows: Vec<(i64, i64, &str)> = (0..40)
                .map(|_| (next(8) as i64, next(3) as i64, notes[next(3)]))
                .collect();
            let mut expected = std::collections::BTreeMap::new();
            for &(id, v, note) in &rows {
                let best = expected.entry(id).or_insert((v, note));
                *best = (*best).max((v, note));
            }
            let expected: Vec<(i64, i64, &str)> = expected
                .into_iter()
                .map(|(id, (v, n))| (id, v, n))
                .collect();
            for reversed in [false, true] {
                let mut input = rows.clone();
                if reversed {
                    input.reverse();
                }
                let ids: Vec<i64> = input.iter().map(|r| r.0).collect();
                let versions: Vec<i64> = input.iter().map(|r| r.1).collect();
                let texts: Vec<&str> = input.iter().map(|r| r.2).collect();
                let out = dedup_and_order(batch(&ids, &versions, &texts), &rules()).unwrap();
                let got: Vec<(i64, i64, &str)> = (0..out.num_rows())
                    .map(|i| {
                        (
                            out.column(0)
                                .as_primitive::<arrow::datatypes::Int64Type>()
                                .value(i),
                            out.column(1)
                                .as_primitive::<arrow::datatypes::Int64Type>()
                                .value(i),
                            out.column(2).as_string::<i32>().value(i),
                        )
                    })
                    .collect();
                assert_eq!(got, expected);
            }
        }
    }

    /// Cut into parts by key range, the rows and their order stay those of one part, with or
    /// without a key, whatever the order of the input, and a day's rows of each part taken
    /// in turn are the day's rows in order.
    #[test]
    fn parts_give_the_rows_one_part_gives() {
        let mut next = crate::test_numbers(0x9E37_79B9_u64);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
            Field::new("date", DataType::Date32, true),
        ]));
        for _ in 0..20 {
            let rows = 200 + next(300);
            let ids: Vec<i64> = (0..rows).map(|_| next(150) as i64).collect();
            let versions: Vec<i64> = (0..rows).map(|_| next(4) as i64).collect();
            let dates: Vec<i32> = (0..rows).map(|_| 19723 + next(3) as i32).collect();
            fn order<T>(mut values: Vec<T>, reversed: bool) -> Vec<T> {
                if reversed {
                    values.reverse();
                }
                values
            }
            let batch = |reversed: bool| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(order(ids.clone(), reversed))),
                        Arc::new(Int64Array::from(order(versions.clone(), reversed))),
                        Arc::new(Date32Array::from(order(dates.clone(), reversed))),
                    ],
                )
                .unwrap()
            };
            for rules in [rules(), RowRules::default()] {
                let whole = dedup(batch(false), &rules, 1);
                for parts in [2, 3, 7] {
                    for reversed in [false, true] {
                        // In batches of 64 rows, as the store holds rows in batches.
                        let whole_batch = batch(reversed);
                        let batches = (0..whole_batch.num_rows())
                            .step_by(64)
                            .map(|start| {
                                whole_batch.slice(start, 64.min(whole_batch.num_rows() - start))
                            })
                            .collect();
                        let bucket = Bucket::new(&schema, batches);
                        let cut = dedup_and_order_in(&bucket, &rules, parts).unwrap();
                        assert!(cut.len() > 1, "{parts} parts asked, {} made", cut.len());
                        let days: Vec<RecordBatch> = split_by_day(&cut, "date")
                            .into_iter()
                            .flat_map(|(_, slices)| slices)
                            .collect();
                        let joined = arrow::compute::concat_batches(&schema, &days).unwrap();
                        assert_eq!(joined, whole, "{parts} parts, reversed: {reversed}");
                    }
                }
            }
        }
    }

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

    #[test]
    fn cuts_split_buckets_evenly_by_key_whatever_the_row_order() {
        let mut next = crate::test_numbers(0x5EED_u64);
        // Keys repeat, and one key holds a twentieth of the rows.
        let ids: Vec<i64> = (0..400_000)
            .map(|i| match i % 20 {
                0 => 7,
                _ => next(150_000) as i64 - 75_000,
            })
            .collect();
        let mut shuffled = ids.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, next(i + 1));
        }
        let ascending = SortOptions::default();
        let keys_by_part = |ids: &[i64], parts: usize| -> Vec<Vec<i64>> {
            let column: ArrayRef = Arc::new(Int64Array::from(ids.to_vec()));
            let rows = encode_rows(&[(column, ascending)]).unwrap();
            split_by_range(&rows, parts)
                .unwrap()
                .into_iter()
                .map(|part| {
                    let mut keys: Vec<i64> = part.iter().map(|&row| ids[row as usize]).collect();
                    keys.sort();
                    keys
                })
                .collect()
        };
        for parts in [2, 3, 4] {
            let split = keys_by_part(&ids, parts);
            assert_eq!(split.len(), parts);
            let even = ids.len() / parts;
            for (part, keys) in split.iter().enumerate() {
                // A cut can fall only beside the large key's 20,000 rows, never among them.
                let off = keys.len().abs_diff(even);
                assert!(
                    off <= 20_000,
                    "part {part} of {parts}: {} rows, {even} even",
                    keys.len()
                );
            }
            for pair in split.windows(2) {
                assert!(pair[0].last() < pair[1].first(), "parts overlap in keys");
            }
            assert_eq!(split.iter().map(Vec::len).sum::<usize>(), ids.len());
            assert_eq!(
                keys_by_part(&shuffled, parts),
                split,
                "the cuts follow the order"
            );
        }
    }
}
