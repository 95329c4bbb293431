//! Data files: Parquet files per day, named as the table's column mapping asks, written
//! before the commit that adds them (and deleted again when the commit does not happen).

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use chrono::NaiveDate;
use delta_kernel::expressions::Scalar;
use delta_kernel::table_properties::DataSkippingNumIndexedCols;
use deltalake::ObjectStore;
use deltalake::kernel::Add;
use deltalake::operations::write::writer::{DeltaWriter, WriterConfig};
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::Table;
use crate::error::{Error, Result};
use crate::rows::hash;
use crate::scope::days_since_epoch;
use crate::storage::ChunkedWrites;

/// Files are rolled over at about this size; one day of data usually fits one file.
pub(super) const TARGET_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// The writer hands the Parquet encoder this many rows at a time, checking the file's size in
/// between to roll over at [`TARGET_FILE_SIZE`]. delta-rs's default, 1,024, made a call through
/// every column's encoder per thousand rows.
const WRITE_SLICE_ROWS: usize = 64 * 1024;

/// A day of at least this many rows, written with fewer days than cores, is written as one
/// file per part it was ordered in (one per core); smaller days stay one file (splitting them
/// gains little and makes small files).
pub(super) const MIN_ROWS_TO_SPLIT: usize = 512 * 1024;

/// The properties of a Parquet data file holding `batches` (none: a file whose rows are not
/// known here, a merge's): Snappy, as Spark and delta-rs write by default, and dictionary
/// encoding only for the columns whose values repeat. Public (but hidden) so that the
/// benchmark's encoding limit, `src/bin/parquet_limit.rs`, encodes exactly the same files.
#[doc(hidden)]
pub fn parquet_writer_properties(batches: &[RecordBatch]) -> WriterProperties {
    let mut properties = WriterProperties::builder().set_compression(Compression::SNAPPY);
    let Some(first) = batches.first() else {
        return properties.build();
    };
    for (index, field) in first.schema().fields().iter().enumerate() {
        let columns: Vec<&ArrayRef> = batches.iter().map(|batch| batch.column(index)).collect();
        if !field.data_type().is_nested() && !repeats(&columns) {
            let path = ColumnPath::new(vec![field.name().clone()]);
            properties = properties.set_column_dictionary_enabled(path, false);
        }
    }
    properties.build()
}

/// SplitMix64: a fixed sequence of well-mixed numbers, to draw sample rows from (a random-number
/// crate for this alone would add a dependency).
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Rows sampled per column to decide its encoding.
const DICTIONARY_SAMPLE: usize = 16 * 1024;

/// Whether a column's values (in pieces) repeat enough for dictionary encoding to pay: about
/// two rows per distinct value or more. The Parquet writer interns every value of a dictionary
/// column until its dictionary outgrows a page, which on columns of mostly distinct values (a
/// key, ids, timestamps, prices in a file of a few hundred thousand rows) took a sixth of a
/// 20-million-row run's time and saved nothing. As DuckDB's writer, which keeps a dictionary
/// only when it compresses, the choice is made per file; here from a sample of rows drawn at
/// random, whose repeats give the distinct count by the birthday estimate (a sample of s
/// values from D equally likely ones holds about s²/2D repeats). A wrong estimate only changes
/// the encoding (and a dictionary still falls back to plain when it outgrows its page).
fn repeats(pieces: &[&ArrayRef]) -> bool {
    let rows: usize = pieces.iter().map(|piece| piece.len()).sum();
    let exact = rows <= DICTIONARY_SAMPLE;
    // Rows drawn at random (the same ones for the same row count), not every n-th: a column
    // laid out with a period, as sorted data can be, would make an even stride miss repeats.
    let mut drawn: Vec<usize> = match exact {
        true => (0..rows).collect(),
        false => (0..DICTIONARY_SAMPLE as u64)
            .map(|n| (splitmix64(n) % rows as u64) as usize)
            .collect(),
    };
    drawn.sort_unstable();
    drawn.dedup();
    let mut sample = Vec::with_capacity(pieces.len());
    let mut start = 0;
    for piece in pieces {
        let end = start + piece.len();
        let (from, to) = (
            drawn.partition_point(|&row| row < start),
            drawn.partition_point(|&row| row < end),
        );
        let indices =
            UInt64Array::from_iter_values(drawn[from..to].iter().map(|&row| (row - start) as u64));
        match take(piece.as_ref(), &indices, None) {
            Ok(taken) => sample.push(taken),
            Err(_) => return true,
        }
        start = end;
    }
    let Ok(converter) = RowConverter::new(vec![SortField::new(pieces[0].data_type().clone())])
    else {
        return true;
    };
    // Values told apart by a hash of their encoding (a collision among a few thousand values
    // is too rare to change the choice), without a copy of each.
    let mut hashes = Vec::with_capacity(drawn.len());
    for values in &sample {
        let Ok(encoded) = converter.convert_columns(std::slice::from_ref(values)) else {
            return true;
        };
        hashes.extend(encoded.iter().map(|row| hash(row.as_ref())));
    }
    let sampled = hashes.len();
    hashes.sort_unstable();
    hashes.dedup();
    let distinct = hashes.len();
    let repeated = sampled - distinct;
    match exact {
        true => distinct * 2 <= rows,
        false => {
            repeated > 0 && {
                let estimated_distinct = sampled * sampled / (2 * repeated);
                estimated_distinct * 2 <= rows
            }
        }
    }
}

/// Empty files written at once (they are small: this bounds open requests, not memory).
const EMPTY_FILES_AT_ONCE: usize = 16;

/// How the data files of a table name its columns; see [`Table::file_columns`].
pub(super) struct FileColumns {
    /// The columns as files name them (with Parquet field ids under column mapping).
    schema: SchemaRef,
    /// The partition column as files and partition values name it.
    partition: String,
}

/// The files to write, each a day and its slices of rows in order: one file per day; with
/// fewer days than `cores`, a day of at least `min_rows` rows becomes one file per slice
/// (`dedup_and_order` cut it into consecutive key ranges, one per core), so that it is
/// encoded on every core.
pub(super) fn file_pieces(
    days: Vec<(NaiveDate, Vec<RecordBatch>)>,
    cores: usize,
    min_rows: usize,
) -> Vec<(NaiveDate, Vec<RecordBatch>)> {
    if days.len() >= cores {
        return days;
    }
    days.into_iter()
        .flat_map(|(day, slices)| {
            let rows: usize = slices.iter().map(RecordBatch::num_rows).sum();
            match rows >= min_rows {
                true => slices.into_iter().map(|slice| (day, vec![slice])).collect(),
                false => vec![(day, slices)],
            }
        })
        .collect()
}

/// How delta-rs writes data files of a table partitioned by `column`, with `properties`.
pub(super) fn writer_config(
    schema: &SchemaRef,
    column: &str,
    properties: WriterProperties,
) -> WriterConfig {
    WriterConfig::new(
        schema.clone(),
        vec![column.to_string()],
        Some(properties),
        NonZeroU64::new(TARGET_FILE_SIZE),
        Some(WRITE_SLICE_ROWS),
        DataSkippingNumIndexedCols::NumColumns(32),
        None,
    )
}

pub(super) async fn write_empty_file(
    store: &dyn ObjectStore,
    file_schema: &SchemaRef,
    column: &str,
    day: NaiveDate,
) -> Result<Add> {
    let encode_error =
        |e: parquet::errors::ParquetError| Error::internal("writing an empty day", e);
    let mut buffer = Vec::new();
    let writer = ArrowWriter::try_new(
        &mut buffer,
        file_schema.clone(),
        Some(parquet_writer_properties(&[])),
    )
    .map_err(encode_error)?;
    writer.close().map_err(encode_error)?;
    let path = format!(
        "{column}={day}/part-00000-{}-c000.snappy.parquet",
        uuid::Uuid::new_v4()
    );
    let size = buffer.len() as i64;
    let location = Path::parse(&path).map_err(|e| Error::internal(format!("writing {path}"), e))?;
    store
        .put(&location, PutPayload::from(buffer))
        .await
        .map_err(|e| Error::internal(format!("writing {path}"), e))?;
    Ok(Add {
        path,
        partition_values: HashMap::from([(column.to_string(), Some(day.to_string()))]),
        size,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: true,
        stats: Some(r#"{"numRecords":0,"minValues":{},"maxValues":{},"nullCount":{}}"#.into()),
        ..Default::default()
    })
}

impl Table {
    /// How data files name the columns of `schema` (the table's, by column name) and the
    /// partition `column`: the same names, or with column mapping each column's physical name
    /// and Parquet field id, as the protocol asks of files and of partition values.
    fn file_columns(&self, schema: &SchemaRef, column: &str) -> FileColumns {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|field| {
                let (name, id) = self.features.name_in_files(field.name());
                let metadata = id
                    .map(|id| {
                        HashMap::from([(
                            parquet::arrow::PARQUET_FIELD_ID_META_KEY.to_string(),
                            id.to_string(),
                        )])
                    })
                    .unwrap_or_default();
                field
                    .as_ref()
                    .clone()
                    .with_name(name)
                    .with_metadata(metadata)
            })
            .collect();
        FileColumns {
            schema: Arc::new(Schema::new(fields)),
            partition: self.partition_key(column),
        }
    }

    /// The name partition values of `column` go by in the log (its physical name under
    /// column mapping).
    pub(super) fn partition_key(&self, column: &str) -> String {
        self.features.name_in_files(column).0.to_string()
    }

    /// Writes one or more Parquet files per day (each day's slices in turn), days in parallel. Returns the files as `add`
    /// actions without tags (those depend on the version the commit lands at).
    pub(crate) async fn write_days(
        &self,
        schema: &SchemaRef,
        column: &str,
        days: Vec<(NaiveDate, Vec<RecordBatch>)>,
    ) -> Result<Vec<Add>> {
        // Data files reach the store in pieces: see `ChunkedWrites`.
        let store: Arc<dyn ObjectStore> = Arc::new(ChunkedWrites(self.delta.object_store()));
        let files = self.file_columns(schema, column);
        // One writer per file, as many at once as there are cores: encoding is the CPU-bound
        // part and files are independent. `buffered` keeps the files in day order.
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pieces = file_pieces(days, parallelism, MIN_ROWS_TO_SPLIT);
        let written: Vec<Vec<Add>> = futures::stream::iter(pieces)
            .map(|(day, slices)| {
                let store = store.clone();
                let values = IndexMap::from([(
                    files.partition.clone(),
                    Scalar::Date(days_since_epoch(day)),
                )]);
                // Column mapping renames columns only: the arrays stay as they are.
                let batches: Vec<_> = slices
                    .iter()
                    .map(|slice| {
                        RecordBatch::try_new(files.schema.clone(), slice.columns().to_vec())
                    })
                    .collect();
                let (schema, partition) = (files.schema.clone(), files.partition.clone());
                tokio::spawn(async move {
                    let batches = batches.into_iter().collect::<Result<Vec<_>, _>>()?;
                    // Deciding the encodings samples the rows: on the file's own thread.
                    let properties = parquet_writer_properties(&batches);
                    let config = writer_config(&schema, &partition, properties);
                    let mut writer = DeltaWriter::new(store, config);
                    for batch in batches {
                        writer.write_partition(batch, &values).await?;
                    }
                    writer.close().await
                })
            })
            .buffered(parallelism)
            .map(|joined| {
                Error::rejoin(joined, "writing data files")?
                    .map_err(|e| Error::internal("writing data files", e))
            })
            .try_collect()
            .await?;
        Ok(written.into_iter().flatten().collect())
    }

    /// Writes one empty Parquet file per day, so that a day of the scope without rows still
    /// carries the run's record.
    pub(crate) async fn write_empty_days(
        &self,
        schema: &SchemaRef,
        column: &str,
        days: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Vec<Add>> {
        let store = self.delta.object_store();
        let files = self.file_columns(schema, column);
        let file_schema = writer_config(
            &files.schema,
            &files.partition,
            parquet_writer_properties(&[]),
        )
        .file_schema();
        // Many at once: on S3 each is a request's round trip, and a wide scope has many.
        let writes = days
            .into_iter()
            .map(|day| write_empty_file(store.as_ref(), &file_schema, &files.partition, day));
        futures::stream::iter(writes)
            .buffered(EMPTY_FILES_AT_ONCE)
            .try_collect()
            .await
    }

    /// Deletes files this run wrote but will not commit (best effort: vacuum removes leftovers).
    pub(crate) async fn discard(&self, files: &[Add]) {
        let store = self.delta.object_store();
        for add in files {
            if let Err(e) = store.delete(&Path::from(add.path.as_str())).await {
                tracing::warn!(path = %add.path, error = %e, "could not delete an uncommitted file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_day_is_cut_into_its_slices_and_nothing_else_is() {
        let day = |d: u32, slices: &[i64]| {
            let slices = slices
                .iter()
                .map(|&rows| {
                    RecordBatch::try_from_iter([(
                        "id",
                        Arc::new(arrow::array::Int64Array::from_iter_values(0..rows)) as _,
                    )])
                    .unwrap()
                })
                .collect();
            (NaiveDate::from_ymd_opt(2024, 1, d).unwrap(), slices)
        };
        let sizes = |pieces: Vec<(NaiveDate, Vec<RecordBatch>)>| -> Vec<Vec<usize>> {
            pieces
                .iter()
                .map(|(_, slices)| slices.iter().map(RecordBatch::num_rows).collect())
                .collect()
        };
        assert_eq!(
            sizes(file_pieces(vec![day(1, &[4, 4, 2])], 3, 5)),
            [[4], [4], [2]],
            "a large day: a file per slice, in order"
        );
        assert_eq!(
            sizes(file_pieces(vec![day(1, &[2, 2])], 3, 5)),
            [[2, 2]],
            "a small day stays whole"
        );
        assert_eq!(
            sizes(file_pieces(
                vec![day(1, &[5, 5]), day(2, &[5, 5]), day(3, &[5, 5])],
                3,
                5
            )),
            [[5, 5], [5, 5], [5, 5]],
            "as many days as cores: one file each"
        );
    }

    /// A file of `rows` rows whose columns repeat as named, cut into batches of 10,000 rows:
    /// `key` distinct, `small` of 19 values, `sku` strings of `skus` values.
    fn file(rows: u64, skus: u64) -> Vec<RecordBatch> {
        let value = |i: u64| splitmix64(i.wrapping_mul(7919));
        (0..rows)
            .step_by(10_000)
            .map(|start| {
                let ids = start..(start + 10_000).min(rows);
                RecordBatch::try_from_iter([
                    (
                        "key",
                        Arc::new(arrow::array::Int64Array::from_iter_values(
                            ids.clone().map(|i| value(i) as i64),
                        )) as ArrayRef,
                    ),
                    (
                        "small",
                        Arc::new(arrow::array::Int64Array::from_iter_values(
                            ids.clone().map(|i| (value(i) % 19) as i64),
                        )),
                    ),
                    (
                        "sku",
                        Arc::new(arrow::array::StringArray::from_iter_values(
                            ids.map(|i| format!("SKU-{:05}", value(i) % skus)),
                        )),
                    ),
                ])
                .unwrap()
            })
            .collect()
    }

    fn dictionary(properties: &WriterProperties, column: &str) -> bool {
        properties.dictionary_enabled(&ColumnPath::new(vec![column.into()]))
    }

    #[test]
    fn dictionary_encoding_is_kept_for_columns_whose_values_repeat() {
        // 50,000 SKUs over a million rows repeat 20 times each: a dictionary pays.
        let large = parquet_writer_properties(&file(1_000_000, 50_000));
        assert!(!dictionary(&large, "key"), "distinct values: plain");
        assert!(dictionary(&large, "small"));
        assert!(dictionary(&large, "sku"));
        // The same SKUs over 80,000 rows are mostly distinct there.
        let small = parquet_writer_properties(&file(80_000, 50_000));
        assert!(!dictionary(&small, "key"));
        assert!(dictionary(&small, "small"));
        assert!(!dictionary(&small, "sku"));
        // Fewer rows than the sample: counted exactly, two rows per value or more.
        let exact = parquet_writer_properties(&file(10_000, 5_000));
        assert!(
            dictionary(&exact, "sku"),
            "about 4,300 values in 10,000 rows"
        );
        let exact = parquet_writer_properties(&file(10_000, 9_000));
        assert!(
            !dictionary(&exact, "sku"),
            "about 6,700 values in 10,000 rows"
        );
        // Unknown rows (a merge's files): the writer's default.
        assert!(dictionary(&parquet_writer_properties(&[]), "key"));
    }
}
