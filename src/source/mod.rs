//! Source: find the input files, read them, decode them into Arrow batch by batch, and hash
//! their bytes.
//!
//! Each file is decoded on its own so that an error can name the file and the row. Each input
//! format is a file of its own (`csv`, `json`, `parquet`); `decode` picks one by the file's
//! format. A new format is one more file and one more arm there.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{Error, Result};
use crate::storage::{InputObject, StorageOptions, expand_input};
pub use compression::Compression;
pub(crate) use csv_types::Sampled;
pub use dialect::CsvDialect;

mod compression;
mod csv;
mod csv_types;
mod dialect;
mod json;
mod parquet;
mod ranges;
mod text;

/// The format of input files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// JSON lines: one object per line.
    Json,
    /// Apache Parquet.
    Parquet,
}

impl FromStr for InputFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Ok(InputFormat::Csv),
            "json" | "jsonl" | "ndjson" => Ok(InputFormat::Json),
            "parquet" => Ok(InputFormat::Parquet),
            _ => Err(Error::InvalidOption(format!(
                "unknown input format '{text}': use csv, json or parquet"
            ))),
        }
    }
}

impl InputFormat {
    /// The format a file name's extension implies, if any.
    fn from_name(name: &str) -> Option<Self> {
        let extension = name.rsplit_once('.')?.1;
        extension.parse().ok()
    }
}

/// An input file, found and not read yet.
pub(crate) struct InputFile {
    /// The file as shown to users.
    pub(crate) name: String,
    format: InputFormat,
    compression: Compression,
    csv: Arc<CsvDialect>,
    object: InputObject,
}

/// How a run reads its input files, beyond their names.
#[derive(Debug, Clone, Default)]
pub(crate) struct InputOptions {
    /// The format of every file, else from each file's extension.
    pub(crate) format: Option<InputFormat>,
    pub(crate) compression: Compression,
    pub(crate) csv: CsvDialect,
}

impl InputFile {
    /// The file's size in bytes, as listed.
    pub(crate) fn size(&self) -> u64 {
        self.object.size
    }

    /// About how many bytes the file's rows take once decoded into Arrow, for sizing the
    /// memory a run needs before it reads anything. Measured on the benchmark's sales data:
    /// Arrow holds CSV in about its own size and JSON lines (keys repeated on every line) in
    /// less; Snappy Parquet grows about threefold. The factors err on the large side.
    /// A compressed text file is taken to grow eightfold (gzip makes CSV about five times
    /// smaller, zstd and bzip2 more).
    pub(crate) fn decoded_size_estimate(&self) -> u64 {
        let factor = match self.format {
            InputFormat::Csv => 1.5,
            InputFormat::Json => 1.0,
            InputFormat::Parquet => 4.0,
        };
        let inflation = match self.compression {
            Compression::Auto | Compression::None => 1.0,
            _ => 8.0,
        };
        (self.object.size as f64 * factor * inflation) as u64
    }

    /// The local file, when it is plain text large enough to be cut into byte ranges read
    /// at once (see `ranges.rs`); compressed bytes cannot be cut.
    fn splittable(&self) -> Option<std::path::PathBuf> {
        let path = self.object.local_file.as_ref()?;
        let large = self.object.size >= ranges::MIN_BYTES_TO_SPLIT;
        let plain = || self.compression.of_local_file(path).ok() == Some(Compression::None);
        (large && plain()).then(|| path.clone())
    }
}

/// Rows of one input file, handed over a batch at a time as they are decoded.
pub(crate) trait BatchSink: Send + 'static {
    /// Takes the next batch of `file`; `first_row` is the 0-based data row of its first row.
    /// An error stops the decoding of the file.
    fn accept(&mut self, file: &str, batch: RecordBatch, first_row: usize) -> Result<()>;
}

/// Expands every pattern into the distinct files it names, in name order: nothing downstream
/// depends on the order of the patterns or of the listing.
pub(crate) async fn find_inputs(
    patterns: &[String],
    reading: &InputOptions,
    options: &StorageOptions,
) -> Result<Vec<InputFile>> {
    let (format, compression) = (reading.format, reading.compression);
    let csv = Arc::new(reading.csv.clone());
    if patterns.is_empty() {
        return Err(Error::InvalidOption(
            "no --input given: name at least one input file or glob".into(),
        ));
    }
    // Keyed by name, so that a file two patterns match is read once.
    let mut objects: BTreeMap<String, InputObject> = BTreeMap::new();
    for pattern in patterns {
        for object in expand_input(pattern, options).await? {
            objects.insert(object.display.clone(), object);
        }
    }
    objects
        .into_iter()
        .map(|(name, object)| {
            // `a.csv.gz`: the codec from the outer extension, the format from the inner one.
            let (named_codec, inner) =
                Compression::from_name(&name).unwrap_or((Compression::Auto, &name));
            let compression = match compression {
                Compression::Auto => named_codec,
                given => given,
            };
            let format = format
                .or_else(|| InputFormat::from_name(inner))
                .ok_or_else(|| {
                    Error::InvalidOption(format!(
                        "cannot tell the format of '{name}' from its extension: pass --format csv|json|parquet"
                    ))
                })?;
            if format == InputFormat::Parquet
                && !matches!(compression, Compression::Auto | Compression::None)
            {
                return Err(Error::InvalidOption(format!(
                    "'{name}' is Parquet in a {compression} file: Parquet compresses its own \
                     pages, lakewriter reads it only as it is; decompress the file first"
                )));
            }
            Ok(InputFile {
                name,
                format,
                compression,
                csv: csv.clone(),
                object,
            })
        })
        .collect()
}

/// Decodes `file` into `sink` batch by batch (a file with no rows gives one empty batch, so
/// that its columns are still checked) and returns the sink and the SHA-256 of the file's bytes.
///
/// `column_types` are the table's column types (or a new table's), used to parse text formats.
/// A large local JSON-lines file, or CSV file with known column types, is decoded in up to
/// `ranges` byte ranges at once, each into a clone of `sink` (see `ranges.rs`); a Parquet
/// file's columns in up to `ranges` groups at once.
pub(crate) async fn decode<S: BatchSink + Clone>(
    file: &InputFile,
    column_types: Option<&Schema>,
    ranges: usize,
    sink: S,
) -> Result<(S, [u8; 32])> {
    let cut = match file.format {
        InputFormat::Csv | InputFormat::Json if ranges > 1 => file.splittable(),
        _ => None,
    };
    let sink = match (cut, file.format, column_types) {
        (Some(path), InputFormat::Csv, Some(types)) => {
            let (name, types, dialect) = (file.name.clone(), types.clone(), file.csv.clone());
            let cut = tokio::task::spawn_blocking(move || {
                csv::decode_in_ranges(&name, &path, &types, &dialect, ranges, sink)
            });
            Error::rejoin(cut.await, "decoding input")??
        }
        (Some(path), InputFormat::Json, _) => {
            let name = file.name.clone();
            let cut = tokio::task::spawn_blocking(move || {
                json::decode_in_ranges(&name, &path, ranges, sink)
            });
            Error::rejoin(cut.await, "decoding input")??
        }
        _ => ranges::Ranged::Whole(sink),
    };
    let sink = match sink {
        ranges::Ranged::Decoded(sink, hash) => return Ok((sink, hash)),
        ranges::Ranged::Whole(sink) => sink,
    };
    match file.format {
        InputFormat::Csv => text::decode(file, csv::batches, column_types, sink).await,
        InputFormat::Json => text::decode(file, json::batches, column_types, sink).await,
        InputFormat::Parquet => self::parquet::decode(&file.object, ranges, sink).await,
    }
}

/// How many first rows of a new table's first CSV file its column types are inferred from,
/// before every file is read with them (as DuckDB and Polars sample): DuckDB's default,
/// 20,480. The sample is read on one core before any decoding starts; 65,536 rows took
/// 5-8 ms more of a 1-million-row first write. A sample that misleads costs a second read,
/// never a wrong type.
const SAMPLE_ROWS: usize = 20 * 1024;

/// The columns of a CSV file with the types its values fit (`None` for other formats, whose
/// columns come with their first batch), from a pass that decodes nothing: over the first
/// rows only with `sample` (a [`Sampled`] says what the other rows must hold), else over all
/// rows, in up to `ranges` byte ranges at once for a large local file.
pub(crate) async fn infer_columns(
    file: &InputFile,
    ranges: usize,
    sample: bool,
) -> Result<Option<Inferred>> {
    if file.format != InputFormat::Csv {
        return Ok(None);
    }
    let name = file.name.clone();
    let bad = move |e: arrow::error::ArrowError| Error::bad_input(&name, None, e.to_string());
    if sample {
        let reader = open_text(file).await?;
        let dialect = file.csv.clone();
        let sampling = tokio::task::spawn_blocking(move || {
            csv_types::sample_types(reader, SAMPLE_ROWS, &dialect)
        });
        // `None`: all rows were in the sample, or a column had no value there.
        if let Some(sampled) =
            Error::rejoin(sampling.await, "inferring column types")?.map_err(bad.clone())?
        {
            return Ok(Some(Inferred::Sampled(sampled)));
        }
    }
    let dialect = file.csv.clone();
    let inferring = match file.splittable() {
        Some(path) if ranges > 1 => {
            tokio::task::spawn_blocking(move || csv::infer_in_ranges(&path, &dialect, ranges))
        }
        _ => {
            let reader = open_text(file).await?;
            tokio::task::spawn_blocking(move || csv_types::infer_types(reader, &dialect))
        }
    };
    let columns = Error::rejoin(inferring.await, "inferring column types")?.map_err(bad)?;
    Ok(Some(Inferred::Whole(columns)))
}

/// The columns `file` holds with the types of its values, for schema evolution, before its
/// rows are read: a CSV file's header, with the types of `table` for the columns the table
/// has and the types all its rows give the others (a pass of their own, only when the
/// header names a column the table lacks); a JSON-lines file's columns from all its lines; a
/// Parquet file's from its footer.
pub(crate) async fn columns(file: &InputFile, table: &Schema) -> Result<Schema> {
    let name = file.name.clone();
    let bad = move |e: arrow::error::ArrowError| Error::bad_input(&name, None, e.to_string());
    let reader = match file.format {
        InputFormat::Parquet => return self::parquet::columns(&file.object).await,
        InputFormat::Csv | InputFormat::Json => open_text(file).await?,
    };
    let dialect = file.csv.clone();
    let format = file.format;
    let reading = tokio::task::spawn_blocking(move || match format {
        InputFormat::Json => json::columns(reader),
        _ => csv::header(reader, &dialect),
    });
    let columns = Error::rejoin(reading.await, "reading input columns")?.map_err(bad)?;
    if format == InputFormat::Json {
        return Ok(columns);
    }
    let known: Option<Vec<Field>> = columns
        .fields()
        .iter()
        .map(|f| table.field_with_name(f.name()).ok().cloned())
        .collect();
    match known {
        Some(fields) => Ok(Schema::new(fields)),
        None => match infer_columns(file, 1, false).await? {
            Some(Inferred::Whole(columns)) => Ok(columns),
            _ => Ok(columns),
        },
    }
}

/// A CSV file's columns and their types.
pub(crate) enum Inferred {
    /// From all its rows.
    Whole(Schema),
    /// From its first rows.
    Sampled(Sampled),
}

/// The SHA-256 of `file`'s bytes, read without decoding them: the hash [`decode`] returns.
pub(crate) async fn hash(file: &InputFile) -> Result<[u8; 32]> {
    let reader = open_reader(&file.object).await?;
    let name = file.name.clone();
    let hashing = tokio::task::spawn_blocking(move || {
        HashingReader::new(reader)
            .finish()
            .map_err(|e| read_error(&name, e))
    });
    Error::rejoin(hashing.await, "hashing input")?
}

/// The error of an input (`name` to users) that cannot be read.
fn read_error(name: &str, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::internal(format!("cannot read input {name}"), error)
}

/// A thread's result. A panic is a bug: raised again, as `Error::rejoin` does for tasks.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Rows per decoded batch: large enough that per-batch work (casts, checks) is amortised,
/// small enough that a batch is a few megabytes.
const BATCH_ROWS: usize = 64 * 1024;

/// Opens the object as a blocking reader, for Arrow's CSV and JSON readers: a local file
/// directly, anything else as one streaming GET whose bytes flow through in chunks. A large
/// file is never held in memory whole.
async fn open_reader(object: &InputObject) -> Result<Box<dyn BufRead + Send>> {
    if let Some(path) = &object.local_file {
        let file = std::fs::File::open(path).map_err(|e| read_error(&object.display, e))?;
        return Ok(Box::new(std::io::BufReader::with_capacity(
            READ_BUFFER,
            file,
        )));
    }
    let response = object
        .store
        .get(&object.path)
        .await
        .map_err(|e| read_error(&object.display, e))?;
    let stream = response.into_stream().map_err(std::io::Error::other);
    Ok(Box::new(std::io::BufReader::with_capacity(
        READ_BUFFER,
        SyncIoBridge::new(StreamReader::new(stream)),
    )))
}

const READ_BUFFER: usize = 1 << 20;

/// Opens a text file as [`open_reader`] does, decompressed.
async fn open_text(file: &InputFile) -> Result<Box<dyn BufRead + Send>> {
    let raw = open_reader(&file.object).await?;
    Ok(compression::decompress(raw, file.compression))
}

/// Hands every decoded batch to the sink with the data row it starts at (the first batch at
/// `first_row`: a range of a file may start past its first row). The sink (shaping,
/// checks, spilling) runs on a thread of its own, so that a single large file is decoded on
/// one core while its rows are checked on another. Errors come in file order: the sink's
/// error about an earlier batch wins over the decoder's about a later one.
fn feed<S: BatchSink>(
    name: &str,
    schema: &SchemaRef,
    batches: impl Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>>,
    first_row: usize,
    sink: &mut S,
) -> std::result::Result<(), Stopped> {
    std::thread::scope(|scope| {
        // Two batches in flight keep both threads busy without holding more of the file.
        let (send, receive) = std::sync::mpsc::sync_channel::<(RecordBatch, usize)>(2);
        let sink_thread = scope.spawn(move || {
            let mut any = false;
            for (batch, first_row) in receive {
                sink.accept(name, batch, first_row)?;
                any = true;
            }
            Ok::<_, Error>((any, sink))
        });
        let mut decoded = Ok(());
        let mut rows = first_row;
        for batch in batches {
            match batch {
                Ok(batch) => {
                    let count = batch.num_rows();
                    if send.send((batch, rows)).is_err() {
                        break; // the sink failed: its error is the one to report
                    }
                    rows += count;
                }
                Err(e) => {
                    decoded = Err(Stopped::Decoder(e));
                    break;
                }
            }
        }
        drop(send);
        let (any, sink) = joined(sink_thread).map_err(Stopped::Failed)?;
        decoded?;
        if !any {
            sink.accept(name, RecordBatch::new_empty(schema.clone()), 0)
                .map_err(Stopped::Failed)?;
        }
        Ok(())
    })
}

/// Why [`feed`] stopped early: the bytes did not decode, or anything else failed (the sink
/// refused the rows, the file could not be read).
enum Stopped {
    Decoder(arrow::error::ArrowError),
    Failed(Error),
}

impl Stopped {
    /// The error to report: a decoding error as bad input of `file`.
    fn into_error(self, file: &str) -> Error {
        match self {
            Stopped::Decoder(e) => Error::bad_input(file, None, e.to_string()),
            Stopped::Failed(error) => error,
        }
    }
}

/// SHA-256 of no bytes at all: the hash of an empty file.
const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Hashes every byte read through it; `finish` reads what the decoder left and returns the hash.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn finish(mut self) -> std::io::Result<[u8; 32]>
    where
        R: BufRead,
    {
        // Straight from the reader's buffer: no copy of the bytes the decoder left.
        loop {
            let read = self.inner.fill_buf()?;
            if read.is_empty() {
                return Ok(self.hasher.finalize().into());
            }
            self.hasher.update(read);
            let length = read.len();
            self.inner.consume(length);
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for HashingReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        let buffer = self
            .inner
            .fill_buf()
            .expect("consume follows a successful fill_buf");
        self.hasher.update(&buffer[..amount]);
        self.inner.consume(amount);
    }
}

/// The type a decoded column gets in the table: Delta has no unsigned integers, no
/// timezone-less timestamps (without an extra table feature), no large or view strings and
/// lists of one kind; nested types get the same of their fields.
pub(crate) fn delta_type(data_type: &DataType) -> DataType {
    use arrow::datatypes::{FieldRef, TimeUnit};
    let field = |field: &FieldRef| {
        Arc::new(
            field
                .as_ref()
                .clone()
                .with_data_type(delta_type(field.data_type())),
        )
    };
    match data_type {
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => DataType::List(field(item)),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::Map(entries, sorted) => DataType::Map(field(entries), *sorted),
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        other => other.clone(),
    }
}

/// Decodes `bytes` as one input file of `format`, as a run would, and discards the result.
/// With `typed`, CSV is parsed with the column types of an existing table (`FUZZ_TABLE`)
/// instead of inferred ones, as every run on an existing table does. The entry point of the
/// fuzz target (fuzz/) and of the mutation test below: decoding any bytes must end in `Ok` or
/// a typed error, never a panic (panics are raised, see `Error::rejoin`).
#[doc(hidden)]
pub fn decode_for_fuzzing(format: InputFormat, bytes: &[u8], typed: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("starting a runtime", e))?;
    runtime.block_on(async {
        let store = Arc::new(object_store::memory::InMemory::new());
        let path = object_store::path::Path::from("input");
        store
            .put(&path, bytes.to_vec().into())
            .await
            .map_err(|e| Error::internal("staging fuzz input", e))?;
        let object = InputObject {
            store,
            path,
            display: "input".into(),
            local_file: None,
            size: bytes.len() as u64,
        };
        let file = InputFile {
            name: "input".into(),
            format,
            compression: Compression::Auto,
            csv: Default::default(),
            object,
        };
        let table = typed.then(fuzz_table);
        decode(&file, table.as_ref(), 1, Discard).await.map(drop)
    })
}

/// The columns of the table the typed fuzzing path decodes into: one of each kind of type a
/// table's column can give the CSV parser.
fn fuzz_table() -> Schema {
    use arrow::datatypes::{Field, TimeUnit};
    let utc = Some("UTC".into());
    Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, utc), true),
        Field::new("date", DataType::Date32, true),
        Field::new("qty", DataType::Int16, true),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new("ok", DataType::Boolean, true),
        Field::new(
            "local",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
    ])
}

/// A sink that drops every batch.
#[derive(Clone)]
struct Discard;

impl BatchSink for Discard {
    fn accept(&mut self, _: &str, _: RecordBatch, _: usize) -> Result<()> {
        Ok(())
    }
}

/// A content hash of a run's input and of every option that shapes its output.
///
/// File hashes are sorted first, so the order in which files are listed or named does not
/// matter; renaming a file does not change it either.
pub(crate) fn fingerprint(file_hashes: &[[u8; 32]], shaping: &[(&str, String)]) -> String {
    let mut hashes: Vec<&[u8; 32]> = file_hashes.iter().collect();
    hashes.sort();
    let mut hasher = Sha256::new();
    hasher.update(b"lakewriter-fingerprint-v1\n");
    for (name, value) in shaping {
        // Length-prefixed so that no two option lists hash alike.
        hasher.update(format!("{}:{name}={}:{value}\n", name.len(), value.len()));
    }
    for hash in hashes {
        hasher.update(hash);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(InputFormat::from_name("a/b.jsonl"), Some(InputFormat::Json));
        assert_eq!(InputFormat::from_name("x.CSV"), Some(InputFormat::Csv));
        assert_eq!(InputFormat::from_name("x.txt"), None);
    }

    #[test]
    fn fingerprint_ignores_file_order_but_not_options() {
        let hash = |bytes: &[u8]| <[u8; 32]>::from(Sha256::digest(bytes));
        let options = [("key", "id".to_string())];
        let ab = fingerprint(&[hash(b"1"), hash(b"2")], &options);
        let ba = fingerprint(&[hash(b"2"), hash(b"1")], &options);
        assert_eq!(ab, ba);
        let other = fingerprint(&[hash(b"1"), hash(b"2")], &[("key", "sku".into())]);
        assert_ne!(ab, other);
    }

    #[tokio::test]
    async fn known_types_win_over_inference_and_the_hash_is_of_the_stored_bytes() {
        use std::io::Write as _;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(b"id,code\n1,007\n").unwrap();
        let stored = gzip.finish().unwrap();
        let store = Arc::new(object_store::memory::InMemory::new());
        let path = object_store::path::Path::from("t.csv.gz");
        store.put(&path, stored.clone().into()).await.unwrap();
        let file = InputFile {
            name: "t.csv.gz".into(),
            format: InputFormat::Csv,
            compression: Compression::Auto,
            csv: Default::default(),
            object: InputObject {
                store,
                path,
                display: "t.csv.gz".into(),
                local_file: None,
                size: stored.len() as u64,
            },
        };
        let known = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("code", DataType::Utf8, true),
        ]);
        /// Keeps what it is given.
        struct Keep(Vec<RecordBatch>);
        impl BatchSink for Keep {
            fn accept(&mut self, _: &str, batch: RecordBatch, _: usize) -> Result<()> {
                self.0.push(batch);
                Ok(())
            }
        }
        let (Keep(batches), hash) =
            text::decode(&file, csv::batches, Some(&known), Keep(Vec::new()))
                .await
                .unwrap();
        let code = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>();
        assert_eq!(code.unwrap().value(0), "007");
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(&stored)));
        assert_eq!(
            super::hash(&file).await.unwrap(),
            hash,
            "a skip hashes the same bytes"
        );
    }

    /// A deterministic stand-in for the fuzz target in every test run: thousands of mutated
    /// CSV (inferred and with a table's types), JSON and Parquet inputs, plain and compressed
    /// (gzip, zstd, bzip2), must each decode or
    /// fail with a typed error. A panic fails the test (it is raised, not turned into an
    /// error), and so does an internal error, which is no answer to input either.
    #[test]
    fn mutated_inputs_never_panic() {
        let csv = b"id,name,amount,at,date,qty,price,ok,local\n1,\"a, b\",2.5,2024-01-01T00:00:00Z,2024-01-01,7,12.50,true,2024-01-01T08:00:00\n2,c,3,,2024-01-02,,,false,\n".to_vec();
        let json = b"{\"id\":1,\"tags\":[\"x\"],\"nested\":{\"a\":1.5},\"date\":\"2024-01-01\"}\n{\"id\":2}\n".to_vec();
        let parquet = {
            let batch = RecordBatch::try_from_iter([(
                "id",
                Arc::new(arrow::array::Int64Array::from(vec![1, 2, 3])) as _,
            )])
            .unwrap();
            let mut bytes = Vec::new();
            let mut writer =
                ::parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
            bytes
        };
        let mut next = crate::test_numbers(0x0DEC_0DE5);
        let specials = b"\"\n\r,{}[]:\\\x00\xff-.9eT";
        // Compressed text, told by its first bytes as a run tells a file without extension.
        let (gzip, zstd, bzip2) = {
            use std::io::Write as _;
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), Default::default());
            gzip.write_all(&csv).unwrap();
            let mut bzip2 = bzip2::write::BzEncoder::new(Vec::new(), Default::default());
            bzip2.write_all(&csv).unwrap();
            let zstd = zstd::stream::encode_all(json.as_slice(), 3).unwrap();
            (gzip.finish().unwrap(), zstd, bzip2.finish().unwrap())
        };
        for (format, typed, seed) in [
            (InputFormat::Csv, false, &csv),
            (InputFormat::Csv, true, &csv),
            (InputFormat::Json, false, &json),
            (InputFormat::Parquet, false, &parquet),
            (InputFormat::Csv, false, &gzip),
            (InputFormat::Csv, true, &bzip2),
            (InputFormat::Json, false, &zstd),
        ] {
            let path = format!("{format:?} (typed: {typed}, {} bytes)", seed.len());
            // The unmutated seed decodes, so the mutations start from a path that works.
            decode_for_fuzzing(format, seed, typed).unwrap_or_else(|e| panic!("{path}: {e}"));
            for _ in 0..700 {
                let mut bytes = seed.clone();
                for _ in 0..1 + next(4) {
                    let at = next(bytes.len().max(1));
                    match next(4) {
                        0 if !bytes.is_empty() => bytes[at] = specials[next(specials.len())],
                        1 => bytes.insert(at.min(bytes.len()), specials[next(specials.len())]),
                        2 => bytes.truncate(at),
                        _ => bytes.extend_from_within(..at.min(bytes.len())),
                    }
                }
                if let Err(e @ Error::Internal { .. }) = decode_for_fuzzing(format, &bytes, typed) {
                    panic!(
                        "{path}: internal error {e} on {:?}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
        }
    }

    #[test]
    fn the_empty_hash_constant_is_the_hash_of_nothing() {
        assert_eq!(EMPTY_SHA256, <[u8; 32]>::from(Sha256::digest(b"")));
    }
}
