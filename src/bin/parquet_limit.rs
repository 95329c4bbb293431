//! The encoding limit for `scripts/bench`: how fast arrow-rs's `ArrowWriter` alone encodes the
//! very rows lakewriter wrote (deduplicated, sorted, one file per day or per core) when they
//! are already decoded in memory, with lakewriter's writer properties and one thread per core,
//! as lakewriter encodes. No reading of raw input, parsing, deduplication, object store or
//! Delta log: what a writer on this machine cannot beat.
//!
//! ```text
//! cargo run --release --features bench --bin parquet_limit -- OUTPUT_DIR TABLE_DIR FILE...
//! ```
//!
//! FILE... are lakewriter's data files (the table's current version, paths relative to
//! TABLE_DIR such as `date=2024-01-01/part-....parquet`); each is read into memory, then encoded
//! to the same relative path under OUTPUT_DIR, so that the bench reads the output back as a
//! hive-partitioned dataset and checks it holds lakewriter's rows. Prints the encoding time as
//! JSON (`job_seconds`). A binary, not an example, so that building it needs no
//! dev-dependencies (which would rebuild the whole dependency tree in release mode).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1).map(PathBuf::from);
    let (Some(output), Some(table)) = (args.next(), args.next()) else {
        return Err("usage: parquet_limit OUTPUT_DIR TABLE_DIR FILE...".into());
    };
    let mut files = Vec::new();
    for relative in args {
        let batches = ParquetRecordBatchReaderBuilder::try_new(File::open(table.join(&relative))?)?
            .build()?
            .collect::<Result<Vec<RecordBatch>, _>>()?;
        files.push((relative, batches));
    }
    if files.is_empty() {
        return Err("no data files given: run the lakewriter contender first".into());
    }
    let rows: usize = files
        .iter()
        .flat_map(|(_, batches)| batches)
        .map(RecordBatch::num_rows)
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let started = Instant::now();
    // Files taken in turn by one thread per core, as lakewriter's writer takes its files.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| -> Result<(), Failure> {
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((relative, batches)) = files.get(index) else {
                            return Ok(());
                        };
                        encode(&output.join(relative), batches)?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        r#"{{"rows": {rows}, "files": {}, "job_seconds": {seconds:.3}}}"#,
        files.len()
    );
    Ok(())
}

/// Encodes `batches` into a Parquet file at `path` with lakewriter's writer properties.
fn encode(path: &Path, batches: &[RecordBatch]) -> Result<(), Failure> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let properties = lakewriter::parquet_writer_properties(batches);
    let mut writer = ArrowWriter::try_new(File::create(path)?, first.schema(), Some(properties))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(())
}
