//! CSV dialects: the delimiter, quote and escape characters, the texts that mean null, and
//! whether a header row names the columns. One description, turned into the settings of each
//! CSV parser lakewriter reads with (arrow-csv's decoder, the csv crate's reader that infers a
//! new table's types, csv-core's that finds where records begin), so that all three agree on
//! where records and fields are.

use arrow::csv::reader::Format;
use regex::Regex;

use crate::error::{Error, Result};

/// How CSV input files are written. The default is arrow-csv's and RFC 4180's: a header row,
/// commas, double quotes (doubled inside a value), no escape character, an empty field null.
///
/// ```
/// use lakewriter::CsvDialect;
/// let postgres_copy = CsvDialect::default()
///     .delimiter(b'\t')
///     .nulls(["\\N"])
///     .escape(Some(b'\\'))
///     .header(false);
/// assert!(postgres_copy.check().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvDialect {
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    nulls: Vec<String>,
    header: bool,
    /// Without a header row: the columns' names, in order (set by the run from the table).
    columns: Vec<String>,
    /// The run's `--date-format` and `--timestamp-format`, for inferring a new table's types.
    date_format: Option<String>,
    timestamp_format: Option<String>,
}

impl Default for CsvDialect {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            escape: None,
            nulls: vec![String::new()],
            header: true,
            columns: Vec::new(),
            date_format: None,
            timestamp_format: None,
        }
    }
}

impl CsvDialect {
    /// The byte between fields (`,` by default; `\t`, `|` and `;` are common).
    pub fn delimiter(mut self, byte: u8) -> Self {
        self.delimiter = byte;
        self
    }

    /// The byte that quotes a field (`"` by default); doubled inside a quoted field, it stands
    /// for itself.
    pub fn quote(mut self, byte: u8) -> Self {
        self.quote = byte;
        self
    }

    /// A byte that makes the next byte in a quoted field stand for itself (none by default;
    /// `\` in many exports).
    pub fn escape(mut self, byte: Option<u8>) -> Self {
        self.escape = byte;
        self
    }

    /// The field texts that mean null, replacing the default (an empty field): e.g. `["",
    /// "NULL"]`, or `["\\N"]` for PostgreSQL's and MySQL's text exports, where an empty field
    /// is an empty string.
    pub fn nulls<S: Into<String>>(mut self, texts: impl IntoIterator<Item = S>) -> Self {
        self.nulls = texts.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the first row names the columns (the default). Without one, the columns are
    /// the table's, in its order (the partition column left out when `--partition-from`
    /// derives it), so a table must exist.
    pub fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Refuses a dialect no file can be read with.
    pub fn check(&self) -> Result<()> {
        let special = [Some(self.delimiter), Some(self.quote), self.escape];
        let clash = |a: usize, b: usize| special[a].is_some() && special[a] == special[b];
        if clash(0, 1) || clash(0, 2) || clash(1, 2) {
            return Err(Error::InvalidOption(
                "--csv-delimiter, --csv-quote and --csv-escape must be three different characters"
                    .into(),
            ));
        }
        if let Some(byte) = special
            .into_iter()
            .flatten()
            .find(|b| matches!(b, b'\n' | b'\r'))
        {
            return Err(Error::InvalidOption(format!(
                "a line break ({byte:#04x}) cannot delimit, quote or escape CSV fields"
            )));
        }
        if self.nulls.is_empty() {
            return Err(Error::InvalidOption(
                "give --csv-null at least one text (an empty one for empty fields)".into(),
            ));
        }
        Ok(())
    }

    /// The byte that quotes a field.
    pub(super) fn quote_byte(&self) -> u8 {
        self.quote
    }

    /// Whether the first row names the columns.
    pub(crate) fn has_header(&self) -> bool {
        self.header
    }

    /// The dialect for files without a header row whose columns are `names`, in order.
    pub(crate) fn with_columns(mut self, names: Vec<String>) -> Self {
        self.columns = names;
        self
    }

    /// The dialect whose dates and timestamps are written in these formats (chrono's
    /// strftime), so that a new table's columns of such values are inferred as DATE and
    /// TIMESTAMP columns.
    pub(crate) fn with_text_formats(
        mut self,
        date: Option<String>,
        timestamp: Option<String>,
    ) -> Self {
        self.date_format = date;
        self.timestamp_format = timestamp;
        self
    }

    /// Whether the run gives a date or timestamp format, which can class a value otherwise.
    pub(super) fn has_text_formats(&self) -> bool {
        self.date_format.is_some() || self.timestamp_format.is_some()
    }

    /// The value class (see `csv_types`) of a field's text: a date or a timestamp when it
    /// matches the run's format for them, else what `classify` says.
    pub(super) fn class_of(&self, value: &str, classify: fn(&str) -> u16) -> u16 {
        use super::csv_types::{DATE, MICROSECONDS};
        let date = |format: &String| chrono::NaiveDate::parse_from_str(value, format).is_ok();
        let timestamp = |format: &String| {
            chrono::NaiveDateTime::parse_from_str(value, format).is_ok()
                || chrono::DateTime::parse_from_str(value, format).is_ok()
        };
        if self.date_format.as_ref().is_some_and(date) {
            DATE
        } else if self.timestamp_format.as_ref().is_some_and(timestamp) {
            MICROSECONDS
        } else {
            classify(value)
        }
    }

    /// The columns of a file without a header row, as text: the names the run gave.
    pub(super) fn headerless_columns(&self) -> arrow::datatypes::Schema {
        use arrow::datatypes::{DataType, Field};
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|name| Field::new(name, DataType::Utf8, true))
            .collect();
        arrow::datatypes::Schema::new(fields)
    }

    /// The dialect as text for the run's fingerprint, or `None` for the default one, so that
    /// runs with default options keep the fingerprints they always had.
    pub(crate) fn fingerprint_text(&self) -> Option<String> {
        (*self != Self::default()).then(|| format!("{self:?}"))
    }

    /// Whether `value`, a field's text, means null.
    pub(super) fn is_null(&self, value: &str) -> bool {
        self.nulls.iter().any(|null| null == value)
    }

    /// arrow-csv's settings, with or without a header row to skip.
    pub(super) fn format(&self, header: bool) -> Format {
        let mut format = Format::default()
            .with_header(header)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote);
        if let Some(escape) = self.escape {
            format = format.with_escape(escape);
        }
        // The default (only an empty field is null) is arrow-csv's own, without a regex.
        if self.nulls != [""] {
            let texts: Vec<String> = self.nulls.iter().map(|t| regex::escape(t)).collect();
            let null = Regex::new(&format!("^(?:{})$", texts.join("|")))
                .expect("escaped texts make a valid expression");
            format = format.with_null_regex(null);
        }
        format
    }

    /// The csv crate's reader with the same settings.
    pub(super) fn reader<R: std::io::Read>(&self, reader: R, header: bool) -> csv::Reader<R> {
        csv::ReaderBuilder::new()
            .has_headers(header)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .escape(self.escape)
            .from_reader(reader)
    }

    /// csv-core's parser with the same settings.
    pub(super) fn core(&self) -> csv_core::Reader {
        csv_core::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .quote(self.quote)
            .escape(self.escape)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashing_or_line_break_characters_are_refused() {
        assert!(CsvDialect::default().check().is_ok());
        assert!(CsvDialect::default().delimiter(b'"').check().is_err());
        assert!(CsvDialect::default().escape(Some(b',')).check().is_err());
        assert!(CsvDialect::default().delimiter(b'\n').check().is_err());
        assert!(
            CsvDialect::default()
                .nulls(Vec::<String>::new())
                .check()
                .is_err()
        );
    }

    #[test]
    fn only_a_dialect_other_than_the_default_enters_the_fingerprint() {
        assert_eq!(CsvDialect::default().fingerprint_text(), None);
        assert!(
            CsvDialect::default()
                .delimiter(b';')
                .fingerprint_text()
                .is_some()
        );
    }
}
