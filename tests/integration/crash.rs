//! Crashes at every named fail point and `kill -9` at random moments: the table always holds
//! the state before the run or after it, never a mix; the rerun converges to what an
//! uninterrupted run writes; `lakewriter vacuum` removes what the crash left behind.

use std::collections::{BTreeMap, BTreeSet};

use crate::scenarios::{self, csv};
use crate::support::{ENGINES, Lake, Report, Rows, Run, Status, WRITE_FAIL_POINTS, env_number};

/// One February day's input in one variant: three orders whose quantity is the variant.
fn day_input(lake: &Lake, day: u32, variant: u32) -> String {
    scenarios::day_input(lake, &format!("2024-02-{day:02}"), day * 100, variant)
}

fn write_day(lake: &Lake, day: u32, variant: u32, fail_at: Option<&str>) -> Run {
    let input = day_input(lake, day, variant);
    let date = format!("2024-02-{day:02}");
    let mut command = lake.json_command(
        "write",
        &[
            "--input",
            &input,
            "--date",
            &date,
            "--key",
            "order_id",
            "--run-id",
            &format!("day-{day}-v{variant}"),
        ],
    );
    if let Some(point) = fail_at {
        command.env("LAKEWRITER_FAIL_AT", point);
    }
    Run::of(command.output().unwrap())
}

/// The status of a run that must have succeeded.
fn status_of(run: &Run) -> Status {
    run.parse::<Report>().status
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
    for (point, commit_landed) in WRITE_FAIL_POINTS {
        let lake = Lake::local();
        let reference = lake.sibling();
        for day in 1..=9 {
            status_of(&write_day(&lake, day, 0, None));
            status_of(&write_day(&reference, day, 0, None));
        }
        let before = lake.rows().await;
        assert_eq!(
            status_of(&write_day(&reference, 5, 1, None)),
            Status::Committed
        );
        let after = reference.rows().await;

        let crashed = write_day(&lake, 5, 1, Some(point));
        crashed.assert_aborted_at(point);
        if point == "between-checkpoint-writes" {
            let log = lake.log_files().await;
            assert!(
                log.contains(&format!("{:020}.checkpoint.parquet", 9))
                    && !log.contains(&"_last_checkpoint".to_string()),
                "a checkpoint without its hint: {log:?}"
            );
        }
        let now = lake.rows().await;
        let expected_now = if commit_landed { &after } else { &before };
        assert_eq!(&now, expected_now, "{point}: the table after the crash");

        let rerun = status_of(&write_day(&lake, 5, 1, None));
        let expected = if commit_landed {
            Status::Skipped
        } else {
            Status::Committed
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
        assert_eq!(lake.vacuum(&[]).files, Vec::<String>::new(), "{point}");
        let refused = lake
            .command(&["vacuum", "--table", &lake.table, "--retain-hours", "0"])
            .output()
            .unwrap();
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{point}: a short retention needs --force"
        );

        let planned = lake.vacuum(&["--retain-hours", "0", "--force", "--dry-run"]);
        assert!(planned.dry_run);
        assert_eq!(
            unreferenced(&lake).await,
            leftovers,
            "{point}: a dry run deletes nothing"
        );
        let report = lake.vacuum(&["--retain-hours", "0", "--force"]);
        assert!(!report.dry_run);
        assert_eq!(
            report.files, planned.files,
            "{point}: it deletes what it planned"
        );
        let deleted: BTreeSet<String> = report
            .files
            .iter()
            .map(|f| f.trim_start_matches('/').to_string())
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
    let report = lake.vacuum(&["--retain-hours", "1", "--force"]);
    assert_eq!(report.files, Vec::<String>::new());
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

/// Where a kill lands, as the table and storage show it afterwards.
#[derive(Debug, Default)]
struct Landings {
    /// The run had finished before the kill.
    finished: u32,
    /// Killed before it uploaded anything.
    before_upload: u32,
    /// Killed with files uploaded and no commit: the window a torn write would show in.
    between_upload_and_commit: u32,
    /// Killed after its commit landed, before the process ended.
    after_commit: u32,
}

/// SIGKILL at random moments, and at moments held by a pause point, so that kills are known
/// to land both between upload and commit and after the commit. The model (the variant each
/// day must hold) is checked after every kill and every rerun.
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
    let mut landings = Landings::default();
    for i in 0..iterations {
        let context = format!("seed {seed} (LAKEWRITER_CRASH_SEED), iteration {i}");
        let day = 1 + rng.below(5) as u32;
        // A new variant each time, so that every run has something to commit.
        let variant = (model[&day] + 1 + rng.below(2) as u32) % 3;
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
        let versions = lake.versions().await;
        let leftovers = unreferenced(&lake).await.len();
        // A third of the kills wait at a point; the others come after a random delay.
        let held_at = match rng.below(6) {
            0 => Some("before-commit"),
            1 => Some("after-commit"),
            _ => None,
        };
        let barrier = tempfile::tempdir().unwrap();
        let mut command = lake.command(&args);
        if let Some(point) = held_at {
            // A barrier for two that only the run reaches: it waits there until killed.
            let pause = format!("{point}:2:{}", barrier.path().display());
            command.env("LAKEWRITER_PAUSE_AT", pause);
        }
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        match held_at {
            Some(point) => {
                while std::fs::read_dir(barrier.path()).unwrap().count() == 0 {
                    assert!(
                        child.try_wait().unwrap().is_none(),
                        "{context}: the run ended before reaching {point}"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
            // Not a timing assertion: the delay only picks the moment of the kill.
            None => std::thread::sleep(std::time::Duration::from_millis(rng.below(250))),
        }
        child.kill().ok(); // SIGKILL
        let finished = child.wait().unwrap().success();

        let committed = lake.versions().await != versions;
        let uploaded = unreferenced(&lake).await.len() > leftovers;
        match (finished, committed, uploaded) {
            (true, _, _) => landings.finished += 1,
            (false, true, _) => landings.after_commit += 1,
            (false, false, true) => landings.between_upload_and_commit += 1,
            (false, false, false) => landings.before_upload += 1,
        }
        match held_at {
            Some("before-commit") => assert!(
                !committed && uploaded,
                "{context}: held before its commit, the run had uploaded and not committed"
            ),
            Some(_) => assert!(committed, "{context}: held after its commit"),
            None => {}
        }

        let days = by_day(&lake.rows().await);
        for (&d, &v) in &model {
            let holds = days
                .get(&format!("2024-02-{d:02}"))
                .cloned()
                .unwrap_or_default();
            let expected = if d == day && committed {
                expected_day(d, variant)
            } else {
                expected_day(d, v)
            };
            assert_eq!(
                holds, expected,
                "{context}: day {d} (committed: {committed})"
            );
        }
        let rerun = Run::of(lake.command(&args).output().unwrap());
        assert_eq!(rerun.code, 0, "{context}: rerun failed: {}", rerun.stderr);
        model.insert(day, variant);
        let days = by_day(&lake.rows().await);
        assert_eq!(
            days.get(&date),
            Some(&expected_day(day, variant)),
            "{context}: the rerun converges"
        );
    }
    eprintln!("seed {seed}: kills of {iterations} runs landed {landings:?}");
    assert!(
        landings.between_upload_and_commit > 0 && landings.after_commit > 0,
        "seed {seed}: kills landed {landings:?}"
    );
    lake.vacuum(&["--retain-hours", "0", "--force"]);
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

/// The table's days as the model sees them: (order_id, quantity) rows and the ledger's run id,
/// with a derived run id translated through `derived` (learnt from lakewriter's reports).
async fn observed(
    lake: &Lake,
    derived: &BTreeMap<String, String>,
) -> BTreeMap<u32, (BTreeSet<(i64, i64)>, String)> {
    if lake.versions().await.is_empty() {
        return BTreeMap::new(); // a crash before the first commit: still no table
    }
    let rows = by_day(&lake.rows().await);
    lake.runs()
        .into_iter()
        .map(|run| {
            let day: u32 = run.date[8..].parse().unwrap();
            let held = rows.get(&run.date).cloned().unwrap_or_default();
            let run_id = run.run_id.unwrap_or_else(|| "<none>".into());
            let run_id = derived.get(&run_id).cloned().unwrap_or(run_id);
            (day, (held, run_id))
        })
        .collect()
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
    // Derived run ids (scope and fingerprint) as lakewriter reported them, to the model's.
    let mut derived: BTreeMap<String, String> = BTreeMap::new();
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
        if step.run_id.is_none() {
            // The id lakewriter derives for this input, from its own report of a dry run
            // (which plans a replace whatever the policy), before any crash can commit it.
            let plan = Step {
                policy: "replace",
                ..step
            }
            .args(&lake);
            let mut dry: Vec<&str> = plan.iter().map(String::as_str).collect();
            dry.push("--dry-run");
            let report: Report = Run::of(lake.command(&dry).output().unwrap()).parse();
            derived.insert(report.run_id, step.run_id());
        }

        // A third of the steps crash first, at a fail point; the rerun then finishes the job.
        // Whether that first try's commit landed (a crash past the commit, or a run that
        // never reached its fail point and committed).
        let mut landed_before_rerun = false;
        if rng.below(3) == 0 {
            let (point, _) = WRITE_FAIL_POINTS[rng.below(WRITE_FAIL_POINTS.len() as u64) as usize];
            let crashed = Run::of(
                lake.command(&args)
                    .env("LAKEWRITER_FAIL_AT", point)
                    .output()
                    .unwrap(),
            );
            let now = observed(&lake, &derived).await;
            if crashed.code == 0 || crashed.code == 3 {
                // The run never reached the point: it skipped, was refused by `fail`, or
                // committed without a checkpoint being due. It finished as the model says.
                assert_eq!(now, expected(&after), "{context}: a run that did not crash");
                landed_before_rerun = crashed.report().map(|r| r.status) == Some(Status::Committed);
            } else {
                crashed.assert_aborted_at(point);
                landed_before_rerun = WRITE_FAIL_POINTS.contains(&(point, true));
                let state = if landed_before_rerun { &after } else { &model };
                assert_eq!(now, expected(state), "{context}: after a crash at {point}");
            }
        }
        let run = Run::of(lake.command(&args).output().unwrap());
        let got = match run.code {
            0 => format!("{:?}", status_of(&run)).to_lowercase(),
            3 => "refused".to_string(),
            _ => panic!("{context}: {}", run.stderr),
        };
        // A run whose first try committed finds the work done: skipped where the model (which
        // knows nothing of the first try) says committed, unless it replaces whatever it finds.
        let expected_status =
            if landed_before_rerun && status == "committed" && step.policy != "replace" {
                "skipped"
            } else {
                status
            };
        assert_eq!(
            got, expected_status,
            "{context}: the model says {status}; the model held {model:?}"
        );
        model = after;
        assert_eq!(
            observed(&lake, &derived).await,
            expected(&model),
            "{context}: the table differs from the model"
        );
    }
    lake.vacuum(&["--retain-hours", "0", "--force"]);
    assert!(
        unreferenced(&lake).await.is_empty(),
        "seed {seed}: vacuum left unreferenced files"
    );
    assert_eq!(
        observed(&lake, &derived).await,
        expected(&model),
        "seed {seed}: after vacuum"
    );
}
