//! JSON lines: one object per line. A large local file can be cut into byte ranges at line
//! starts, its columns inferred and its rows decoded on every core.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;

use super::ranges::{self, Ranged, Start};
use super::text::{Batches, DecodeFrom, InferFrom};
use super::{BATCH_ROWS, BatchSink, CsvDialect, READ_BUFFER, read_error};
use crate::error::Error;

/// The columns of a JSON-lines file, with the types its values carry (from all its lines).
pub(super) fn columns(reader: InferFrom) -> Result<Schema, ArrowError> {
    Ok(arrow::json::reader::infer_json_schema(reader, None)?.0)
}

/// The batches of a JSON-lines file, with the types its values carry. The table's types are
/// applied later by a cast that refuses to lose information (the JSON decoder would cut 2.5
/// to 2), so they are not used here.
pub(super) fn batches<'a>(
    infer_from: InferFrom,
    decode_from: DecodeFrom<'a>,
    _column_types: Option<&Schema>,
    _dialect: &CsvDialect,
) -> Result<Batches<'a>, ArrowError> {
    let (inferred, _) = arrow::json::reader::infer_json_schema(infer_from, None)?;
    let schema = Arc::new(inferred);
    let reader = decoder(&schema, decode_from)?;
    Ok((schema, Box::new(reader)))
}

/// arrow-json's decoder of `reader` with `schema`.
fn decoder<R: BufRead>(
    schema: &SchemaRef,
    reader: R,
) -> Result<arrow::json::Reader<R>, ArrowError> {
    arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH_ROWS)
        .build(reader)
}

/// Decodes the local JSON-lines file `path` (`name` to users) in `ranges` byte ranges at
/// once, each into a clone of `sink`, while the file is hashed (see `ranges.rs`). The
/// columns are inferred range by range too, and the ranges' must agree (otherwise the whole
/// file's inference decides, as without the cut). A range that fails to decode is decoded
/// again as part of the whole file, so that the error reads as it would without the cut.
pub(super) fn decode_in_ranges<S: BatchSink + Clone>(
    name: &str,
    path: &Path,
    ranges: usize,
    sink: S,
) -> Result<Ranged<S>, Error> {
    let plan = |size| {
        let reader = BufReader::with_capacity(READ_BUFFER, ranges::open(name, path)?);
        let starts = line_starts(reader, size, ranges).map_err(|e| read_error(name, e))?;
        if starts.is_empty() {
            return Ok(None);
        }
        let schema = infer_in_ranges(path, &starts, size)
            .map_err(|e| Error::bad_input(name, None, e.to_string()))?;
        Ok((!schema.fields().is_empty()).then(|| (starts, Arc::new(schema))))
    };
    let batches = |schema: &SchemaRef, _, reader: ranges::RangeReader| {
        Ok(Box::new(decoder(schema, reader)?) as ranges::RangeBatches)
    };
    ranges::decode_cut(name, path, sink, plan, batches)
}

/// The columns of the JSON-lines file `path`, inferred in the ranges that begin at `starts`
/// at once. arrow-json's inference folds every value's type into each column's (an integer
/// and a float make a float, anything else mixed makes text), so ranges that agree give the
/// whole file's columns; when they disagree or fail, the whole file is inferred in one piece.
fn infer_in_ranges(path: &Path, starts: &[Start], size: u64) -> Result<Schema, ArrowError> {
    let inferred = ranges::at_once(ranges::bounds(starts, size), |_, range| {
        columns(Box::new(ranges::open_range(path, range)?))
    });
    let mut inferred = inferred.into_iter();
    if let Some(Ok(first)) = inferred.next()
        && inferred.all(|range| range.as_ref().is_ok_and(|columns| *columns == first))
    {
        return Ok(first);
    }
    columns(Box::new(BufReader::with_capacity(
        READ_BUFFER,
        File::open(path)?,
    )))
}

/// Where lines begin nearest after each of `ranges - 1` even cuts of a file of `size` bytes,
/// with the records before each: the lines holding more than JSON whitespace. A record is a
/// line because the column inference reads one JSON value per line (a value spread over lines
/// fails it, cut or not); the decoder, which needs no line breaks, then reads the same records.
fn line_starts(mut reader: impl BufRead, size: u64, ranges: usize) -> std::io::Result<Vec<Start>> {
    let (mut position, mut records, mut blank) = (0u64, 0usize, true);
    let mut starts = Vec::new();
    let mut cut = 1;
    while cut < ranges {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        let end = memchr::memchr(b'\n', buffer);
        let line = &buffer[..end.map_or(buffer.len(), |newline| newline + 1)];
        blank = blank
            && line
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        let read = line.len();
        reader.consume(read);
        position += read as u64;
        if end.is_none() {
            continue;
        }
        records += usize::from(!blank);
        blank = true;
        while cut < ranges && position >= size * cut as u64 / ranges as u64 {
            cut += 1;
            if position < size {
                starts.push((position, records));
            }
        }
        starts.dedup();
    }
    Ok(starts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ranges::Keep;
    use arrow::array::RecordBatch;
    use arrow::datatypes::DataType;

    /// The whole file's columns and rows, decoded in one piece as the uncut path does.
    fn whole(json: &[u8]) -> std::result::Result<RecordBatch, ArrowError> {
        let schema = Arc::new(columns(Box::new(std::io::Cursor::new(json.to_vec())))?);
        let batches = arrow::json::ReaderBuilder::new(schema.clone())
            .build(json)?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        arrow::compute::concat_batches(&schema, &batches)
    }

    /// Decoded in `ranges` ranges: the batches in file order (by first row), or the error.
    fn decoded(
        json: &[u8],
        ranges: usize,
    ) -> std::result::Result<Vec<(usize, RecordBatch)>, String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), json).unwrap();
        let sink = Keep::default();
        match decode_in_ranges("in.json", file.path(), ranges, sink.clone()) {
            Ok(Ranged::Decoded(_, hash)) => {
                assert_eq!(
                    hash,
                    <[u8; 32]>::from(<sha2::Sha256 as sha2::Digest>::digest(json))
                );
            }
            Ok(Ranged::Whole(_)) => return Err("whole".into()),
            Err(error) => return Err(error.to_string()),
        }
        Ok(sink.in_order())
    }

    /// Lines whose strings hold braces, quotes, escaped line breaks and unicode escapes,
    /// nested objects and lists, blank lines and CRLF endings.
    fn tricky_lines(count: usize) -> Vec<u8> {
        let mut json = Vec::new();
        for id in 0..count {
            let note = match id % 4 {
                0 => r#"a \"quoted\" {brace} [bracket]"#.to_string(),
                1 => r"line\nbreak \\ and \u00e9".to_string(),
                2 => "}".repeat(id % 9),
                _ => format!("plain {id}"),
            };
            let line = format!(
                r#"{{"id":{id},"note":"{note}","nested":{{"list":["]","{{"],"o":{{"x":"[{id}"}}}}}}"#
            );
            json.extend(line.bytes());
            json.extend(if id % 7 == 0 {
                &b"\r\n \t\n"[..]
            } else {
                b"\n"
            });
        }
        json
    }

    /// Every row once, in order, with the row numbers of the whole file, wherever the cuts
    /// fall; blank lines are no rows.
    #[test]
    fn ranges_decode_the_rows_the_whole_file_holds() {
        let json = tricky_lines(300);
        let expected = whole(&json).unwrap();
        assert_eq!(expected.num_rows(), 300);
        assert_eq!(decoded(&json, 1).unwrap_err(), "whole", "one range: no cut");
        for ranges in [2, 3, 7, 40] {
            let batches = decoded(&json, ranges).unwrap();
            let mut next_row = 0;
            for (first_row, batch) in &batches {
                assert_eq!(*first_row, next_row, "{ranges} ranges: rows follow on");
                next_row += batch.num_rows();
            }
            assert!(batches.len() > 1, "{ranges} ranges: the file was cut");
            let rows: Vec<RecordBatch> = batches.into_iter().map(|(_, b)| b).collect();
            let joined = arrow::compute::concat_batches(&expected.schema(), &rows).unwrap();
            assert_eq!(joined, expected, "{ranges} ranges");
        }
    }

    /// Columns that only a later range widens, adds or nests differently are the whole
    /// file's, in the whole file's order.
    #[test]
    fn ranges_infer_the_columns_the_whole_file_gives() {
        let mut json = String::new();
        for id in 0..400 {
            json += &match id {
                390 => r#"{"id":390,"amount":2.5,"late":"only here","deep":{"a":true}}"#.into(),
                _ => format!(r#"{{"id":{id},"amount":{id}}}"#),
            };
            json += "\n";
        }
        let expected = whole(json.as_bytes()).unwrap();
        assert_eq!(
            expected
                .schema()
                .field_with_name("amount")
                .unwrap()
                .data_type(),
            &DataType::Float64
        );
        for ranges in [2, 3, 9] {
            let batches = decoded(json.as_bytes(), ranges).unwrap();
            let rows: Vec<RecordBatch> = batches.into_iter().map(|(_, b)| b).collect();
            let joined = arrow::compute::concat_batches(&expected.schema(), &rows).unwrap();
            assert_eq!(joined, expected, "{ranges} ranges");
        }
    }

    /// A line that does not parse, in a later range, fails as it fails in one piece: in the
    /// column inference (a value over two lines) or in the decoder (a wrong type).
    #[test]
    fn a_bad_line_in_a_later_range_fails_as_the_whole_file_fails() {
        let good = tricky_lines(200);
        let mut spread = good.clone();
        spread.extend(b"{\"id\": 1,\n \"note\": \"x\"}\n");
        let mut wrong = good;
        wrong.extend(b"{\"id\":1,\"nested\":7}\n");
        for json in [spread, wrong] {
            let error = whole(&json).unwrap_err().to_string();
            let cut = decoded(&json, 4).unwrap_err();
            assert!(cut.contains(&error), "{cut} / {error}");
        }
    }
}
