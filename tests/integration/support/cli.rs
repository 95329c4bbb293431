//! The CLI: `lakewriter` commands against a lake, and what a run printed.

use std::process::{Command, Output};

use serde_json::Value;

use super::Lake;

impl Lake {
    /// A `lakewriter` command with this lake's storage environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lakewriter"));
        command.args(args).envs(self.storage_env());
        command
    }

    /// Runs `lakewriter write --table <this table> ARGS --output json`.
    pub fn write(&self, args: &[&str]) -> Run {
        let mut all = vec!["write", "--table", &self.table, "--output", "json"];
        all.extend_from_slice(args);
        Run::of(self.command(&all).output().expect("lakewriter runs"))
    }

    /// Starts one `lakewriter write --table <this table> --output json ARGS` per argument
    /// list, all at once, and waits for every one.
    pub fn race_writes(&self, runs: &[Vec<String>]) -> Vec<Run> {
        let children: Vec<_> = runs
            .iter()
            .map(|args| {
                let mut all = vec!["write", "--table", &self.table, "--output", "json"];
                all.extend(args.iter().map(String::as_str));
                self.command(&all)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("lakewriter starts")
            })
            .collect();
        children
            .into_iter()
            .map(|child| Run::of(child.wait_with_output().expect("lakewriter runs")))
            .collect()
    }

    /// Runs `lakewriter backfill --table <this table> ARGS --output json`.
    pub fn backfill(&self, args: &[&str]) -> Run {
        let mut all = vec!["backfill", "--table", &self.table, "--output", "json"];
        all.extend_from_slice(args);
        Run::of(self.command(&all).output().expect("lakewriter runs"))
    }

    /// Runs `lakewriter runs --output json` and returns the rows.
    pub fn runs(&self) -> Vec<Value> {
        let args = ["runs", "--table", &self.table, "--output", "json"];
        let run = Run::of(self.command(&args).output().expect("lakewriter runs"));
        assert_eq!(run.code, 0, "runs failed: {}", run.stderr);
        run.json.as_array().expect("runs prints an array").clone()
    }
}

/// Runs the CLI.
pub fn lakewriter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lakewriter"))
        .args(args)
        .output()
        .expect("lakewriter runs")
}

/// One CLI run: exit code, parsed JSON stdout (or Null), stderr.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            json: serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and the given status; returns the report.
    pub fn expect(&self, status: &str) -> &Value {
        assert_eq!(self.code, 0, "lakewriter failed: {}", self.stderr);
        assert_eq!(self.json["status"], status, "report: {}", self.json);
        &self.json
    }
}
