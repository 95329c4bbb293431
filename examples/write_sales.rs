//! Writes the shipped sample sales into a local Delta table twice, then applies a late
//! correction to one day: the library API end to end.
//!
//! ```text
//! cargo run --example write_sales -- ./lake/sales-example
//! ```

use lakewriter::{PartitionScope, RunStatus, WriteJob};

#[tokio::main]
async fn main() -> lakewriter::Result<()> {
    let table = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./lake/sales-example".to_string());
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");

    let days = WriteJob::new(&table, PartitionScope::parse("2024-01-01", "2024-01-03")?)
        .input(format!("{data}/sales/*.csv"))
        .key(["order_id"])
        .order_by("updated_at")
        .run_id("example-2024-01-03");
    let first = days.run().await?;
    println!(
        "first run:  {:?} at version {:?}, {} rows",
        first.status, first.version, first.rows_written
    );

    // The orchestrator retries the same run: nothing is written twice.
    let retry = days.run().await?;
    assert_eq!(retry.status, RunStatus::Skipped);
    println!(
        "retry:      {:?}, table still at version {:?}",
        retry.status, retry.version
    );

    // A corrected file for 2024-01-02 arrives: only that day is replaced, in one commit.
    let correction = WriteJob::new(&table, PartitionScope::parse("2024-01-02", "2024-01-02")?)
        .input(format!("{data}/corrections/2024-01-02.csv"))
        .key(["order_id"])
        .order_by("updated_at")
        .run()
        .await?;
    println!(
        "correction: {:?} at version {:?}, {} files removed, {} added",
        correction.status, correction.version, correction.files_removed, correction.files_added
    );

    for run in lakewriter::Runs::new(&table).run().await? {
        println!(
            "  {}  run {:<40} rows {}",
            run.date,
            run.run_id.unwrap_or_default(),
            run.rows.unwrap_or(0)
        );
    }
    Ok(())
}
