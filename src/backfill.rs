//! Backfill: a range of days, each written as its own idempotent run.
//!
//! Every `--input` (and the run id) is a template: `{date}` becomes the day as `YYYY-MM-DD`,
//! `{date:FORMAT}` the day in a chrono `strftime` format (`{date:year=%Y/month=%m/day=%d}`).
//! Which files a day reads follows from the day alone, never from the clock, so a backfill
//! started again reads the same files, skips the days the table already holds with the same
//! input, and does the rest.

use std::fmt::Write as _;

use chrono::NaiveDate;
use chrono::format::{Item, StrftimeItems};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::job::{WriteJob, WriteReport};

/// A [`WriteJob`] run once per day of its scope, at most `parallel` days at once.
///
/// ```no_run
/// # async fn example() -> lakewriter::Result<()> {
/// use lakewriter::{Backfill, PartitionScope, WriteJob};
/// let job = WriteJob::new("./lake/sales", PartitionScope::parse("2024-01-01", "2024-03-31")?)
///     .input("raw/sales/{date}/*.csv")
///     .key(["order_id"]);
/// let days = Backfill::new(job).parallel(2).run(|_| {}).await?;
/// let failed = days.iter().filter(|day| day.outcome.is_err()).count();
/// println!("{} days, {failed} failed", days.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Backfill {
    job: WriteJob,
    parallel: usize,
    shard: Option<Shard>,
}

/// One of `count` shards of a backfill's days, numbered from 0: the days whose number (days
/// since 1970-01-01) leaves `index` when divided by `count`. A day's shard depends on the
/// day and the count alone, never on the range or on when a shard starts, so shards of one
/// range may run at once on any machines and their union is the whole range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` (from 0) of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::InvalidOption(format!(
                "shard {index} of {count}: give K/N with N at least 1 and K from 0 to N-1 \
                 (JOB_COMPLETION_INDEX is numbered that way)"
            )));
        }
        Ok(Self { index, count })
    }

    /// Whether `day` is this shard's.
    pub fn holds(&self, day: NaiveDate) -> bool {
        let number = (day - NaiveDate::default()).num_days();
        number.rem_euclid(i64::from(self.count)) == i64::from(self.index)
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    /// `K/N`, e.g. `0/4`.
    fn from_str(text: &str) -> Result<Self> {
        let parsed = text
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) => Self::new(index, count),
            None => Err(Error::InvalidOption(format!(
                "'{text}' is not a shard: give K/N, e.g. 0/4 for the first of four"
            ))),
        }
    }
}

/// What became of one day of a backfill.
#[derive(Debug)]
pub struct DayOutcome {
    /// The day.
    pub date: NaiveDate,
    /// Its run's report, or why it failed.
    pub outcome: Result<WriteReport>,
}

impl Backfill {
    /// A backfill of `job`'s scope, one day at a time. The job's inputs and run id may hold
    /// `{date}` or `{date:FORMAT}`; every input must.
    pub fn new(job: WriteJob) -> Self {
        Self {
            job,
            parallel: 1,
            shard: None,
        }
    }

    /// Runs only the days of `shard` (see [`Shard`]).
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = Some(shard);
        self
    }

    /// Runs up to `days` days at once (at least 1). The job's memory limit is shared
    /// between them.
    pub fn parallel(mut self, days: usize) -> Self {
        self.parallel = days.max(1);
        self
    }

    /// Runs every day, calling `on_day` as each one ends, and returns the days in date order.
    /// A failing day does not stop the others; the error of a day is in its outcome. An
    /// error is returned only when the backfill cannot start (an input without `{date}`, a
    /// table feature lakewriter does not write).
    pub async fn run(&self, mut on_day: impl FnMut(&DayOutcome)) -> Result<Vec<DayOutcome>> {
        self.job.check_scope_width()?;
        for input in self.job.inputs() {
            if !input.contains("{date") {
                return Err(Error::InvalidOption(format!(
                    "backfill input '{input}' has no {{date}}: each day must read its own files, \
                     e.g. 'raw/sales/{{date}}/*.csv' or 'raw/{{date:%Y/%m/%d}}/*.csv'"
                )));
            }
        }
        if let Some(run_id) = self.job.explicit_run_id()
            && !run_id.contains("{date")
        {
            return Err(Error::InvalidOption(format!(
                "backfill run id '{run_id}' has no {{date}}: each day is its own run, \
                     e.g. 'fill-{{date}}' (or leave --run-id out)"
            )));
        }
        // A table feature lakewriter does not write refuses the whole backfill once, rather
        // than failing every day with the same message.
        self.job.check_table().await?;
        let days: Vec<NaiveDate> = self
            .job
            .scope()
            .days()
            .filter(|day| self.shard.is_none_or(|shard| shard.holds(*day)))
            .collect();
        let mut jobs = Vec::with_capacity(days.len());
        for &day in &days {
            jobs.push((day, self.job_for(day)?));
        }
        // Days run one at a time until one succeeds: on a new table that one creates the
        // table, whose column types the other days then read their input with, instead of
        // racing to create it.
        let mut rest = jobs.into_iter().peekable();
        let mut outcomes = Vec::with_capacity(days.len());
        while !outcomes.iter().any(|day: &DayOutcome| day.outcome.is_ok()) {
            let Some((date, job)) = rest.next() else {
                break;
            };
            let day = run_day(date, job).await;
            on_day(&day);
            outcomes.push(day);
        }
        let others: Vec<DayOutcome> = futures::stream::iter(rest)
            .map(|(date, job)| run_day(date, job))
            .buffer_unordered(self.parallel)
            .inspect(|day| on_day(day))
            .collect()
            .await;
        outcomes.extend(others);
        outcomes.sort_by_key(|day| day.date);
        Ok(outcomes)
    }

    /// The job of one day: its scope, its inputs and run id filled in, its share of memory.
    fn job_for(&self, day: NaiveDate) -> Result<WriteJob> {
        self.job
            .for_day(day, self.parallel, |template| fill(template, day))
    }
}

/// Runs one day's job in its own task, so that days decode and encode on all cores.
async fn run_day(date: NaiveDate, job: WriteJob) -> DayOutcome {
    let joined = tokio::spawn(async move { job.run().await }).await;
    let outcome = Error::rejoin(joined, format!("the run of {date}")).and_then(|outcome| outcome);
    DayOutcome { date, outcome }
}

/// Replaces every `{date}` and `{date:FORMAT}` in `template` with `day`.
fn fill(template: &str, day: NaiveDate) -> Result<String> {
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{date") {
        filled.push_str(&rest[..start]);
        let tail = &rest[start + "{date".len()..];
        let bad = || {
            Error::InvalidOption(format!(
                "'{template}': write the day as {{date}} or {{date:FORMAT}} with a strftime \
                 FORMAT such as %Y/%m/%d"
            ))
        };
        let end = tail.find('}').ok_or_else(bad)?;
        let format = match &tail[..end] {
            "" => "%Y-%m-%d",
            spec => spec
                .strip_prefix(':')
                .filter(|f| !f.is_empty())
                .ok_or_else(bad)?,
        };
        if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
            return Err(bad());
        }
        // A format that needs a time or an offset (%H, %z) fails here, not at parse time.
        write!(filled, "{}", day.format(format)).map_err(|_| bad())?;
        rest = &tail[end + 1..];
    }
    filled.push_str(rest);
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_is_in_exactly_one_shard_whatever_the_range() {
        let shards: Vec<Shard> = (0..4).map(|k| Shard::new(k, 4).unwrap()).collect();
        let first = NaiveDate::from_ymd_opt(1969, 12, 1).unwrap();
        for day in first.iter_days().take(400) {
            assert_eq!(shards.iter().filter(|s| s.holds(day)).count(), 1, "{day}");
        }
        assert_eq!("1/4".parse::<Shard>().unwrap(), shards[1]);
        assert!("4/4".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn templates_take_the_day_in_any_format() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 9).unwrap();
        assert_eq!(
            fill("raw/{date}/*.csv", day).unwrap(),
            "raw/2024-03-09/*.csv"
        );
        assert_eq!(
            fill("s3://b/y={date:%Y}/m={date:%m}/{date:%d}.json", day).unwrap(),
            "s3://b/y=2024/m=03/09.json"
        );
        assert_eq!(fill("plain.csv", day).unwrap(), "plain.csv");
        assert!(fill("raw/{date", day).is_err());
        assert!(fill("raw/{date:}", day).is_err());
        assert!(fill("raw/{date:%Q}", day).is_err());
        assert!(fill("raw/{dates}", day).is_err());
        assert!(fill("raw/{date:%H}", day).is_err(), "a day has no hour");
    }
}
