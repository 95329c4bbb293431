//! The date scope of a run: the partitions it replaces, and nothing else.

use chrono::NaiveDate;
use std::fmt;

use crate::error::{Error, Result};

/// The widest scope a run (or a backfill's range) takes unless told otherwise: ten years of
/// days. A decade covers any backfill of a live source, while a mistyped year (2204 for
/// 2024, 1900 for 2019) is refused before anything is read instead of writing a file for
/// each of its tens of thousands of days.
pub const DEFAULT_MAX_DAYS: u64 = 3660;

/// An inclusive range of days. A run replaces exactly these date partitions.
///
/// ```
/// use lakewriter::PartitionScope;
/// let scope = PartitionScope::parse("2024-01-01", "2024-01-03").unwrap();
/// assert_eq!(scope.days().count(), 3);
/// assert_eq!(scope.to_string(), "2024-01-01..2024-01-03");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionScope {
    from: NaiveDate,
    to: NaiveDate,
}

impl PartitionScope {
    /// A scope from `from` to `to`, both included.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self> {
        if from > to {
            return Err(Error::InvalidOption(format!(
                "the scope starts on {from}, after it ends on {to}: swap --from and --to"
            )));
        }
        Ok(Self { from, to })
    }

    /// A scope of one day.
    pub fn day(day: NaiveDate) -> Self {
        Self { from: day, to: day }
    }

    /// Parses two `YYYY-MM-DD` dates.
    pub fn parse(from: &str, to: &str) -> Result<Self> {
        Self::new(parse_day(from)?, parse_day(to)?)
    }

    /// First day.
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// Last day.
    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// Whether `day` lies in the scope.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }

    /// The scope's days as Arrow DATE values, to check rows by without a calendar.
    pub(crate) fn epoch_days(&self) -> std::ops::RangeInclusive<i32> {
        days_since_epoch(self.from)..=days_since_epoch(self.to)
    }

    /// How many days the scope holds.
    pub fn day_count(&self) -> u64 {
        (self.to - self.from).num_days() as u64 + 1
    }

    /// Refuses a scope of more than `max_days` days, before anything is read: every day of
    /// a scope becomes at least one file, so a mistyped year would otherwise write one for
    /// each of thousands of days.
    pub(crate) fn check_width(&self, max_days: u64) -> Result<()> {
        let days = self.day_count();
        if days <= max_days {
            return Ok(());
        }
        Err(Error::InvalidOption(format!(
            "the scope {self} spans {days} days, more than --max-days {max_days}: check \
             --from and --to for a typo, or pass a larger --max-days if the scope is meant"
        )))
    }

    /// Every day of the scope, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let to = self.to;
        self.from.iter_days().take_while(move |d| *d <= to)
    }
}

impl fmt::Display for PartitionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.from, self.to)
    }
}

/// Days since 1970-01-01, the physical value of an Arrow or Delta DATE.
pub(crate) fn days_since_epoch(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

/// The date of a DATE value.
pub(crate) fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::default() + chrono::TimeDelta::days(days.into())
}

/// Parses a `YYYY-MM-DD` date, with an error that says what was expected.
pub(crate) fn parse_day(text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Error::InvalidOption(format!(
            "'{text}' is not a date: use YYYY-MM-DD, e.g. 2024-01-31"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_days_convert_both_ways() {
        assert_eq!(date_from_days(19723).to_string(), "2024-01-01");
        let scope = PartitionScope::parse("1969-12-31", "2024-01-01").unwrap();
        assert_eq!(scope.epoch_days(), -1..=19723);
    }
}
