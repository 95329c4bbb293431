//! Cast: an input column to the table's type, losing nothing.
//!
//! A value that does not convert is refused, and so is one that converts to something else
//! (2.5 into a long column, nanoseconds into microseconds, a time of day into a date). Nested
//! columns (struct, list, map) are cast field by field: struct fields are matched by name, so
//! the order of a JSON object's keys does not matter; a field the table has and the input
//! lacks is null; a field the input has with a value and the table lacks is refused (an
//! always-null one loses nothing and is dropped). Errors name the column (`items[].sku` for a
//! nested field) and the row of the value.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, MapArray, OffsetSizeTrait, StructArray,
    new_null_array,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::kernels::cmp::distinct;
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, FieldRef, Fields, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};

/// Casting that fails on a value that does not convert, instead of making it null.
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: FormatOptions::new(),
};

/// Turns a refusal into the run's error: given the index of the value refused in the array
/// cast (`None` when it is not one value) and what to say about it.
pub(crate) type Locate<'a> = &'a dyn Fn(Option<usize>, String) -> Error;

/// Casts `array`, the input's column `column`, to the table's type `to`, refusing any cast
/// that loses information. Text is checked against what it says ([`text_beyond`]); other
/// values by casting them back.
pub(crate) fn cast_lossless(
    column: &str,
    array: &ArrayRef,
    to: &DataType,
    at: Locate<'_>,
) -> Result<ArrayRef> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    let internal = |e| Error::internal(format!("casting column '{column}'"), e);
    match (array.data_type(), to) {
        (DataType::Null, _) => Ok(new_null_array(to, array.len())),
        (DataType::Struct(_), DataType::Struct(fields)) => {
            cast_struct(column, array.as_struct(), fields, at)
        }
        (DataType::List(_), DataType::List(field)) => {
            cast_list(column, array.as_list::<i32>(), field, at)
        }
        (DataType::LargeList(_), DataType::LargeList(field)) => {
            cast_list(column, array.as_list::<i64>(), field, at)
        }
        // Offsets of another width first: the values stay as they are.
        (DataType::LargeList(from) | DataType::FixedSizeList(from, _), DataType::List(_)) => {
            let offsets = DataType::List(from.clone());
            let array = cast_with_options(array, &offsets, &STRICT).map_err(internal)?;
            cast_lossless(column, &array, to, at)
        }
        (DataType::List(from), DataType::LargeList(_)) => {
            let offsets = DataType::LargeList(from.clone());
            let array = cast_with_options(array, &offsets, &STRICT).map_err(internal)?;
            cast_lossless(column, &array, to, at)
        }
        (DataType::Map(_, _), DataType::Map(field, sorted)) => {
            cast_map(column, array.as_map(), field, *sorted, at)
        }
        (from, to) if from.is_nested() || to.is_nested() => Err(at(
            None,
            format!(
                "column '{column}' holds {from} where the table has {to}; correct the input or \
                 write it to a new table"
            ),
        )),
        _ => cast_value(column, array, to, at),
    }
}

/// A struct's fields matched by name: see the module's documentation.
fn cast_struct(
    column: &str,
    array: &StructArray,
    fields: &Fields,
    at: Locate<'_>,
) -> Result<ArrayRef> {
    for (input, values) in array.fields().iter().zip(array.columns()) {
        if fields.iter().any(|field| field.name() == input.name()) {
            continue;
        }
        let row = (0..array.len()).find(|&i| array.is_valid(i) && values.is_valid(i));
        if let Some(row) = row {
            return Err(at(
                Some(row),
                format!(
                    "field '{column}.{}' is not in the table; drop it from the input, or \
                     pass --schema-evolution add-columns to add it to the table",
                    input.name()
                ),
            ));
        }
    }
    let mut children = Vec::with_capacity(fields.len());
    for field in fields {
        let path = format!("{column}.{}", field.name());
        let child = match array.column_by_name(field.name()) {
            Some(values) => cast_lossless(&path, values, field.data_type(), at)?,
            None => new_null_array(field.data_type(), array.len()),
        };
        if !field.is_nullable()
            && let Some(row) = (0..array.len()).find(|&i| array.is_valid(i) && child.is_null(i))
        {
            return Err(at(
                Some(row),
                format!("field '{path}' is empty; the table requires a value there"),
            ));
        }
        children.push(child);
    }
    let cast = StructArray::try_new(fields.clone(), children, array.nulls().cloned())
        .map_err(|e| Error::internal(format!("casting column '{column}'"), e))?;
    Ok(Arc::new(cast))
}

/// A list's values cast as a column of their own (`column[]`); a refused value is reported
/// at the row of the list that holds it.
fn cast_list<O: OffsetSizeTrait>(
    column: &str,
    array: &GenericListArray<O>,
    field: &FieldRef,
    at: Locate<'_>,
) -> Result<ArrayRef> {
    let (offsets, values) = referenced(array.offsets(), array.values());
    let in_row = row_of(&offsets, at);
    let values = cast_lossless(&format!("{column}[]"), &values, field.data_type(), &in_row)?;
    if !field.is_nullable()
        && let Some(item) = (0..values.len()).find(|&i| values.is_null(i))
    {
        return Err(in_row(
            Some(item),
            format!("column '{column}[]': an empty list item where the table requires values"),
        ));
    }
    let cast = GenericListArray::try_new(
        field.clone(),
        offsets.clone(),
        values,
        array.nulls().cloned(),
    )
    .map_err(|e| Error::internal(format!("casting column '{column}'"), e))?;
    Ok(Arc::new(cast))
}

/// A map's keys and values cast as columns of their own (`column.key`, `column.value`).
fn cast_map(
    column: &str,
    array: &MapArray,
    field: &FieldRef,
    sorted: bool,
    at: Locate<'_>,
) -> Result<ArrayRef> {
    let internal = |e| Error::internal(format!("casting column '{column}'"), e);
    let DataType::Struct(entry_fields) = field.data_type() else {
        return Err(internal(arrow::error::ArrowError::InvalidArgumentError(
            "a map's entries are not a struct".into(),
        )));
    };
    let entries: ArrayRef = Arc::new(array.entries().clone());
    let (offsets, entries) = referenced(array.offsets(), &entries);
    let in_row = row_of(&offsets, at);
    let entries = entries.as_struct();
    let mut children = Vec::with_capacity(2);
    for ((field, values), name) in entry_fields
        .iter()
        .zip(entries.columns())
        .zip(["key", "value"])
    {
        let path = format!("{column}.{name}");
        children.push(cast_lossless(&path, values, field.data_type(), &in_row)?);
    }
    let entries = StructArray::try_new(entry_fields.clone(), children, None).map_err(internal)?;
    let cast = MapArray::try_new(
        field.clone(),
        offsets.clone(),
        entries,
        array.nulls().cloned(),
        sorted,
    )
    .map_err(internal)?;
    Ok(Arc::new(cast))
}

/// The values a list's rows refer to, with offsets starting at zero: values before the first
/// row's or after the last row's (left by slicing) are no row's and are not cast.
fn referenced<O: OffsetSizeTrait>(
    offsets: &OffsetBuffer<O>,
    values: &ArrayRef,
) -> (OffsetBuffer<O>, ArrayRef) {
    let first = offsets[0];
    let last = offsets[offsets.len() - 1];
    let values = values.slice(first.as_usize(), (last - first).as_usize());
    let rebased = offsets.iter().map(|&offset| offset - first).collect();
    (OffsetBuffer::new(rebased), values)
}

/// A [`Locate`] for a list's values that reports the row of the list holding the value.
fn row_of<'a, O: OffsetSizeTrait>(
    offsets: &'a OffsetBuffer<O>,
    at: Locate<'a>,
) -> impl Fn(Option<usize>, String) -> Error + 'a {
    move |value, message| {
        let row =
            value.map(|value| offsets.partition_point(|offset| offset.as_usize() <= value) - 1);
        at(row, message)
    }
}

/// A column of values that are not nested.
fn cast_value(column: &str, array: &ArrayRef, to: &DataType, at: Locate<'_>) -> Result<ArrayRef> {
    if let Some(parsed) = rfc3339_text(array, to) {
        return Ok(parsed);
    }
    let cast = cast_strict(column, array, to, at)?;
    let context = || format!("checking column '{column}'");
    let lost = match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = cast_with_options(array, &DataType::Utf8, &CastOptions::default())
                .map_err(|e| Error::internal(context(), e))?;
            text_beyond(text.as_string::<i32>(), to)
        }
        _ => {
            let back = cast_with_options(&cast, array.data_type(), &CastOptions::default())
                .map_err(|e| Error::internal(context(), e))?;
            let changed = distinct(array, &back).map_err(|e| Error::internal(context(), e))?;
            changed.iter().position(|c| c == Some(true))
        }
    };
    match lost {
        None => Ok(cast),
        Some(row) => Err(at(
            Some(row),
            format!(
                "column '{column}': value '{}' ({}) does not fit the table's type {to} without \
                 losing information; correct the value or write it to a new table",
                display_value(array.as_ref(), row),
                array.data_type()
            ),
        )),
    }
}

/// Text dates and timestamps all in the shape machines write, parsed by [`crate::rfc3339`]
/// (which takes only text that fits the type whole); `None` leaves them to arrow's cast.
fn rfc3339_text(array: &ArrayRef, to: &DataType) -> Option<ArrayRef> {
    let text = array.as_string_opt::<i32>()?;
    match to {
        DataType::Date32 => Some(Arc::new(crate::rfc3339::dates(text)?)),
        DataType::Timestamp(TimeUnit::Microsecond, zone)
            if zone.as_deref().is_none_or(|zone| zone == "UTC") =>
        {
            let micros = crate::rfc3339::timestamps(text)?;
            Some(Arc::new(micros.with_timezone_opt(zone.clone())))
        }
        _ => None,
    }
}

/// The first row whose text says more than the table's type `to` keeps, where arrow's
/// parsers drop the rest without an error: digits of a second below a timestamp's unit,
/// digits below a decimal's scale, a time of day in a date column.
fn text_beyond(text: &arrow::array::StringArray, to: &DataType) -> Option<usize> {
    let fits = |value: &str| match to {
        DataType::Timestamp(unit, _) => {
            let kept = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            // Only seconds have a fraction in what arrow parses as a timestamp.
            value.split_once('.').is_none_or(|(_, fraction)| {
                let digits = fraction.bytes().take_while(u8::is_ascii_digit);
                digits.skip(kept).all(|digit| digit == b'0')
            })
        }
        DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale) => {
            decimal_fits(value, *scale)
        }
        DataType::Date32 => date_fits(value),
        _ => true,
    };
    text.iter()
        .position(|value| value.is_some_and(|v| !fits(v)))
}

/// Whether decimal text (`-12.50`, `1.5e2`) has no nonzero digit below `scale`.
fn decimal_fits(value: &str, scale: i8) -> bool {
    let (mantissa, exponent) = match value.find(['e', 'E']) {
        Some(at) => (&value[..at], value[at + 1..].parse::<i64>().unwrap_or(0)),
        None => (value, 0),
    };
    let mantissa = mantissa.trim_start_matches(['-', '+']);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let below = fraction.len() as i64 - exponent - i64::from(scale);
    let digits = whole.bytes().chain(fraction.bytes());
    let count = whole.len() + fraction.len();
    below <= 0
        || digits
            .skip(count.saturating_sub(below as usize))
            .all(|digit| digit == b'0')
}

/// Whether text read as a date is one: a date, or a date-time at midnight UTC (arrow's date
/// parser keeps the UTC day of any date-time).
fn date_fits(value: &str) -> bool {
    if value.len() <= 10 || value.starts_with(['+', '-']) {
        return true;
    }
    match arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, value) {
        Ok(at) => at.time() == chrono::NaiveTime::MIN,
        // No date-time: the cast refused it already, or read a date.
        Err(_) => true,
    }
}

/// Text written in a format of the user's (`--date-format`, `--timestamp-format`: chrono's
/// strftime) as the table's type `to`: DATE, or TIMESTAMP in microseconds (read as UTC, or
/// with the offset the format holds; as written for a TIMESTAMP_NTZ column). Every value must
/// match the format whole.
pub(crate) fn parse_formatted(
    column: &str,
    array: &ArrayRef,
    to: &DataType,
    format: &str,
    at: Locate<'_>,
) -> Result<ArrayRef> {
    use arrow::array::{Date32Array, TimestampMicrosecondArray};
    let text = cast_with_options(array, &DataType::Utf8, &CastOptions::default())
        .map_err(|e| Error::internal(format!("reading column '{column}' as text"), e))?;
    let text = text.as_string::<i32>();
    let misfit = |row: usize| {
        at(
            Some(row),
            format!(
                "column '{column}': value '{}' does not match the format '{format}' given for \
                 its {to} values; correct the value or the format (--date-format, \
                 --timestamp-format)",
                text.value(row)
            ),
        )
    };
    let parsed: ArrayRef = match to {
        DataType::Date32 => {
            let epoch = chrono::NaiveDate::default();
            let days = text.iter().enumerate().map(|(row, value)| {
                value
                    .map(|value| {
                        chrono::NaiveDate::parse_from_str(value, format)
                            .map(|day| (day - epoch).num_days() as i32)
                            .map_err(|_| misfit(row))
                    })
                    .transpose()
            });
            Arc::new(days.collect::<Result<Date32Array>>()?)
        }
        DataType::Timestamp(_, zone) => {
            let with_offset = has_offset(format);
            let micros = text.iter().enumerate().map(|(row, value)| {
                value
                    .map(|value| {
                        let at = match with_offset {
                            true => chrono::DateTime::parse_from_str(value, format)
                                .map(|at| at.naive_utc()),
                            false => chrono::NaiveDateTime::parse_from_str(value, format),
                        };
                        at.map(|at| at.and_utc().timestamp_micros())
                            .map_err(|_| misfit(row))
                    })
                    .transpose()
            });
            let micros = micros.collect::<Result<TimestampMicrosecondArray>>()?;
            Arc::new(micros.with_timezone_opt(zone.clone()))
        }
        _ => return cast_lossless(column, array, to, at),
    };
    // Another unit than microseconds (a table other engines made): cast, losing nothing.
    cast_lossless(column, &parsed, to, at)
}

/// Refuses a `--date-format` or `--timestamp-format` that cannot give back the values it
/// writes (a format without a year, say), before anything is read.
pub(crate) fn check_format(option: &str, format: &str, timestamp: bool) -> Result<()> {
    use std::fmt::Write as _;
    let sample = chrono::NaiveDate::from_ymd_opt(2024, 1, 31)
        .and_then(|day| day.and_hms_opt(13, 45, 30))
        .expect("a valid date-time");
    let with_offset = timestamp && has_offset(format);
    let mut written = String::new();
    let writes = match with_offset {
        true => write!(
            written,
            "{}",
            sample.and_utc().fixed_offset().format(format)
        ),
        false => write!(written, "{}", sample.format(format)),
    }
    .is_ok();
    let reads_back = writes
        && match (timestamp, with_offset) {
            (false, _) => chrono::NaiveDate::parse_from_str(&written, format) == Ok(sample.date()),
            (true, true) => chrono::DateTime::parse_from_str(&written, format)
                .is_ok_and(|at| at.naive_utc() == sample),
            (true, false) => chrono::NaiveDateTime::parse_from_str(&written, format) == Ok(sample),
        };
    match reads_back {
        true => Ok(()),
        false => Err(Error::InvalidOption(format!(
            "{option} '{format}' does not read back the values it writes (2024-01-31 13:45:30 \
             gives '{written}'): it needs a year, a month and a day{}, e.g. {}",
            if timestamp { " and a time of day" } else { "" },
            if timestamp {
                "'%d/%m/%Y %H:%M:%S'"
            } else {
                "'%d/%m/%Y'"
            }
        ))),
    }
}

/// Whether a strftime format holds a UTC offset (`%z`, `%:z`, `%::z`, `%#z`).
fn has_offset(format: &str) -> bool {
    format.contains("%z") || format.contains(":z") || format.contains("%#z")
}

/// Casts with `safe: false`; on failure finds the first value that does not convert and names it.
pub(crate) fn cast_strict(
    column: &str,
    array: &ArrayRef,
    to: &DataType,
    at: Locate<'_>,
) -> Result<ArrayRef> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    let cast = match (array.data_type(), to) {
        // Text read as decimals as arrow-csv reads them (exponents too), which arrow's cast
        // does not.
        (DataType::Utf8, DataType::Decimal128(precision, scale)) => array
            .as_string::<i32>()
            .iter()
            .map(|text| {
                text.map(|text| {
                    arrow::compute::kernels::cast_utils::parse_decimal::<
                        arrow::datatypes::Decimal128Type,
                    >(text, *precision, *scale)
                })
                .transpose()
            })
            .collect::<std::result::Result<arrow::array::Decimal128Array, _>>()
            .and_then(|decimals| decimals.with_precision_and_scale(*precision, *scale))
            .map(|decimals| Arc::new(decimals) as ArrayRef),
        _ => cast_with_options(array, to, &STRICT),
    };
    cast.map_err(|error| {
        let lenient = cast_with_options(array, to, &CastOptions::default()).ok();
        let failing_row = lenient.and_then(|lenient| {
            (0..array.len()).find(|&i| array.is_valid(i) && lenient.is_null(i))
        });
        let value = failing_row
            .map(|i| display_value(array, i))
            .unwrap_or_default();
        at(
            failing_row,
            format!(
                "column '{column}': value '{value}' is not a valid {to} ({error}); \
                 correct the value or the column's type"
            ),
        )
    })
}

/// A value as users would write it, for error messages.
pub(crate) fn display_value(array: &dyn Array, row: usize) -> String {
    let options = FormatOptions::default().with_null("null");
    ArrayFormatter::try_new(array, &options)
        .map(|f| f.value(row).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, Int64Builder, ListBuilder, StringArray};
    use arrow::datatypes::Field;

    /// Refusals as (row, message), the row of the outermost array.
    fn located(index: Option<usize>, message: String) -> Error {
        Error::bad_input("f", index.map(|i| i + 1), message)
    }

    #[test]
    fn struct_fields_are_matched_by_name_and_missing_ones_are_null() {
        let input: ArrayRef = Arc::new(StructArray::from(vec![
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("a", DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
            ),
        ]));
        let to = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Float64, true),
        ]));
        let cast = cast_lossless("s", &input, &to, &located).unwrap();
        let cast = cast.as_struct();
        assert_eq!(
            cast.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(1),
            2
        );
        assert_eq!(cast.column(1).as_string::<i32>().value(0), "x");
        assert_eq!(cast.column(2).null_count(), 2);
    }

    #[test]
    fn a_refused_list_item_is_reported_at_its_lists_row() {
        // Rows: [1], [], [2, null]: the null is the fourth value, in the third row.
        let mut lists = ListBuilder::new(Int64Builder::new());
        lists.values().append_value(1);
        lists.append(true);
        lists.append(true);
        lists.values().append_value(2);
        lists.values().append_null();
        lists.append(true);
        let input: ArrayRef = Arc::new(lists.finish());
        let to = DataType::List(Arc::new(Field::new("element", DataType::Int64, false)));
        let error = cast_lossless("l", &input, &to, &located)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("row 3") && error.contains("'l[]'"),
            "{error}"
        );
    }
}
