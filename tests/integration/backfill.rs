//! `lakewriter backfill`: each day its own run, a failing day leaves the others alone, and a
//! backfill started again (after a failure or a crash) finishes the job without redoing it.

use crate::scenarios::csv;
use crate::support::{BackfillReport, Lake, Run, run_at_once};

const DAYS: [&str; 4] = ["2024-02-01", "2024-02-02", "2024-02-03", "2024-02-04"];

/// Writes `raw/<day>/orders.csv` with orders `first_id..first_id + 3` of quantity `quantity`.
fn day_file(lake: &Lake, day: &str, first_id: u32, quantity: &str) {
    let rows: Vec<String> = (first_id..first_id + 3)
        .map(|id| format!("{id},c,s,{quantity},1.0,{day}T00:00:00Z,{day}"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    lake.input(&format!("raw/{day}/orders.csv"), &csv(&rows));
}

fn template(lake: &Lake) -> String {
    format!("{}/raw/{{date}}/*.csv", lake.inputs_prefix())
}

/// The summary a backfill printed, whatever its exit code.
fn summary(run: &Run) -> BackfillReport {
    run.printed()
        .unwrap_or_else(|| panic!("no summary: {}", run.stderr))
}

fn statuses(report: &BackfillReport) -> Vec<String> {
    report
        .days
        .iter()
        .map(|day| format!("{} {:?}", day.date, day.status).to_lowercase())
        .collect()
}

#[tokio::test]
async fn a_failed_day_leaves_the_others_and_a_rerun_finishes_it() {
    let lake = Lake::local();
    for (i, day) in DAYS.iter().enumerate() {
        day_file(&lake, day, 10 * i as u32, "1");
    }
    day_file(&lake, "2024-02-03", 20, "many");
    let input = template(&lake);
    let args = [
        "--input",
        &input,
        "--from",
        DAYS[0],
        "--to",
        DAYS[3],
        "--key",
        "order_id",
        "--parallel",
        "2",
    ];

    let first = lake.backfill(&args);
    assert_eq!(first.code, 5, "some days failed: {}", first.stderr);
    let first = summary(&first);
    assert_eq!(
        (first.table.as_str(), first.from.as_str(), first.to.as_str()),
        (lake.table.as_str(), DAYS[0], DAYS[3])
    );
    assert_eq!(
        (first.committed, first.skipped, first.planned, first.failed),
        (3, 0, 0, 1)
    );
    assert_eq!(
        statuses(&first),
        [
            "2024-02-01 committed",
            "2024-02-02 committed",
            "2024-02-03 failed",
            "2024-02-04 committed"
        ]
    );
    let failed = &first.days[2];
    let error = failed.error.as_deref().unwrap();
    assert!(
        error.contains("2024-02-03/orders.csv") && error.contains("many"),
        "the error names the file and the value: {error}"
    );
    assert_eq!(failed.exit_code, Some(2));
    let per_date = lake.rows().await.per_date();
    assert_eq!(
        per_date.keys().collect::<Vec<_>>(),
        ["2024-02-01", "2024-02-02", "2024-02-04"]
    );

    day_file(&lake, "2024-02-03", 20, "2");
    let second: BackfillReport = lake.backfill(&args).parse();
    assert_eq!(
        statuses(&second),
        [
            "2024-02-01 skipped",
            "2024-02-02 skipped",
            "2024-02-03 committed",
            "2024-02-04 skipped"
        ]
    );
    assert_eq!((second.committed, second.skipped), (1, 3));
    let rows = lake.rows_agreed_by_readers().await;
    assert_eq!(
        rows.per_date().values().copied().collect::<Vec<_>>(),
        [3, 3, 3, 3]
    );

    let versions = lake.versions().await;
    let third: BackfillReport = lake.backfill(&args).parse();
    assert_eq!(third.skipped, 4, "{third:?}");
    assert_eq!(
        lake.versions().await,
        versions,
        "a backfill with nothing new commits nothing"
    );
}

#[tokio::test]
async fn a_backfill_killed_midway_finishes_on_the_next_start() {
    let lake = Lake::local();
    for (i, day) in DAYS.iter().enumerate() {
        day_file(&lake, day, 10 * i as u32, "1");
    }
    let input = template(&lake);
    let args = [
        "--input", &input, "--from", DAYS[0], "--to", DAYS[3], "--key", "order_id",
    ];
    // The process aborts right after its first commit, as kill -9 would.
    let crashed = lake
        .json_command("backfill", &args)
        .env("LAKEWRITER_FAIL_AT", "after-commit")
        .output()
        .unwrap();
    Run::of(crashed).assert_aborted_at("after-commit");
    assert_eq!(
        lake.rows().await.per_date().len(),
        1,
        "one day committed before the crash"
    );

    let resumed = lake.backfill(&args).parse();
    assert_eq!(
        statuses(&resumed),
        [
            "2024-02-01 skipped",
            "2024-02-02 committed",
            "2024-02-03 committed",
            "2024-02-04 committed"
        ]
    );
    assert_eq!(
        lake.versions().await.len(),
        4,
        "one commit per day, none twice"
    );
}

#[tokio::test]
async fn days_in_parallel_each_commit_once_with_the_first_day_creating_the_table() {
    let lake = Lake::local();
    let days: Vec<String> = (1..=8).map(|d| format!("2024-03-{d:02}")).collect();
    for (i, day) in days.iter().enumerate() {
        day_file(&lake, day, 10 * i as u32, "3");
    }
    let input = format!("{}/raw/{{date:%Y-%m-%d}}/orders.csv", lake.inputs_prefix());
    let run = lake.backfill(&[
        "--input",
        &input,
        "--from",
        &days[0],
        "--to",
        &days[7],
        "--parallel",
        "4",
        "--run-id",
        "fill-{date}",
    ]);
    assert_eq!(run.parse::<BackfillReport>().committed, 8);
    assert_eq!(lake.versions().await.len(), 8);
    let runs = lake.runs();
    let ids: Vec<&str> = runs.iter().filter_map(|r| r.run_id.as_deref()).collect();
    let expected: Vec<String> = days.iter().map(|d| format!("fill-{d}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn inputs_and_run_ids_without_a_date_are_refused() {
    let lake = Lake::local();
    let run = lake.backfill(&["--input", "raw/all.csv", "--from", DAYS[0], "--to", DAYS[1]]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("{date}"), "{}", run.stderr);
    let input = template(&lake);
    let fixed_id = lake.backfill(&[
        "--input", &input, "--from", DAYS[0], "--to", DAYS[1], "--run-id", "fill",
    ]);
    assert_eq!(fixed_id.code, 2);
    assert!(
        fixed_id.stderr.contains("each day is its own run"),
        "{}",
        fixed_id.stderr
    );
    assert!(lake.versions().await.is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_started_at_once_equal_one_backfill_and_a_restarted_shard_converges() {
    // 30 days, three shards at once (one from JOB_COMPLETION_INDEX, as a Kubernetes Indexed
    // Job starts it), against the same backfill on one machine.
    let reference = Lake::local();
    let sharded = reference.sibling();
    let days: Vec<String> = (1..=30).map(|d| format!("2024-03-{d:02}")).collect();
    for lake in [&reference, &sharded] {
        for (i, day) in days.iter().enumerate() {
            day_file(lake, day, 10 * i as u32, "1");
        }
    }
    let args = |lake: &Lake| {
        let input = template(lake);
        [
            "--input",
            &input,
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-30",
            "--key",
            "order_id",
        ]
        .map(String::from)
    };
    let reference_args = args(&reference);
    let reference_args: Vec<&str> = reference_args.iter().map(String::as_str).collect();
    assert_eq!(summary(&reference.backfill(&reference_args)).committed, 30);

    let sharded_args = args(&sharded);
    let sharded_args: Vec<&str> = sharded_args.iter().map(String::as_str).collect();
    // The three race to create the table: one creates it, the others commit on top of it.
    let commands = [
        (vec!["--shard", "0/3"], None, None),
        // Shard 1 dies (abort) after its first commit; restarted below.
        (vec!["--shard", "1/3"], None, Some("after-commit")),
        (vec!["--shards", "3"], Some("2"), None),
    ]
    .map(|(shard, index, fail_at)| {
        let mut command = sharded.json_command("backfill", &sharded_args);
        command.args(shard);
        if let Some(index) = index {
            command.env("JOB_COMPLETION_INDEX", index);
        }
        if let Some(point) = fail_at {
            command.env("LAKEWRITER_FAIL_AT", point);
        }
        command
    });
    let runs = run_at_once(commands);
    runs[1].assert_aborted_at("after-commit");
    for run in [&runs[0], &runs[2]] {
        let report = summary(run);
        assert_eq!(report.failed, 0, "{}", run.stderr);
        assert_eq!(report.days.len(), 10, "a third of the days");
    }
    let mut restarted = sharded_args.clone();
    restarted.extend(["--shard", "1/3"]);
    let again = summary(&sharded.backfill(&restarted));
    assert_eq!((again.failed, again.committed + again.skipped), (0, 10));
    assert_eq!(again.skipped, 1, "the day committed before the crash");

    assert_eq!(sharded.rows().await, reference.rows().await);
    let ledger = |lake: &Lake| -> Vec<(String, Option<String>, Option<u64>)> {
        let runs = lake.runs().into_iter();
        runs.map(|r| (r.date, r.fingerprint, r.rows)).collect()
    };
    assert_eq!(ledger(&sharded), ledger(&reference));
    let missing = sharded.backfill(&[
        "--shards",
        "3",
        "--input",
        "x/{date}.csv",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
    ]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("JOB_COMPLETION_INDEX"),
        "{}",
        missing.stderr
    );
}
