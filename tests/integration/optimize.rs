//! `lakewriter optimize`: a day's small files compacted in one commit that changes no data,
//! the run ledger kept, nothing done to a compact day, a day a writer replaced meanwhile
//! given up, and a crash leaving the table as it was or compacted.

use serde::Deserialize;

use crate::scenarios::csv;
use crate::support::{Lake, PartitionRun, Run, Status, run_at_once};

/// `optimize --output json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizeReport {
    status: String,
    version: Option<u64>,
    days: Vec<String>,
    files_removed: u64,
    files_added: u64,
}

const SCOPE: [&str; 4] = ["--from", "2024-04-01", "--to", "2024-04-03"];

/// Orders over 1 and 2 April (3 April left empty), written under a tiny memory limit: the
/// rows spill into many buckets, and each day gets a file per bucket.
fn write_spilled(lake: &Lake, quantity: u32) -> Run {
    let rows: Vec<String> = (0..6000)
        .map(|id| {
            let day = 1 + id % 2;
            format!("{id},c,s,{quantity},1.5,2024-04-0{day}T00:00:00Z,2024-04-0{day}")
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let input = lake.input(&format!("orders-{quantity}.csv"), &csv(&rows));
    let mut args = vec!["--input", input.as_str(), "--key", "order_id"];
    args.extend(SCOPE);
    args.extend(["--memory-limit", "64KiB", "--run-id", "spilled"]);
    lake.write(&args)
}

fn optimize(lake: &Lake, args: &[&str]) -> OptimizeReport {
    lake.run("optimize", args).parse()
}

/// The ledger without file counts (which a compaction changes by design).
fn ledger(lake: &Lake) -> Vec<PartitionRun> {
    let runs = lake.runs().into_iter();
    runs.map(|run| PartitionRun { files: 0, ..run }).collect()
}

async fn files_of(lake: &Lake, day: &str) -> usize {
    let prefix = format!("date={day}/");
    lake.active_files()
        .await
        .iter()
        .filter(|f| f.starts_with(&prefix))
        .count()
}

pub async fn small_files_are_compacted_and_the_ledger_kept(lake: &Lake) {
    write_spilled(lake, 1).expect(Status::Committed);
    assert!(
        files_of(lake, "2024-04-01").await > 2,
        "the spilled day has many files"
    );
    let rows = lake.rows_agreed_by_readers().await;
    let runs = ledger(lake);

    // One day first, by scope; then the rest.
    let first = optimize(lake, &["--date", "2024-04-01"]);
    assert_eq!(
        (first.status.as_str(), first.days.as_slice()),
        ("committed", &["2024-04-01".to_string()][..])
    );
    assert_eq!(first.files_added, 1);
    assert!(first.files_removed > 2);
    assert!(
        files_of(lake, "2024-04-02").await > 2,
        "out of scope: untouched"
    );
    let rest = optimize(lake, &[]);
    assert_eq!(
        rest.days,
        ["2024-04-02"],
        "the empty day's one file is compact"
    );
    assert_eq!(files_of(lake, "2024-04-02").await, 1);

    // No data changed: same rows in every engine, every action dataChange = false.
    assert_eq!(lake.rows_agreed_by_readers().await, rows);
    let commit = lake.commit(rest.version.unwrap()).await;
    assert_eq!(commit.info()["operation"], "OPTIMIZE");
    let file_actions: Vec<_> = commit
        .actions
        .iter()
        .filter_map(|a| a.get("add").or_else(|| a.get("remove")))
        .collect();
    assert!(
        file_actions.iter().all(|a| a["dataChange"] == false),
        "{file_actions:?}"
    );

    // The ledger is kept: `runs` is the same, and the identical rerun is still skipped.
    assert_eq!(ledger(lake), runs);
    write_spilled(lake, 1).expect(Status::Skipped);

    // Nothing to do the second time: no commit.
    let versions = lake.versions().await;
    let again = optimize(lake, &[]);
    assert_eq!((again.status.as_str(), again.files_added), ("skipped", 0));
    assert_eq!(lake.versions().await, versions);
}

/// Runs an optimize and a write of `rows` (for `scope`, as run `run_id`) that reach their
/// commits together (a barrier): one of them loses the race and decides again.
fn race_optimize_with_write(
    lake: &Lake,
    rows: &[String],
    scope: &[&str],
    run_id: &str,
) -> (OptimizeReport, crate::support::Report) {
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let input = lake.input(&format!("{run_id}.csv"), &csv(&rows));
    let barrier = tempfile::tempdir().unwrap();
    let pause = format!("before-commit:2:{}", barrier.path().display());
    let mut write_args = vec![
        "--input",
        input.as_str(),
        "--key",
        "order_id",
        "--run-id",
        run_id,
    ];
    write_args.extend(scope);
    let commands = [
        lake.json_command("optimize", &[]),
        lake.json_command("write", &write_args),
    ]
    .map(|mut command| {
        command.env("LAKEWRITER_PAUSE_AT", &pause);
        command
    });
    let runs = run_at_once(commands);
    (runs[0].parse(), runs[1].expect(Status::Committed))
}

pub async fn a_day_a_writer_replaces_meanwhile_is_given_up(lake: &Lake) {
    write_spilled(lake, 1).expect(Status::Committed);
    // Whichever lands first, the writer's rows are the table's.
    let rows: Vec<String> = (0..10)
        .map(|id| format!("{id},c,s,9,1.5,2024-04-01T00:00:00Z,2024-04-01"))
        .collect();
    let (optimized, _) = race_optimize_with_write(lake, &rows, &SCOPE, "fix");
    assert!(
        optimized.status == "skipped" || optimized.status == "committed",
        "{optimized:?}"
    );
    let table = lake.rows_agreed_by_readers().await;
    assert_eq!(table.len(), 10, "the writer's rows, and only them");
    assert!(table.parsed().iter().all(|r| r["quantity"] == 9));
    assert!(
        ledger(lake)
            .iter()
            .all(|r| r.run_id.as_deref() == Some("fix"))
    );
}

pub async fn a_writer_of_another_day_and_the_optimize_both_commit(lake: &Lake) {
    write_spilled(lake, 1).expect(Status::Committed);
    let rows: Vec<String> = (90_000..90_005)
        .map(|id| format!("{id},c,s,7,1.5,2024-04-03T00:00:00Z,2024-04-03"))
        .collect();
    let (optimized, _) = race_optimize_with_write(lake, &rows, &["--date", "2024-04-03"], "third");
    assert_eq!(optimized.status, "committed", "{optimized:?}");
    assert_eq!(optimized.days, ["2024-04-01", "2024-04-02"]);
    for day in ["2024-04-01", "2024-04-02", "2024-04-03"] {
        assert_eq!(files_of(lake, day).await, 1, "{day}");
    }
    assert_eq!(lake.rows_agreed_by_readers().await.len(), 6005);
    let owners: Vec<Option<String>> = ledger(lake).into_iter().map(|r| r.run_id).collect();
    let owners: Vec<Option<&str>> = owners.iter().map(Option::as_deref).collect();
    assert_eq!(owners, [Some("spilled"), Some("spilled"), Some("third")]);
}

crate::support::on_backends!(
    [local: Local, s3: S3],
    [
        small_files_are_compacted_and_the_ledger_kept,
        a_day_a_writer_replaces_meanwhile_is_given_up,
        a_writer_of_another_day_and_the_optimize_both_commit,
        a_crash_during_optimize_leaves_the_table_as_it_was_or_compacted,
    ]
);

pub async fn a_crash_during_optimize_leaves_the_table_as_it_was_or_compacted(lake: &Lake) {
    for (point, landed) in [
        ("after-upload", false),
        ("before-commit", false),
        ("after-commit", true),
    ] {
        let lake = lake.sibling();
        write_spilled(&lake, 1).expect(Status::Committed);
        let rows = lake.rows().await;
        let runs = ledger(&lake);
        let before = files_of(&lake, "2024-04-01").await;
        let crashed = Run::of(
            lake.json_command("optimize", &[])
                .env("LAKEWRITER_FAIL_AT", point)
                .output()
                .unwrap(),
        );
        crashed.assert_aborted_at(point);
        assert_eq!(lake.rows().await, rows, "{point}: the same rows");
        assert_eq!(ledger(&lake), runs, "{point}: the same ledger");
        let after = files_of(&lake, "2024-04-01").await;
        assert_eq!(after == 1, landed, "{point}: {before} files, then {after}");
        let rerun = optimize(&lake, &[]);
        assert_eq!(
            rerun.status,
            if landed { "skipped" } else { "committed" },
            "{point}"
        );
        assert_eq!(files_of(&lake, "2024-04-01").await, 1, "{point}: converges");
        assert_eq!(lake.rows().await, rows, "{point}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_log_expires_commit_files_but_never_what_a_checkpoint_needs() {
    // Versions 0 to 20: checkpoints at 9 and 19 (every 10 commits).
    let lake = Lake::local();
    let mut first = Vec::new();
    for day in 1..=21 {
        let date = format!("2024-06-{day:02}");
        let input = lake.input(&format!("{day}.csv"), &format!("id,date\n{day},{date}\n"));
        let args: Vec<String> = ["--input", &input, "--date", &date, "--key", "id"]
            .map(String::from)
            .to_vec();
        lake.write(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .expect(Status::Committed);
        if day == 1 {
            first = args;
        }
    }
    let rows = lake.rows().await;
    let runs = lake.runs();
    assert_eq!(
        lake.vacuum(&["--log"]).log_files_deleted,
        0,
        "within 30 days"
    );
    let before = lake.log_files().await;
    let expired = lake.vacuum(&["--log", "--log-retain-hours", "0"]);
    let log = lake.log_files().await;
    assert_eq!(expired.log_files_deleted, before.len() - log.len());
    // Versions 0 to 18 (and the checkpoint at 9) go; checkpoint 19 and what follows stay.
    let commit = |v: u64| format!("{v:020}.json");
    assert!((0..19).all(|v| !log.contains(&commit(v))), "{log:?}");
    assert!((19..21).all(|v| log.contains(&commit(v))), "{log:?}");
    assert!(
        log.contains(&format!("{:020}.checkpoint.parquet", 19)),
        "{log:?}"
    );
    assert_eq!(lake.rows().await, rows);
    assert_eq!(lake.runs(), runs);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    lake.write(&first).expect(Status::Skipped);
    let again = lake.vacuum(&["--log", "--log-retain-hours", "0"]);
    assert_eq!(again.log_files_deleted, 0);
}
