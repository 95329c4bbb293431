//! The raw files real landing zones hold: nested JSON and Parquet, compressed files, names
//! Spark refuses, scopes far wider than the data. Each on every backend of the scenario suite.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, Int64Array, Int64Builder, ListBuilder, MapBuilder, RecordBatch, StringArray,
    StringBuilder, StructArray,
};
use deltalake::arrow::datatypes::{DataType, Field};

use crate::support::{Lake, Status};

/// Orders with a struct, a list of structs and a list of text, over two files whose objects
/// name their keys in other orders and leave a nested field out: key 1 twice (the later
/// `v` wins), key 2 once.
const NESTED_A: &str = r#"{"id": 1, "v": 1, "date": "2024-02-01", "addr": {"city": "Oslo", "zip": "0150"}, "items": [{"sku": "a", "n": 2}], "tags": ["x", "y"]}
{"id": 2, "v": 1, "date": "2024-02-01", "addr": null, "items": [], "tags": null}
"#;
const NESTED_B: &str = r#"{"tags": ["z"], "items": [{"n": 3, "sku": "b"}, {"n": null, "sku": "c"}], "addr": {"zip": "5003"}, "date": "2024-02-01", "v": 2, "id": 1}
"#;

pub async fn nested_json_columns_are_deduplicated_written_and_read_back(lake: &Lake) {
    lake.input("a.jsonl", NESTED_A);
    lake.input("b.jsonl", NESTED_B);
    let inputs = format!("{}/*.jsonl", lake.inputs_prefix());
    let args = [
        "--input",
        &inputs,
        "--date",
        "2024-02-01",
        "--key",
        "id",
        "--order-by",
        "v",
    ];
    let first = lake.write(&args).expect(Status::Committed);
    assert_eq!((first.rows_read, first.rows_written), (3, 2));

    let rows = lake.rows_agreed_by_readers().await.parsed();
    let one = rows.iter().find(|r| r["id"] == 1).unwrap();
    assert_eq!(one["v"], 2, "the later version of key 1 wins: {one}");
    assert_eq!(
        one["addr"],
        serde_json::json!({"city": null, "zip": "5003"}),
        "struct fields matched by name, the missing one null"
    );
    assert_eq!(
        one["items"],
        serde_json::json!([{"n": 3, "sku": "b"}, {"n": null, "sku": "c"}])
    );
    assert_eq!(one["tags"], serde_json::json!(["z"]));
    let two = rows.iter().find(|r| r["id"] == 2).unwrap();
    assert_eq!(two["items"], serde_json::json!([]));
    assert_eq!(two["addr"], serde_json::Value::Null);

    // The fingerprint of the first write is a rerun's: an identical rerun is skipped.
    let rerun = lake.write(&args).expect(Status::Skipped);
    assert_eq!(rerun.fingerprint, first.fingerprint);
}

/// A Parquet file with a map, a struct and a list column, as Spark or pandas write them,
/// its pages Snappy-compressed (Spark's default).
fn nested_parquet() -> Vec<u8> {
    nested_parquet_in(parquet::basic::Compression::SNAPPY)
}

fn nested_parquet_in(compression: parquet::basic::Compression) -> Vec<u8> {
    let mut attrs = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    let mut scores = ListBuilder::new(Int64Builder::new());
    for row in 0..3_i64 {
        attrs.keys().append_value("k");
        attrs.values().append_value(row);
        attrs.keys().append_value(format!("k{row}"));
        attrs.values().append_null();
        attrs.append(true).unwrap();
        scores.values().append_value(row * 10);
        scores.append(row != 1);
    }
    let point = StructArray::from(vec![
        (
            Arc::new(Field::new("x", DataType::Int64, true)),
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("label", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![Some("p"), None, Some("r")])) as ArrayRef,
        ),
    ]);
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        (
            "date",
            Arc::new(StringArray::from(vec!["2024-02-01"; 3])) as ArrayRef,
        ),
        ("attrs", Arc::new(attrs.finish()) as ArrayRef),
        ("scores", Arc::new(scores.finish()) as ArrayRef),
        ("point", Arc::new(point) as ArrayRef),
    ])
    .unwrap();
    let mut bytes = Vec::new();
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(compression)
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

pub async fn nested_parquet_columns_with_maps_are_written_and_read_back(lake: &Lake) {
    let input = lake.input_bytes("nested.parquet", &nested_parquet());
    let args = ["--input", &input, "--date", "2024-02-01", "--key", "id"];
    lake.write(&args).expect(Status::Committed);
    let rows = lake.rows_agreed_by_readers().await.parsed();
    assert_eq!(rows.len(), 3);
    let two = rows.iter().find(|r| r["id"] == 2).unwrap();
    assert_eq!(two["attrs"], serde_json::json!({"k": 1, "k1": null}));
    assert_eq!(two["scores"], serde_json::Value::Null);
    assert_eq!(two["point"], serde_json::json!({"label": null, "x": 2}));
    lake.write(&args).expect(Status::Skipped);

    // Parquet compresses its own pages: zstd and uncompressed pages give the same rows.
    let expected = lake.rows().await;
    for compression in [
        parquet::basic::Compression::ZSTD(Default::default()),
        parquet::basic::Compression::UNCOMPRESSED,
    ] {
        let other = lake.sibling();
        let input = other.input_bytes("pages.parquet", &nested_parquet_in(compression));
        other
            .write(&["--input", &input, "--date", "2024-02-01", "--key", "id"])
            .expect(Status::Committed);
        assert_eq!(other.rows().await, expected, "{compression:?}");
    }
}

pub async fn nested_keys_and_values_that_do_not_fit_are_refused(lake: &Lake) {
    let input = lake.input("a.jsonl", NESTED_A);
    for (dedup, column) in [
        ["--key", "items", "--key", "id"],
        ["--key", "id", "--order-by", "addr"],
    ]
    .iter()
    .zip(["items", "addr"])
    {
        let mut args = vec!["--input", &input, "--date", "2024-02-01"];
        args.extend(dedup);
        let run = lake.write(&args);
        assert_eq!(run.code, 2, "{dedup:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("column '{column}'")) && run.stderr.contains("plain"),
            "{}",
            run.stderr
        );
    }
    assert!(lake.versions().await.is_empty(), "nothing written");

    lake.write(&["--input", &input, "--date", "2024-02-01", "--key", "id"])
        .expect(Status::Committed);
    // A list item's number that would lose its fraction, and a struct field the table lacks:
    // refused, naming the nested field and the row (the second line).
    for (name, second_line, field) in [
        (
            "fraction.jsonl",
            r#"{"id": 3, "v": 1, "date": "2024-02-01", "addr": null, "items": [{"sku": "d", "n": 1}, {"sku": "e", "n": 2.5}], "tags": []}"#,
            "items[].n",
        ),
        (
            "extra.jsonl",
            r#"{"id": 3, "v": 1, "date": "2024-02-01", "addr": {"city": "Rome", "zip": "1", "street": "Via"}, "items": [], "tags": []}"#,
            "addr.street",
        ),
    ] {
        let body = format!(
            "{}{second_line}\n",
            NESTED_A.lines().next().unwrap().to_owned() + "\n"
        );
        let input = lake.input(name, &body);
        let run = lake.write(&[
            "--input",
            &input,
            "--date",
            "2024-02-01",
            "--key",
            "id",
            "--on-rerun",
            "replace",
        ]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(field) && run.stderr.contains("row 2"),
            "{name}: {}",
            run.stderr
        );
    }
    assert_eq!(lake.versions().await, vec![0], "nothing written");
}

pub async fn a_scope_wider_than_max_days_is_refused_before_anything_is_read(lake: &Lake) {
    let input = lake.input("three.jsonl", NESTED_A);
    let typo = [
        "--input",
        &input,
        "--from",
        "2024-01-01",
        "--to",
        "20240-12-31",
        "--key",
        "id",
    ];
    let run = lake.write(&typo);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("YYYY-MM-DD"), "{}", run.stderr);
    let wide = [
        "--input",
        &input,
        "--from",
        "1900-01-01",
        "--to",
        "9999-12-31",
    ];
    let run = lake.write(&wide);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("2958464 days") && run.stderr.contains("--max-days 3660"),
        "{}",
        run.stderr
    );
    let backfill = lake.backfill(&[
        "--input",
        "raw/{date}.jsonl",
        "--from",
        "1990-01-01",
        "--to",
        "2024-12-31",
    ]);
    assert_eq!(backfill.code, 2, "{}", backfill.stderr);
    assert!(lake.versions().await.is_empty(), "nothing written");

    // A wide scope that is meant: allowed with --max-days, and the dry run says what it
    // would write (a file for each of the 366 days, two of them with rows).
    let year = [
        "--input",
        &input,
        "--from",
        "2024-01-01",
        "--to",
        "2024-12-31",
        "--max-days",
        "366",
    ];
    let mut dry = year.to_vec();
    dry.push("--dry-run");
    let planned = lake.write(&dry).expect(Status::Planned);
    assert_eq!((planned.partitions.len(), planned.files_added), (366, 366));
    assert!(lake.versions().await.is_empty(), "a dry run writes nothing");
    let written = lake.write(&year).expect(Status::Committed);
    assert_eq!(written.files_added, 366);
    lake.write(&year).expect(Status::Skipped);
}

pub async fn a_new_table_refuses_column_names_spark_cannot_read(lake: &Lake) {
    for (name, body, column) in [
        ("space.csv", "order id,date\n1,2024-02-01\n", "order id"),
        ("equals.csv", "id,a=b,date\n1,2,2024-02-01\n", "a=b"),
        (
            "nested.jsonl",
            "{\"id\": 1, \"date\": \"2024-02-01\", \"s\": {\"bad;name\": 1}}\n",
            "bad;name",
        ),
    ] {
        let input = lake.input(name, body);
        let run = lake.write(&["--input", &input, "--date", "2024-02-01"]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("'{column}'")) && run.stderr.contains("Spark"),
            "{name}: {}",
            run.stderr
        );
    }
    assert!(lake.versions().await.is_empty(), "nothing written");
}

fn compressed(codec: &str, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    match codec {
        "gz" => {
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), Default::default());
            gzip.write_all(bytes).unwrap();
            gzip.finish().unwrap()
        }
        "zst" => zstd::stream::encode_all(bytes, 3).unwrap(),
        "bz2" => {
            let mut bzip2 = bzip2::write::BzEncoder::new(Vec::new(), Default::default());
            bzip2.write_all(bytes).unwrap();
            bzip2.finish().unwrap()
        }
        other => panic!("no codec {other}"),
    }
}

pub async fn compressed_inputs_give_the_rows_of_plain_ones(lake: &Lake) {
    let sales = crate::scenarios::csv(&[
        "1,c,s,1,1.0,2024-02-01T00:00:00Z,2024-02-01",
        "1,c,s,2,1.0,2024-02-01T05:00:00Z,2024-02-01",
        "2,d,t,3,2.5,2024-02-02T00:00:00Z,2024-02-02",
    ]);
    let scope = ["--from", "2024-02-01", "--to", "2024-02-02"];
    let dedup = ["--key", "order_id", "--order-by", "updated_at"];
    for (plain_name, plain) in [("sales.csv", sales.as_str()), ("nested.jsonl", NESTED_A)] {
        let reference = lake.sibling();
        let input = reference.input(plain_name, plain);
        let mut args = vec!["--input", input.as_str()];
        args.extend(scope);
        let key = if plain_name.ends_with("csv") {
            &dedup[..]
        } else {
            &["--key", "id"][..]
        };
        args.extend(key);
        reference.write(&args).expect(Status::Committed);
        let expected = reference.rows().await;
        // Each codec by its extension; gzip also as a file whose name does not say (told by
        // its first bytes), and with the format and codec given as options.
        let mut cases: Vec<(String, Vec<u8>, Vec<&str>)> = ["gz", "zst", "bz2"]
            .into_iter()
            .map(|codec| {
                let name = format!("{plain_name}.{codec}");
                (name, compressed(codec, plain.as_bytes()), vec![])
            })
            .collect();
        cases.push((
            plain_name.to_string(),
            compressed("gz", plain.as_bytes()),
            vec![],
        ));
        let format = if plain_name.ends_with("csv") {
            "csv"
        } else {
            "json"
        };
        cases.push((
            "export.bin".to_string(),
            compressed("zst", plain.as_bytes()),
            vec!["--format", format, "--compression", "zstd"],
        ));
        for (name, bytes, options) in cases {
            let target = lake.sibling();
            let input = target.input_bytes(&name, &bytes);
            let mut args = vec!["--input", input.as_str()];
            args.extend(scope);
            args.extend(key);
            args.extend(&options);
            let first = target.write(&args).expect(Status::Committed);
            assert_eq!(target.rows().await, expected, "{name} {options:?}");
            let rerun = target.write(&args).expect(Status::Skipped);
            assert_eq!(rerun.fingerprint, first.fingerprint, "{name}");
        }
    }
    // This lake's own table, from a gzip file, is read back by the other engines.
    let input = lake.input_bytes("sales.csv.gz", &compressed("gz", sales.as_bytes()));
    let mut args = vec!["--input", input.as_str()];
    args.extend(scope);
    args.extend(dedup);
    lake.write(&args).expect(Status::Committed);
    assert_eq!(lake.rows_agreed_by_readers().await.len(), 2);
}

pub async fn csv_dialects_read_the_rows_the_default_one_gives(lake: &Lake) {
    let day = ["--date", "2024-02-01", "--key", "id"];
    let reference = lake.sibling();
    let input = reference.input(
        "plain.csv",
        "id,name,amount,date\n1,\"a, b\",2.5,2024-02-01\n2,,3,2024-02-01\n3,it's,,2024-02-01\n",
    );
    let mut args = vec!["--input", input.as_str()];
    args.extend(day);
    reference.write(&args).expect(Status::Committed);
    let expected = reference.rows().await;
    assert_eq!(expected.len(), 3);

    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "semicolons.csv",
            "id;name;amount;date\n1;a, b;2.5;2024-02-01\n2;;3;2024-02-01\n3;it's;;2024-02-01\n",
            &["--csv-delimiter", ";"],
        ),
        (
            "pipes.csv",
            "id|name|amount|date\n1|'a, b'|2.5|2024-02-01\n2||3|2024-02-01\n3|'it\\'s'||2024-02-01\n",
            &[
                "--csv-delimiter",
                "|",
                "--csv-quote",
                "'",
                "--csv-escape",
                "\\",
            ],
        ),
        (
            "null-texts.csv",
            "id,name,amount,date\n1,\"a, b\",2.5,2024-02-01\n2,NULL,3,2024-02-01\n3,it's,NULL,2024-02-01\n",
            &["--csv-null", "", "--csv-null", "NULL"],
        ),
        (
            "export.tsv",
            "id\tname\tamount\tdate\n1\ta, b\t2.5\t2024-02-01\n2\t\\N\t3\t2024-02-01\n3\tit's\t\\N\t2024-02-01\n",
            &[
                "--format",
                "csv",
                "--csv-delimiter",
                "tab",
                "--csv-null",
                "\\N",
            ],
        ),
    ];
    for (name, body, options) in cases {
        let target = lake.sibling();
        let input = target.input(name, body);
        let mut args = vec!["--input", input.as_str()];
        args.extend(day);
        args.extend(options);
        target.write(&args).expect(Status::Committed);
        assert_eq!(target.rows().await, expected, "{name} {options:?}");
        target.write(&args).expect(Status::Skipped);
    }

    // Without a header row, the file's columns are the table's: this lake's table, first
    // written from a file with a header, is replaced by one without.
    let input = lake.input("first.csv", "id,name,amount,date\n9,z,1.5,2024-02-01\n");
    let mut args = vec!["--input", input.as_str()];
    args.extend(day);
    lake.write(&args).expect(Status::Committed);
    let headerless = lake.input(
        "headerless.tsv",
        "1\ta, b\t2.5\t2024-02-01\n2\t\\N\t3\t2024-02-01\n3\tit's\t\\N\t2024-02-01\n",
    );
    let mut args = vec!["--input", headerless.as_str(), "--format", "csv"];
    args.extend(day);
    args.extend([
        "--csv-delimiter",
        "tab",
        "--csv-null",
        "\\N",
        "--csv-no-header",
    ]);
    lake.write(&args).expect(Status::Committed);
    assert_eq!(lake.rows_agreed_by_readers().await, expected);
    lake.write(&args).expect(Status::Skipped);
}

/// A write of `input` (id, signed_up, at) for 31 January and 1 February, its days from `at`,
/// dates written `31/01/2024` and timestamps `31/01/2024 10:00:00 +0100`.
fn eu_formats_write(input: &str) -> Vec<&str> {
    vec![
        "--input",
        input,
        "--from",
        "2024-01-31",
        "--to",
        "2024-02-01",
        "--key",
        "id",
        "--partition-from",
        "at",
        "--date-format",
        "%d/%m/%Y",
        "--timestamp-format",
        "%d/%m/%Y %H:%M:%S %z",
    ]
}

pub async fn dates_and_timestamps_in_a_format_of_the_users_are_read_as_such(lake: &Lake) {
    let input = lake.input(
        "eu.csv",
        "id,signed_up,at\n1,31/12/2023,31/01/2024 23:30:00 -0100\n2,01/02/2024,01/02/2024 08:00:00 +0200\n",
    );
    let args = eu_formats_write(&input);
    lake.write(&args).expect(Status::Committed);
    let rows = lake.rows_agreed_by_readers().await.parsed();
    let one = rows.iter().find(|r| r["id"] == 1).unwrap();
    assert_eq!(one["signed_up"], "2023-12-31", "a DATE column: {one}");
    assert_eq!(
        one["at"], "2024-02-01T00:30:00.000000Z",
        "UTC from the offset"
    );
    assert_eq!(one["date"], "2024-02-01", "the UTC day");
    lake.write(&args).expect(Status::Skipped);

    // A value that does not match is refused, naming its row; so is a format that cannot
    // give a date back.
    let bad = lake.input(
        "iso.csv",
        "id,signed_up,at\n3,31/01/2024,31/01/2024 10:00:00 +0000\n4,2024-01-31,31/01/2024 10:00:00 +0000\n",
    );
    let run = lake.write(&eu_formats_write(&bad));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("row 2")
            && run.stderr.contains("'2024-01-31'")
            && run.stderr.contains("%d/%m/%Y"),
        "{}",
        run.stderr
    );
    let run = lake.write(&[
        "--input",
        &bad,
        "--date",
        "2024-01-31",
        "--date-format",
        "%d/%m",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--date-format"), "{}", run.stderr);
    assert_eq!(lake.versions().await, vec![0], "nothing written");
}

crate::support::on_backends!(
    [local: Local, s3: S3, s3_inputs: S3Inputs],
    [
        nested_json_columns_are_deduplicated_written_and_read_back,
        nested_parquet_columns_with_maps_are_written_and_read_back,
        nested_keys_and_values_that_do_not_fit_are_refused,
        a_scope_wider_than_max_days_is_refused_before_anything_is_read,
        a_new_table_refuses_column_names_spark_cannot_read,
        compressed_inputs_give_the_rows_of_plain_ones,
        csv_dialects_read_the_rows_the_default_one_gives,
        dates_and_timestamps_in_a_format_of_the_users_are_read_as_such,
    ]
);
