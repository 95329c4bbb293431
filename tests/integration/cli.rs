//! The command-line contract: options documented, text output, history, exit codes.

use crate::scenarios::csv;
use crate::support::{HistoryCommit, Lake, lakewriter};

#[test]
fn write_help_documents_every_option() {
    let output = lakewriter(&["write", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--table",
        "--input",
        "--format",
        "--date",
        "--from",
        "--to",
        "--partition-column",
        "--partition-from",
        "--key",
        "--order-by",
        "--run-id",
        "--on-rerun",
        "--dry-run",
        "--memory-limit",
        "--mode",
        "--notify-url",
        "--notify-command",
        "--output",
        "--storage-option",
        "--verbose",
    ] {
        assert!(help.contains(option), "write --help lacks {option}");
    }
    // The options of the real-input, evolution and maintenance work: in each command's help
    // and in the README.
    let readme = include_str!("../../README.md");
    for (command, options) in [
        (
            "write",
            &[
                "--compression",
                "--max-days",
                "--csv-delimiter",
                "--csv-quote",
                "--csv-escape",
                "--csv-null",
                "--csv-no-header",
                "--date-format",
                "--timestamp-format",
                "--schema-evolution",
            ][..],
        ),
        ("backfill", &["--shard", "--shards", "--max-days"][..]),
        ("vacuum", &["--log", "--log-retain-hours"][..]),
        (
            "optimize",
            &["--date", "--from", "--to", "--target-file-size"][..],
        ),
        (
            "restore",
            &["--date", "--from", "--to", "--version", "--run-id"][..],
        ),
    ] {
        let help = String::from_utf8_lossy(&lakewriter(&[command, "--help"]).stdout).into_owned();
        for option in options {
            assert!(help.contains(option), "{command} --help lacks {option}");
            assert!(
                readme.contains(option),
                "the README lacks {option} of {command}"
            );
        }
    }
    let backfill =
        String::from_utf8_lossy(&lakewriter(&["backfill", "--help"]).stdout).into_owned();
    for option in [
        "--from",
        "--to",
        "--parallel",
        "--input",
        "--key",
        "--notify-url",
    ] {
        assert!(backfill.contains(option), "backfill --help lacks {option}");
    }
    let vacuum = String::from_utf8_lossy(&lakewriter(&["vacuum", "--help"]).stdout).into_owned();
    for option in [
        "--table",
        "--retain-hours",
        "--force",
        "--dry-run",
        "--output",
    ] {
        assert!(vacuum.contains(option), "vacuum --help lacks {option}");
    }
    let top = String::from_utf8_lossy(&lakewriter(&["--help"]).stdout).into_owned();
    assert!(top.contains("Exit codes"), "{top}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        lakewriter(&["write", "--table", "/tmp/x"]).status.code(),
        Some(2)
    );
    let bad_date = lakewriter(&[
        "write",
        "--table",
        "/tmp/x",
        "--input",
        "a.csv",
        "--date",
        "2024-13-01",
    ]);
    assert_eq!(bad_date.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_date.stderr).contains("YYYY-MM-DD"));
    for size in ["lots", "0", "12XB", "99999999999T"] {
        let bad_size = lakewriter(&[
            "write",
            "--table",
            "/tmp/x",
            "--input",
            "a.csv",
            "--date",
            "2024-01-01",
            "--memory-limit",
            size,
        ]);
        assert_eq!(bad_size.status.code(), Some(2), "{size}");
        assert!(
            String::from_utf8_lossy(&bad_size.stderr).contains("512MiB or 4GiB"),
            "{size}"
        );
    }
}

#[tokio::test]
async fn text_output_and_history_name_the_run() {
    let lake = Lake::local();
    let input = lake.input(
        "d.csv",
        &csv(&["1,c,s,1,1.0,2024-01-01T00:00:00Z,2024-01-01"]),
    );
    let output = lakewriter(&[
        "write",
        "--table",
        &lake.table,
        "--input",
        &input,
        "--date",
        "2024-01-01",
        "--run-id",
        "nightly-1",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("committed 2024-01-01 at version 0"),
        "{text}"
    );
    assert!(text.contains("nightly-1"), "{text}");

    let commits: Vec<HistoryCommit> = lake.run("history", &[]).parse();
    assert_eq!(commits[0].version, Some(0));
    assert_eq!(commits[0].user_metadata.as_deref(), Some("nightly-1"));
    assert_eq!(commits[0].operation.as_deref(), Some("WRITE"));
    assert!(commits[0].timestamp.is_some_and(|ms| ms > 0));
    let record = commits[0].lakewriter.as_ref().expect("lakewriter's record");
    assert_eq!(record["runId"], "nightly-1");
}

/// A storage that does not answer (here: nothing listens on the endpoint) ends the run with
/// exit 7, "rerun later", not with the exit 1 of a damaged table; the message names the table.
#[test]
fn unreachable_storage_exits_7() {
    let lake = Lake::local();
    let input = lake.input("day.csv", "id,date\n1,2024-01-01\n");
    // Port 9 (discard) has no listener here: every request is refused at once.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lakewriter"))
        .args([
            "write",
            "--table",
            "s3://lakewriter-unreachable/sales",
            "--input",
            &input,
            "--date",
            "2024-01-01",
            "--storage-option",
            "aws_endpoint=http://127.0.0.1:9",
            "--storage-option",
            "allow_http=true",
        ])
        .envs([
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("s3://lakewriter-unreachable/sales"),
        "{stderr}"
    );
}
