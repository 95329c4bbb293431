//! Reports for people (text) and programs (JSON): write reports, backfill summaries,
//! `runs`, `history`, `vacuum`, `optimize`, and the progress bar.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use lakewriter::{
    CommitSummary, DayOutcome, NotificationStatus, OptimizeReport, PartitionRun, RestoreReport,
    RunStatus, VacuumReport, WriteReport,
};

use crate::args::Output;
use crate::exit::Exit;

/// How many days of a backfill ended which way.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) committed: u64,
    pub(crate) skipped: u64,
    pub(crate) planned: u64,
    pub(crate) failed: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, day: &DayOutcome) {
        match &day.outcome {
            Ok(report) => match report.status {
                RunStatus::Committed => self.committed += 1,
                RunStatus::Skipped => self.skipped += 1,
                RunStatus::Planned => self.planned += 1,
            },
            Err(_) => self.failed += 1,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} committed, {} skipped, {} failed",
            self.committed, self.skipped, self.failed
        )?;
        if self.planned > 0 {
            write!(f, ", {} planned", self.planned)?;
        }
        Ok(())
    }
}

/// One day of a backfill as JSON: its run's report, or its error and exit code.
pub(crate) fn day_summary(day: &DayOutcome) -> serde_json::Value {
    match &day.outcome {
        Ok(report) => {
            let mut value = serde_json::to_value(report).expect("serializable report");
            value["date"] = day.date.to_string().into();
            value
        }
        Err(error) => serde_json::json!({
            "date": day.date.to_string(),
            "status": "failed",
            "error": error.to_string(),
            "exit_code": Exit::of(error) as u8,
        }),
    }
}

/// A progress bar on stderr for people; hidden for JSON output or when stderr is no terminal.
pub(crate) fn progress_bar(output: Output, bar: ProgressBar, template: &str) -> ProgressBar {
    if output != Output::Text || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = bar.with_style(ProgressStyle::with_template(template).expect("static template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub(crate) fn describe(report: &WriteReport) -> String {
    let partitions = match (report.partitions.first(), report.partitions.last()) {
        (Some(first), Some(last)) if first != last => format!("{first}..{last}"),
        (Some(day), _) => day.clone(),
        _ => String::new(),
    };
    let version = report
        .version
        .map(|v| format!("version {v}"))
        .unwrap_or_else(|| "no table yet".into());
    let headline = match report.planned_action {
        Some(action) => format!(
            "dry run: would {action} {partitions} ({} days, {version})",
            report.partitions.len()
        ),
        None => format!("{:?} {partitions} at {version}", report.status).to_lowercase(),
    };
    let mut text = format!(
        "{headline}\n  run id       {}\n  fingerprint  {}\n  rows         {} read, {} written\n  files        {} added, {} removed\n",
        report.run_id,
        report.fingerprint,
        report.rows_read,
        report.rows_written,
        report.files_added,
        report.files_removed,
    );
    if !report.schema_changes.is_empty() {
        let added: Vec<String> = report
            .schema_changes
            .iter()
            .map(|c| format!("{} ({})", c.column, c.data_type))
            .collect();
        text.push_str(&format!("  added        {}\n", added.join(", ")));
    }
    if report.lost_races > 0 {
        text.push_str(&format!(
            "  races        {} lost to other writers before the commit\n",
            report.lost_races
        ));
    }
    if let Some(status) = report.notification {
        let status = match status {
            NotificationStatus::Delivered => "delivered",
            NotificationStatus::AlreadyDelivered => "delivered before",
            NotificationStatus::Pending => "PENDING: the next run sends it",
        };
        text.push_str(&format!("  notification {status}\n"));
    }
    text
}

pub(crate) fn print<T: serde::Serialize + ?Sized>(
    output: Output,
    value: &T,
    text: impl Fn(&T) -> String,
) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string(value).expect("serializable report")
        ),
        Output::Text => print!("{}", text(value)),
    }
}

/// `runs` as a table for people.
pub(crate) fn runs(runs: &[PartitionRun]) -> String {
    let mut text = String::from(
        "date        run id                              version  rows  committed at\n",
    );
    for run in runs {
        text.push_str(&format!(
            "{:<11} {:<35} {:>7} {:>5}  {}\n",
            run.date,
            run.run_id
                .as_deref()
                .unwrap_or("<not written by lakewriter>"),
            run.version.map(|v| v.to_string()).unwrap_or_default(),
            run.rows.map(|r| r.to_string()).unwrap_or_default(),
            run.committed_at.as_deref().unwrap_or_default(),
        ));
    }
    text
}

/// What `vacuum` deleted, for people.
pub(crate) fn vacuum(report: &VacuumReport) -> String {
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut text = format!("{verb} {} files\n", report.files.len());
    for file in &report.files {
        text.push_str(&format!("  {file}\n"));
    }
    text
}

/// `optimize` for people.
pub(crate) fn optimize(report: &OptimizeReport) -> String {
    match report.status {
        "committed" => format!(
            "compacted {} day(s) at version {}: {} files into {}\n  days  {}\n",
            report.days.len(),
            report.version.map_or_else(|| "?".into(), |v| v.to_string()),
            report.files_removed,
            report.files_added,
            report.days.join(", ")
        ),
        _ => "nothing to compact: every day is compact (or was changed meanwhile)\n".into(),
    }
}

/// `restore` for people.
pub(crate) fn restore(report: &RestoreReport) -> String {
    match report.status {
        "committed" => format!(
            "restored to version {} at version {}: {} files removed, {} added back\n",
            report.restored_from,
            report.version.map_or_else(|| "?".into(), |v| v.to_string()),
            report.files_removed,
            report.files_added
        ),
        _ => format!(
            "nothing to restore: the days already are as at version {}\n",
            report.restored_from
        ),
    }
}

/// `history` for people: one line per commit.
pub(crate) fn history(commits: &[CommitSummary]) -> String {
    let mut text = String::new();
    for c in commits {
        text.push_str(&format!(
            "version {:>5}  {}  {}\n",
            c.version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into()),
            c.operation.as_deref().unwrap_or("?"),
            c.user_metadata.as_deref().unwrap_or(""),
        ));
        let changes = c
            .lakewriter
            .as_ref()
            .and_then(|run| run["schemaChanges"].as_array());
        if let Some(changes) = changes {
            let columns: Vec<&str> = changes
                .iter()
                .filter_map(|c| c["column"].as_str())
                .collect();
            text.push_str(&format!(
                "               added columns: {}\n",
                columns.join(", ")
            ));
        }
    }
    text
}

/// A backfill for people: one line per day, then the tally.
pub(crate) fn backfill(days: &[DayOutcome], tally: &Tally) -> String {
    let mut text = String::new();
    for day in days {
        let line = match &day.outcome {
            Ok(report) => format!(
                "{}  {:<9} version {:>5}  {} rows written",
                day.date,
                format!("{:?}", report.status).to_lowercase(),
                report
                    .version
                    .map_or_else(|| "-".to_string(), |v| v.to_string()),
                report.rows_written
            ),
            Err(error) => format!("{}  failed     {error}", day.date),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(&format!("{tally}\n"));
    text
}
