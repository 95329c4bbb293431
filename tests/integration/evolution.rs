//! Opt-in schema evolution (`--schema-evolution add-columns`): columns added in the commit of
//! the data, missing columns written as nulls, refusals, rerun decisions after the schema
//! changed, time travel to before the change, racing writers and crashes.

use crate::support::{ENGINES, Engine, Lake, Report, Run, Status, WRITE_FAIL_POINTS};

const ADD: [&str; 2] = ["--schema-evolution", "add-columns"];

/// A write of one day (`--date`) of `input`, keyed by `id`, with `extra` options.
fn day_write<'a>(input: &'a str, day: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--input", input, "--date", day, "--key", "id"];
    args.extend(extra);
    args
}

pub async fn new_columns_are_added_in_the_commit_of_the_data(lake: &Lake) {
    let first = lake.input("d1.csv", "id,name,date\n1,a,2024-03-01\n");
    lake.write(&day_write(&first, "2024-03-01", &[]))
        .expect(Status::Committed);
    let wider = lake.input("d2.csv", "id,name,discount,date\n2,b,0.5,2024-03-02\n");

    // Without the option, the table's schema never changes.
    let refused = lake.write(&day_write(&wider, "2024-03-02", &[]));
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--schema-evolution"),
        "{}",
        refused.stderr
    );

    let added = lake
        .write(&day_write(&wider, "2024-03-02", &ADD))
        .expect(Status::Committed);
    assert_eq!(added.version, Some(1));
    assert_eq!(
        added.schema_changes,
        [serde_json::json!({"column": "discount", "change": "added", "data_type": "Float64"})]
    );
    // One commit holds the new schema and the data.
    let commit = lake.commit(1).await;
    assert_eq!(commit.added().len(), 1);
    let names: Vec<String> = commit.metadata_schema()["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["id", "name", "date", "discount"],
        "appended at the end"
    );
    assert_eq!(
        commit.info()["lakewriter"]["schemaChanges"][0]["column"],
        "discount"
    );

    // A day whose input lacks a nullable column gets nulls there.
    let narrow = lake.input("d3.csv", "id,date\n3,2024-03-03\n");
    lake.write(&day_write(&narrow, "2024-03-03", &ADD))
        .expect(Status::Committed);
    let rows = lake.rows_agreed_by_readers().await.parsed();
    let of = |id: i64| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(
        of(1)["discount"],
        serde_json::Value::Null,
        "older files read as null"
    );
    assert_eq!(of(2)["discount"], 0.5);
    assert_eq!(of(3)["name"], serde_json::Value::Null);

    // Time travel to before the change: the old schema, in every engine; Spark's history
    // shows the schema-changing commit as the run's WRITE.
    if crate::support::readers_available() {
        for engine in ENGINES {
            let seen = lake.seen_by(engine, Some(0));
            assert_eq!(seen.rows.len(), 1, "{engine:?}");
            assert!(
                !seen.rows.0[0].contains("discount"),
                "{engine:?}: {:?}",
                seen.rows
            );
        }
        let history = lake.seen_by(Engine::Spark, None).history;
        let change = history.iter().find(|(version, ..)| *version == 1).unwrap();
        assert_eq!(
            (change.1.as_str(), change.2.as_ref()),
            ("WRITE", Some(&added.run_id))
        );
    }

    // The identical rerun of the evolving day is skipped. Day 1, written before the table
    // gained the column, is rewritten once by its identical rerun (its record was made under
    // the old schema), then skipped.
    lake.write(&day_write(&wider, "2024-03-02", &ADD))
        .expect(Status::Skipped);
    lake.write(&day_write(&first, "2024-03-01", &ADD))
        .expect(Status::Committed);
    lake.write(&day_write(&first, "2024-03-01", &ADD))
        .expect(Status::Skipped);

    // A column that differs only in case is refused, nothing written.
    let versions = lake.versions().await;
    let clash = lake.input("d4.csv", "id,Discount,date\n4,1.5,2024-03-04\n");
    let run = lake.write(&day_write(&clash, "2024-03-04", &ADD));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("'Discount'") && run.stderr.contains("case"),
        "{}",
        run.stderr
    );
    assert_eq!(lake.versions().await, versions);

    // No narrowing or lossy cast: a value the table's type cannot hold is refused, naming
    // the row; and widening a type is refused as not done.
    let lossy = lake.input(
        "d5.csv",
        "id,discount,date
5,0.25,2024-03-05
6,x,2024-03-05
",
    );
    let run = lake.write(&day_write(&lossy, "2024-03-05", &ADD));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("d5.csv") && run.stderr.contains("'x'"),
        "{}",
        run.stderr
    );
    let widen = lake.write(&day_write(
        &lossy,
        "2024-03-05",
        &["--schema-evolution", "widen"],
    ));
    assert_eq!(widen.code, 2, "{}", widen.stderr);
    assert!(widen.stderr.contains("typeWidening"), "{}", widen.stderr);
    assert_eq!(lake.versions().await, versions, "nothing written");
}

pub async fn a_struct_gains_the_fields_its_input_has(lake: &Lake) {
    let first = lake.input(
        "a.jsonl",
        "{\"id\": 1, \"date\": \"2024-03-01\", \"addr\": {\"city\": \"Oslo\"}}\n",
    );
    lake.write(&day_write(&first, "2024-03-01", &[]))
        .expect(Status::Committed);
    let grown = lake.input(
        "b.jsonl",
        "{\"id\": 2, \"date\": \"2024-03-02\", \"addr\": {\"street\": \"Main\", \"city\": \"Rome\"}}\n",
    );
    let refused = lake.write(&day_write(&grown, "2024-03-02", &[]));
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    let report = lake
        .write(&day_write(&grown, "2024-03-02", &ADD))
        .expect(Status::Committed);
    assert_eq!(report.schema_changes[0]["column"], "addr.street");
    let rows = lake.rows_agreed_by_readers().await.parsed();
    let of = |id: i64| rows.iter().find(|r| r["id"] == id).unwrap()["addr"].clone();
    assert_eq!(of(1), serde_json::json!({"city": "Oslo", "street": null}));
    assert_eq!(of(2), serde_json::json!({"city": "Rome", "street": "Main"}));
}

pub async fn racing_writers_keep_every_runs_rows_and_one_schema(lake: &Lake) {
    let base = lake.input("base.csv", "id,date\n1,2024-03-01\n");
    lake.write(&day_write(&base, "2024-03-01", &[]))
        .expect(Status::Committed);
    // Two writers add the same column to different days, a third writes another day without
    // evolving: whichever commits first, every run's rows land and the column is added once.
    let inputs = [
        ("x2.csv", "id,x,date\n2,20,2024-03-02\n", "2024-03-02", true),
        ("x3.csv", "id,x,date\n3,30,2024-03-03\n", "2024-03-03", true),
        ("plain4.csv", "id,date\n4,2024-03-04\n", "2024-03-04", false),
    ];
    let runs: Vec<Vec<String>> = inputs
        .iter()
        .map(|(name, body, day, evolving)| {
            let input = lake.input(name, body);
            let extra: &[&str] = if *evolving { &ADD } else { &[] };
            day_write(&input, day, extra)
                .into_iter()
                .map(String::from)
                .collect()
        })
        .collect();
    for run in lake.race_writes(&runs) {
        assert_eq!(
            run.parse::<Report>().status,
            Status::Committed,
            "{}",
            run.stderr
        );
    }
    let rows = lake.rows_agreed_by_readers().await.parsed();
    assert_eq!(rows.len(), 4);
    let x = |id: i64| rows.iter().find(|r| r["id"] == id).unwrap()["x"].clone();
    assert_eq!((x(2), x(3)), (serde_json::json!(20), serde_json::json!(30)));
    assert_eq!(x(4), serde_json::Value::Null);
    let table = lake.open().await;
    let schema = table.snapshot().unwrap().schema();
    let names: Vec<&String> = schema.fields().map(|f| f.name()).collect();
    assert_eq!(names, ["id", "date", "x"], "x added once");
}

crate::support::on_backends!(
    [local: Local, s3: S3],
    [
        new_columns_are_added_in_the_commit_of_the_data,
        a_struct_gains_the_fields_its_input_has,
        racing_writers_keep_every_runs_rows_and_one_schema,
    ]
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_schema_changing_run_leaves_the_old_schema_or_the_new() {
    // Nine commits first, so the schema-changing run (version 9) also writes a checkpoint.
    for (point, landed) in WRITE_FAIL_POINTS {
        let lake = Lake::local();
        for day in 1..=9 {
            let date = format!("2024-03-{day:02}");
            let input = lake.input(&format!("d{day}.csv"), &format!("id,date\n{day},{date}\n"));
            lake.write(&day_write(&input, &date, &[]))
                .expect(Status::Committed);
        }
        let before = lake.rows().await;
        let wider = lake.input("d10.csv", "id,extra,date\n10,e,2024-03-10\n");
        let args = day_write(&wider, "2024-03-10", &ADD);
        let crashed = Run::of(
            lake.json_command("write", &args)
                .env("LAKEWRITER_FAIL_AT", point)
                .output()
                .unwrap(),
        );
        crashed.assert_aborted_at(point);
        let table = lake.open().await;
        let fields = table.snapshot().unwrap().schema().fields().count();
        match landed {
            false => {
                assert_eq!(lake.rows().await, before, "{point}");
                assert_eq!(fields, 2, "{point}: the old schema");
            }
            true => assert_eq!(fields, 3, "{point}: the new schema"),
        }
        let expected = if landed {
            Status::Skipped
        } else {
            Status::Committed
        };
        lake.write(&args).expect(expected);
        let rows = lake.rows_agreed_by_readers().await;
        assert_eq!(rows.len(), 10, "{point}: the rerun converges");
        assert_eq!(rows.filter("extra", "e").len(), 1, "{point}");
    }
}
