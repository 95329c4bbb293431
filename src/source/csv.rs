//! CSV, in the dialect the run names (see `dialect.rs`). When the column types are known (the table's, or a new table's
//! first file's), they parse the values, so a value such as `007` in a string column is never
//! turned into the number 7 by inference. A large local file can be cut into byte ranges at
//! record starts, decoded (or its types inferred) on every core.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use csv_core::ReadRecordResult;

use super::ranges::{self, Ranged, Start};
use super::text::{Batches, DecodeFrom, InferFrom};
use super::{BATCH_ROWS, BatchSink, CsvDialect, READ_BUFFER, csv_types, read_error};
use crate::error::Error;

/// The batches of a CSV file: columns from the header (and, without a table, inferred types).
pub(super) fn batches<'a>(
    infer_from: InferFrom,
    decode_from: DecodeFrom<'a>,
    column_types: Option<&Schema>,
    dialect: &CsvDialect,
) -> Result<Batches<'a>, ArrowError> {
    let schema = match column_types {
        // Every column's type is known: the header is all we need.
        Some(known) => with_known_types(header(infer_from, dialect)?, known),
        None => Arc::new(csv_types::infer_types(infer_from, dialect)?),
    };
    let reader = decoder(&schema, dialect, dialect.has_header(), decode_from)?;
    Ok((schema, Box::new(reader)))
}

/// arrow-csv's decoder of `reader` with `schema`, in the dialect, whose first row is a header
/// when `header` holds.
fn decoder<R: Read>(
    schema: &SchemaRef,
    dialect: &CsvDialect,
    header: bool,
    reader: R,
) -> Result<arrow::csv::Reader<R>, ArrowError> {
    arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(dialect.format(header))
        .with_batch_size(BATCH_ROWS)
        .build(reader)
}

/// The columns a file's header row names, or the run's without one.
pub(super) fn header(reader: impl Read, dialect: &CsvDialect) -> Result<Schema, ArrowError> {
    match dialect.has_header() {
        true => Ok(dialect.format(true).infer_schema(reader, Some(1))?.0),
        false => Ok(dialect.headerless_columns()),
    }
}

/// The inferred schema with each column the table already has parsed as the table's type.
fn with_known_types(inferred: Schema, known: &Schema) -> SchemaRef {
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

/// Decodes the local CSV file `path` (`name` to users) in `ranges` byte ranges at once, each
/// into a clone of `sink`, with the types of `known`, while the file is hashed (see
/// `ranges.rs`).
///
/// The cuts fall where records begin, as found by the CSV parser arrow-csv decodes with (a
/// line break inside a quoted value is no record's end), which also counts the rows before
/// each cut. A range that fails to decode is decoded again as part of the whole file, so
/// that the error names the row as it would without the cut.
pub(super) fn decode_in_ranges<S: BatchSink + Clone>(
    name: &str,
    path: &std::path::Path,
    known: &Schema,
    dialect: &CsvDialect,
    ranges: usize,
    sink: S,
) -> Result<Ranged<S>, Error> {
    let bad = |e: ArrowError| Error::bad_input(name, None, e.to_string());
    let columns = header(BufReader::new(ranges::open(name, path)?), dialect).map_err(bad)?;
    let plan = |size| {
        let open = || ranges::open_range(path, (0, size));
        let starts = record_starts(open, size, ranges, dialect).map_err(|e| read_error(name, e))?;
        let cut = !columns.fields().is_empty() && !starts.is_empty();
        Ok(cut.then(|| (starts, with_known_types(columns, known))))
    };
    let batches = |schema: &SchemaRef, index: usize, reader: ranges::RangeReader| {
        let header = index == 0 && dialect.has_header();
        Ok(Box::new(decoder(schema, dialect, header, reader)?) as ranges::RangeBatches)
    };
    ranges::decode_cut(name, path, sink, plan, batches)
}

/// The columns of the local CSV file `path` with the types `csv_types::infer_types` gives,
/// inferred in `ranges` byte ranges at once (cut as [`decode_in_ranges`] cuts). Should a
/// range fail, the whole file is inferred in one piece, so that its error is reported as
/// without the cut.
pub(super) fn infer_in_ranges(
    path: &std::path::Path,
    dialect: &CsvDialect,
    ranges: usize,
) -> Result<Schema, ArrowError> {
    let open = || File::open(path).map(|file| BufReader::with_capacity(READ_BUFFER, file));
    let whole = || csv_types::infer_types(open()?, dialect);
    let size = std::fs::metadata(path)?.len();
    let mut header = dialect.reader(open()?, true);
    let names = header
        .headers()
        .map_err(|e| ArrowError::CsvError(e.to_string()))?
        .clone();
    let starts = record_starts(open, size, ranges, dialect)?;
    if starts.is_empty() {
        return whole();
    }
    let classes = ranges::at_once(ranges::bounds(&starts, size), |index, range| {
        let reader = ranges::open_range(path, range)?;
        csv_types::classes(reader, index == 0, names.len(), dialect)
    });
    match classes.into_iter().collect::<Result<Vec<_>, ArrowError>>() {
        Ok(classes) => Ok(csv_types::schema_of(
            names.iter(),
            &csv_types::merge(classes),
        )),
        Err(_) => whole(),
    }
}

/// Where records begin nearest after each of `ranges - 1` even cuts of a file of `size` bytes,
/// with the data rows before each (a header row is none of them), as the CSV parser arrow-csv
/// decodes with finds them, with the same settings. `open` opens the file from its start.
///
/// A file without a quote byte up to its last cut (most machine-written CSV) is scanned for
/// line breaks at memchr's speed, several times the parser's: its records are then just the
/// runs of bytes between line breaks. On the first quote byte (a quoted value may hold a line
/// break) the file is parsed from its start instead.
fn record_starts<R: BufRead>(
    open: impl Fn() -> std::io::Result<R>,
    size: u64,
    ranges: usize,
    dialect: &CsvDialect,
) -> std::io::Result<Vec<Start>> {
    let cuts = Cuts::new(size, ranges, dialect);
    match unquoted_record_starts(open()?, cuts.clone(), dialect.quote_byte())? {
        Some(starts) => Ok(starts),
        None => parsed_record_starts(open()?, cuts, dialect),
    }
}

/// The cuts of a file found so far, as its records end one after the other.
#[derive(Clone)]
struct Cuts {
    size: u64,
    ranges: usize,
    /// Records that are no data rows: the header's.
    header: usize,
    /// The cut looked for next, from 1 to `ranges - 1`.
    next: usize,
    starts: Vec<Start>,
}

impl Cuts {
    fn new(size: u64, ranges: usize, dialect: &CsvDialect) -> Self {
        Self {
            size,
            ranges,
            header: usize::from(dialect.has_header()),
            next: 1,
            starts: Vec::new(),
        }
    }

    /// Whether a cut is still to be found.
    fn wanted(&self) -> bool {
        self.next < self.ranges
    }

    /// The offset the next cut falls at or after.
    fn target(&self) -> u64 {
        self.size * self.next as u64 / self.ranges as u64
    }

    /// Record number `records` ended just before `position`; `next` holds bytes after it.
    fn record_ended(&mut self, position: u64, records: usize, next: &[u8]) {
        // A record starting with a byte-order mark would lose it to a new parser's start.
        let starts_with_mark = next.starts_with(b"\xEF\xBB\xBF");
        while self.wanted() && position >= self.target() {
            self.next += 1;
            if position < self.size && records > self.header && !starts_with_mark {
                self.starts.push((position, records - self.header));
            }
        }
        self.starts.dedup();
    }
}

/// [`record_starts`] by the parser, record by record.
fn parsed_record_starts(
    mut reader: impl BufRead,
    mut cuts: Cuts,
    dialect: &CsvDialect,
) -> std::io::Result<Vec<Start>> {
    let mut parser = dialect.core();
    // Field bytes are not needed, only where records end: small buffers, overwritten.
    let (mut output, mut ends) = (vec![0u8; 64 * 1024], vec![0usize; 1024]);
    let (mut position, mut records) = (0u64, 0usize);
    while cuts.wanted() {
        let input = reader.fill_buf()?;
        let (result, read, _, _) = parser.read_record(input, &mut output, &mut ends);
        reader.consume(read);
        position += read as u64;
        match result {
            ReadRecordResult::Record => records += 1,
            ReadRecordResult::End => break,
            _ => continue,
        }
        cuts.record_ended(position, records, reader.fill_buf()?);
    }
    Ok(cuts.starts)
}

/// [`record_starts`] of a file without quote bytes, or `None` at the first quote byte. Without
/// quotes, csv-core ends a record at the first line break byte (`\r` or `\n`) after it and
/// skips the line break bytes before the next: a record is a run of other bytes.
fn unquoted_record_starts(
    mut reader: impl BufRead,
    mut cuts: Cuts,
    quote: u8,
) -> std::io::Result<Option<Vec<Start>>> {
    let (mut position, mut records) = (0u64, 0usize);
    // Where the run of bytes after the last line break byte began.
    let mut run = 0u64;
    while cuts.wanted() {
        let input = reader.fill_buf()?;
        if input.is_empty() {
            break;
        }
        if memchr::memchr(quote, input).is_some() {
            return Ok(None);
        }
        let target = cuts.target();
        // Up to the end of the first record that ends at or after the next cut, if here.
        let mut read = input.len();
        let mut at_cut = None;
        for at in memchr::memchr2_iter(b'\r', b'\n', input) {
            let byte = position + at as u64;
            let ends_record = byte > run;
            run = byte + 1;
            if ends_record {
                records += 1;
                if run >= target {
                    read = at + 1;
                    at_cut = Some(&input[read..]);
                    break;
                }
            }
        }
        if let Some(next) = at_cut {
            // Too few bytes here to tell a byte-order mark: the parser decides.
            if next.len() < 3 && run + (next.len() as u64) < cuts.size {
                return Ok(None);
            }
            cuts.record_ended(run, records, next);
        }
        reader.consume(read);
        position += read as u64;
    }
    Ok(Some(cuts.starts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ranges::Keep;
    use arrow::array::RecordBatch;
    use arrow::csv::reader::Format;
    use arrow::datatypes::DataType;

    fn columns() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
        ])
    }

    /// Decoded in `ranges` ranges: the rows in file order (by first row), and the error if any.
    fn decoded(csv: &[u8], ranges: usize) -> (Vec<(usize, RecordBatch)>, Option<String>) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), csv).unwrap();
        let sink = Keep::default();
        let result = decode_in_ranges(
            "in.csv",
            file.path(),
            &columns(),
            &CsvDialect::default(),
            ranges,
            sink.clone(),
        );
        let error = match result {
            Ok(Ranged::Decoded(_, hash)) => {
                assert_eq!(
                    hash,
                    <[u8; 32]>::from(<sha2::Sha256 as sha2::Digest>::digest(csv))
                );
                None
            }
            Ok(Ranged::Whole(_)) => Some("whole".to_string()),
            Err(error) => Some(error.to_string()),
        };
        (sink.in_order(), error)
    }

    /// Cut in another dialect (pipes, single quotes around line breaks and delimiters, a null
    /// text), the ranges hold the rows the whole file decodes to.
    #[test]
    fn ranges_follow_the_dialect() {
        let dialect = CsvDialect::default()
            .delimiter(b'|')
            .quote(b'\'')
            .nulls(["NULL"]);
        let mut csv = b"id|note\n".to_vec();
        for id in 0..200 {
            let note = ["'a\n|b'", "NULL", "x"][id % 3];
            csv.extend(format!("{id}|{note}\n").bytes());
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &csv).unwrap();
        let sink = Keep::default();
        let ranged = decode_in_ranges("in.csv", file.path(), &columns(), &dialect, 4, sink.clone());
        assert!(matches!(ranged, Ok(Ranged::Decoded(..))));
        let batches: Vec<RecordBatch> = sink.in_order().into_iter().map(|(_, b)| b).collect();
        let schema = Arc::new(columns());
        let cut = arrow::compute::concat_batches(&schema, &batches).unwrap();
        let whole = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_format(dialect.format(true))
            .build(&csv[..])
            .unwrap()
            .map(|batch| batch.unwrap())
            .collect::<Vec<_>>();
        assert_eq!(
            cut,
            arrow::compute::concat_batches(&schema, &whole).unwrap()
        );
        assert_eq!(cut.num_rows(), 200);
        assert_eq!(cut.column(1).null_count(), 67, "every NULL text is null");
        assert!(batches.len() > 1, "the file was cut");
    }

    /// Every row once, in order, with the row numbers of the whole file, wherever the cuts
    /// fall: in quoted values with line breaks, between CR and LF, by empty lines.
    #[test]
    fn ranges_decode_the_rows_the_whole_file_holds() {
        let mut csv = b"\xEF\xBB\xBFid,note\r\n".to_vec();
        for id in 0..300 {
            let note = match id % 5 {
                0 => "\"a\nquoted, \"\"multi-line\"\"\nvalue\"".to_string(),
                1 => String::new(),
                2 => "\"\n\n\"".into(),
                _ => format!("plain {id}"),
            };
            let end = if id % 7 == 0 { "\r\n\n" } else { "\n" };
            csv.extend(format!("{id},{note}{end}").bytes());
        }
        let (whole, error) = decoded(&csv, 1);
        assert_eq!(error.as_deref(), Some("whole"), "one range: nothing to cut");
        let expected = {
            let reader = arrow::csv::ReaderBuilder::new(Arc::new(columns()))
                .with_format(Format::default().with_header(true))
                .build(&csv[..])
                .unwrap();
            let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
            arrow::compute::concat_batches(&Arc::new(columns()), &batches).unwrap()
        };
        assert!(whole.is_empty());
        for ranges in [2, 3, 7, 40] {
            let (batches, error) = decoded(&csv, ranges);
            assert_eq!(error, None, "{ranges} ranges");
            let mut next_row = 0;
            for (first_row, batch) in &batches {
                assert_eq!(
                    *first_row, next_row,
                    "{ranges} ranges: row numbers follow on"
                );
                next_row += batch.num_rows();
            }
            let rows: Vec<RecordBatch> = batches.into_iter().map(|(_, b)| b).collect();
            let joined = arrow::compute::concat_batches(&Arc::new(columns()), &rows).unwrap();
            assert_eq!(joined, expected, "{ranges} ranges");
        }
    }

    /// Types inferred range by range are the whole file's, even where only the last range
    /// widens a column; a malformed row fails as in one piece.
    #[test]
    fn ranges_infer_the_types_the_whole_file_gives() {
        let mut csv = "id,amount,at,note\n".to_string();
        for id in 0..400 {
            let amount = if id == 150 {
                "2.5".to_string()
            } else {
                id.to_string()
            };
            let at = if id == 0 {
                "2024-01-01".into()
            } else {
                format!("2024-01-01 00:00:{:02}", id % 60)
            };
            csv += &format!("{id},{amount},{at},\"line\n{id}\"\n");
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &csv).unwrap();
        let whole = csv_types::infer_types(csv.as_bytes(), &CsvDialect::default()).unwrap();
        assert_eq!(whole.field(1).data_type(), &DataType::Float64);
        for ranges in [2, 3, 9] {
            assert_eq!(
                infer_in_ranges(file.path(), &CsvDialect::default(), ranges).unwrap(),
                whole,
                "{ranges}"
            );
        }
        csv += "1,2\n";
        std::fs::write(file.path(), &csv).unwrap();
        let whole = csv_types::infer_types(csv.as_bytes(), &CsvDialect::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            infer_in_ranges(file.path(), &CsvDialect::default(), 3)
                .unwrap_err()
                .to_string(),
            whole
        );
    }

    #[test]
    fn a_bad_value_in_a_later_range_is_reported_as_the_whole_file_reports_it() {
        let mut csv = b"id,note\n".to_vec();
        for id in 0..200 {
            let id = if id == 150 {
                "x150".to_string()
            } else {
                id.to_string()
            };
            csv.extend(format!("{id},n\n").bytes());
        }
        let whole = arrow::csv::ReaderBuilder::new(Arc::new(columns()))
            .with_format(Format::default().with_header(true))
            .build(&csv[..])
            .unwrap()
            .find_map(|b| b.err())
            .unwrap()
            .to_string();
        let (_, error) = decoded(&csv, 4);
        let error = error.unwrap();
        assert!(error.contains(&whole), "{error} / {whole}");
    }

    /// Without quote bytes, the line-break scan cuts where the parser cuts, with the same row
    /// counts: through CR, LF and CRLF line ends, blank lines, rows of delimiters only, a
    /// record starting with a byte-order mark and a last row without a line end. A quote byte
    /// anywhere sends the file to the parser.
    #[test]
    fn the_line_break_scan_finds_the_parsers_cuts() {
        let pieces: [&[u8]; 9] = [
            b"1,a",
            b"22,bb",
            b",",
            b"\n",
            b"\r\n",
            b"\r",
            b"\n\n",
            b"\xEF\xBB\xBF9,z",
            b"333,ccc",
        ];
        let mut seed = 7u64;
        let mut draw = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for file in 0..60 {
            let mut csv = b"id,note\n".to_vec();
            for _ in 0..draw(400) {
                csv.extend_from_slice(pieces[draw(pieces.len())]);
            }
            let size = csv.len() as u64;
            for header in [true, false] {
                let dialect = CsvDialect::default().header(header);
                for ranges in 2..=9 {
                    let cuts = Cuts::new(size, ranges, &dialect);
                    let read = |capacity| BufReader::with_capacity(capacity, &csv[..]);
                    let parsed = parsed_record_starts(read(csv.len()), cuts.clone(), &dialect);
                    let parsed = parsed.unwrap();
                    let scanned = unquoted_record_starts(read(csv.len()), cuts.clone(), b'"');
                    assert_eq!(
                        scanned.unwrap().as_ref(),
                        Some(&parsed),
                        "file {file}, {ranges}"
                    );
                    // Read in small pieces, it cuts alike, or leaves a cut by a piece's end
                    // (where a byte-order mark may begin) to the parser.
                    for capacity in [5, 64] {
                        let scanned = unquoted_record_starts(read(capacity), cuts.clone(), b'"');
                        if let Some(scanned) = scanned.unwrap() {
                            assert_eq!(scanned, parsed, "file {file}, {ranges}, {capacity}");
                        }
                    }
                }
            }
            // One quote byte, however late, and the parser decides.
            csv.extend_from_slice(b"\n4,\"x\ny\"\n");
            let cuts = Cuts::new(csv.len() as u64, 2, &CsvDialect::default());
            let scanned = unquoted_record_starts(BufReader::new(&csv[..]), cuts, b'"').unwrap();
            assert_eq!(scanned, None, "file {file}");
        }
    }
}
