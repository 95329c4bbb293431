//! The scenario suite: what a data engineer relies on when rerunning days. Every scenario checks
//! the Delta log and the rows, and reads the table back with DuckDB too.

use std::collections::BTreeSet;

use crate::support::{ENGINES, Engine, Lake, Report, Rows, Status, repo_path};

pub const HEADER: &str = "order_id,customer_id,sku,quantity,unit_price,updated_at,date";

/// A CSV file body with the sales header.
pub fn csv(lines: &[&str]) -> String {
    let mut text = format!("{HEADER}\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Writes one day's input: orders `first_id`, `first_id + 1`, `first_id + 2`, each with
/// quantity `variant`, so a day's rows tell which input wrote it. Returns the path or URI.
pub fn day_input(lake: &Lake, date: &str, first_id: u32, variant: u32) -> String {
    let rows: Vec<String> = (0..3)
        .map(|k| format!("{},c,s,{variant},1.0,{date}T00:00:00Z,{date}", first_id + k))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    lake.input(&format!("{date}-v{variant}.csv"), &csv(&rows))
}

fn sample_sales() -> String {
    repo_path("examples/data/sales/*.csv")
}

fn sample_correction() -> String {
    repo_path("examples/data/corrections/2024-01-02.csv")
}

const DEDUP: [&str; 4] = ["--key", "order_id", "--order-by", "updated_at"];

fn write_sample(lake: &Lake, run_id: &str) -> Report {
    write_sample_expecting(lake, run_id, Status::Committed)
}

/// Writes the shipped late correction of 2024-01-02 as run `fix-02`, plus `extra` options.
fn write_correction(lake: &Lake, extra: &[&str], status: Status) -> Report {
    let correction = sample_correction();
    let mut args = vec![
        "--input",
        &correction,
        "--date",
        "2024-01-02",
        "--run-id",
        "fix-02",
    ];
    args.extend(DEDUP);
    args.extend_from_slice(extra);
    lake.write(&args).expect(status)
}

fn dates_of(paths: &[String]) -> BTreeSet<String> {
    paths
        .iter()
        .map(|p| p.split('/').next().unwrap().to_string())
        .collect()
}

pub async fn first_write_creates_the_table_in_one_commit(lake: &Lake) {
    let report = write_sample(lake, "first");
    assert_eq!(report.version, Some(0));
    assert_eq!(report.rows_read, 13);
    assert_eq!(report.rows_written, 10);
    assert_eq!(
        report.partitions,
        ["2024-01-01", "2024-01-02", "2024-01-03"]
    );
    assert_eq!(lake.versions().await, vec![0]);

    let commit = lake.commit(0).await;
    assert_eq!(commit.removed(), Vec::<String>::new());
    assert_eq!(
        dates_of(&commit.added()),
        BTreeSet::from([
            "date=2024-01-01".into(),
            "date=2024-01-02".into(),
            "date=2024-01-03".into()
        ])
    );
    assert_eq!(commit.info()["userMetadata"], "first");
    for add in commit.actions.iter().filter_map(|a| a.get("add")) {
        assert_eq!(add["tags"]["lakewriter.runId"], "first");
        assert_eq!(add["tags"]["lakewriter.fingerprint"], report.fingerprint);
    }

    let rows = lake.rows_agreed_by_readers().await;
    assert_eq!(rows.len(), 10);
    let parsed = rows.parsed();
    let by_id = |id: i64| {
        parsed
            .iter()
            .filter(|r| r["order_id"] == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(by_id(1002).len(), 1, "duplicate key collapsed");
    assert_eq!(
        by_id(1002)[0]["quantity"],
        3,
        "the later update of 1002 wins"
    );
    assert_eq!(by_id(1003).len(), 1, "exact duplicate collapsed");
}

pub async fn identical_rerun_makes_no_commit(lake: &Lake) {
    let first = write_sample(lake, "daily");
    let files_before = lake.data_files().await;
    let again = write_sample_expecting(lake, "daily", Status::Skipped);
    assert_eq!(again.version, first.version);
    assert_eq!(again.fingerprint, first.fingerprint);
    assert_eq!(again.rows_written, 0);
    assert_eq!(
        again.rows_read, 0,
        "an identical rerun is told from the input's bytes: no row is parsed"
    );
    assert_eq!(lake.versions().await, vec![0]);
    assert_eq!(
        lake.data_files().await,
        files_before,
        "a skipped rerun writes no file"
    );

    // Without a run id the id comes from scope and fingerprint, so a rerun matches too.
    let other = lake.sibling();
    let input = sample_sales();
    let args = [
        "--input",
        &input,
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
    ];
    let a = other.write(&args).expect(Status::Committed);
    let b = other.write(&args).expect(Status::Skipped);
    assert_eq!(a.run_id, b.run_id);
    assert_eq!(b.rows_read, 0);
}

fn write_sample_expecting(lake: &Lake, run_id: &str, status: Status) -> Report {
    write_sample_with(lake, run_id, &[], status)
}

/// Writes the shipped sample (three days, deduplicated) as `run_id`, plus `extra` options.
fn write_sample_with(lake: &Lake, run_id: &str, extra: &[&str], status: Status) -> Report {
    let input = sample_sales();
    let mut args = vec![
        "--input",
        &input,
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
    ];
    args.extend(DEDUP);
    args.extend(["--run-id", run_id]);
    args.extend_from_slice(extra);
    lake.write(&args).expect(status)
}

pub async fn corrected_day_is_replaced_in_one_commit(lake: &Lake) {
    write_sample(lake, "initial");
    let before = lake.rows().await;
    let day2_files_before: Vec<String> = lake
        .commit(0)
        .await
        .added()
        .into_iter()
        .filter(|p| p.starts_with("date=2024-01-02/"))
        .collect();

    let report = write_correction(lake, &[], Status::Committed);
    assert_eq!(report.version, Some(1));
    assert_eq!(lake.versions().await, vec![0, 1]);

    let commit = lake.commit(1).await;
    assert_eq!(
        commit.removed(),
        day2_files_before,
        "exactly day 2's old files are removed"
    );
    assert_eq!(
        dates_of(&commit.added()),
        BTreeSet::from(["date=2024-01-02".to_string()])
    );

    let after = lake.rows_agreed_by_readers().await;
    for day in ["2024-01-01", "2024-01-03"] {
        assert_eq!(
            after.filter("date", day),
            before.filter("date", day),
            "{day} untouched"
        );
    }
    let day2 = after.filter("date", "2024-01-02");
    let mut ids: Vec<i64> = day2
        .iter()
        .map(|r| r["order_id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1005, 1006, 1007, 1011]);
    let order_1007 = day2.iter().find(|r| r["order_id"] == 1007).unwrap();
    assert_eq!(
        order_1007["quantity"], 2,
        "the late correction of 1007 wins"
    );

    write_correction(lake, &[], Status::Skipped);
    assert_eq!(lake.versions().await, vec![0, 1]);

    // Time travel shows day 2 as it was before the replacement, in every engine.
    for engine in ENGINES {
        assert_eq!(
            lake.seen_by(engine, Some(0)).rows,
            before,
            "{engine:?} at version 0"
        );
    }
    let history = lake.seen_by(Engine::Spark, None).history;
    assert_eq!(
        history,
        vec![
            (1, "WRITE".to_string(), Some("fix-02".to_string())),
            (0, "WRITE".to_string(), Some("initial".to_string())),
        ],
        "DESCRIBE HISTORY shows each commit's run id"
    );
}

pub async fn a_backfill_of_earlier_days_leaves_later_days_alone(lake: &Lake) {
    write_sample(lake, "january");
    let january = lake.rows().await;
    for day in 1..=31 {
        let date = format!("2023-12-{day:02}");
        let rows: Vec<String> = (0..day % 4)
            .map(|k| {
                format!(
                    "{},c,s,{k},1.0,{date}T12:00:00Z,{date}",
                    900_000 + day * 10 + k
                )
            })
            .collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        lake.input(&format!("backfill/{date}.csv"), &csv(&rows));
    }
    let glob = format!("{}/backfill/*.csv", lake.inputs_prefix());
    let mut args = vec![
        "--input",
        &glob,
        "--from",
        "2023-12-01",
        "--to",
        "2023-12-31",
        "--run-id",
        "backfill-2023-12",
    ];
    args.extend(DEDUP);
    let report = lake.write(&args).expect(Status::Committed);
    assert_eq!(report.partitions.len(), 31);
    assert_eq!(
        lake.commit(1).await.removed(),
        Vec::<String>::new(),
        "a backfill into new days removes nothing"
    );

    let rows = lake.rows_agreed_by_readers().await;
    let per_date = rows.per_date();
    for day in 1..=31u64 {
        let expected = day % 4;
        let got = per_date
            .get(&format!("2023-12-{day:02}"))
            .copied()
            .unwrap_or(0);
        assert_eq!(got, expected, "2023-12-{day:02}");
    }
    for day in ["2024-01-01", "2024-01-02", "2024-01-03"] {
        assert_eq!(
            rows.filter("date", day),
            january.filter("date", day),
            "{day} untouched"
        );
    }
    lake.write(&args).expect(Status::Skipped);
}

pub async fn shuffled_and_split_input_gives_identical_content(lake: &Lake) {
    let lines: Vec<String> = ["2024-01-01", "2024-01-02", "2024-01-03"]
        .iter()
        .flat_map(|day| {
            std::fs::read_to_string(repo_path(&format!("examples/data/sales/{day}.csv")))
                .unwrap()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    write_sample(lake, "run");

    let other = lake.sibling();
    // Reverse the rows and deal them round-robin into four files with unrelated names.
    let mut reversed = lines.clone();
    reversed.reverse();
    for part in 0..4 {
        let chunk: Vec<&str> = reversed
            .iter()
            .skip(part)
            .step_by(4)
            .map(String::as_str)
            .collect();
        other.input(&format!("batch-{}.csv", 9 - part), &csv(&chunk));
    }
    let glob = format!("{}/batch-*.csv", other.inputs_prefix());
    let mut args = vec![
        "--input",
        &glob,
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
        "--run-id",
        "run",
    ];
    args.extend(DEDUP);
    other.write(&args).expect(Status::Committed);

    assert_eq!(lake.rows().await, other.rows().await);
    // Stronger than equal rows: the same Parquet bytes, day by day.
    for day in ["2024-01-01", "2024-01-02", "2024-01-03"] {
        assert_eq!(
            day_file_bytes(lake, day).await,
            day_file_bytes(&other, day).await,
            "{day}"
        );
    }
}

async fn day_file_bytes(lake: &Lake, day: &str) -> Vec<u8> {
    let files: Vec<String> = lake
        .data_files()
        .await
        .into_iter()
        .filter(|p| p.starts_with(&format!("date={day}/")))
        .collect();
    assert_eq!(files.len(), 1, "one file per day: {files:?}");
    lake.read_file(&files[0]).await
}

pub async fn input_beyond_the_memory_limit_spills_and_writes_the_same_rows(lake: &Lake) {
    let in_memory = write_sample(lake, "run");
    let spilled = lake.sibling();
    // 1 KiB holds a few rows: the sample is spread over many buckets on disk.
    let report = write_sample_with(
        &spilled,
        "run",
        &["--memory-limit", "1KiB"],
        Status::Committed,
    );
    assert_eq!(report.rows_read, in_memory.rows_read);
    assert_eq!(report.rows_written, in_memory.rows_written);
    assert_eq!(report.fingerprint, in_memory.fingerprint);
    assert_eq!(
        spilled.rows_agreed_by_readers().await,
        lake.rows().await,
        "deduplicated bucket by bucket, the same rows as in memory"
    );
    let files = spilled.data_files().await;
    for day in dates_of(&files) {
        let in_day = files
            .iter()
            .filter(|f| f.starts_with(&format!("{day}/")))
            .count();
        assert!(
            in_day > 1,
            "a spilled day is written as one file per bucket: {day} has {in_day}: {files:?}"
        );
    }
    // The limit shapes the files, not the content: a rerun without it is the same run.
    write_sample_with(&spilled, "run", &[], Status::Skipped);
}

pub async fn rerun_policies_behave_as_documented(lake: &Lake) {
    let day1 = lake.input(
        "day1.csv",
        &csv(&["1,c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01"]),
    );
    let day1_changed = lake.input(
        "day1b.csv",
        &csv(&["1,c,s,9,1.0,2024-01-01T00:00:00Z,2024-01-01"]),
    );
    let base = |input: &str, run: &str, policy: &str| -> Vec<String> {
        [
            "--input",
            input,
            "--date",
            "2024-01-01",
            "--run-id",
            run,
            "--on-rerun",
            policy,
        ]
        .map(str::to_string)
        .to_vec()
    };
    let run = |args: Vec<String>| lake.write(&args.iter().map(String::as_str).collect::<Vec<_>>());

    run(base(&day1, "a", "auto")).expect(Status::Committed);
    let rows = lake.rows().await;

    // fail: another run id on a written day is refused, with nothing changed.
    let refused = run(base(&day1_changed, "b", "fail"));
    assert_eq!(refused.code, 3, "fail policy exit code: {}", refused.stderr);
    assert!(
        refused.stderr.contains("2024-01-01") && refused.stderr.contains("'a'"),
        "{}",
        refused.stderr
    );
    assert_eq!(lake.versions().await, vec![0]);
    // fail: the same run with the same input is an idempotent rerun, not a refusal.
    run(base(&day1, "a", "fail")).expect(Status::Skipped);

    // skip: the same run id skips even though the input changed.
    run(base(&day1_changed, "a", "skip")).expect(Status::Skipped);
    assert_eq!(lake.rows().await, rows);
    assert_eq!(lake.versions().await, vec![0]);

    // auto: the same run id with changed input replaces.
    run(base(&day1_changed, "a", "auto")).expect(Status::Committed);
    assert_eq!(lake.rows().await.parsed()[0]["quantity"], 9);

    // replace: always a new commit, even for identical input, replacing the old file.
    let before = lake.data_files().await;
    let report = run(base(&day1_changed, "a", "replace")).expect(Status::Committed);
    assert_eq!(report.version, Some(2));
    let commit = lake.commit(2).await;
    assert_eq!(commit.removed().len(), 1);
    assert!(before.contains(&commit.removed()[0]));
    assert_eq!(
        lake.rows_agreed_by_readers().await.parsed()[0]["quantity"],
        9
    );
}

pub async fn out_of_scope_rows_are_rejected_with_nothing_written(lake: &Lake) {
    let input = lake.input(
        "mixed.csv",
        &csv(&[
            "1,c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01",
            "2,c,s,1,1.0,2024-01-05T00:00:00Z,2024-01-05",
        ]),
    );
    let run = lake.write(&[
        "--input",
        &input,
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("mixed.csv row 2"), "{}", run.stderr);
    assert!(run.stderr.contains("2024-01-05"), "{}", run.stderr);
    assert!(lake.versions().await.is_empty(), "no table was created");
    assert!(
        lake.data_files().await.is_empty(),
        "no data file was written"
    );

    write_sample(lake, "ok");
    let files = lake.data_files().await;
    let run = lake.write(&[
        "--input",
        &input,
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(lake.versions().await, vec![0]);
    assert_eq!(lake.data_files().await, files);
}

pub async fn dedup_ties_are_broken_by_the_whole_row(lake: &Lake) {
    let tie = [
        "7,c,s,2,1.0,2024-01-01T10:00:00Z,2024-01-01",
        "7,c,s,5,1.0,2024-01-01T10:00:00Z,2024-01-01",
    ];
    let forward = lake.input("forward.csv", &csv(&tie));
    let mut args = vec!["--input", &forward, "--date", "2024-01-01"];
    args.extend(DEDUP);
    lake.write(&args).expect(Status::Committed);
    let rows = lake.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows.parsed()[0]["quantity"],
        5,
        "the larger whole row wins a tie"
    );

    let other = lake.sibling();
    let backward = other.input("backward.csv", &csv(&[tie[1], tie[0]]));
    let mut args = vec!["--input", &backward, "--date", "2024-01-01"];
    args.extend(DEDUP);
    other.write(&args).expect(Status::Committed);
    assert_eq!(
        other.rows().await,
        rows,
        "input order does not pick the winner"
    );
}

pub async fn a_day_without_rows_ends_up_empty_and_recorded(lake: &Lake) {
    write_sample(lake, "full");
    let only_1_and_3 = lake.input(
        "sparse.csv",
        &csv(&[
            "1,c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01",
            "3,c,s,1,1.0,2024-01-03T00:00:00Z,2024-01-03",
        ]),
    );
    let args = [
        "--input",
        &only_1_and_3,
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-03",
        "--run-id",
        "sparse",
    ];
    lake.write(&args).expect(Status::Committed);

    let rows = lake.rows_agreed_by_readers().await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.filter("date", "2024-01-02").is_empty(),
        "day 2 was emptied"
    );
    let runs = lake.runs();
    let day2 = runs
        .iter()
        .find(|r| r.date == "2024-01-02")
        .expect("day 2 is recorded");
    assert_eq!(day2.run_id.as_deref(), Some("sparse"));
    assert_eq!(day2.rows, Some(0));

    lake.write(&args).expect(Status::Skipped);
    assert_eq!(lake.versions().await, vec![0, 1]);

    // A header-only file empties its day too.
    let header_only = lake.input("empty-day.csv", &csv(&[]));
    lake.write(&["--input", &header_only, "--date", "2024-01-01"])
        .expect(Status::Committed);
    assert!(lake.rows().await.filter("date", "2024-01-01").is_empty());
}

pub async fn runs_lists_the_last_run_of_each_partition(lake: &Lake) {
    let first = write_sample(lake, "initial");
    let fix = write_correction(lake, &[], Status::Committed);

    let runs = lake.runs();
    let summary: Vec<_> = runs
        .iter()
        .map(|r| (r.date.as_str(), r.run_id.as_deref(), r.version, r.rows))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("2024-01-01", Some("initial"), Some(0), Some(4)),
            ("2024-01-02", Some("fix-02"), Some(1), Some(4)),
            ("2024-01-03", Some("initial"), Some(0), Some(3)),
        ]
    );
    assert_eq!(runs[0].fingerprint.as_ref(), Some(&first.fingerprint));
    assert_eq!(runs[1].fingerprint.as_ref(), Some(&fix.fingerprint));
    assert!(runs[1].committed_at.as_ref().unwrap().ends_with('Z'));
}

pub async fn rerun_detection_survives_checkpoints_and_log_cleanup(lake: &Lake) {
    let day = |d: u32| format!("2024-02-{d:02}");
    let write_day = |d: u32| {
        let input = lake.input(
            &format!("{}.csv", day(d)),
            &csv(&[&format!("{d},c,s,1,1.0,{}T00:00:00Z,{}", day(d), day(d))]),
        );
        lake.write(&[
            "--input",
            &input,
            "--date",
            &day(d),
            "--run-id",
            &format!("run-{d}"),
        ])
    };
    for d in 1..=12 {
        write_day(d).expect(Status::Committed);
    }
    let log = lake.log_files().await;
    let checkpoint: u64 = log
        .iter()
        .find_map(|f| f.strip_suffix(".checkpoint.parquet")?.parse().ok())
        .unwrap_or_else(|| panic!("12 commits with an interval of 10 make a checkpoint: {log:?}"));
    // What log retention does: drop the commits the checkpoint covers.
    for version in 0..checkpoint {
        lake.delete_log_file(&format!("{version:020}.json")).await;
    }
    let runs = lake.runs();
    assert_eq!(runs.len(), 12);
    assert_eq!(runs[0].run_id.as_deref(), Some("run-1"));
    assert_eq!(runs[0].version, Some(0));
    write_day(1).expect(Status::Skipped);
    write_day(12).expect(Status::Skipped);
    assert_eq!(lake.rows_agreed_by_readers().await.len(), 12);
}

pub async fn partition_date_is_derived_from_a_timestamp(lake: &Lake) {
    let input = lake.input(
        "events.jsonl",
        concat!(
            r#"{"order_id": 1, "amount": 2.5, "updated_at": "2024-03-01T23:59:59Z"}"#,
            "\n",
            r#"{"order_id": 2, "amount": 1.0, "updated_at": "2024-03-02T00:00:01+00:00"}"#,
            "\n",
            r#"{"order_id": 3, "amount": 4.0, "updated_at": "2024-03-02T01:30:00+02:00"}"#,
            "\n",
        ),
    );
    let args = [
        "--input",
        &input,
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
        "--partition-from",
        "updated_at",
    ];
    lake.write(&args).expect(Status::Committed);
    let rows = lake.rows_agreed_by_readers().await;
    let days: Vec<(i64, String)> = rows
        .parsed()
        .iter()
        .map(|r| {
            (
                r["order_id"].as_i64().unwrap(),
                r["date"].as_str().unwrap().to_string(),
            )
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        days,
        vec![
            (1, "2024-03-01".into()),
            (2, "2024-03-02".into()),
            (3, "2024-03-01".into())
        ],
        "timestamps are cut to the UTC day"
    );
}

pub async fn parquet_and_json_inputs_match_csv(lake: &Lake) {
    use deltalake::arrow::array::{Int64Array, RecordBatch, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("date", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec!["a", "b"])),
            Arc::new(StringArray::from(vec!["2024-01-01", "2024-01-01"])),
        ],
    )
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let parquet = lake.input_bytes("in.parquet", &bytes);
    lake.write(&["--input", &parquet, "--date", "2024-01-01", "--key", "id"])
        .expect(Status::Committed);
    let from_parquet = lake.rows_agreed_by_readers().await;
    assert_eq!(
        from_parquet,
        Rows::from_values([
            serde_json::json!({"id": 1, "name": "a", "date": "2024-01-01"}),
            serde_json::json!({"id": 2, "name": "b", "date": "2024-01-01"}),
        ]),
        "the values the files hold"
    );

    let json = lake.sibling();
    let input = json.input(
        "in.json",
        "{\"id\":2,\"name\":\"b\",\"date\":\"2024-01-01\"}\n{\"id\":1,\"name\":\"a\",\"date\":\"2024-01-01\"}\n",
    );
    json.write(&["--input", &input, "--date", "2024-01-01", "--key", "id"])
        .expect(Status::Committed);
    assert_eq!(json.rows().await, from_parquet);

    let text = lake.sibling();
    let input = text.input("in.csv", "id,name,date\n1,a,2024-01-01\n2,b,2024-01-01\n");
    text.write(&["--input", &input, "--date", "2024-01-01", "--key", "id"])
        .expect(Status::Committed);
    assert_eq!(text.rows().await, from_parquet);
}

pub async fn concurrent_writers_on_different_days_all_commit(lake: &Lake) {
    let days: Vec<String> = (1..=8).map(|d| format!("2024-04-{d:02}")).collect();
    let runs = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let input = lake.input(
                &format!("{day}.csv"),
                &csv(&[&format!("{i},c,s,1,1.0,{day}T00:00:00Z,{day}")]),
            );
            ["--input", &input, "--date", day]
                .map(str::to_string)
                .to_vec()
        })
        .collect();
    let reports = race(lake, runs).await;
    let versions: BTreeSet<u64> = reports
        .iter()
        .inspect(|r| assert_eq!(r.status, Status::Committed, "{r:?}"))
        .map(|r| r.version.unwrap())
        .collect();
    assert_eq!(
        versions,
        (0..8).collect(),
        "each writer got its own version"
    );
    let rows = lake.rows_agreed_by_readers().await;
    for day in &days {
        assert_eq!(rows.filter("date", day).len(), 1, "{day} holds its row");
    }
}

/// Races `lakewriter write` processes (see `Lake::race_writes`) and returns their reports:
/// all must succeed, and no loser's files may be left behind.
async fn race(lake: &Lake, runs: Vec<Vec<String>>) -> Vec<Report> {
    let reports = lake
        .race_writes(&runs)
        .iter()
        .map(|run| run.parse())
        .collect();
    assert_eq!(
        lake.files_never_committed().await,
        Vec::<String>::new(),
        "the losers deleted the files they did not commit"
    );
    reports
}

pub async fn concurrent_first_writes_with_other_column_types_never_mix_them(lake: &Lake) {
    // Two runs on a table that does not exist yet infer different types for `quantity`, and
    // both have written their files when the first commits (the race's barrier). The other
    // must not add files of its own types: it exits 4 and deletes its files.
    for _ in 0..3 {
        let lake = lake.sibling();
        let whole = lake.input(
            "whole.csv",
            &csv(&["1,c,s,2,1.0,2024-01-01T00:00:00Z,2024-01-01"]),
        );
        let fraction = lake.input(
            "fraction.csv",
            &csv(&["2,c,s,2.5,1.0,2024-01-02T00:00:00Z,2024-01-02"]),
        );
        let runs = lake.race_writes(&[
            ["--input", &whole, "--date", "2024-01-01"]
                .map(str::to_string)
                .to_vec(),
            ["--input", &fraction, "--date", "2024-01-02"]
                .map(str::to_string)
                .to_vec(),
        ]);
        let mut codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
        codes.sort();
        assert_eq!(codes, [0, 4], "{runs:#?}");
        let loser = runs.iter().find(|r| r.code == 4).unwrap();
        assert!(
            loser.stderr.contains("other column types"),
            "{}",
            loser.stderr
        );

        // The table's type for `quantity`, as its log says, is the type of every file.
        let schema = lake.commit(0).await.metadata_schema();
        let quantity = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "quantity")
            .unwrap()["type"]
            .clone();
        let expected = match quantity.as_str() {
            Some("long") => arrow::datatypes::DataType::Int64,
            Some("double") => arrow::datatypes::DataType::Float64,
            other => panic!("quantity as {other:?}"),
        };
        let never_committed = lake.files_never_committed().await;
        assert_eq!(
            never_committed,
            Vec::<String>::new(),
            "the loser's files are gone"
        );
        for file in lake.data_files().await {
            let bytes = bytes::Bytes::from(lake.read_file(&file).await);
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .unwrap();
            let field = reader.schema().field_with_name("quantity").unwrap().clone();
            assert_eq!(field.data_type(), &expected, "{file} has the table's type");
        }
    }
}

pub async fn concurrent_identical_runs_commit_once(lake: &Lake) {
    let input = lake.input(
        "day.csv",
        &csv(&["1,c,s,1,1.0,2024-05-01T00:00:00Z,2024-05-01"]),
    );
    let args: Vec<String> = [
        "--input",
        &input,
        "--date",
        "2024-05-01",
        "--run-id",
        "nightly",
    ]
    .map(str::to_string)
    .to_vec();
    let reports = race(lake, vec![args; 8]).await;
    let statuses: Vec<Status> = reports.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == Status::Committed).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == Status::Skipped).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(lake.versions().await, vec![0], "exactly one commit");
    assert_eq!(lake.rows().await.len(), 1);
    assert_eq!(
        lake.data_files().await.len(),
        1,
        "the losers cleaned up their files"
    );
}

pub async fn concurrent_different_inputs_for_one_day_leave_exactly_one(lake: &Lake) {
    let runs: Vec<Vec<String>> = (1..=4)
        .map(|i| {
            let rows: Vec<String> = (0..3)
                .map(|k| {
                    format!(
                        "{},c{i},s,{i},1.0,2024-06-01T00:00:00Z,2024-06-01",
                        i * 10 + k
                    )
                })
                .collect();
            let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
            let input = lake.input(&format!("writer-{i}.csv"), &csv(&rows));
            [
                "--input",
                &input,
                "--date",
                "2024-06-01",
                "--run-id",
                &format!("writer-{i}"),
            ]
            .map(str::to_string)
            .to_vec()
        })
        .collect();
    race(lake, runs).await;
    let rows = lake.rows_agreed_by_readers().await.parsed();
    assert_eq!(rows.len(), 3, "one writer's rows, complete: {rows:?}");
    let quantity = rows[0]["quantity"].as_i64().unwrap();
    assert!(
        rows.iter().all(|r| r["quantity"] == quantity),
        "rows of one writer only: {rows:?}"
    );
    let runs = lake.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].run_id,
        Some(format!("writer-{quantity}")),
        "the ledger names that writer"
    );
    assert_eq!(runs[0].rows, Some(3));
}

pub async fn dry_run_reports_and_changes_nothing(lake: &Lake) {
    write_sample(lake, "initial");
    let files = lake.data_files().await;
    let report = write_correction(lake, &["--dry-run"], Status::Planned);
    assert_eq!(report.planned_action.as_deref(), Some("replace"));
    assert_eq!(report.files_removed, 1);
    assert_eq!(report.version, Some(0));
    assert_eq!(lake.versions().await, vec![0]);
    assert_eq!(lake.data_files().await, files);

    let skip = write_sample_with(lake, "initial", &["--dry-run"], Status::Planned);
    assert_eq!(skip.planned_action.as_deref(), Some("skip"));
}

crate::support::on_backends!(
    [local: Local, s3: S3, s3_inputs: S3Inputs],
    [
        first_write_creates_the_table_in_one_commit,
        identical_rerun_makes_no_commit,
        corrected_day_is_replaced_in_one_commit,
        a_backfill_of_earlier_days_leaves_later_days_alone,
        shuffled_and_split_input_gives_identical_content,
        rerun_policies_behave_as_documented,
        out_of_scope_rows_are_rejected_with_nothing_written,
        dedup_ties_are_broken_by_the_whole_row,
        a_day_without_rows_ends_up_empty_and_recorded,
        runs_lists_the_last_run_of_each_partition,
        rerun_detection_survives_checkpoints_and_log_cleanup,
        partition_date_is_derived_from_a_timestamp,
        parquet_and_json_inputs_match_csv,
        concurrent_writers_on_different_days_all_commit,
        concurrent_identical_runs_commit_once,
        concurrent_different_inputs_for_one_day_leave_exactly_one,
        dry_run_reports_and_changes_nothing,
        concurrent_first_writes_with_other_column_types_never_mix_them,
        input_beyond_the_memory_limit_spills_and_writes_the_same_rows,
    ]
);

#[tokio::test]
async fn a_new_tables_later_files_are_read_with_the_first_files_types() {
    // The first file (by name) makes `sku` text; a later file whose skus look like numbers
    // keeps them as written, leading zeros included, instead of reading them as numbers.
    let lake = Lake::local();
    lake.input(
        "a.csv",
        &csv(&["1,10,abc,1,2.5,2024-01-01T00:00:00Z,2024-01-01"]),
    );
    lake.input(
        "b.csv",
        &csv(&["2,20,007,2,3,2024-01-01T01:00:00Z,2024-01-01"]),
    );
    let inputs = format!("{}/*.csv", lake.inputs_prefix());
    lake.write(&["--input", &inputs, "--date", "2024-01-01"])
        .expect(Status::Committed);
    let rows = lake.rows().await.parsed();
    let sku_of = |id: i64| rows.iter().find(|r| r["order_id"] == id).unwrap()["sku"].clone();
    assert_eq!(sku_of(1), "abc");
    assert_eq!(sku_of(2), "007");

    // A column the first file leaves empty becomes text, and a later file's values land there.
    let sparse = lake.sibling();
    sparse.input("a.csv", "id,note,date\n1,,2024-01-01\n");
    sparse.input("b.csv", "id,note,date\n2,007,2024-01-01\n");
    let inputs = format!("{}/*.csv", sparse.inputs_prefix());
    sparse
        .write(&["--input", &inputs, "--date", "2024-01-01"])
        .expect(Status::Committed);
    let rows = sparse.rows().await.parsed();
    let note = rows.iter().find(|r| r["id"] == 2).unwrap()["note"].clone();
    assert_eq!(note, "007");
}

#[tokio::test]
async fn a_new_tables_types_come_from_all_rows_even_when_its_first_rows_mislead() {
    // The types are sampled from the first 20,480 rows; one row holds a decimal in a column
    // of integers and a time in a column of dates: the first row past the sample (inside
    // the first decoded batch), or the last row. The table must be what inferring every row
    // gives: a double and a timestamp column, no value cut.
    let lake = Lake::local();
    let body = |misfit: usize| {
        let mut body = String::from("id,amount,d,date\n");
        for id in 0..=70_000 {
            body += &match id == misfit {
                true => format!("{id},2.5,2024-01-01T10:30:00Z,2024-01-01\n"),
                false => format!("{id},{id},2024-01-01,2024-01-01\n"),
            };
        }
        body
    };
    for misfit in [20_480, 70_000] {
        let lake = lake.sibling();
        let input = lake.input("mislead.csv", &body(misfit));
        let report = lake
            .write(&["--input", &input, "--date", "2024-01-01"])
            .expect(Status::Committed);
        assert_eq!(report.rows_written, 70_001);
        let rows = lake.rows().await.parsed();
        let odd = rows.iter().find(|r| r["id"] == misfit).unwrap();
        assert_eq!(odd["amount"], 2.5, "misfit at {misfit}");
        assert_eq!(odd["d"], "2024-01-01T10:30:00.000000Z");
        let first = rows.iter().find(|r| r["id"] == 7).unwrap();
        assert_eq!(first["amount"], 7.0);
        assert_eq!(first["d"], "2024-01-01T00:00:00.000000Z");
    }

    // The same rows without the misfit or the last: the sample is right, integers and dates.
    let faithful = lake.sibling();
    let input = faithful.input(
        "plain.csv",
        body(usize::MAX)
            .lines()
            .take(70_001)
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    );
    faithful
        .write(&["--input", &input, "--date", "2024-01-01"])
        .expect(Status::Committed);
    let rows = faithful.rows().await.parsed();
    let first = rows.iter().find(|r| r["id"] == 7).unwrap();
    assert_eq!(first["amount"], 7);
    assert_eq!(first["d"], "2024-01-01");
}
