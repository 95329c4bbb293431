//! Credentials never leak: not in logs, errors, JSON output or the Delta log.

use crate::scenarios::csv;
use crate::support::{Backend, Lake};

const FAKE_SECRET: &str = "lakewriter-fake-secret-Zq81xK";

fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(FAKE_SECRET),
        "the secret leaked into {what}: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_key_appears_nowhere() {
    let lake = Lake::new(Backend::S3);
    let input = lake.input(
        "d.csv",
        &csv(&["1,c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01"]),
    );
    let outcomes = [
        // A successful write and a rerun, with debug logging.
        vec![
            "-vv",
            "write",
            "--table",
            &lake.table,
            "--input",
            &input,
            "--date",
            "2024-01-01",
        ],
        vec![
            "-vv",
            "write",
            "--table",
            &lake.table,
            "--input",
            &input,
            "--date",
            "2024-01-01",
            "--output",
            "json",
        ],
        vec!["-vv", "runs", "--table", &lake.table, "--output", "json"],
        vec!["-vv", "history", "--table", &lake.table],
        // Failures: bad input, and a table in a bucket that does not exist.
        vec![
            "-vv",
            "write",
            "--table",
            &lake.table,
            "--input",
            "s3://lakewriter-test/none/*.csv",
            "--date",
            "2024-01-01",
        ],
        vec![
            "-vv",
            "write",
            "--table",
            "s3://no-such-bucket-lw/t",
            "--input",
            &input,
            "--date",
            "2024-01-01",
        ],
    ];
    let mut failures = 0;
    for args in &outcomes {
        let output = lake
            .command(args)
            .env("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        failures += usize::from(!output.status.success());
        assert_no_secret("stdout", &String::from_utf8_lossy(&output.stdout));
        assert_no_secret("stderr", &String::from_utf8_lossy(&output.stderr));
    }
    assert_eq!(
        failures, 2,
        "the two failing cases fail and the others succeed"
    );

    // Passed as an option instead of the environment, into a failing run.
    let option = format!("aws_secret_access_key={FAKE_SECRET}");
    let output = lake
        .command(&[
            "-vv",
            "write",
            "--table",
            "s3://no-such-bucket-lw/t",
            "--input",
            &input,
            "--date",
            "2024-01-01",
            "--storage-option",
            &option,
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_no_secret("stderr", &String::from_utf8_lossy(&output.stderr));

    for name in lake.log_files().await {
        if name.ends_with(".json") {
            let version: u64 = name.trim_end_matches(".json").parse().unwrap();
            let commit = lake.commit(version).await;
            assert_no_secret(
                "the Delta log",
                &serde_json::to_string(&commit.actions).unwrap(),
            );
        }
    }
}
