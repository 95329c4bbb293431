//! Bad input gets a clear error naming the file, row or value, exit code 2, and leaves the
//! table exactly as it was.

use crate::scenarios::csv;
use crate::support::{Lake, Status};

const GOOD_ROW: &str = "1,c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01";

/// A lake whose table already holds one good day, so "unchanged" means something.
fn lake_with_a_table() -> Lake {
    let lake = Lake::local();
    let good = lake.input("good.csv", &csv(&[GOOD_ROW]));
    lake.write(&[
        "--input",
        &good,
        "--date",
        "2024-01-01",
        "--key",
        "order_id",
    ])
    .expect(Status::Committed);
    lake
}

/// Runs a write of `content` (as file `name`) for 2024-01-01 and checks the failure.
async fn rejected(name: &str, content: &[u8], extra: &[&str], code: i32, expected: &[&str]) {
    let lake = lake_with_a_table();
    let input = lake.input_bytes(name, content);
    let mut args = vec!["--input", input.as_str(), "--date", "2024-01-01"];
    args.extend_from_slice(extra);
    refused(&lake, &args, code, expected).await;
}

/// Runs `lakewriter write ARGS` on `lake` (which holds a table) and asserts the exit code,
/// every fragment of `expected` in the message, and a table exactly as it was.
async fn refused(lake: &Lake, args: &[&str], code: i32, expected: &[&str]) {
    let versions = lake.versions().await;
    let files = lake.data_files().await;
    let rows = lake.rows().await;
    let run = lake.write(args);
    assert_eq!(run.code, code, "exit code for {args:?}: {}", run.stderr);
    for fragment in expected {
        assert!(
            run.stderr.contains(fragment),
            "error for {args:?} lacks '{fragment}': {}",
            run.stderr
        );
    }
    assert_eq!(lake.versions().await, versions, "no commit");
    assert_eq!(lake.data_files().await, files, "no file written");
    assert_eq!(lake.rows().await, rows, "rows unchanged");
}

#[tokio::test]
async fn wrong_column_count() {
    let body = csv(&[GOOD_ROW, "2,c,s,1,2024-01-01"]);
    rejected(
        "short.csv",
        body.as_bytes(),
        &[],
        2,
        &["short.csv", "line 3"],
    )
    .await;
}

#[tokio::test]
async fn unbalanced_quotes() {
    let body = csv(&[GOOD_ROW, "2,\"c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01"]);
    rejected("quotes.csv", body.as_bytes(), &[], 2, &["quotes.csv"]).await;
}

#[tokio::test]
async fn a_value_of_the_wrong_type_names_row_and_value() {
    let body = csv(&[GOOD_ROW, "2,c,s,many,1.0,2024-01-01T00:00:00Z,2024-01-01"]);
    rejected("types.csv", body.as_bytes(), &[], 2, &["types.csv", "many"]).await;
}

#[tokio::test]
async fn a_null_key_names_the_row() {
    let body = csv(&[GOOD_ROW, ",c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01"]);
    rejected(
        "nullkey.csv",
        body.as_bytes(),
        &["--key", "order_id"],
        2,
        &["nullkey.csv row 2", "order_id"],
    )
    .await;
}

#[tokio::test]
async fn a_null_or_unparseable_date_names_the_row() {
    let body = csv(&[GOOD_ROW, "2,c,s,1,1.0,2024-01-01T00:00:00Z,"]);
    rejected(
        "nodate.csv",
        body.as_bytes(),
        &[],
        2,
        &["nodate.csv row 2", "date"],
    )
    .await;
    let body = csv(&[GOOD_ROW, "2,c,s,1,1.0,2024-01-01T00:00:00Z,yesterday"]);
    rejected(
        "baddate.csv",
        body.as_bytes(),
        &[],
        2,
        &["baddate.csv row 2", "yesterday"],
    )
    .await;
}

#[tokio::test]
async fn a_missing_key_column() {
    rejected(
        "k.csv",
        csv(&[GOOD_ROW]).as_bytes(),
        &["--key", "sku_id"],
        2,
        &["sku_id"],
    )
    .await;
}

#[tokio::test]
async fn a_header_that_does_not_match_the_table() {
    let body = format!("{},extra\n{GOOD_ROW},x\n", crate::scenarios::HEADER);
    rejected(
        "extra.csv",
        body.as_bytes(),
        &[],
        2,
        &["extra.csv", "'extra'"],
    )
    .await;
    let body = "order_id,date\n1,2024-01-01\n";
    rejected(
        "missing.csv",
        body.as_bytes(),
        &[],
        2,
        &["missing.csv", "customer_id"],
    )
    .await;
}

#[tokio::test]
async fn an_empty_file() {
    rejected("empty.csv", b"", &[], 2, &["empty.csv", "empty"]).await;
    // As the first file of a new table, whose types come from it.
    let lake = Lake::local();
    let input = lake.input("empty.csv", "");
    let run = lake.write(&["--input", &input, "--date", "2024-01-01"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("the file is empty"), "{}", run.stderr);
    assert!(lake.versions().await.is_empty());
}

#[tokio::test]
async fn non_utf8_bytes() {
    let mut body = csv(&[GOOD_ROW]).into_bytes();
    body.extend_from_slice(b"2,c\xff\xfe,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01\n");
    rejected("latin1.csv", &body, &[], 2, &["latin1.csv"]).await;
}

#[tokio::test]
async fn no_file_matches_the_glob() {
    let lake = lake_with_a_table();
    let glob = format!("{}/nothing-*.csv", lake.inputs_prefix());
    let args = ["--input", &glob, "--date", "2024-01-01"];
    refused(&lake, &args, 2, &["no input file matches", "nothing-*.csv"]).await;
}

#[tokio::test]
async fn an_input_that_is_a_directory() {
    let lake = lake_with_a_table();
    let dir = lake.inputs_prefix();
    let args = ["--input", &dir, "--date", "2024-01-01"];
    refused(&lake, &args, 2, &["is a directory"]).await;
}

#[tokio::test]
async fn a_table_location_that_holds_other_files() {
    let lake = Lake::local();
    std::fs::create_dir_all(&lake.table).unwrap();
    std::fs::write(
        std::path::Path::new(&lake.table).join("notes.txt"),
        "not a table",
    )
    .unwrap();
    let input = lake.input("good.csv", &csv(&[GOOD_ROW]));
    let run = lake.write(&["--input", &input, "--date", "2024-01-01"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no Delta log"), "{}", run.stderr);
    assert!(
        !std::path::Path::new(&lake.table)
            .join("_delta_log")
            .exists()
    );
}

#[tokio::test]
async fn a_corrupted_log_entry_is_reported_not_overwritten() {
    let lake = lake_with_a_table();
    lake.put_log_file("00000000000000000000.json", b"{not json")
        .await;
    let input = lake.input("good2.csv", &csv(&[GOOD_ROW]));
    let run = lake.write(&["--input", &input, "--date", "2024-01-01"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("Delta log cannot be read"),
        "{}",
        run.stderr
    );
    assert_eq!(lake.versions().await, vec![0]);
}

#[tokio::test]
async fn a_run_id_with_control_characters_is_refused() {
    let lake = lake_with_a_table();
    let input = lake.input("other.csv", &csv(&[GOOD_ROW]));
    let args = [
        "--input",
        &input,
        "--date",
        "2024-01-01",
        "--run-id",
        "a\nb",
    ];
    refused(&lake, &args, 2, &["run id \"a\\nb\"", "control characters"]).await;
}

#[tokio::test]
async fn hostile_run_ids_stay_data() {
    let lake = Lake::local();
    let input = lake.input("good.csv", &csv(&[GOOD_ROW]));
    let hostile = r#"../../etc/x'; DROP TABLE t; -- "quoted" date=2024-01-02"#;
    lake.write(&[
        "--input",
        &input,
        "--date",
        "2024-01-01",
        "--run-id",
        hostile,
    ])
    .expect(Status::Committed);
    let commit = lake.commit(0).await;
    assert_eq!(commit.info()["userMetadata"], hostile);
    let added = commit.added();
    assert_eq!(added.len(), 1);
    assert!(added[0].starts_with("date=2024-01-01/"), "{added:?}");
    assert_eq!(lake.runs()[0].run_id.as_deref(), Some(hostile));
    lake.write(&[
        "--input",
        &input,
        "--date",
        "2024-01-01",
        "--run-id",
        hostile,
    ])
    .expect(Status::Skipped);
}

/// A Parquet file with the given `amount` column, for a table with `id, amount, date`.
fn amount_parquet(amount: deltalake::arrow::array::ArrayRef) -> Vec<u8> {
    use deltalake::arrow::array::{Int64Array, RecordBatch, StringArray};
    use deltalake::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", deltalake::arrow::datatypes::DataType::Int64, true),
        Field::new("amount", amount.data_type().clone(), true),
        Field::new("date", deltalake::arrow::datatypes::DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![2])),
            amount,
            Arc::new(StringArray::from(vec!["2024-01-01"])),
        ],
    )
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

#[tokio::test]
async fn a_value_that_would_lose_information_is_refused_not_truncated() {
    use deltalake::arrow::array::{Float64Array, Int32Array};
    use std::sync::Arc;
    let lake = Lake::local();
    let first = lake.input("first.csv", "id,amount,date\n1,10,2024-01-01\n");
    lake.write(&["--input", &first, "--date", "2024-01-01"])
        .expect(Status::Committed);
    let rows = lake.rows().await;

    let json = lake.input(
        "frac.json",
        "{\"id\": 2, \"amount\": 2.5, \"date\": \"2024-01-01\"}\n",
    );
    let parquet = lake.input_bytes(
        "frac.parquet",
        &amount_parquet(Arc::new(Float64Array::from(vec![2.5]))),
    );
    for input in [&json, &parquet] {
        let run = lake.write(&["--input", input, "--date", "2024-01-01"]);
        assert_eq!(run.code, 2, "{input}: {}", run.stderr);
        assert!(
            run.stderr.contains("2.5") && run.stderr.contains("amount"),
            "{}",
            run.stderr
        );
        assert_eq!(lake.rows().await, rows, "{input}: nothing changed");
    }

    // A widening cast loses nothing and is accepted.
    let widening = lake.input_bytes(
        "int32.parquet",
        &amount_parquet(Arc::new(Int32Array::from(vec![7]))),
    );
    lake.write(&["--input", &widening, "--date", "2024-01-01"])
        .expect(Status::Committed);
    assert_eq!(lake.rows().await.parsed()[0]["amount"], 7);
}

#[tokio::test]
async fn a_missing_checkpoint_file_is_reported_not_papered_over() {
    let lake = Lake::local();
    for day in 1..=10 {
        let date = format!("2024-03-{day:02}");
        let input = lake.input(&format!("{date}.csv"), &format!("id,date\n{day},{date}\n"));
        lake.write(&["--input", &input, "--date", &date])
            .expect(Status::Committed);
    }
    let checkpoint = lake
        .log_files()
        .await
        .into_iter()
        .find(|f| f.ends_with(".checkpoint.parquet"))
        .expect("ten commits make a checkpoint");
    lake.delete_log_file(&checkpoint).await;
    let files = lake.data_files().await;
    let input = lake.input("again.csv", "id,date\n99,2024-03-01\n");
    let run = lake.write(&["--input", &input, "--date", "2024-03-01"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("checkpoint"), "{}", run.stderr);
    assert_eq!(lake.data_files().await, files, "nothing written");
    assert_eq!(lake.versions().await.len(), 10, "no commit");
}

#[tokio::test]
async fn huge_fields_round_trip() {
    let lake = Lake::local();
    let huge = "x".repeat(8 * 1024 * 1024);
    let input = lake.input(
        "huge.csv",
        &format!("id,note,date\n1,{huge},2024-01-01\n2,small,2024-01-01\n"),
    );
    lake.write(&["--input", &input, "--date", "2024-01-01", "--key", "id"])
        .expect(Status::Committed);
    let rows = lake.rows().await.parsed();
    let note = rows.iter().find(|r| r["id"] == 1).unwrap()["note"]
        .as_str()
        .unwrap()
        .len();
    assert_eq!(note, huge.len());
}

#[tokio::test]
async fn a_missing_partition_column_says_how_to_derive_it() {
    let lake = Lake::local();
    let input = lake.input("nodate.csv", "id,updated_at\n1,2024-01-01T10:00:00Z\n");
    let run = lake.write(&["--input", &input, "--date", "2024-01-01"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("nodate.csv") && run.stderr.contains("--partition-from"),
        "{}",
        run.stderr
    );
    assert!(lake.versions().await.is_empty());
}

#[tokio::test]
async fn an_unparseable_timestamp_names_row_and_value() {
    let lake = Lake::local();
    let input = lake.input(
        "events.csv",
        "id,updated_at\n1,2024-01-01T10:00:00Z\n2,not-a-time\n",
    );
    let run = lake.write(&[
        "--input",
        &input,
        "--date",
        "2024-01-01",
        "--partition-from",
        "updated_at",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("events.csv row 2") && run.stderr.contains("not-a-time"),
        "{}",
        run.stderr
    );
    assert!(lake.versions().await.is_empty());
}

#[tokio::test]
async fn a_bad_row_past_the_first_batch_is_named_by_its_row_in_the_file() {
    // Files are decoded in batches of 65,536 rows: row numbers must count across them, in
    // memory and when the rows spill to disk.
    let mut rows: Vec<String> = (0..70_000)
        .map(|id| format!("{id},c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01"))
        .collect();
    rows.push("70000,c,s,1,1.0,2024-01-05T00:00:00Z,2024-01-05".into());
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let body = csv(&rows);
    for extra in [&[][..], &["--memory-limit", "64KiB"][..]] {
        rejected(
            "big.csv",
            body.as_bytes(),
            extra,
            2,
            &["big.csv row 70001", "2024-01-05", "outside the run's scope"],
        )
        .await;
    }
}

/// Writes `name`, over 16 MiB so that it is decoded in byte ranges at once: `body(None)`
/// holds `count` rows of 2024-01-01 keyed by `order_id`, all read and written, the last one
/// passed to `check`. Then `body(Some(row))` moves a row past the middle to 2024-01-05: the
/// run is refused, naming the row by its number in the whole file.
async fn cut_file_keeps_its_rows_and_row_numbers(
    name: &str,
    count: usize,
    body: impl Fn(Option<usize>) -> String,
    check: impl Fn(&serde_json::Value),
) {
    let text = body(None);
    assert!(text.len() > 17 << 20, "{} bytes", text.len());
    let lake = Lake::local();
    let input = lake.input(name, &text);
    let report = lake
        .write(&[
            "--input",
            &input,
            "--date",
            "2024-01-01",
            "--key",
            "order_id",
        ])
        .expect(Status::Committed);
    assert_eq!(report.rows_read, count as u64);
    assert_eq!(report.rows_written, count as u64);
    let table = lake.rows().await.parsed();
    let last = table
        .iter()
        .find(|r| r["order_id"] == count as i64 - 1)
        .expect("the last row");
    check(last);

    let input = lake.input(name, &body(Some(count - 10)));
    let expected = format!("{name} row {}", count - 9);
    refused(
        &lake,
        &["--input", &input, "--date", "2024-01-01"],
        2,
        &[&expected, "outside the run's scope"],
    )
    .await;
}

#[tokio::test]
async fn a_large_csv_file_decoded_in_ranges_keeps_its_rows_and_its_row_numbers() {
    // Quoted values with line breaks make many lines that are not rows, so only a parser can
    // tell where the ranges may start.
    let long = "x".repeat(200);
    let count = 80_000;
    let body = |moved: Option<usize>| {
        let rows: Vec<String> = (0..count)
            .map(|id| {
                let date = if moved == Some(id) {
                    "2024-01-05"
                } else {
                    "2024-01-01"
                };
                format!("{id},c,\"{long}\n,\"\"{id}\"\"\n\",1,1.0,{date}T00:00:00Z,{date}")
            })
            .collect();
        csv(&rows.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let check = |last: &serde_json::Value| {
        assert_eq!(last["sku"], format!("{long}\n,\"{}\"\n", count - 1));
    };
    cut_file_keeps_its_rows_and_row_numbers("big.csv", count, body, check).await;
}

#[tokio::test]
async fn a_large_json_lines_file_decoded_in_ranges_keeps_its_rows_types_and_row_numbers() {
    // Cut at line starts, its columns inferred and its rows decoded range by range. Strings
    // hold braces, quotes and escaped line breaks; blank lines are no rows; only the last line
    // makes `qty` a float, as the whole file's inference does.
    let long = "y".repeat(200);
    let count = 70_000;
    let body = |moved: Option<usize>| {
        let lines: Vec<String> = (0..count)
            .map(|id| {
                let date = if moved == Some(id) { "2024-01-05" } else { "2024-01-01" };
                let qty = if id == count - 1 { "2.5".to_string() } else { id.to_string() };
                format!(
                    r#"{{"order_id":{id},"note":"{{\"{long}\"}}\n[{id}]","qty":{qty},"at":"{date}T00:00:00Z","date":"{date}"}}"#
                )
            })
            .collect();
        lines.join("\n \n")
    };
    let check = |last: &serde_json::Value| {
        assert_eq!(last["qty"], 2.5);
        assert_eq!(last["note"], format!("{{\"{long}\"}}\n[{}]", count - 1));
    };
    cut_file_keeps_its_rows_and_row_numbers("big.json", count, body, check).await;
}

#[tokio::test]
async fn text_that_says_more_than_the_tables_type_keeps_is_refused_not_cut() {
    // arrow's parsers drop a time of day read as a date, digits of a second below the unit
    // and digits below a decimal's scale without an error: every input path refuses them.
    use deltalake::arrow::array::Decimal128Array;
    use std::sync::Arc;
    let lake = Lake::local();
    let first = lake.input(
        "first.csv",
        "id,at,d,date\n1,2024-01-01T00:00:00Z,2024-01-01,2024-01-01\n",
    );
    lake.write(&["--input", &first, "--date", "2024-01-01"])
        .expect(Status::Committed);
    let too_precise = "2024-01-01T00:00:00.1234567Z";
    let with_time = "2024-01-01T10:30:00";
    let cases = [
        (
            "at.csv",
            format!("id,at,d,date\n2,{too_precise},2024-01-01,2024-01-01\n"),
            too_precise,
        ),
        (
            "d.csv",
            format!("id,at,d,date\n2,,{with_time},2024-01-01\n"),
            with_time,
        ),
        (
            "at.json",
            format!("{{\"id\":2,\"at\":\"{too_precise}\",\"date\":\"2024-01-01\"}}\n"),
            too_precise,
        ),
    ];
    for (name, body, value) in &cases {
        let input = lake.input(name, body);
        refused(
            &lake,
            &["--input", &input, "--date", "2024-01-01"],
            2,
            &[
                &format!("{name} row 1"),
                value,
                "without losing information",
            ],
        )
        .await;
    }
    // What the type keeps exactly is taken: trailing zeros, a date-time at midnight.
    let exact = lake.input(
        "exact.csv",
        "id,at,d,date\n2,2024-01-01T00:00:00.123456000Z,2024-01-02T00:00:00Z,2024-01-01\n",
    );
    lake.write(&["--input", &exact, "--date", "2024-01-01"])
        .expect(Status::Committed);
    let row = &lake.rows().await.parsed()[0];
    assert_eq!(row["d"], "2024-01-02", "{row}");

    // A new table: the first file's dates make a date column, a later file's time is refused.
    let fresh = lake.sibling();
    fresh.input("a.csv", "id,d,date\n1,2024-01-01,2024-01-01\n");
    fresh.input("b.csv", &format!("id,d,date\n2,{with_time},2024-01-01\n"));
    let both = format!("{}/*.csv", fresh.inputs_prefix());
    let run = fresh.write(&["--input", &both, "--date", "2024-01-01"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(with_time), "{}", run.stderr);
    assert!(fresh.versions().await.is_empty());

    // Decimals: digits below the scale are refused, zeros and exponents that fit are taken.
    let decimal = lake.sibling();
    let amounts = Decimal128Array::from(vec![1250])
        .with_precision_and_scale(10, 2)
        .unwrap();
    let created = decimal.input_bytes("first.parquet", &amount_parquet(Arc::new(amounts)));
    decimal
        .write(&["--input", &created, "--date", "2024-01-01"])
        .expect(Status::Committed);
    let cut = decimal.input("cut.csv", "id,amount,date\n3,1.239,2024-01-01\n");
    refused(
        &decimal,
        &["--input", &cut, "--date", "2024-01-01"],
        2,
        &["cut.csv row 1", "1.239", "without losing information"],
    )
    .await;
    let fits = decimal.input(
        "fits.csv",
        "id,amount,date\n3,1.2300,2024-01-01\n4,1.5e1,2024-01-01\n",
    );
    decimal
        .write(&["--input", &fits, "--date", "2024-01-01"])
        .expect(Status::Committed);
    let amounts: Vec<String> = decimal
        .rows()
        .await
        .parsed()
        .iter()
        .map(|row| row["amount"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(amounts, ["1.23", "15.00"]);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn damaged_compressed_files_are_refused_naming_file_codec_and_row() {
    // Enough rows that a cut falls after the first batch has been handed on.
    let rows: Vec<String> = (0..70_000)
        .map(|id| format!("{id},c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let whole = gzip(csv(&rows).as_bytes());
    let cut = &whole[..whole.len() * 3 / 4];
    rejected(
        "cut.csv.gz",
        cut,
        &[],
        2,
        &["cut.csv.gz", "gzip", "cut short"],
    )
    .await;

    // Not UTF-8 inside the gzip: named like the plain file's error.
    let mut latin1 = csv(&[GOOD_ROW]).into_bytes();
    latin1.extend_from_slice(b"2,c\xff\xfe,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01\n");
    rejected(
        "latin1.csv.gz",
        &gzip(&latin1),
        &[],
        2,
        &["latin1.csv.gz", "UTF"],
    )
    .await;

    // A zstd frame whose header states another size than its content has.
    let body = csv(&[GOOD_ROW, "2,c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01"]);
    let mut frame = zstd::bulk::compress(body.as_bytes(), 3).unwrap();
    let single_segment = frame[4] & 0x20 != 0;
    assert!(
        single_segment && frame[4] >> 6 == 0,
        "a one-byte content size"
    );
    frame[5] = frame[5].wrapping_add(7);
    rejected("lies.csv.zst", &frame, &[], 2, &["lies.csv.zst", "zstd"]).await;

    // A bad row inside a compressed file is named by its row, as in a plain one.
    let bad = csv(&[
        GOOD_ROW,
        GOOD_ROW,
        "3,c,s,x,1.0,2024-01-01T00:00:00Z,2024-01-01",
    ]);
    rejected(
        "bad.csv.bz2",
        &bzip2(bad.as_bytes()),
        &[],
        2,
        &["bad.csv.bz2", "line 3", "'x'"],
    )
    .await;

    // Parquet compresses inside: a compressed Parquet file is refused before reading.
    rejected(
        "a.parquet.gz",
        &gzip(b"PAR1"),
        &[],
        2,
        &["a.parquet.gz", "decompress"],
    )
    .await;

    // A codec named that the bytes are not in.
    let plain = csv(&[GOOD_ROW]);
    rejected(
        "plain.csv",
        plain.as_bytes(),
        &["--compression", "gzip"],
        2,
        &["plain.csv", "gzip", "--compression none"],
    )
    .await;
}

fn bzip2(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn csv_dialect_mistakes_are_refused_with_what_to_pass() {
    // A delimiter that never occurs: the header is read as one column.
    let semicolons = csv(&[GOOD_ROW]).replace(',', ";");
    rejected(
        "semicolons.csv",
        semicolons.as_bytes(),
        &[],
        2,
        &["semicolons.csv", "--csv-delimiter"],
    )
    .await;
    let body = csv(&[GOOD_ROW]);
    for (options, expected) in [
        (&["--csv-delimiter", "\""][..], "different"),
        (&["--csv-delimiter", ";;"][..], "one ASCII character"),
        (&["--csv-escape", ","][..], "different"),
    ] {
        rejected("good.csv", body.as_bytes(), options, 2, &[expected]).await;
    }
    // Without a header, the names come from the table: a new table has none to give.
    let lake = Lake::local();
    let input = lake.input("headerless.csv", "1,2024-01-01\n");
    let run = lake.write(&["--input", &input, "--date", "2024-01-01", "--csv-no-header"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("header row"), "{}", run.stderr);
    assert!(lake.versions().await.is_empty());
    // A headerless file with a column too many is refused naming its line.
    let lake = lake_with_a_table();
    let extra = lake.input("extra.csv", &format!("{GOOD_ROW},surplus\n"));
    let args = ["--input", &extra, "--date", "2024-01-01", "--csv-no-header"];
    refused(&lake, &args, 2, &["extra.csv", "line 1"]).await;
}
