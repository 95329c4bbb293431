//! Credentials never leak: not in logs (at debug level), errors, JSON output or the Delta log,
//! whichever way they are given and whether the run succeeds or fails. (The webhook URL's
//! token is checked on every run of the notification tests.)

use crate::scenarios::csv;
use crate::support::{Backend, Lake, Run};

const FAKE_SECRET: &str = "lakewriter-fake-secret-Zq81xK";

fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(FAKE_SECRET),
        "the secret leaked into {what}: {text}"
    );
}

/// `lakewriter write` of `input` into `table` for one day.
fn write<'a>(table: &'a str, input: &'a str) -> Vec<&'a str> {
    [
        "write",
        "--table",
        table,
        "--input",
        input,
        "--date",
        "2024-01-01",
    ]
    .to_vec()
}

/// How the secret reaches lakewriter.
#[derive(Debug, Clone, Copy)]
enum Channel {
    Environment,
    StorageOption,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_key_appears_nowhere() {
    let lake = Lake::new(Backend::S3);
    let table = lake.table.clone();
    let option = format!("aws_secret_access_key={FAKE_SECRET}");
    for (quantity, channel) in [(1, Channel::Environment), (2, Channel::StorageOption)] {
        // Other content per channel, so that each channel's first write commits.
        let input = lake.input(
            &format!("{quantity}.csv"),
            &csv(&[&format!(
                "1,c,s,{quantity},1.0,2024-01-01T00:00:00Z,2024-01-01"
            )]),
        );
        let json = ["--output", "json"];
        // (case, arguments, whether it succeeds)
        let cases = [
            ("a write that commits", write(&table, &input), true),
            (
                "an identical rerun, as JSON",
                [write(&table, &input), json.to_vec()].concat(),
                true,
            ),
            (
                "runs, as JSON",
                [vec!["runs", "--table", &table], json.to_vec()].concat(),
                true,
            ),
            ("history", vec!["history", "--table", &table], true),
            (
                "input that does not exist",
                write(&table, "s3://lakewriter-test/none/*.csv"),
                false,
            ),
            (
                "a bucket that does not exist",
                write("s3://no-such-bucket-lw/t", &input),
                false,
            ),
        ];
        for (case, mut args, succeeds) in cases {
            args.insert(0, "-vv");
            let mut command = lake.command(&[]);
            match channel {
                Channel::Environment => {
                    command.env("AWS_SECRET_ACCESS_KEY", FAKE_SECRET);
                }
                Channel::StorageOption => args.extend(["--storage-option", &option]),
            }
            let run = Run::of(
                command
                    .args(&args)
                    .env("RUST_LOG", "debug")
                    .output()
                    .unwrap(),
            );
            assert_eq!(
                run.code == 0,
                succeeds,
                "{case} through {channel:?}: exit {}: {}",
                run.code,
                run.stderr
            );
            assert_no_secret(&format!("stdout of {case} ({channel:?})"), &run.stdout);
            assert_no_secret(&format!("stderr of {case} ({channel:?})"), &run.stderr);
        }
    }

    let log = lake.log_files().await;
    assert_eq!(
        lake.versions().await,
        [0, 1],
        "one commit through each channel"
    );
    for name in log {
        if let Some(version) = name.strip_suffix(".json").and_then(|v| v.parse().ok()) {
            let commit = lake.commit(version).await;
            assert_no_secret(
                "the Delta log",
                &serde_json::to_string(&commit.actions).unwrap(),
            );
        }
    }
}
