//! `--mode merge`: upserts by key with the same ledger and rerun policies as the partition mode.

use crate::support::{Lake, Report, Status, repo_path};

const MERGE: [&str; 6] = [
    "--key",
    "order_id",
    "--order-by",
    "updated_at",
    "--mode",
    "merge",
];

fn sales() -> String {
    repo_path("examples/data/sales/*.csv")
}

fn correction() -> String {
    repo_path("examples/data/corrections/2024-01-02.csv")
}

fn merge(lake: &Lake, input: &str, from: &str, to: &str, extra: &[&str], status: Status) -> u64 {
    let mut args = vec!["--input", input, "--from", from, "--to", to];
    args.extend(MERGE);
    args.extend_from_slice(extra);
    lake.write(&args).expect(status).version.unwrap()
}

/// Merging the sales and then the late correction gives the rows a replace of both inputs
/// together gives; the correction's commit rewrites only its own day; Spark and DuckDB agree.
async fn merge_updates_and_inserts_by_key_within_the_inputs_days(lake: &Lake) {
    merge(
        lake,
        &sales(),
        "2024-01-01",
        "2024-01-03",
        &[],
        Status::Committed,
    );
    let before: Vec<String> = lake.active_files().await;
    let version = merge(
        lake,
        &correction(),
        "2024-01-02",
        "2024-01-02",
        &[],
        Status::Committed,
    );
    let commit = lake.commit(version).await;
    assert!(
        commit
            .removed()
            .iter()
            .all(|p| p.starts_with("date=2024-01-02/")),
        "only the correction's day is rewritten: {:?}",
        commit.removed()
    );
    let after = lake.active_files().await;
    for untouched in before.iter().filter(|p| !p.starts_with("date=2024-01-02/")) {
        assert!(after.contains(untouched), "{untouched} kept");
    }

    let replaced = lake.sibling();
    let (all_sales, late) = (sales(), correction());
    replaced
        .write(&[
            "--input",
            &all_sales,
            "--input",
            &late,
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-03",
            "--key",
            "order_id",
            "--order-by",
            "updated_at",
        ])
        .expect(Status::Committed);
    assert_eq!(lake.rows_agreed_by_readers().await, replaced.rows().await);
}

/// An identical rerun makes no commit; the inputs applied in the other order, or one of them
/// twice, leave the same rows.
async fn merges_are_idempotent_and_order_free(lake: &Lake) {
    let first = merge(
        lake,
        &sales(),
        "2024-01-01",
        "2024-01-03",
        &[],
        Status::Committed,
    );
    let second = merge(
        lake,
        &correction(),
        "2024-01-02",
        "2024-01-02",
        &[],
        Status::Committed,
    );
    let skipped = merge(
        lake,
        &correction(),
        "2024-01-02",
        "2024-01-02",
        &[],
        Status::Skipped,
    );
    assert_eq!(skipped, second, "no new commit");
    assert!(second > first);

    let reversed = lake.sibling();
    merge(
        &reversed,
        &correction(),
        "2024-01-02",
        "2024-01-02",
        &[],
        Status::Committed,
    );
    merge(
        &reversed,
        &sales(),
        "2024-01-01",
        "2024-01-03",
        &[],
        Status::Committed,
    );
    // The older sales merged once more, forced: the correction's later rows stay.
    merge(
        &reversed,
        &sales(),
        "2024-01-01",
        "2024-01-03",
        &["--on-rerun", "replace"],
        Status::Committed,
    );
    assert_eq!(lake.rows().await, reversed.rows().await);
}

crate::support::on_backends!(
    [local: Local, s3: S3],
    [
        merge_updates_and_inserts_by_key_within_the_inputs_days,
        merges_are_idempotent_and_order_free,
    ]
);

#[test]
fn a_merge_needs_a_key_and_refuses_the_fail_policy() {
    let lake = Lake::local();
    let input = sales();
    let no_key = lake.write(&["--input", &input, "--date", "2024-01-01", "--mode", "merge"]);
    assert_eq!(no_key.code, 2);
    assert!(no_key.stderr.contains("--key"), "{}", no_key.stderr);
    let mut args = vec![
        "--input",
        input.as_str(),
        "--date",
        "2024-01-01",
        "--on-rerun",
        "fail",
    ];
    args.extend(MERGE);
    let fail = lake.write(&args);
    assert_eq!(fail.code, 2);
    assert!(
        fail.stderr.contains("use auto, skip or replace"),
        "{}",
        fail.stderr
    );
}

#[tokio::test]
async fn racing_merges_commit_each_input_once() {
    let lake = Lake::local();
    merge(
        &lake,
        &sales(),
        "2024-01-01",
        "2024-01-03",
        &[],
        Status::Committed,
    );
    let input = correction();
    let mut args = vec!["--input", input.as_str(), "--date", "2024-01-02"];
    args.extend(MERGE);
    let args: Vec<String> = args.into_iter().map(str::to_string).collect();
    let statuses: Vec<Status> = lake
        .race_writes(&vec![args; 4])
        .iter()
        .map(|run| run.parse::<Report>().status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == Status::Committed).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        lake.versions().await.len(),
        3,
        "create, sales, one correction"
    );
}
