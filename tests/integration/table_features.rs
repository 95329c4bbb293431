//! Tables that Spark made and keeps maintaining: for each Delta table feature, Spark 4.0
//! creates a date-partitioned table with it (and uses it: a DELETE that leaves deletion
//! vectors, a constraint added later, a renamed column), then lakewriter and Spark take turns
//! writing, and after every step Spark (and DuckDB, and delta-rs) must read exactly the rows a
//! model of the table says. A feature lakewriter does not follow must be refused with exit 2,
//! a message naming it, and the table untouched. Every table is built in the reader harness's
//! one Spark session, so a case costs seconds, not a JVM start.

use serde_json::{Value, json};

use crate::support::{Backend, Engine, Lake, Rows, Run, Status};

const DAY1: &str = "2025-10-01";
const DAY2: &str = "2025-10-02";

/// One row of the tables here: `id`, the quantity column (named `qty` unless renamed) and
/// `date`.
fn row(id: i64, qty: i64, date: &str, qty_column: &str) -> Value {
    json!({"id": id, qty_column: qty, "date": date})
}

/// A CSV input of rows `(id, qty)` for `date`.
fn csv(rows: &[(i64, i64)], date: &str, qty_column: &str) -> String {
    let mut text = format!("id,{qty_column},date\n");
    for (id, qty) in rows {
        text.push_str(&format!("{id},{qty},{date}\n"));
    }
    text
}

/// Spark creates the table: `id BIGINT NOT NULL, qty INT, date DATE` partitioned by date with
/// `properties`, 10 rows on each of two days (ids 0-9 on DAY1, 10-19 on DAY2, qty = id % 5 + 1),
/// then runs `then` (`{t}` is the table).
fn spark_creates(lake: &Lake, properties: &str, then: &[&str]) {
    let values: Vec<String> = (0..20)
        .map(|id| {
            let day = if id < 10 { DAY1 } else { DAY2 };
            format!("({id}, {}, DATE'{day}')", id % 5 + 1)
        })
        .collect();
    let insert = format!("INSERT INTO {{t}} VALUES {}", values.join(", "));
    let mut statements = vec![insert.as_str()];
    statements.extend_from_slice(then);
    spark_creates_with(
        lake,
        "id BIGINT NOT NULL, qty INT, date DATE",
        properties,
        &statements,
    );
}

/// Spark creates a table of `columns` partitioned by date with `properties`, then runs
/// `then`. The table is registered under a name with the location (path identifiers,
/// `delta.`path``, refuse generated and identity columns in Spark SQL).
fn spark_creates_with(lake: &Lake, columns: &str, properties: &str, then: &[&str]) {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let create = format!(
        "CREATE TABLE {name} ({columns}) USING delta PARTITIONED BY (date) LOCATION '{}' \
         TBLPROPERTIES ({properties})",
        lake.table.replace("s3://", "s3a://")
    );
    let mut statements = vec![create.as_str()];
    statements.extend_from_slice(then);
    lake.spark_sql(&statements);
}

/// Asserts that Spark, delta-rs (and DuckDB when it can read the table) see exactly `model`.
async fn assert_reads(lake: &Lake, model: &Rows, duckdb: bool, step: &str) {
    let spark = lake.seen_by(Engine::Spark, None).rows;
    assert_eq!(&spark, model, "Spark after {step}");
    assert_eq!(&lake.rows().await, model, "delta-rs after {step}");
    if duckdb {
        assert_eq!(
            &lake.seen_by(Engine::DuckDb, None).rows,
            model,
            "DuckDB after {step}"
        );
    }
}

/// The model's rows with `date`'s rows replaced by `rows`.
fn replace_day(model: &Rows, date: &str, rows: impl IntoIterator<Item = Value>) -> Rows {
    let kept = model.parsed().into_iter().filter(|r| r["date"] != date);
    Rows::from_values(kept.chain(rows))
}

/// Merges id 11 (to quantity 42) and a new id 300 into DAY2. Id 11 survives every DELETE in
/// these tests (11 % 3 != 0).
fn merge_into_day2(lake: &Lake, qty_column: &str) -> Run {
    let input = lake.input("merge.csv", &csv(&[(11, 42), (300, 5)], DAY2, qty_column));
    lake.write(&[
        "--input", &input, "--date", DAY2, "--key", "id", "--mode", "merge",
    ])
}

/// What "nothing changed" compares: the log's versions and every data file under the table.
async fn table_state(lake: &Lake) -> (Vec<u64>, Vec<String>) {
    (lake.versions().await, lake.data_files().await)
}

/// Asserts that a run exited 2 with every one of `parts` in its message.
fn refused_with(run: &Run, parts: &[&str]) {
    assert_eq!(run.code, 2, "{}", run.stderr);
    for part in parts {
        assert!(run.stderr.contains(part), "{part} in {}", run.stderr);
    }
}

/// A feature lakewriter supports, as Spark users set it up.
struct Supported {
    /// TBLPROPERTIES of the CREATE TABLE.
    properties: &'static str,
    /// Statements after the first insert.
    then: &'static [&'static str],
    /// The quantity column's name once `then` ran.
    qty: &'static str,
    /// Whether DuckDB's delta extension reads such tables (it reads the partition column of
    /// column-mapped tables as NULL, its own limitation: the same on a table only Spark wrote).
    duckdb: bool,
    /// Where the table lives.
    backend: Backend,
}

/// Spark creates the table; lakewriter refuses Spark's day under `fail`, replaces it, skips
/// the rerun, refuses another run id under `fail`; Spark replaces the day (replaceWhere);
/// lakewriter's rerun replaces Spark's rows again; a merge updates and inserts on the other
/// day, and its rerun is skipped; a dry run changes nothing. The model holds after every step.
async fn supported_feature_round_trip(case: Supported) -> Lake {
    let lake = Lake::new(case.backend);
    spark_creates(&lake, case.properties, case.then);
    let mut model = lake.seen_by(Engine::Spark, None).rows;
    assert!(model.len() > 10, "Spark's rows are there: {model:?}");
    let ours = [(100, 7), (101, 8), (102, 9)];
    let input = lake.input("day1.csv", &csv(&ours, DAY1, case.qty));
    let ours_rows = || ours.iter().map(|(id, q)| row(*id, *q, DAY1, case.qty));
    let write = |extra: &[&str]| {
        let mut args = vec!["--input", &input, "--date", DAY1, "--key", "id"];
        args.extend_from_slice(extra);
        lake.write(&args)
    };

    let before = lake.versions().await;
    let refused = write(&["--on-rerun", "fail"]);
    assert_eq!(
        refused.code, 3,
        "Spark's rows are another writer's: {}",
        refused.stderr
    );
    assert_eq!(lake.versions().await, before);

    let dry = write(&["--dry-run"]);
    assert_eq!(
        dry.expect(Status::Planned).planned_action.as_deref(),
        Some("replace")
    );
    assert_eq!(lake.versions().await, before, "a dry run commits nothing");

    let first = write(&[]).expect(Status::Committed).version.unwrap();
    model = replace_day(&model, DAY1, ours_rows());
    assert_reads(&lake, &model, case.duckdb, "lakewriter replaced DAY1").await;
    let runs: Vec<(String, bool)> = lake
        .runs()
        .into_iter()
        .map(|r| (r.date, r.run_id.is_some()))
        .collect();
    let expected = [(DAY1.to_string(), true), (DAY2.to_string(), false)];
    assert_eq!(runs, expected, "runs");

    let again = write(&[]);
    assert_eq!(again.expect(Status::Skipped).version, Some(first));
    let other = write(&["--on-rerun", "fail", "--run-id", "someone-else"]);
    assert_eq!(other.code, 3, "{}", other.stderr);

    lake.spark_sql(&[&format!(
        "INSERT INTO {{t}} REPLACE WHERE date = DATE'{DAY1}' VALUES (200, 1, DATE'{DAY1}')"
    )]);
    model = replace_day(&model, DAY1, [row(200, 1, DAY1, case.qty)]);
    assert_reads(&lake, &model, case.duckdb, "Spark's replaceWhere").await;

    write(&[]).expect(Status::Committed);
    model = replace_day(&model, DAY1, ours_rows());
    assert_reads(&lake, &model, case.duckdb, "lakewriter took DAY1 back").await;

    let merged = merge_into_day2(&lake, case.qty)
        .expect(Status::Committed)
        .version;
    let again = merge_into_day2(&lake, case.qty);
    assert_eq!(again.expect(Status::Skipped).version, merged);
    let day2 = model.filter("date", DAY2).into_iter().map(|mut r| {
        if r["id"] == 11 {
            r[case.qty] = json!(42);
        }
        r
    });
    let day2: Vec<Value> = day2.chain([row(300, 5, DAY2, case.qty)]).collect();
    model = replace_day(&model, DAY2, day2);
    assert_reads(&lake, &model, case.duckdb, "lakewriter's merge").await;
    lake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_vectors_are_removed_with_their_files() {
    supported_feature_round_trip(Supported {
        properties: "'delta.enableDeletionVectors' = 'true'",
        then: &["DELETE FROM {t} WHERE id % 3 = 0"],
        qty: "qty",
        duckdb: true,
        backend: Backend::Local,
    })
    .await;
}

/// The same on S3 (LocalStack): Spark creates and deletes through s3a, lakewriter writes
/// through object_store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_vectors_are_removed_with_their_files_on_s3() {
    supported_feature_round_trip(Supported {
        properties: "'delta.enableDeletionVectors' = 'true'",
        then: &["DELETE FROM {t} WHERE id % 3 = 0"],
        qty: "qty",
        duckdb: true,
        backend: Backend::S3,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_mapping_by_name_writes_physical_names() {
    supported_feature_round_trip(Supported {
        properties: "'delta.columnMapping.mode' = 'name'",
        then: &["ALTER TABLE {t} RENAME COLUMN qty TO `quantity sold`"],
        qty: "quantity sold",
        duckdb: false,
        backend: Backend::Local,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_mapping_by_id_writes_field_ids() {
    supported_feature_round_trip(Supported {
        properties: "'delta.columnMapping.mode' = 'id'",
        then: &[],
        qty: "qty",
        duckdb: false,
        backend: Backend::Local,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_constraints_pass_for_rows_that_satisfy_them() {
    supported_feature_round_trip(Supported {
        properties: "'delta.enableDeletionVectors' = 'false'",
        then: &["ALTER TABLE {t} ADD CONSTRAINT qty_positive CHECK (qty > 0)"],
        qty: "qty",
        duckdb: true,
        backend: Backend::Local,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_data_feed_tables_take_replacements_and_merges() {
    supported_feature_round_trip(Supported {
        properties: "'delta.enableChangeDataFeed' = 'true'",
        then: &[],
        qty: "qty",
        duckdb: true,
        backend: Backend::Local,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_checkpoint_tables_are_written_without_classic_checkpoints() {
    let lake = supported_feature_round_trip(Supported {
        properties: "'delta.checkpointPolicy' = 'v2', 'delta.checkpointInterval' = '1'",
        then: &[],
        qty: "qty",
        duckdb: true,
        backend: Backend::Local,
    })
    .await;
    let latest = *lake.versions().await.last().unwrap();
    let classic = format!("{latest:020}.checkpoint.parquet");
    assert!(
        !lake.log_files().await.contains(&classic),
        "no classic checkpoint for lakewriter's merge, though the interval is 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_lakewriter_writes_keep_deletion_vectors_and_column_mapping() {
    // A checkpoint at every commit: Spark reads the table from lakewriter's checkpoints.
    let lake = supported_feature_round_trip(Supported {
        properties: "'delta.enableDeletionVectors' = 'true', 'delta.columnMapping.mode' = \
                     'name', 'delta.checkpointInterval' = '1'",
        then: &[
            "DELETE FROM {t} WHERE id % 3 = 0",
            "ALTER TABLE {t} RENAME COLUMN qty TO quantity",
        ],
        qty: "quantity",
        duckdb: false,
        backend: Backend::Local,
    })
    .await;
    let latest = *lake.versions().await.last().unwrap();
    let checkpoint = format!("{latest:020}.checkpoint.parquet");
    assert!(
        lake.log_files().await.contains(&checkpoint),
        "lakewriter checkpointed its merge, the last commit"
    );
}

/// Rows breaking a CHECK constraint, or NULL in a NOT NULL column, are refused with exit 2
/// naming the constraint, the file and the row, in both modes; nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_breaking_constraints_are_refused_with_nothing_written() {
    let lake = Lake::local();
    spark_creates_with(
        &lake,
        "id BIGINT, qty INT, note STRING NOT NULL, date DATE",
        "'delta.enableDeletionVectors' = 'true'",
        &[
            "INSERT INTO {t} VALUES (1, 1, 'x', DATE'2025-10-01')",
            "ALTER TABLE {t} ADD CONSTRAINT qty_positive CHECK (qty > 0)",
        ],
    );
    let before = table_state(&lake).await;
    let zero = lake.input(
        "zero.csv",
        "id,qty,date,note\n1,5,2025-10-01,a\n2,0,2025-10-01,b\n",
    );
    let no_note = lake.input(
        "no_note.csv",
        "id,qty,date,note\n1,5,2025-10-01,a\n2,6,2025-10-01,\n",
    );
    for mode in ["replace", "merge"] {
        let run = lake.write(&[
            "--input", &zero, "--date", DAY1, "--key", "id", "--mode", mode,
        ]);
        refused_with(
            &run,
            &["qty_positive", "qty > 0", "zero.csv row 2", "qty = 0"],
        );
        let run = lake.write(&[
            "--input", &no_note, "--date", DAY1, "--key", "id", "--mode", mode,
        ]);
        refused_with(&run, &["NOT NULL column 'note'", "no_note.csv row 2"]);
    }
    assert_eq!(table_state(&lake).await, before);
}

/// Spark tables are often partitioned by a STRING day: lakewriter replaces and merges such
/// days as the dates they hold, and Spark and DuckDB read the model's rows (days as text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_day_partitions_take_replacements_and_merges() {
    let lake = Lake::local();
    spark_creates_with(
        &lake,
        "id BIGINT, qty INT, date STRING",
        "'delta.enableDeletionVectors' = 'true'",
        &[
            "INSERT INTO {t} VALUES (1, 1, '2025-10-01'), (2, 2, '2025-10-01'), \
             (11, 3, '2025-10-02')",
            "DELETE FROM {t} WHERE id = 2",
        ],
    );
    let input = lake.input("day1.csv", &csv(&[(100, 7), (101, 8)], DAY1, "qty"));
    lake.write(&["--input", &input, "--date", DAY1, "--key", "id"])
        .expect(Status::Committed);
    merge_into_day2(&lake, "qty").expect(Status::Committed);
    let model = Rows::from_values([
        row(100, 7, DAY1, "qty"),
        row(101, 8, DAY1, "qty"),
        row(11, 42, DAY2, "qty"),
        row(300, 5, DAY2, "qty"),
    ]);
    assert_reads(&lake, &model, true, "lakewriter on STRING days").await;
    let written = lake.commit(*lake.versions().await.last().unwrap()).await;
    let days: Vec<Value> = written
        .actions
        .iter()
        .filter_map(|a| a.pointer("/add/partitionValues/date").cloned())
        .collect();
    assert!(
        !days.is_empty() && days.iter().all(|d| d == DAY2),
        "{days:?}"
    );
}

/// Spark's CHAR(n) and VARCHAR(n) columns: a longer value is refused as Spark refuses it,
/// naming the column, the file and the row; values that fit are written and Spark reads them
/// (CHAR padded to its length, as Spark pads on read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn char_and_varchar_lengths_are_enforced() {
    let lake = Lake::local();
    spark_creates_with(
        &lake,
        "id BIGINT, code CHAR(3), name VARCHAR(5), date DATE",
        "'delta.enableDeletionVectors' = 'false'",
        &[],
    );
    let before = lake.versions().await;
    let long = lake.input(
        "long.csv",
        "id,code,name,date
1,ab,abcde,2025-10-01
2,a,abcdef,2025-10-01
",
    );
    let run = lake.write(&["--input", &long, "--date", DAY1, "--key", "id"]);
    refused_with(
        &run,
        &[
            "VARCHAR(5) length of column 'name'",
            "long.csv row 2",
            "name = abcdef",
        ],
    );
    assert_eq!(lake.versions().await, before);
    let fits = lake.input(
        "fits.csv",
        "id,code,name,date
1,ab,abcde,2025-10-01
",
    );
    lake.write(&["--input", &fits, "--date", DAY1, "--key", "id"])
        .expect(Status::Committed);
    let spark = lake.seen_by(Engine::Spark, None).rows;
    let model = Rows::from_values([json!({"id": 1, "code": "ab ", "name": "abcde", "date": DAY1})]);
    assert_eq!(spark, model);
}

/// Spark's change data feed shows a replaced day as the old rows deleted and the new ones
/// inserted, and a merge as update pre- and post-images plus inserts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_data_feed_shows_replaced_days_and_merges() {
    let lake = Lake::local();
    spark_creates(&lake, "'delta.enableChangeDataFeed' = 'true'", &[]);
    let input = lake.input("day1.csv", &csv(&[(100, 7), (101, 8)], DAY1, "qty"));
    let version = lake
        .write(&["--input", &input, "--date", DAY1, "--key", "id"])
        .expect(Status::Committed)
        .version
        .unwrap();
    let changes = |version: u64| -> Vec<(String, i64)> {
        let mut seen: Vec<(String, i64)> = lake
            .spark_changes(version)
            .iter()
            .filter(|c| c["_commit_version"] == version)
            .map(|c| {
                (
                    c["_change_type"].as_str().unwrap().to_string(),
                    c["id"].as_i64().unwrap(),
                )
            })
            .collect();
        seen.sort();
        seen
    };
    let mut expected: Vec<(String, i64)> = (0..10).map(|id| ("delete".to_string(), id)).collect();
    expected.extend([("insert".to_string(), 100), ("insert".to_string(), 101)]);
    assert_eq!(changes(version), expected);

    let version = merge_into_day2(&lake, "qty")
        .expect(Status::Committed)
        .version
        .unwrap();
    let expected = [
        ("insert", 300),
        ("update_postimage", 11),
        ("update_preimage", 11),
    ]
    .map(|(kind, id)| (kind.to_string(), id));
    assert_eq!(changes(version), expected);
}

/// `vacuum --retain-hours 0 --force` keeps the deletion-vector files that live files
/// reference: Spark reads the same rows before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_the_deletion_vectors_live_files_use() {
    let lake = Lake::local();
    spark_creates(
        &lake,
        "'delta.enableDeletionVectors' = 'true'",
        &["DELETE FROM {t} WHERE id % 3 = 0"],
    );
    let deleted = lake.commit(2).await;
    let with_vectors = deleted
        .actions
        .iter()
        .filter(|a| a.pointer("/add/deletionVector").is_some())
        .count();
    assert!(with_vectors >= 2, "Spark's DELETE left deletion vectors");
    let input = lake.input("day1.csv", &csv(&[(100, 7)], DAY1, "qty"));
    lake.write(&["--input", &input, "--date", DAY1, "--key", "id"])
        .expect(Status::Committed);
    let model = lake.seen_by(Engine::Spark, None).rows;
    assert_eq!(
        model.per_date()[DAY2],
        7,
        "DAY2 keeps its deletion vector: 12, 15, 18 gone"
    );
    let deleted = lake.vacuum(&["--retain-hours", "0", "--force"]).files;
    assert!(!deleted.is_empty(), "Spark's removed DAY1 files go");
    assert!(
        deleted.iter().all(|f| !f.contains("deletion_vector")),
        "{deleted:?}"
    );
    assert_reads(&lake, &model, true, "vacuum").await;
}

/// A feature lakewriter does not follow: Spark sets the table up (`create`), then every
/// write (both modes, their dry runs, a backfill) and vacuum exit 2 naming the feature, and
/// nothing is written or committed.
fn refused(create: impl FnOnce(&Lake), feature: &str) {
    let lake = Lake::local();
    create(&lake);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let before = runtime.block_on(table_state(&lake));
    let input = lake.input(&format!("{DAY1}.csv"), &csv(&[(100, 7)], DAY1, "qty"));
    let template = input.replace(DAY1, "{date}");
    let table = lake.table.clone();
    let named = |command: &[&str]| {
        let run = Run::of(lake.command(command).output().unwrap());
        refused_with(&run, &[&format!("'{feature}'")]);
    };
    for extra in [
        &["--mode", "replace"][..],
        &["--mode", "merge"],
        &["--dry-run"],
        &["--mode", "merge", "--dry-run"],
    ] {
        let mut args = vec![
            "write", "--table", &table, "--input", &input, "--date", DAY1,
        ];
        args.extend_from_slice(&["--key", "id"]);
        args.extend_from_slice(extra);
        named(&args);
    }
    named(&[
        "backfill", "--table", &table, "--input", &template, "--from", DAY1, "--to", DAY2, "--key",
        "id",
    ]);
    // delta-rs's vacuum commits too, so it is refused for the same features; generated
    // columns only stop writes of rows.
    if feature != "generatedColumns" {
        named(&[
            "vacuum",
            "--table",
            &table,
            "--retain-hours",
            "0",
            "--force",
        ]);
    }
    let after = runtime.block_on(table_state(&lake));
    assert_eq!(after, before, "{feature}: nothing written");
}

/// A table feature switched on by a table property, on the usual table.
fn refused_property(properties: &str, then: &[&str], feature: &str) {
    refused(|lake| spark_creates(lake, properties, then), feature);
}

/// A table whose `special` column DeltaTableBuilder declares (generated or identity).
fn built_with(lake: &Lake, special: Value) {
    lake.spark_build_table(json!({
        "columns": [
            special,
            {"name": "qty", "type": "INT"},
            {"name": "date", "type": "DATE"},
        ],
        "partitioned_by": ["date"],
    }));
}

#[test]
fn row_tracking_is_refused() {
    refused_property("'delta.enableRowTracking' = 'true'", &[], "rowTracking");
}

#[test]
fn identity_columns_are_refused() {
    refused(
        |lake| {
            built_with(
                lake,
                json!({"name": "id", "type": "BIGINT", "identity": true}),
            )
        },
        "identityColumns",
    );
}

#[test]
fn generated_columns_are_refused() {
    refused(
        |lake| {
            built_with(
                lake,
                json!({"name": "id", "type": "INT", "generated": "qty * 2"}),
            )
        },
        "generatedColumns",
    );
}

#[test]
fn liquid_clustering_is_refused() {
    refused(
        |lake| {
            lake.spark_sql(&[&format!(
                "CREATE TABLE t_{} (id BIGINT, qty INT, date DATE) USING delta CLUSTER BY (date) \
                 LOCATION '{}'",
                uuid::Uuid::new_v4().simple(),
                lake.table
            )]);
        },
        "clustering",
    );
}

#[test]
fn type_widening_is_refused() {
    refused_property("'delta.enableTypeWidening' = 'true'", &[], "typeWidening");
}

#[test]
fn in_commit_timestamps_are_refused() {
    refused_property(
        "'delta.enableInCommitTimestamps' = 'true'",
        &[],
        "inCommitTimestamp",
    );
}

#[test]
fn column_defaults_are_refused() {
    refused_property(
        "'delta.feature.allowColumnDefaults' = 'supported'",
        &["ALTER TABLE {t} ALTER COLUMN qty SET DEFAULT 1"],
        "allowColumnDefaults",
    );
}

#[test]
fn vacuum_protocol_check_is_refused() {
    refused_property(
        "'delta.feature.vacuumProtocolCheck' = 'supported'",
        &[],
        "vacuumProtocolCheck",
    );
}

/// An append-only table takes new days, refuses replacing a day that holds rows, and refuses
/// merges; nothing is written when it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_only_tables_take_new_days_only() {
    let lake = Lake::local();
    spark_creates(&lake, "'delta.appendOnly' = 'true'", &[]);
    let before = table_state(&lake).await;
    let day1 = lake.input("day1.csv", &csv(&[(100, 7)], DAY1, "qty"));
    for mode in ["replace", "merge"] {
        let run = lake.write(&[
            "--input", &day1, "--date", DAY1, "--key", "id", "--mode", mode,
        ]);
        refused_with(&run, &["'appendOnly'"]);
    }
    assert_eq!(table_state(&lake).await, before);
    let day3 = lake.input("day3.csv", &csv(&[(100, 7)], "2025-10-03", "qty"));
    lake.write(&["--input", &day3, "--date", "2025-10-03", "--key", "id"])
        .expect(Status::Committed);
    let model = lake.seen_by(Engine::Spark, None).rows;
    assert_eq!(model.per_date()["2025-10-03"], 1);
    assert_eq!(model.len(), 21);
}

/// A Spark table with a TIMESTAMP_NTZ column: lakewriter writes wall-clock times that Spark
/// reads back unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_ntz_columns_keep_their_wall_clock_values() {
    let lake = Lake::local();
    spark_creates_with(
        &lake,
        "id BIGINT, seen_at TIMESTAMP_NTZ, date DATE",
        "'delta.enableDeletionVectors' = 'false'",
        &["INSERT INTO {t} VALUES (1, TIMESTAMP_NTZ'2025-10-01 23:30:00', DATE'2025-10-01')"],
    );
    let input = lake.input(
        "day1.csv",
        "id,seen_at,date\n7,2025-10-01 23:45:01.250,2025-10-01\n8,2025-10-01T00:00:00,2025-10-01\n",
    );
    lake.write(&["--input", &input, "--date", DAY1, "--key", "id"])
        .expect(Status::Committed);
    let model = Rows::from_values([
        json!({"id": 7, "seen_at": "2025-10-01T23:45:01.250000Z", "date": DAY1}),
        json!({"id": 8, "seen_at": "2025-10-01T00:00:00.000000Z", "date": DAY1}),
    ]);
    assert_reads(&lake, &model, true, "lakewriter wrote TIMESTAMP_NTZ").await;
    // The protocol stores TIMESTAMP_NTZ as a Parquet timestamp not adjusted to UTC.
    let written = lake
        .commit(*lake.versions().await.last().unwrap())
        .await
        .added();
    let bytes = bytes::Bytes::from(lake.read_file(&written[0]).await);
    let reader = parquet::file::reader::SerializedFileReader::new(bytes).unwrap();
    let schema = parquet::file::reader::FileReader::metadata(&reader)
        .file_metadata()
        .schema_descr_ptr();
    let seen_at = schema
        .columns()
        .iter()
        .find(|c| c.name() == "seen_at")
        .unwrap();
    let Some(parquet::basic::LogicalType::Timestamp(timestamp)) = seen_at.logical_type_ref() else {
        panic!("seen_at is a timestamp: {:?}", seen_at.logical_type_ref());
    };
    assert!(
        !timestamp.is_adjusted_to_u_t_c,
        "TIMESTAMP_NTZ is local time"
    );
}

/// A header-only input merged into an existing table is a no-op run: no commit, no panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_no_rows_changes_nothing() {
    let lake = Lake::local();
    let day = lake.input("day1.csv", &csv(&[(1, 2)], DAY1, "qty"));
    lake.write(&["--input", &day, "--date", DAY1, "--key", "id"])
        .expect(Status::Committed);
    let before = lake.versions().await;
    let empty = lake.input("empty.csv", "id,qty,date\n");
    let run = lake.write(&[
        "--input", &empty, "--date", DAY1, "--key", "id", "--mode", "merge",
    ]);
    assert_eq!(run.expect(Status::Skipped).rows_written, 0);
    assert_eq!(lake.versions().await, before);
}

/// A day lakewriter wrote that Spark changed since (an OPTIMIZE compacting its files, a
/// DELETE leaving a deletion vector) is another writer's data: `fail` refuses the rerun,
/// `auto` replaces it, and Spark reads the run's rows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_spark_changed_after_lakewriter_wrote_it_is_replaced_by_the_rerun() {
    let lake = Lake::local();
    spark_creates(&lake, "'delta.enableDeletionVectors' = 'true'", &[]);
    let ours: Vec<(i64, i64)> = (100..160).map(|id| (id, id % 7 + 1)).collect();
    let input = lake.input("day1.csv", &csv(&ours, DAY1, "qty"));
    // A tiny memory limit spreads the day over several files, for OPTIMIZE to compact.
    let write = |extra: &[&str]| {
        let mut args = vec!["--input", &input, "--date", DAY1, "--key", "id"];
        args.extend_from_slice(&["--memory-limit", "1KiB"]);
        args.extend_from_slice(extra);
        lake.write(&args)
    };
    assert!(write(&[]).expect(Status::Committed).files_added > 1);
    let model = lake.seen_by(Engine::Spark, None).rows;
    for (change, operation) in [
        ("OPTIMIZE {t}", "OPTIMIZE"),
        ("DELETE FROM {t} WHERE id = 101", "DELETE"),
    ] {
        lake.spark_sql(&[change]);
        let latest = *lake.versions().await.last().unwrap();
        assert_eq!(lake.commit(latest).await.info()["operation"], operation);
        let refused = write(&["--on-rerun", "fail"]);
        assert_eq!(refused.code, 3, "{change}: {}", refused.stderr);
        write(&[]).expect(Status::Committed);
        assert_reads(&lake, &model, true, change).await;
    }
}

/// A feature no engine here knows, written into the protocol: lakewriter refuses to write,
/// list runs or vacuum, naming it, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_feature_is_refused_by_name_by_every_command() {
    for (protocol, feature) in [
        (
            json!({"minReaderVersion": 3, "minWriterVersion": 7,
                   "readerFeatures": ["someFutureFeature"],
                   "writerFeatures": ["someFutureFeature"]}),
            "someFutureFeature",
        ),
        (
            json!({"minReaderVersion": 1, "minWriterVersion": 7,
                   "writerFeatures": ["someFutureWriterFeature"]}),
            "someFutureWriterFeature",
        ),
    ] {
        let lake = Lake::local();
        let input = lake.input("day1.csv", &csv(&[(1, 2)], DAY1, "qty"));
        lake.write(&["--input", &input, "--date", DAY1, "--key", "id"])
            .expect(Status::Committed);
        let upgrade = json!({"protocol": protocol}).to_string();
        lake.put_log_file(&format!("{:020}.json", 1), upgrade.as_bytes())
            .await;
        let before = table_state(&lake).await;
        let table = lake.table.clone();
        let commands: [Vec<&str>; 3] = [
            vec![
                "write", "--table", &table, "--input", &input, "--date", DAY1,
            ],
            vec![
                "vacuum",
                "--table",
                &table,
                "--retain-hours",
                "0",
                "--force",
            ],
            vec!["runs", "--table", &table],
        ];
        for command in &commands {
            let run = Run::of(lake.command(command).output().unwrap());
            let reads_fine = command[0] == "runs" && feature == "someFutureWriterFeature";
            if reads_fine {
                assert_eq!(
                    run.code, 0,
                    "a writer feature does not stop reads: {}",
                    run.stderr
                );
                continue;
            }
            refused_with(&run, &[&format!("'{feature}'")]);
        }
        assert_eq!(table_state(&lake).await, before);
    }
}

/// `vacuum` keeps the deletion vector of a file removed within the retention, however old
/// the vector's own file is, so time travel to the version before the removal still reads
/// the rows Spark's DELETE kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_the_deletion_vectors_time_travel_needs() {
    let lake = Lake::local();
    spark_creates(
        &lake,
        "'delta.enableDeletionVectors' = 'true'",
        &[&format!(
            "DELETE FROM {{t}} WHERE date = DATE'{DAY1}' AND id % 3 = 0"
        )],
    );
    let before_replace = *lake.versions().await.last().unwrap();
    let model = lake.seen_by(Engine::Spark, None).rows;
    assert_eq!(model.per_date()[DAY1], 6, "ids 0, 3, 6, 9 deleted");
    // The vector was written ten days ago, as far as the file system says.
    let ten_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400);
    let vectors: Vec<_> = std::fs::read_dir(&lake.table)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().contains("deletion_vector_"))
        .collect();
    assert!(
        !vectors.is_empty(),
        "Spark's DELETE wrote a deletion vector file"
    );
    for vector in &vectors {
        let file = std::fs::File::options().write(true).open(vector).unwrap();
        file.set_modified(ten_days_ago).unwrap();
    }
    let input = lake.input("day1.csv", &csv(&[(100, 7)], DAY1, "qty"));
    lake.write(&["--input", &input, "--date", DAY1, "--key", "id"])
        .expect(Status::Committed);
    lake.vacuum(&[]);
    for vector in &vectors {
        assert!(vector.exists(), "{} kept", vector.display());
    }
    let travelled = lake.seen_by(Engine::Spark, Some(before_replace)).rows;
    assert_eq!(travelled, model, "time travel to before the replace");
}
