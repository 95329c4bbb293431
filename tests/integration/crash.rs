//! Crashes at every named fail point and `kill -9` at random moments: the table always holds
//! the state before the run or after it, never a mix; the rerun converges to what an
//! uninterrupted run writes; `lakewriter vacuum` removes what the crash left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use crate::scenarios::{self, csv};
use crate::support::{ENGINES, Lake, Rows, env_number};

/// One February day's input in one variant: three orders whose quantity is the variant.
fn day_input(lake: &Lake, day: u32, variant: u32) -> String {
    scenarios::day_input(lake, &format!("2024-02-{day:02}"), day * 100, variant)
}

fn write_day(lake: &Lake, day: u32, variant: u32, fail_at: Option<&str>) -> Output {
    let input = day_input(lake, day, variant);
    let date = format!("2024-02-{day:02}");
    let mut command = lake.command(&[
        "write",
        "--table",
        &lake.table,
        "--input",
        &input,
        "--date",
        &date,
        "--key",
        "order_id",
        "--run-id",
        &format!("day-{day}-v{variant}"),
        "--output",
        "json",
    ]);
    if let Some(point) = fail_at {
        command.env("LAKEWRITER_FAIL_AT", point);
    }
    command.output().unwrap()
}

fn status_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["status"].as_str().unwrap().to_string()
}

fn vacuum(lake: &Lake, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["vacuum", "--table", &lake.table, "--output", "json"];
    args.extend_from_slice(extra);
    let output = lake.command(&args).output().unwrap();
    assert!(
        output.status.success(),
        "vacuum: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Data files on storage that the latest version does not reference.
async fn unreferenced(lake: &Lake) -> BTreeSet<String> {
    let active: BTreeSet<String> = lake.active_files().await.into_iter().collect();
    lake.data_files()
        .await
        .into_iter()
        .filter(|f| !active.contains(f))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fail_point_leaves_the_old_or_the_new_table_and_the_rerun_converges() {
    // Nine commits first, so the crashing run (version 9) is also the one that checkpoints.
    let points = [
        ("after-read", false),
        ("after-upload", false),
        ("before-commit", false),
        ("after-commit", true),
        ("during-checkpoint", true),
    ];
    for (point, commit_landed) in points {
        let lake = Lake::local();
        let reference = lake.sibling();
        for day in 1..=9 {
            status_of(&write_day(&lake, day, 0, None));
            status_of(&write_day(&reference, day, 0, None));
        }
        let before = lake.rows().await;
        assert_eq!(status_of(&write_day(&reference, 5, 1, None)), "committed");
        let after = reference.rows().await;

        let crashed = write_day(&lake, 5, 1, Some(point));
        assert!(
            !crashed.status.success(),
            "{point}: the process did not crash"
        );
        let now = lake.rows().await;
        let expected_now = if commit_landed { &after } else { &before };
        assert_eq!(&now, expected_now, "{point}: the table after the crash");

        let rerun = status_of(&write_day(&lake, 5, 1, None));
        let expected = if commit_landed {
            "skipped"
        } else {
            "committed"
        };
        assert_eq!(rerun, expected, "{point}: the rerun");
        assert_eq!(lake.rows().await, after, "{point}: the rerun converges");

        let leftovers = unreferenced(&lake).await;
        if point == "after-upload" || point == "before-commit" {
            assert!(
                !leftovers.is_empty(),
                "{point}: the crashed run's files are on storage"
            );
        }
        // The default retention keeps everything this young.
        assert_eq!(
            vacuum(&lake, &[])["files"],
            serde_json::json!([]),
            "{point}"
        );
        let refused = lake
            .command(&["vacuum", "--table", &lake.table, "--retain-hours", "0"])
            .output()
            .unwrap();
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{point}: a short retention needs --force"
        );

        let report = vacuum(&lake, &["--retain-hours", "0", "--force"]);
        let deleted: BTreeSet<String> = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().trim_start_matches('/').to_string())
            .collect();
        assert!(
            deleted.is_superset(&leftovers),
            "{point}: vacuum deletes {leftovers:?}, got {deleted:?}"
        );
        assert!(
            unreferenced(&lake).await.is_empty(),
            "{point}: nothing unreferenced is left"
        );
        assert_eq!(
            lake.rows_agreed_by_readers().await,
            after,
            "{point}: vacuum kept the data"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_what_retained_versions_reference() {
    let lake = Lake::local();
    status_of(&write_day(&lake, 1, 0, None));
    let version_0 = lake.rows().await;
    status_of(&write_day(&lake, 1, 1, None));
    // One hour of retention: version 0's file was removed seconds ago, so it stays.
    let report = vacuum(&lake, &["--retain-hours", "1", "--force"]);
    assert_eq!(report["files"], serde_json::json!([]));
    for engine in ENGINES {
        assert_eq!(
            lake.seen_by(engine, Some(0)).rows,
            version_0,
            "{engine:?} time travel after vacuum"
        );
    }
}

/// A small seeded generator (xorshift64*), so a failing sequence can be replayed exactly.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// (order_id, quantity) pairs per day: what a day holds.
fn by_day(rows: &Rows) -> BTreeMap<String, BTreeSet<(i64, i64)>> {
    let mut days: BTreeMap<String, BTreeSet<(i64, i64)>> = BTreeMap::new();
    for row in rows.parsed() {
        days.entry(row["date"].as_str().unwrap().to_string())
            .or_default()
            .insert((
                row["order_id"].as_i64().unwrap(),
                row["quantity"].as_i64().unwrap(),
            ));
    }
    days
}

fn expected_day(day: u32, variant: u32) -> BTreeSet<(i64, i64)> {
    (0..3)
        .map(|k| (i64::from(day * 100 + k), i64::from(variant)))
        .collect()
}

/// The model: the variant each day must hold. Checked after every kill and every rerun.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_the_table_is_always_whole() {
    let seed: u64 = env_number("LAKEWRITER_CRASH_SEED", 0x5EED_2026);
    let iterations: u32 = env_number("LAKEWRITER_CRASH_ITERATIONS", 50);
    let mut rng = Rng(seed | 1);
    let lake = Lake::local();
    let mut model: BTreeMap<u32, u32> = BTreeMap::new();
    for day in 1..=5 {
        status_of(&write_day(&lake, day, 0, None));
        model.insert(day, 0);
    }
    let mut interrupted = 0;
    for i in 0..iterations {
        let context = format!("seed {seed} (LAKEWRITER_CRASH_SEED), iteration {i}");
        let day = 1 + rng.below(5) as u32;
        let variant = 1 + rng.below(3) as u32;
        let input = day_input(&lake, day, variant);
        let date = format!("2024-02-{day:02}");
        let args = [
            "write",
            "--table",
            &lake.table,
            "--input",
            &input,
            "--date",
            &date,
            "--key",
            "order_id",
        ];
        let mut child = lake
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Not a timing assertion: the delay only picks the moment of the kill.
        std::thread::sleep(std::time::Duration::from_millis(rng.below(250)));
        child.kill().ok(); // SIGKILL
        let finished = child.wait().unwrap().success();
        interrupted += u32::from(!finished);

        let days = by_day(&lake.rows().await);
        for (&d, &v) in &model {
            let holds = days
                .get(&format!("2024-02-{d:02}"))
                .cloned()
                .unwrap_or_default();
            if d == day {
                assert!(
                    holds == expected_day(d, v) || holds == expected_day(d, variant),
                    "{context}: day {d} holds neither the old nor the new rows: {holds:?}"
                );
            } else {
                assert_eq!(holds, expected_day(d, v), "{context}: day {d} was touched");
            }
        }
        let rerun = lake.command(&args).output().unwrap();
        assert!(
            rerun.status.success(),
            "{context}: rerun failed: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        model.insert(day, variant);
        let days = by_day(&lake.rows().await);
        assert_eq!(
            days.get(&date),
            Some(&expected_day(day, variant)),
            "{context}: the rerun converges"
        );
    }
    eprintln!("seed {seed}: {interrupted} of {iterations} runs killed before they finished");
    assert!(
        interrupted > 0,
        "seed {seed}: no run was ever interrupted; the kills came too late"
    );
    vacuum(&lake, &["--retain-hours", "0", "--force"]);
    assert!(
        unreferenced(&lake).await.is_empty(),
        "seed {seed}: vacuum left unreferenced files"
    );
    let days = by_day(&lake.rows_agreed_by_readers().await);
    for (&d, &v) in &model {
        assert_eq!(
            days.get(&format!("2024-02-{d:02}")),
            Some(&expected_day(d, v)),
            "seed {seed}: day {d}"
        );
    }
}

/// What the model says a day holds: who wrote it and with which input.
#[derive(Clone, Debug, PartialEq)]
struct Owner {
    run_id: String,
    /// Scope and variant determine the input's bytes and options, so they stand for the
    /// fingerprint.
    input: (u32, u32, u32),
}

/// One generated run.
struct Step {
    from: u32,
    to: u32,
    variant: u32,
    run_id: Option<&'static str>,
    policy: &'static str,
}

impl Step {
    fn run_id(&self) -> String {
        // Without --run-id the id derives from scope and fingerprint, i.e. from the input.
        self.run_id.map_or_else(
            || format!("derived-{}-{}-{}", self.from, self.to, self.variant),
            str::to_string,
        )
    }

    fn args(&self, lake: &Lake) -> Vec<String> {
        let input = {
            let mut rows = Vec::new();
            for day in self.from..=self.to {
                let date = format!("2024-02-{day:02}");
                for k in 0..2 {
                    rows.push(format!(
                        "{},c,s,{},1.0,{date}T00:00:00Z,{date}",
                        day * 100 + k,
                        self.variant
                    ));
                }
            }
            let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
            lake.input(
                &format!("model-{}-{}-v{}.csv", self.from, self.to, self.variant),
                &csv(&rows),
            )
        };
        let mut args: Vec<String> = [
            "write",
            "--table",
            &lake.table,
            "--input",
            &input,
            "--key",
            "order_id",
            "--output",
            "json",
            "--from",
            &format!("2024-02-{:02}", self.from),
            "--to",
            &format!("2024-02-{:02}", self.to),
            "--on-rerun",
            self.policy,
        ]
        .map(str::to_string)
        .to_vec();
        if let Some(id) = self.run_id {
            args.extend(["--run-id".to_string(), id.to_string()]);
        }
        args
    }

    /// The model's decision: "committed", "skipped" or "refused", and the days afterwards.
    fn apply(&self, days: &BTreeMap<u32, Owner>) -> (&'static str, BTreeMap<u32, Owner>) {
        let me = Owner {
            run_id: self.run_id(),
            input: (self.from, self.to, self.variant),
        };
        let scope: Vec<u32> = (self.from..=self.to).collect();
        let written_by = |same_input: bool| {
            scope.iter().all(|d| {
                days.get(d)
                    .is_some_and(|o| o.run_id == me.run_id && (!same_input || o.input == me.input))
            })
        };
        let skip = match self.policy {
            "replace" => false,
            "skip" => written_by(false),
            _ => written_by(true),
        };
        if skip {
            return ("skipped", days.clone());
        }
        if self.policy == "fail"
            && scope
                .iter()
                .any(|d| days.get(d).is_some_and(|o| o.run_id != me.run_id))
        {
            return ("refused", days.clone());
        }
        let mut after = days.clone();
        for day in scope {
            after.insert(day, me.clone());
        }
        ("committed", after)
    }
}

/// The table's days as the model sees them: (order_id, quantity) rows and the ledger's run id.
async fn observed(lake: &Lake) -> BTreeMap<u32, (BTreeSet<(i64, i64)>, String)> {
    if lake.versions().await.is_empty() {
        return BTreeMap::new(); // a crash before the first commit: still no table
    }
    let rows = by_day(&lake.rows().await);
    lake.runs()
        .iter()
        .map(|run| {
            let date = run["date"].as_str().unwrap();
            let day: u32 = date[8..].parse().unwrap();
            let held = rows.get(date).cloned().unwrap_or_default();
            let run_id = model_run_id(run["run_id"].as_str().unwrap_or("<unknown>"), &held);
            (day, (held, run_id))
        })
        .collect()
}

/// A derived run id (`2024-02-01..2024-02-02-<fingerprint>`) in the model's terms: the scope
/// from the id, and the variant, which the rows' quantity shows.
fn model_run_id(run_id: &str, rows: &BTreeSet<(i64, i64)>) -> String {
    match run_id.strip_prefix("2024-02-") {
        Some(rest) => {
            let from: u32 = rest[..2].parse().unwrap();
            let to: u32 = rest[12..14].parse().unwrap();
            let variant = rows.iter().next().map_or(-1, |(_, quantity)| *quantity);
            format!("derived-{from}-{to}-{variant}")
        }
        None => run_id.to_string(),
    }
}

fn expected(days: &BTreeMap<u32, Owner>) -> BTreeMap<u32, (BTreeSet<(i64, i64)>, String)> {
    days.iter()
        .map(|(&day, owner)| {
            let rows = (0..2)
                .map(|k| (i64::from(day * 100 + k), i64::from(owner.input.2)))
                .collect();
            (day, (rows, owner.run_id.clone()))
        })
        .collect()
}

/// Random runs (days, inputs, run ids, policies) with random crashes and reruns, checked
/// against the model after every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_runs_policies_and_crashes_match_the_model() {
    let seed: u64 = env_number("LAKEWRITER_CRASH_SEED", 0x5EED_2026);
    let steps: u32 = env_number("LAKEWRITER_MODEL_STEPS", 40);
    let mut rng = Rng(seed ^ 0x00DE_1A7E);
    let lake = Lake::local();
    let mut model: BTreeMap<u32, Owner> = BTreeMap::new();
    let points = [
        "after-read",
        "after-upload",
        "before-commit",
        "after-commit",
        "during-checkpoint",
    ];
    for i in 0..steps {
        let from = 1 + rng.below(4) as u32;
        let step = Step {
            from,
            to: (from + rng.below(2) as u32).min(4),
            variant: rng.below(3) as u32,
            run_id: [Some("a"), Some("b"), None][rng.below(3) as usize],
            policy: ["auto", "skip", "replace", "fail"][rng.below(4) as usize],
        };
        let context = format!(
            "seed {seed} (LAKEWRITER_CRASH_SEED), step {i}: days {}..{} variant {} run {:?} policy {}",
            step.from, step.to, step.variant, step.run_id, step.policy
        );
        let args = step.args(&lake);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, after) = step.apply(&model);

        // A third of the steps crash first, at a fail point; the rerun then finishes the job.
        if rng.below(3) == 0 {
            let point = points[rng.below(points.len() as u64) as usize];
            let crashed = lake
                .command(&args)
                .env("LAKEWRITER_FAIL_AT", point)
                .output()
                .unwrap();
            if crashed.status.success() || crashed.status.code() == Some(3) {
                // The run never reached the point: it skipped, was refused by `fail`, or
                // committed without a checkpoint being due. It finished as the model says.
                assert_eq!(
                    observed(&lake).await,
                    expected(&after),
                    "{context}: a run that did not crash"
                );
            } else {
                let now = observed(&lake).await;
                assert!(
                    now == expected(&model) || now == expected(&after),
                    "{context}: crash at {point} left a mix: {now:?}"
                );
            }
        }
        let output = lake.command(&args).output().unwrap();
        let got = match output.status.code() {
            Some(0) => {
                let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
                report["status"].as_str().unwrap().to_string()
            }
            Some(3) => "refused".to_string(),
            _ => panic!("{context}: {}", String::from_utf8_lossy(&output.stderr)),
        };
        // After a crash past the commit, the rerun finds the work done: skipped, not committed.
        let acceptable = got == status
            || (status == "committed" && got == "skipped" && step.policy != "replace");
        assert!(
            acceptable,
            "{context}: the model says {status}, lakewriter said {got}"
        );
        model = after;
        assert_eq!(
            observed(&lake).await,
            expected(&model),
            "{context}: the table differs from the model"
        );
    }
    vacuum(&lake, &["--retain-hours", "0", "--force"]);
    assert!(
        unreferenced(&lake).await.is_empty(),
        "seed {seed}: vacuum left unreferenced files"
    );
    assert_eq!(
        observed(&lake).await,
        expected(&model),
        "seed {seed}: after vacuum"
    );
}
