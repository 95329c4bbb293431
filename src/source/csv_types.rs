//! The column types of a CSV file without a table: the types arrow-csv's
//! `Format::infer_schema` gives (same value classes, same promotions, so a table is the same
//! whichever way it was inferred), found about five times faster.
//!
//! Why not arrow-csv's own inference: it matches every value against a set of eight regular
//! expressions, which made inferring a new table's types cost twice the decoding itself
//! (BENCHMARKS.md). Here each value is classified by hand-written byte checks that accept
//! exactly what those expressions accept; the rare value with non-ASCII characters (Unicode
//! digits count as digits there) still goes through the same expressions. A column already
//! known to be text is not looked at again. The test below holds the two to the same answers.

use std::io::Read;
use std::sync::LazyLock;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::error::ArrowError;
use regex::RegexSet;

use super::CsvDialect;

/// Value classes, one bit each, in the order of arrow-csv's `InferredDataType`.
const BOOLEAN: u16 = 1;
const INTEGER: u16 = 1 << 1;
const FLOAT: u16 = 1 << 2;
pub(super) const DATE: u16 = 1 << 3;
const SECONDS: u16 = 1 << 4;
const MILLISECONDS: u16 = 1 << 5;
pub(super) const MICROSECONDS: u16 = 1 << 6;
const NANOSECONDS: u16 = 1 << 7;
const TEXT: u16 = 1 << 8;

/// The columns of the CSV file `reader` reads (header row first) with the type every value of
/// each column fits, as arrow-csv would infer them from all rows.
pub(super) fn infer_types(reader: impl Read, dialect: &CsvDialect) -> Result<Schema, ArrowError> {
    let mut csv = dialect.reader(reader, true);
    let header = csv.headers().map_err(csv_error)?.clone();
    let classes = classes_of(csv, header.len(), dialect)?;
    Ok(schema_of(header.iter(), &classes))
}

/// The columns of a CSV file as its first `rows` rows give them, with each column's classes,
/// unless those are all its rows or a column holds no value there: then `None`, and the whole
/// file is to be inferred.
pub(super) fn sample_types(
    reader: impl Read,
    rows: usize,
    dialect: &CsvDialect,
) -> Result<Option<Sampled>, ArrowError> {
    let mut csv = dialect.reader(reader, true);
    let header = csv.headers().map_err(csv_error)?.clone();
    let mut classes = vec![0u16; header.len()];
    let mut record = csv::StringRecord::new();
    for _ in 0..rows {
        if !csv.read_record(&mut record).map_err(csv_error)? {
            return Ok(None);
        }
        for (class, value) in classes.iter_mut().zip(record.iter()) {
            if *class & TEXT == 0 && !dialect.is_null(value) {
                *class |= dialect.class_of(value, classify);
            }
        }
    }
    if classes.contains(&0) || !csv.read_record(&mut record).map_err(csv_error)? {
        return Ok(None);
    }
    let columns = schema_of(header.iter(), &classes);
    let classes = header.iter().map(str::to_string).zip(classes).collect();
    let dialect = dialect.clone();
    Ok(Some(Sampled {
        columns,
        classes,
        dialect,
    }))
}

/// A file's columns inferred from its first rows only, and what the other rows must hold for
/// those types to be the ones all rows would give: each column's classes over the sample.
#[derive(Debug)]
pub(crate) struct Sampled {
    /// The columns with the sample's types.
    pub(crate) columns: Schema,
    classes: std::collections::HashMap<String, u16>,
    /// The dialect the sample was classified in (its date and timestamp formats).
    dialect: CsvDialect,
}

impl Sampled {
    /// Whether `column`, a column the sample typed (other than text), is checked here; such a
    /// column is to be read as text and given to [`Sampled::first_misfit`].
    pub(crate) fn checks(&self, column: &str) -> bool {
        self.classes
            .get(column)
            .is_some_and(|&c| data_type(c) != DataType::Utf8)
    }

    /// The first value of `column`'s text whose class would give the column another type than
    /// the sample's, had the inference seen it.
    pub(crate) fn first_misfit(
        &self,
        column: &str,
        text: &arrow::array::StringArray,
    ) -> Option<usize> {
        let sampled = *self.classes.get(column)?;
        let typed = data_type(sampled);
        text.iter().position(|value| {
            value.is_some_and(|value| {
                let class = self.dialect.class_of(value, classify);
                class & !sampled != 0 && data_type(sampled | class) != typed
            })
        })
    }

    /// `column`'s text as 64-bit integers when the sample found integers only there, checked
    /// and parsed in one pass (instead of [`Sampled::first_misfit`] and a cast: the first
    /// write's largest cost over a replacement's); `Err` holds the first value that is no
    /// integer, a misfit. `None`: the column is checked the other way.
    pub(crate) fn integers(
        &self,
        column: &str,
        text: &arrow::array::StringArray,
    ) -> Option<Result<arrow::array::Int64Array, usize>> {
        // A date or timestamp format could class an integer's text as a date.
        if self.classes.get(column) != Some(&INTEGER) || self.dialect.has_text_formats() {
            return None;
        }
        let values = text.iter().enumerate().map(|(row, value)| match value {
            None => Ok(None),
            Some(value) => integer(value).map(Some).ok_or(row),
        });
        Some(values.collect())
    }
}

/// The 64-bit integer an integer's text gives, or `None` when the text is no integer as
/// [`classify`] tells them (no sign but a minus, ASCII digits only) or too large.
fn integer(value: &str) -> Option<i64> {
    match is_integer(value.as_bytes()) {
        true => value.parse().ok(),
        false => None,
    }
}

/// `-?\d+`, whole, in ASCII digits: what [`classify`] classes as an integer (if it fits).
fn is_integer(bytes: &[u8]) -> bool {
    let unsigned = bytes.strip_prefix(b"-").unwrap_or(bytes);
    !unsigned.is_empty() && digits(unsigned)
}

/// The value classes of each of the `columns` columns over the rows `reader` reads (after a
/// header row if `header`), to be merged with [`merge`] and typed by [`schema_of`]: the
/// classes of a file's byte ranges merged are the classes of the whole file. A row of another
/// length is an error.
pub(super) fn classes(
    reader: impl Read,
    header: bool,
    columns: usize,
    dialect: &CsvDialect,
) -> Result<Vec<u16>, ArrowError> {
    classes_of(dialect.reader(reader, header), columns, dialect)
}

/// Classes of many ranges of a file as one.
pub(super) fn merge(ranges: impl IntoIterator<Item = Vec<u16>>) -> Vec<u16> {
    ranges.into_iter().fold(Vec::new(), |mut all, classes| {
        all.resize(all.len().max(classes.len()), 0);
        all.iter_mut().zip(classes).for_each(|(a, c)| *a |= c);
        all
    })
}

/// The columns named `names`, each with the type of its classes.
pub(super) fn schema_of<'a>(names: impl Iterator<Item = &'a str>, classes: &[u16]) -> Schema {
    let fields: Vec<Field> = names
        .zip(classes)
        .map(|(name, &class)| Field::new(name, data_type(class), true))
        .collect();
    Schema::new(fields)
}

fn classes_of<R: Read>(
    mut csv: csv::Reader<R>,
    columns: usize,
    dialect: &CsvDialect,
) -> Result<Vec<u16>, ArrowError> {
    let mut classes = vec![0u16; columns];
    let mut record = csv::StringRecord::new();
    while csv.read_record(&mut record).map_err(csv_error)? {
        if record.len() != columns {
            return Err(ArrowError::CsvError(format!(
                "a row has {} fields where the header has {columns}",
                record.len()
            )));
        }
        for (class, value) in classes.iter_mut().zip(record.iter()) {
            // Text stays text whatever comes after.
            if *class & TEXT == 0 && !dialect.is_null(value) {
                *class |= dialect.class_of(value, classify);
            }
        }
    }
    Ok(classes)
}

fn csv_error(error: csv::Error) -> ArrowError {
    ArrowError::CsvError(error.to_string())
}

/// The type of a column whose values fall in `classes`: arrow-csv's promotions (integers
/// and floats make floats, dates and timestamps the finest timestamp, anything else text).
fn data_type(classes: u16) -> DataType {
    let temporal = DATE | SECONDS | MILLISECONDS | MICROSECONDS | NANOSECONDS;
    match classes {
        0 => DataType::Null,
        BOOLEAN => DataType::Boolean,
        INTEGER => DataType::Int64,
        FLOAT | 0b110 => DataType::Float64,
        c if c & !temporal == 0 => {
            if c & NANOSECONDS != 0 {
                DataType::Timestamp(TimeUnit::Nanosecond, None)
            } else if c & MICROSECONDS != 0 {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            } else if c & MILLISECONDS != 0 {
                DataType::Timestamp(TimeUnit::Millisecond, None)
            } else if c & SECONDS != 0 {
                DataType::Timestamp(TimeUnit::Second, None)
            } else {
                DataType::Date32
            }
        }
        _ => DataType::Utf8,
    }
}

/// The class of one value that is not null (an empty one, with other texts for null, is text).
fn classify(value: &str) -> u16 {
    if value.is_empty() || value.starts_with('"') {
        return TEXT;
    }
    if !value.is_ascii() {
        return classify_by_expressions(value);
    }
    let bytes = value.as_bytes();
    // Dates and timestamps first, the longest values, which the checks for the other classes
    // would scan in vain: a value that starts `dddd-dd-dd` is no boolean, integer or decimal.
    if let Some(class) = temporal(bytes) {
        return class;
    }
    let unsigned = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if bytes.eq_ignore_ascii_case(b"true") || bytes.eq_ignore_ascii_case(b"false") {
        BOOLEAN
    } else if is_integer(bytes) {
        // Too large for a 64-bit integer: text, as arrow-csv decides.
        match bytes.len() >= 19 && value.parse::<i64>().is_err() {
            true => TEXT,
            false => INTEGER,
        }
    } else if is_decimal(unsigned) || matches!(value, "NaN" | "nan" | "inf" | "-inf") {
        FLOAT
    } else {
        TEXT
    }
}

fn digits(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_digit)
}

/// `(\d*\.\d+|\d+\.\d*)([eE][-+]?\d+)?|\d+([eE][-+]?\d+)`, whole.
fn is_decimal(bytes: &[u8]) -> bool {
    let (mantissa, exponent) = match bytes.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
        None => (bytes, None),
    };
    if let Some(exponent) = exponent {
        let exponent = exponent
            .strip_prefix(b"-")
            .or_else(|| exponent.strip_prefix(b"+"))
            .unwrap_or(exponent);
        if exponent.is_empty() || !digits(exponent) {
            return false;
        }
    }
    match mantissa.iter().position(|&b| b == b'.') {
        Some(dot) => {
            let (whole, fraction) = (&mantissa[..dot], &mantissa[dot + 1..]);
            mantissa.len() > 1 && digits(whole) && digits(fraction)
        }
        None => exponent.is_some() && !mantissa.is_empty() && digits(mantissa),
    }
}

/// `\d{4}-\d\d-\d\d` (a date), or that followed by `[T ]\d\d:\d\d:\d\d` and an optional
/// fraction of 1 to 9 digits (a timestamp whose unit the fraction's length gives), then
/// nothing, or a first character that is no digit (nor a dot, without a fraction) and a rest
/// without line feed (as `.` in those expressions matches anything but a line feed).
fn temporal(bytes: &[u8]) -> Option<u16> {
    let shape = |pattern: &[u8], bytes: &[u8]| {
        bytes.len() >= pattern.len()
            && pattern.iter().zip(bytes).all(|(p, b)| match p {
                b'd' => b.is_ascii_digit(),
                b'T' => matches!(b, b'T' | b' '),
                other => other == b,
            })
    };
    if !shape(b"dddd-dd-dd", bytes) {
        return None;
    }
    if bytes.len() == 10 {
        return Some(DATE);
    }
    if !shape(b"dddd-dd-ddTdd:dd:dd", bytes) {
        return None;
    }
    let rest = &bytes[19..];
    let (class, tail) = match rest.first() {
        None => return Some(SECONDS),
        Some(b'.') => {
            let fraction = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            let class = match fraction {
                1..=3 => MILLISECONDS,
                4..=6 => MICROSECONDS,
                7..=9 => NANOSECONDS,
                _ => return None,
            };
            (class, &rest[1 + fraction..])
        }
        Some(b) if b.is_ascii_digit() => return None,
        Some(_) => (SECONDS, rest),
    };
    match tail.split_first() {
        None => Some(class),
        Some((_, after)) if !after.contains(&b'\n') => Some(class),
        Some(_) => None,
    }
}

/// arrow-csv's expressions, in its order, for values with non-ASCII characters.
static EXPRESSIONS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)^(true)$|^(false)$(?-i)",
        r"^-?(\d+)$",
        r"^-?((\d*\.\d+|\d+\.\d*)([eE][-+]?\d+)?|\d+([eE][-+]?\d+))$",
        r"^\d{4}-\d\d-\d\d$",
        r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[^\d\.].*)?$",
        r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{1,3}(?:[^\d].*)?$",
        r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{1,6}(?:[^\d].*)?$",
        r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{1,9}(?:[^\d].*)?$",
    ])
    .expect("valid expressions")
});

fn classify_by_expressions(value: &str) -> u16 {
    match EXPRESSIONS.matches(value).into_iter().next() {
        Some(1) if value.len() >= 19 && value.parse::<i64>().is_err() => TEXT,
        Some(index) => 1 << index,
        None => TEXT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_texts_are_no_values_and_an_empty_field_is_text_when_not_one_of_them() {
        let dialect = CsvDialect::default().delimiter(b';').nulls(["\\N"]);
        let csv = "n;note\n1;\\N\n\\N;\n";
        let schema = infer_types(csv.as_bytes(), &dialect).unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
        let default = infer_types("n,note\n1,\n,\n".as_bytes(), &CsvDialect::default()).unwrap();
        assert_eq!(default.field(1).data_type(), &DataType::Null);
    }
    use arrow::csv::reader::Format;

    /// Values of every class, their near misses, and non-ASCII look-alikes.
    const VALUES: &[&str] = &[
        "0",
        "7",
        "-12",
        "007",
        "+5",
        "-",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "12345678901234567890",
        "1.5",
        ".5",
        "5.",
        "-0.25",
        ".",
        "1e5",
        "1E-5",
        "2.5e+3",
        "e5",
        "1e",
        "1.2.3",
        "1e5e5",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Inf",
        "infinity",
        "true",
        "FALSE",
        "tRuE",
        "yes",
        "1 ",
        " 1",
        "2024-01-01",
        "2024-01-01e5",
        "1234e-5678",
        "2024-1-01",
        "20240101",
        "2024-01-01T10:00:00",
        "2024-01-01 10:00:00",
        "2024-01-01T10:00:00Z",
        "2024-01-01T10:00:00+01:00",
        "2024-01-01T10:00:00.1",
        "2024-01-01T10:00:00.123Z",
        "2024-01-01T10:00:00.1234",
        "2024-01-01T10:00:00.123456",
        "2024-01-01T10:00:00.1234567",
        "2024-01-01T10:00:00.123456789Z",
        "2024-01-01T10:00:00.1234567890",
        "2024-01-01T10:00:001",
        "2024-01-01T10:00",
        "2024-01-01T10:00:00.",
        "2024-01-01T10:00:00.Z",
        "2024-01-01T10:00:00\n",
        "2024-01-01T10:00:00Z\nx",
        "2024-01-01T10:00:00.5\n",
        "2024-01-01T10:00:00.5Z\nx",
        "2024-01-01x",
        "\"quoted\"",
        "a,b",
        "text",
        "\u{663}",
        "\u{ff11}\u{ff12}",
        "2024-01-01T10:00:00 Zürich",
        "2024-01-01T10:00:00.5é",
        "trué",
        "1\u{663}.5",
    ];

    fn arrow_inference(csv: &[u8]) -> Result<Schema, ArrowError> {
        let format = Format::default().with_header(true);
        format.infer_schema(csv, None).map(|(schema, _)| schema)
    }

    fn quoted(value: &str) -> String {
        format!("\"{}\"", value.replace('"', "\"\""))
    }

    #[test]
    fn every_value_alone_gets_arrows_type() {
        for value in VALUES {
            let csv = format!("c\n{}\n", quoted(value));
            assert_eq!(
                infer_types(csv.as_bytes(), &CsvDialect::default()).unwrap(),
                arrow_inference(csv.as_bytes()).unwrap(),
                "{value:?}"
            );
        }
    }

    /// Columns mixing random values (and empty ones) promote as arrow-csv promotes them.
    #[test]
    fn mixed_columns_get_arrows_types() {
        let mut next = crate::test_numbers(0x5EED_CAFE);
        for _ in 0..400 {
            let columns = 1 + next(4);
            // Each column draws from a few values, so that like classes meet often.
            let pools: Vec<Vec<&str>> = (0..columns)
                .map(|_| {
                    (0..1 + next(3))
                        .map(|_| VALUES[next(VALUES.len())])
                        .collect()
                })
                .collect();
            let header: Vec<String> = (0..columns).map(|c| format!("c{c}")).collect();
            let mut csv = header.join(",") + "\n";
            for _ in 0..1 + next(6) {
                let row: Vec<String> = pools
                    .iter()
                    .map(|pool| match next(5) {
                        0 => String::new(),
                        _ => quoted(pool[next(pool.len())]),
                    })
                    .collect();
                csv += &(row.join(",") + "\n");
            }
            assert_eq!(
                infer_types(csv.as_bytes(), &CsvDialect::default()).unwrap(),
                arrow_inference(csv.as_bytes()).unwrap(),
                "{csv}"
            );
        }
    }

    /// A sample's types with its checks give the whole file's types: no later value fails the
    /// check exactly when the whole file has the sample's types (a misleading sample is caught,
    /// a faithful one passes), whatever the values.
    #[test]
    fn a_sample_is_checked_into_the_whole_files_types() {
        let mut next = crate::test_numbers(0xFEED_5EED);
        let mut misled = 0;
        for _ in 0..3000 {
            let pool: Vec<&str> = (0..1 + next(3))
                .map(|_| VALUES[next(VALUES.len())])
                .collect();
            let rows: Vec<&str> = (0..4 + next(4)).map(|_| pool[next(pool.len())]).collect();
            let sample_rows = 1 + next(3);
            let csv: String = std::iter::once("c".to_string())
                .chain(rows.iter().map(|v| quoted(v)))
                .collect::<Vec<_>>()
                .join("\n");
            let whole = infer_types(csv.as_bytes(), &CsvDialect::default()).unwrap();
            let Some(sampled) =
                sample_types(csv.as_bytes(), sample_rows, &CsvDialect::default()).unwrap()
            else {
                continue;
            };
            if !sampled.checks("c") {
                assert_eq!(sampled.columns, whole, "text stays text: {rows:?}");
                continue;
            }
            let later = arrow::array::StringArray::from(rows[sample_rows..].to_vec());
            let misfit = sampled.first_misfit("c", &later);
            // Integers checked and parsed at once: the values the check and a cast give,
            // the same misfit, or a value the cast refuses (a digit beyond ASCII).
            match sampled.integers("c", &later) {
                None => assert_ne!(sampled.columns.field(0).data_type(), &DataType::Int64),
                Some(Ok(integers)) => {
                    assert_eq!(misfit, None, "{rows:?}");
                    let cast = arrow::compute::cast(&later, &DataType::Int64).unwrap();
                    assert_eq!(cast.as_ref(), &integers as &dyn arrow::array::Array);
                }
                Some(Err(row)) => assert!(
                    misfit == Some(row)
                        || (misfit.is_none_or(|misfit| row < misfit)
                            && arrow::compute::cast(&later.slice(row, 1), &DataType::Int64)
                                .unwrap()
                                .is_null(0)),
                    "{rows:?}: {row} against {misfit:?}"
                ),
            }
            assert_eq!(
                misfit.is_none(),
                sampled.columns == whole,
                "{rows:?}, first {sample_rows} sampled: {:?} against {:?}",
                sampled.columns,
                whole
            );
            misled += usize::from(misfit.is_some());
        }
        assert!(misled > 100, "misleading samples were drawn: {misled}");
    }

    #[test]
    fn malformed_files_fail_as_arrows_inference_fails() {
        let ragged: [&[u8]; 3] = [b"a,b\n1,2\n3\n", b"a,b\n1,2,3\n", b"a\n\xff\n"];
        for csv in ragged {
            assert!(arrow_inference(csv).is_err(), "{csv:?}");
            assert!(infer_types(csv, &CsvDialect::default()).is_err(), "{csv:?}");
        }
        assert_eq!(
            infer_types(&b""[..], &CsvDialect::default())
                .unwrap()
                .fields()
                .len(),
            0
        );
    }
}
