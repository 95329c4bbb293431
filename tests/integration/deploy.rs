//! The deployment examples of examples/deploy/, run the way their users run them: the Dagster
//! asset materialised by Dagster, the Airflow DAG run by Airflow's `dags test`, the Kubernetes
//! manifest validated against the Kubernetes schema and its arguments run by lakewriter.
//! scripts/test installs the pinned tools (tests/integration/deploy/requirements-*.txt).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use serde_json::Value;

use crate::support::{Lake, tool};

const DAYS: [&str; 3] = ["2024-01-01", "2024-01-02", "2024-01-03"];

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/deploy")
        .join(path)
}

/// A lake whose inputs hold two rows for each of DAYS, as `<day>.csv`; the input template.
fn lake_with_days() -> (Lake, String) {
    let lake = Lake::local();
    for day in DAYS {
        lake.input(
            &format!("{day}.csv"),
            &format!("order_id,quantity,date\n1,2,{day}\n2,3,{day}\n"),
        );
    }
    let template = format!("{}/{{date}}.csv", lake.inputs_prefix());
    (lake, template)
}

/// The environment the Dagster and Airflow examples read their configuration from.
fn example_env(command: &mut Command, lake: &Lake, template: &str) {
    command
        .env("LAKEWRITER_BIN", env!("CARGO_BIN_EXE_lakewriter"))
        .env("LAKEWRITER_TABLE", &lake.table)
        .env("LAKEWRITER_INPUT", template)
        .env("LAKEWRITER_ARGS", "--key order_id");
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("the tool runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn dagster_asset_materialises_partitions_with_the_report_and_skips_them_again() {
    let Some(python) = tool("LAKEWRITER_DAGSTER_PYTHON") else {
        return;
    };
    let (lake, template) = lake_with_days();
    lake.input("2024-01-04.csv", "order_id,quantity,date\nx,2,2024-01-04\n");
    let materialise = |days: &[&str]| -> Vec<Value> {
        let mut command = Command::new(&python);
        command
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/integration/deploy/dagster_materialize.py"),
            )
            .arg(example("dagster/lakewriter_assets.py"))
            .args(days);
        example_env(&mut command, &lake, &template);
        run(&mut command)
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON line per partition"))
            .collect()
    };

    let first = materialise(&DAYS);
    let ledger_after_first = lake.runs();
    assert_eq!(ledger_after_first.len(), 3, "{ledger_after_first:?}");
    for (partition, run) in first.iter().zip(&ledger_after_first) {
        assert_eq!(partition["success"], true, "{partition}");
        let metadata = &partition["metadata"];
        assert_eq!(metadata["status"], "committed", "{partition}");
        assert_eq!(metadata["rows_written"], 2, "{partition}");
        // The metadata is lakewriter's report of that very commit.
        assert_eq!(metadata["run_id"].as_str(), run.run_id.as_deref());
        assert_eq!(metadata["version"].as_u64(), run.version);
        assert_eq!(metadata["report"]["partitions"][0], run.date.as_str());
    }

    // Materialised again, with a bad day among them: the three are skipped (no commit), the
    // bad one fails naming its file, and Dagster does not retry it.
    let again = materialise(&["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]);
    for partition in &again[..3] {
        assert_eq!(partition["metadata"]["status"], "skipped", "{partition}");
        assert_eq!(partition["metadata"]["version"], 2, "{partition}");
    }
    let bad = &again[3];
    assert_eq!(bad["success"], false, "{bad}");
    assert_eq!(bad["failure"]["exit_code"], 2, "{bad}");
    assert_eq!(bad["failure"]["retried"], false, "{bad}");
    let description = bad["failure"]["description"].as_str().unwrap();
    assert!(description.contains("2024-01-04.csv"), "{description}");
    assert_eq!(lake.runs(), ledger_after_first);
}

#[test]
fn airflow_dag_maps_one_write_per_day_and_its_rerun_commits_nothing() {
    let Some(airflow) = tool("LAKEWRITER_AIRFLOW") else {
        return;
    };
    let (lake, template) = lake_with_days();
    let home = tempfile::tempdir().expect("temp dir");
    let airflow_command = |args: &[&str]| {
        let mut command = Command::new(&airflow);
        command
            .args(args)
            .env("AIRFLOW_HOME", home.path())
            .env("AIRFLOW__CORE__DAGS_FOLDER", example("airflow"))
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False");
        example_env(&mut command, &lake, &template);
        command
    };
    run(&mut airflow_command(&["db", "migrate"]));
    // Airflow's own parser: the DAG imports, and its tasks are the day list and the write.
    let listed = run(&mut airflow_command(&["tasks", "list", "lakewriter_daily"]));
    let tasks: Vec<&str> = listed.lines().filter(|l| !l.contains(' ')).collect();
    assert_eq!(tasks, ["days", "write"], "{listed}");

    let backfill = r#"{"from": "2024-01-01", "to": "2024-01-03"}"#;
    let test_run = || {
        run(&mut airflow_command(&[
            "dags",
            "test",
            "lakewriter_daily",
            "--conf",
            backfill,
        ]))
    };
    let first = test_run();
    let ledger_after_first = lake.runs();
    assert_eq!(
        ledger_after_first
            .iter()
            .map(|r| r.date.as_str())
            .collect::<Vec<_>>(),
        DAYS,
        "one mapped write per day committed its day:\n{first}"
    );
    assert!(ledger_after_first.iter().all(|r| r.rows == Some(2)));

    // The whole DAG run again (an orchestrator retry): every day is skipped, nothing changes.
    let second = test_run();
    assert_eq!(lake.runs(), ledger_after_first, "{second}");
    assert_eq!(second.matches("'status': 'skipped'").count(), 3, "{second}");
}

#[test]
fn kubernetes_manifest_is_a_valid_indexed_job_whose_arguments_lakewriter_takes() {
    let Some(validate) = tool("LAKEWRITER_KUBERNETES_VALIDATE") else {
        return;
    };
    let manifest = example("kubernetes/backfill-job.yaml");
    run(Command::new(&validate).arg("--strict").arg(&manifest));
    // The validator does refuse a Job it should: a misspelt field.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let broken_dir = tempfile::tempdir().unwrap();
    let broken = broken_dir.path().join("broken.yaml");
    std::fs::write(&broken, text.replace("completionMode:", "completionMod:")).unwrap();
    let refused = Command::new(&validate)
        .arg("--strict")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a misspelt field passed validation"
    );

    // The fields the README names, read from the YAML by the validator's own Python.
    let python = Path::new(&validate).with_file_name("python");
    let job: Value = serde_json::from_str(&run(Command::new(python)
        .arg("-c")
        .arg("import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))")
        .arg(&manifest)))
    .unwrap();
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let option = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} in {args:?}"))
    };
    let shards: u64 = option("shards").parse().unwrap();
    assert_eq!(spec["completions"], shards, "one pod per shard");
    assert_eq!(spec["parallelism"], shards);
    let memory_limit = mebibytes(option("memory-limit"));
    let requested = mebibytes(
        container["resources"]["requests"]["memory"]
            .as_str()
            .unwrap(),
    );
    assert!(
        requested >= memory_limit + 256,
        "{requested} MiB requested for --memory-limit {memory_limit} MiB"
    );
    assert_eq!(
        container["resources"]["limits"]["memory"],
        container["resources"]["requests"]["memory"]
    );
    let env = container["env"].as_array().unwrap();
    for secret in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "LAKEWRITER_NOTIFY_URL",
    ] {
        let variable = env
            .iter()
            .find(|e| e["name"] == secret)
            .unwrap_or_else(|| panic!("{secret}"));
        assert!(
            variable["valueFrom"]["secretKeyRef"]["name"].is_string(),
            "{secret} from a Secret"
        );
        assert!(
            variable.get("value").is_none(),
            "{secret} is not written in the manifest"
        );
    }

    // lakewriter takes the arguments as they are, with only the locations and the range
    // replaced: pod 3's dry run plans exactly the days of shard 3 of 8.
    let lake = Lake::local();
    let first = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let days: Vec<NaiveDate> = first.iter_days().take(16).collect();
    for day in &days {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        write!(
            gzip,
            "order_id,updated_at,date\n1,2024-01-01T00:00:00Z,{day}\n"
        )
        .unwrap();
        lake.input_bytes(
            &format!("{}/x.csv.gz", day.format("%Y/%m/%d")),
            &gzip.finish().unwrap(),
        );
    }
    let landing = option("input").split("{date").next().unwrap();
    let local_args: Vec<String> = args
        .iter()
        .map(|arg| match arg.split_once('=') {
            Some(("--table", _)) => format!("--table={}", lake.table),
            Some(("--input", value)) => format!(
                "--input={}",
                value.replace(landing, &format!("{}/", lake.inputs_prefix()))
            ),
            Some(("--from", _)) => format!("--from={}", days[0]),
            Some(("--to", _)) => format!("--to={}", days[15]),
            _ => arg.to_string(),
        })
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_lakewriter"))
        .args(&local_args)
        .arg("--dry-run")
        .env("JOB_COMPLETION_INDEX", "3")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let planned: Vec<&str> = report["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let shard_3: Vec<String> = days
        .iter()
        .filter(|d| (**d - epoch).num_days() % 8 == 3)
        .map(|d| d.to_string())
        .collect();
    assert_eq!(planned, shard_3);
}

/// A Kubernetes quantity (`2560Mi`, `2Gi`) or a lakewriter size (`2GiB`, `512MiB`) in MiB.
fn mebibytes(size: &str) -> u64 {
    let digits: String = size.chars().take_while(|c| c.is_ascii_digit()).collect();
    let number: u64 = digits.parse().unwrap();
    match size[digits.len()..].trim_end_matches('B') {
        "Mi" => number,
        "Gi" => number * 1024,
        unit => panic!("unit {unit} of {size}"),
    }
}
