//! CSV, in the dialect the run names (see `dialect.rs`). When the column types are known (the table's, or a new table's
//! first file's), they parse the values, so a value such as `007` in a string column is never
//! turned into the number 7 by inference. A large local file can be cut into byte ranges at
//! record starts, decoded (or its types inferred) on every core.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use csv_core::ReadRecordResult;

use super::text::{Batches, DecodeFrom, InferFrom};
use super::{
    BATCH_ROWS, BatchSink, CsvDialect, HashingReader, READ_BUFFER, Stopped, csv_types, feed,
};
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
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(dialect.format(dialect.has_header()))
        .with_batch_size(BATCH_ROWS)
        .build(decode_from)?;
    Ok((schema, Box::new(reader)))
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

/// A local CSV file at least this large, read with fewer files than cores, is cut into byte
/// ranges decoded at once, one per core: one large file is then decoded on every core.
pub(super) const MIN_BYTES_TO_SPLIT: u64 = 16 << 20;

/// How a cut file was decoded.
pub(super) enum Ranged<S> {
    /// Every range decoded into clones of the sink; the sink and the file's SHA-256.
    Decoded(S, [u8; 32]),
    /// The file has no place to cut (one record, or no columns): decode it whole.
    Whole(S),
}

/// Decodes the local CSV file `path` (`name` to users) in `ranges` byte ranges at once, each
/// into a clone of `sink`, with the types of `known`, while the file is hashed.
///
/// The cuts fall where records begin, as found by the CSV parser arrow-csv decodes with (a
/// line break inside a quoted value is no record's end), which also counts the rows before
/// each cut, so that every range reports the file's own row numbers. Rows reach the sink out
/// of file order, which nothing downstream depends on. A range that fails to decode is
/// decoded again as part of the whole file, so that the error names the row as it would
/// without the cut.
pub(super) fn decode_in_ranges<S: BatchSink + Clone>(
    name: &str,
    path: &std::path::Path,
    known: &Schema,
    dialect: &CsvDialect,
    ranges: usize,
    sink: S,
) -> Result<Ranged<S>, Error> {
    let read_error = |e: std::io::Error| Error::internal(format!("cannot read input {name}"), e);
    let bad = |e: ArrowError| Error::bad_input(name, None, e.to_string());
    let open = || File::open(path).map_err(read_error);
    let size = open()?.metadata().map_err(read_error)?.len();
    let columns = header(BufReader::new(open()?), dialect).map_err(bad)?;
    // Hashing starts first: finding the cuts parses the file's first part on one core, and
    // the hash needs the other core's time either way.
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            HashingReader::new(BufReader::with_capacity(READ_BUFFER, open()?))
                .finish()
                .map_err(read_error)
        });
        let reader = BufReader::with_capacity(READ_BUFFER, open()?);
        let cuts = record_starts(reader, size, ranges, dialect).map_err(read_error)?;
        if columns.fields().is_empty() || cuts.is_empty() {
            return Ok(Ranged::Whole(sink));
        }
        let schema = with_known_types(columns, known);
        let starts: Vec<(u64, usize)> = std::iter::once((0, 0)).chain(cuts).collect();
        let decode_range = |index: usize, mut sink: S| -> Result<(), Stopped> {
            let (start, first_row) = starts[index];
            let end = starts.get(index + 1).map_or(size, |&(next, _)| next);
            let mut file = open().map_err(Stopped::Failed)?;
            file.seek(SeekFrom::Start(start))
                .map_err(|e| Stopped::Failed(read_error(e)))?;
            let reader = BufReader::with_capacity(READ_BUFFER, file.take(end - start));
            let batches = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_format(dialect.format(index == 0 && dialect.has_header()))
                .with_batch_size(BATCH_ROWS)
                .build(reader)
                .map_err(Stopped::Decoder)?;
            feed(name, &schema, batches, first_row, &mut sink)
        };
        let decode_range = &decode_range;
        // A panic is a bug: raised again, as `Error::rejoin` does for tasks.
        fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
            thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }
        let failures: Vec<Stopped> = std::thread::scope(|ranges| {
            let decoders: Vec<_> = (0..starts.len())
                .map(|index| {
                    let sink = sink.clone();
                    ranges.spawn(move || decode_range(index, sink))
                })
                .collect();
            decoders
                .into_iter()
                .filter_map(|decoder| joined(decoder).err())
                .collect()
        });
        let hash = joined(hashing)?;
        // The first range's failure is the file's first: the ranges before it had none. But
        // a decoding error's text counts rows from the start of its range: the whole file's
        // is the one to report.
        match failures.into_iter().next() {
            None => Ok(Ranged::Decoded(sink, hash)),
            Some(Stopped::Failed(error)) => Err(error),
            Some(Stopped::Decoder(error)) => {
                Err(bad(
                    first_decode_error(&schema, dialect, open()?).unwrap_or(error)
                ))
            }
        }
    })
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
    let cuts = record_starts(open()?, size, ranges, dialect)?;
    if cuts.is_empty() {
        return whole();
    }
    let bounds: Vec<u64> = std::iter::once(0)
        .chain(cuts.iter().map(|&(start, _)| start))
        .chain([size])
        .collect();
    let classes = std::thread::scope(|scope| {
        let inferring: Vec<_> = bounds
            .windows(2)
            .enumerate()
            .map(|(index, range)| {
                let (start, end) = (range[0], range[1]);
                let columns = names.len();
                scope.spawn(move || {
                    let mut file = File::open(path)?;
                    file.seek(SeekFrom::Start(start))?;
                    let reader = BufReader::with_capacity(READ_BUFFER, file.take(end - start));
                    csv_types::classes(reader, index == 0, columns, dialect)
                })
            })
            .collect();
        inferring
            .into_iter()
            .map(|range| {
                range
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect::<Result<Vec<_>, ArrowError>>()
    });
    match classes {
        Ok(classes) => Ok(csv_types::schema_of(
            names.iter(),
            &csv_types::merge(classes),
        )),
        Err(_) => whole(),
    }
}

/// The first error decoding the whole `file` gives, as it would read without cuts.
fn first_decode_error(schema: &SchemaRef, dialect: &CsvDialect, file: File) -> Option<ArrowError> {
    let whole = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(dialect.format(dialect.has_header()))
        .with_batch_size(BATCH_ROWS)
        .build(BufReader::with_capacity(READ_BUFFER, file));
    match whole {
        Ok(mut batches) => batches.find_map(Result::err),
        Err(error) => Some(error),
    }
}

/// Where records begin nearest after each of `ranges - 1` even cuts of a file of `size` bytes,
/// with the data rows before each (a header row is none of them). Found by the CSV parser
/// arrow-csv decodes with, and with the same settings, so the records are the ones it decodes.
fn record_starts(
    mut reader: impl BufRead,
    size: u64,
    ranges: usize,
    dialect: &CsvDialect,
) -> std::io::Result<Vec<(u64, usize)>> {
    let mut parser = dialect.core();
    let header = usize::from(dialect.has_header());
    // Field bytes are not needed, only where records end: small buffers, overwritten.
    let (mut output, mut ends) = (vec![0u8; 64 * 1024], vec![0usize; 1024]);
    let (mut position, mut records) = (0u64, 0usize);
    let mut starts = Vec::new();
    let mut cut = 1;
    while cut < ranges {
        let input = reader.fill_buf()?;
        let (result, read, _, _) = parser.read_record(input, &mut output, &mut ends);
        reader.consume(read);
        position += read as u64;
        match result {
            ReadRecordResult::Record => records += 1,
            ReadRecordResult::End => break,
            _ => continue,
        }
        // A record starting with a byte-order mark would lose it to a new parser's start.
        let starts_with_mark = reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF");
        while cut < ranges && position >= size * cut as u64 / ranges as u64 {
            cut += 1;
            if position < size && records > header && !starts_with_mark {
                starts.push((position, records - header));
            }
        }
        starts.dedup();
    }
    Ok(starts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use arrow::array::RecordBatch;
    use arrow::csv::reader::Format;
    use arrow::datatypes::DataType;
    use std::sync::Mutex;

    /// Keeps every batch with its first row; clones share the list.
    #[derive(Clone, Default)]
    struct Keep(Arc<Mutex<Vec<(usize, RecordBatch)>>>);

    impl BatchSink for Keep {
        fn accept(&mut self, _: &str, batch: RecordBatch, first_row: usize) -> Result<()> {
            self.0.lock().unwrap().push((first_row, batch));
            Ok(())
        }
    }

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
        let mut batches = std::mem::take(&mut *sink.0.lock().unwrap());
        batches.retain(|(_, batch)| batch.num_rows() > 0);
        batches.sort_by_key(|(first_row, _)| *first_row);
        (batches, error)
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
        let mut batches = std::mem::take(&mut *sink.0.lock().unwrap());
        batches.sort_by_key(|(first_row, _)| *first_row);
        let batches: Vec<RecordBatch> = batches.into_iter().map(|(_, batch)| batch).collect();
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
}
