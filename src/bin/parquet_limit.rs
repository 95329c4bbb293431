//! The encoding limit for `scripts/bench`: how fast arrow-rs's `ArrowWriter` alone turns rows
//! that are already decoded in memory into Parquet files, one per day, with lakewriter's own
//! writer properties. No reading, parsing, deduplication, object store or Delta log: what a
//! writer of this machine cannot beat.
//!
//! ```text
//! cargo run --release --features bench --bin parquet_limit -- INPUT_DIR OUTPUT_DIR
//! ```
//!
//! A binary, not an example, so that building it needs no dev-dependencies (which would rebuild
//! the whole dependency tree in release mode with other features).
//!
//! Reads every `*.parquet` file of INPUT_DIR (one day each, as the bench generates them) into
//! memory, then times only the encoding of each into OUTPUT_DIR and prints it as JSON.

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1).map(PathBuf::from);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: parquet_limit INPUT_DIR OUTPUT_DIR".into());
    };
    let mut days = Vec::new();
    for entry in std::fs::read_dir(&input)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let batches = ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?
                .build()?
                .collect::<Result<Vec<RecordBatch>, _>>()?;
            days.push((path.file_stem().unwrap_or_default().to_owned(), batches));
        }
    }
    std::fs::create_dir_all(&output)?;
    let rows: usize = days
        .iter()
        .flat_map(|(_, batches)| batches)
        .map(RecordBatch::num_rows)
        .sum();

    let started = Instant::now();
    for (day, batches) in &days {
        let Some(first) = batches.first() else {
            continue;
        };
        let file = File::create(output.join(day).with_extension("parquet"))?;
        let properties = lakewriter::parquet_writer_properties();
        let mut writer = ArrowWriter::try_new(file, first.schema(), Some(properties))?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.close()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(r#"{{"rows": {rows}, "encode_seconds": {seconds:.3}}}"#);
    Ok(())
}
