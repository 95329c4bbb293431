//! `lakewriter restore`: a scope's days made what they were at a version or what a run wrote,
//! in one commit, recorded so that reruns decide on the restored run; refused once vacuumed.

use serde::Deserialize;

use crate::support::{Lake, Status};

/// `restore --output json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreReport {
    status: String,
    version: Option<u64>,
    restored_from: u64,
    files_removed: u64,
    files_added: u64,
}

const TWO_DAYS: [&str; 6] = ["--from", "2024-05-01", "--to", "2024-05-02", "--key", "id"];

/// Writes both days with quantity `q` as run `run_id`.
fn write(lake: &Lake, q: u32, run_id: &str) -> crate::support::Report {
    let body = format!("id,q,date\n1,{q},2024-05-01\n2,{q},2024-05-02\n");
    let input = lake.input(&format!("q{q}.csv"), &body);
    let mut args = vec!["--input", input.as_str(), "--run-id", run_id];
    args.extend(TWO_DAYS);
    lake.write(&args).expect(Status::Committed)
}

fn restore(lake: &Lake, args: &[&str]) -> RestoreReport {
    lake.run("restore", args).parse()
}

pub async fn a_day_goes_back_to_a_version_or_a_run_in_one_commit(lake: &Lake) {
    write(lake, 1, "first");
    write(lake, 2, "second");
    write(lake, 3, "third");
    let restored = restore(lake, &["--date", "2024-05-01", "--version", "0"]);
    assert_eq!(
        (
            restored.status.as_str(),
            restored.version,
            restored.restored_from
        ),
        ("committed", Some(3), 0)
    );
    assert_eq!((restored.files_removed, restored.files_added), (1, 1));
    let rows = lake.rows_agreed_by_readers().await.parsed();
    let q = |id: i64| rows.iter().find(|r| r["id"] == id).unwrap()["q"].clone();
    assert_eq!(
        (q(1), q(2)),
        (serde_json::json!(1), serde_json::json!(3)),
        "only the scope"
    );
    let runs = lake.runs();
    assert_eq!(
        runs[0].run_id.as_deref(),
        Some("first"),
        "the ledger names the run"
    );
    assert_eq!(runs[1].run_id.as_deref(), Some("third"));
    assert_eq!(lake.commit(3).await.info()["operation"], "RESTORE");

    // By run id: what `second` wrote; then nothing more to do.
    let by_run = restore(lake, &["--date", "2024-05-01", "--run-id", "second"]);
    assert_eq!(
        (by_run.status.as_str(), by_run.restored_from),
        ("committed", 1)
    );
    let again = restore(lake, &["--date", "2024-05-01", "--run-id", "second"]);
    assert_eq!(again.status, "skipped");

    // Time travel readers see the restore as one version: the version before it is whole.
    assert_eq!(lake.rows_agreed_by_readers().await.len(), 2);

    // The next identical run of the latest input replaces the restored day again.
    write(lake, 3, "third-again");
    assert!(
        lake.runs()
            .iter()
            .all(|r| r.run_id.as_deref() == Some("third-again"))
    );
}

pub async fn a_vacuumed_version_or_an_unknown_run_is_refused(lake: &Lake) {
    write(lake, 1, "first");
    write(lake, 2, "second");
    for args in [
        &["--date", "2024-05-01", "--version", "7"][..],
        &["--date", "2024-05-01", "--run-id", "nobody"][..],
    ] {
        let run = lake.run("restore", args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    // Vacuum commits its start and end; nothing after that.
    lake.vacuum(&["--retain-hours", "0", "--force"]);
    let versions = lake.versions().await;
    let run = lake.run("restore", &["--date", "2024-05-01", "--version", "0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("gone"), "{}", run.stderr);
    assert_eq!(lake.versions().await, versions, "nothing committed");
}

crate::support::on_backends!(
    [local: Local, s3: S3],
    [
        a_day_goes_back_to_a_version_or_a_run_in_one_commit,
        a_vacuumed_version_or_an_unknown_run_is_refused,
        a_crash_during_restore_leaves_the_table_as_it_was_or_restored,
    ]
);

pub async fn a_crash_during_restore_leaves_the_table_as_it_was_or_restored(lake: &Lake) {
    for (point, landed) in [("before-commit", false), ("after-commit", true)] {
        let lake = lake.sibling();
        write(&lake, 1, "first");
        write(&lake, 2, "second");
        let before = lake.rows().await;
        let args = ["--date", "2024-05-01", "--version", "0"];
        let crashed = crate::support::Run::of(
            lake.json_command("restore", &args)
                .env("LAKEWRITER_FAIL_AT", point)
                .output()
                .unwrap(),
        );
        crashed.assert_aborted_at(point);
        let restored_rows =
            |rows: &crate::support::Rows| rows.parsed().iter().filter(|r| r["q"] == 1).count();
        let now = lake.rows().await;
        match landed {
            false => assert_eq!(now, before, "{point}"),
            true => assert_eq!(restored_rows(&now), 1, "{point}"),
        }
        let rerun = restore(&lake, &args);
        assert_eq!(
            rerun.status,
            if landed { "skipped" } else { "committed" },
            "{point}"
        );
        assert_eq!(restored_rows(&lake.rows().await), 1, "{point}: converges");
    }
}
