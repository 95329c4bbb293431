//! RFC 3339: the dates and timestamps machines write (`2024-01-31`, `2024-01-31T13:45:30Z`,
//! `2024-01-31 13:45:30.250+02:00`), turned into Arrow's DATE and microsecond TIMESTAMP values
//! with integer arithmetic.
//!
//! Why not arrow's parser alone: it takes every shape of date and time there is, through
//! chrono's calendar and, for a column labelled UTC, a chrono-tz lookup per value; on CSV
//! input of one timestamp column that was a sixth of the time spent reading. Here only the
//! one shape is taken, and a column with any other text (or an impossible date, a leap
//! second, digits below a microsecond) is left to arrow's cast as before, which decides
//! what it means or names the value it refuses. The tests hold this parser's values to
//! arrow's for every text it takes.

use arrow::array::{Date32Array, StringArray, TimestampMicrosecondArray};

/// Every value of `text` as days since 1970-01-01, or `None` if any is not a `YYYY-MM-DD`
/// date of the calendar.
pub(crate) fn dates(text: &StringArray) -> Option<Date32Array> {
    let mut last = LastDate::default();
    text.iter()
        .map(|value| match value {
            None => Some(None),
            Some(value) if value.len() == 10 => {
                let days = last.days(value.as_bytes())?;
                i32::try_from(days).ok().map(Some)
            }
            Some(_) => None,
        })
        .collect()
}

/// Every value of `text` as microseconds since 1970-01-01T00:00:00Z, or `None` if any has
/// another shape than `YYYY-MM-DD(T| )HH:MM:SS[.fraction][Z|±HH:MM]`. Text without an
/// offset is UTC, as arrow reads it for a UTC or a timezone-less column.
pub(crate) fn timestamps(text: &StringArray) -> Option<TimestampMicrosecondArray> {
    let mut last = LastDate::default();
    text.iter()
        .map(|value| match value {
            None => Some(None),
            Some(value) => micros(value.as_bytes(), &mut last).map(Some),
        })
        .collect()
}

/// The last date read and its days since 1970-01-01: the rows of a file mostly share their
/// date, and so skip the calendar.
#[derive(Default)]
struct LastDate(Option<([u8; 10], i64)>);

impl LastDate {
    /// The days of the `YYYY-MM-DD` date `bytes` begin with.
    fn days(&mut self, bytes: &[u8]) -> Option<i64> {
        let head: [u8; 10] = bytes.get(..10)?.try_into().ok()?;
        match self.0 {
            Some((last, days)) if last == head => Some(days),
            _ => {
                let days = date(&head)?;
                self.0 = Some((head, days));
                Some(days)
            }
        }
    }
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn date(bytes: &[u8; 10]) -> Option<i64> {
    if bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = digits(&bytes[0..4])?;
    let month = digits(&bytes[5..7])?;
    let day = digits(&bytes[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// The whole timestamp shape as microseconds since the epoch.
fn micros(bytes: &[u8], last: &mut LastDate) -> Option<i64> {
    if bytes.len() < 19 || !matches!(bytes[10], b'T' | b' ') {
        return None;
    }
    let days = last.days(bytes)?;
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (
        digits(&bytes[11..13])?,
        digits(&bytes[14..16])?,
        digits(&bytes[17..19])?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &bytes[19..];
    let mut fraction = 0;
    if let [b'.', after @ ..] = rest {
        let count = after.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&count) {
            return None;
        }
        let nanos = digits(&after[..count])? * 10_i64.pow(9 - count as u32);
        if nanos % 1000 != 0 {
            return None; // digits below a microsecond: arrow's cast reports the loss
        }
        fraction = nanos / 1000;
        rest = &after[count..];
    }
    let offset_seconds = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (hours, minutes) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            match sign {
                b'+' => seconds,
                _ => -seconds,
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1_000_000 + fraction)
}

/// ASCII digits as a number; `None` for anything else.
fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0_i64, |number, byte| {
        byte.is_ascii_digit()
            .then(|| number * 10 + i64::from(byte - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, counted in 400-year
/// eras of 146,097 days from 0000-03-01 (so that a leap day ends its year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef};
    use arrow::compute::{CastOptions, cast_with_options};
    use arrow::datatypes::{DataType, TimeUnit};
    use std::sync::Arc;

    /// arrow's value for one text, or `None` where its cast refuses it.
    fn arrow_value(text: &str, to: &DataType) -> Option<i64> {
        let array: ArrayRef = Arc::new(StringArray::from(vec![text]));
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let cast = cast_with_options(&array, to, &options).ok()?;
        match to {
            DataType::Date32 => Some(i64::from(
                cast.as_any().downcast_ref::<Date32Array>()?.value(0),
            )),
            _ => Some(
                cast.as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()?
                    .value(0),
            ),
        }
    }

    /// Text near the shape: valid and impossible dates and times, every fraction length, offsets
    /// in and out of range, other separators and zone letters.
    fn near_the_shape(next: &mut impl FnMut(usize) -> usize) -> String {
        let pick = |next: &mut dyn FnMut(usize) -> usize, options: &[&str]| {
            options[next(options.len())].to_string()
        };
        let year = match next(4) {
            0 => next(10_000),
            1 => [1900, 2000, 2023, 2024, 2100, 1600, 1970, 1969][next(8)],
            _ => 1950 + next(100),
        };
        let (month, day) = (next(14), next(33));
        let (hour, minute, second) = (next(26), next(62), next(62));
        let separator = pick(next, &["T", "T", " ", "t", "_"]);
        let fraction = match next(12) {
            0..=2 => String::new(),
            length => {
                let digits: String = (0..length - 2)
                    .map(|_| char::from(b'0' + next(10) as u8))
                    .collect();
                let zeros = match next(3) {
                    0 => "000",
                    _ => "",
                };
                format!(".{digits}{zeros}")
            }
        };
        let zone = match next(8) {
            0 => String::new(),
            1 => format!("+{:02}:{:02}", next(26), next(62)),
            2 => format!("-{:02}:{:02}", next(26), next(62)),
            3 => pick(next, &["z", "+0200", "+02", "UTC", " Z"]),
            _ => "Z".to_string(),
        };
        match next(6) {
            0 => format!("{year:04}-{month:02}-{day:02}"),
            1 => format!("{year}-{month}-{day}"),
            _ => format!(
                "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
            ),
        }
    }

    #[test]
    fn every_text_taken_gets_arrows_value() {
        let mut next = crate::test_numbers(0xDA7E_u64);
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let naive = DataType::Timestamp(TimeUnit::Microsecond, None);
        let (mut taken_dates, mut taken_timestamps) = (Vec::new(), Vec::new());
        for _ in 0..100_000 {
            let text = near_the_shape(&mut next);
            let one = StringArray::from(vec![text.as_str()]);
            if let Some(days) = dates(&one) {
                let days = days.value(0);
                assert_eq!(
                    Some(i64::from(days)),
                    arrow_value(&text, &DataType::Date32),
                    "{text}"
                );
                taken_dates.push((text.clone(), days));
            }
            if let Some(at) = timestamps(&one) {
                let at = at.value(0);
                assert_eq!(Some(at), arrow_value(&text, &utc), "{text}");
                assert_eq!(Some(at), arrow_value(&text, &naive), "{text}");
                taken_timestamps.push((text, at));
            }
        }
        // Whole columns, where neighbours share their date half the time (sorted), give each
        // value what it gets alone.
        for sorted in [false, true] {
            if sorted {
                taken_dates.sort();
                taken_timestamps.sort();
            }
            let texts = StringArray::from_iter_values(taken_dates.iter().map(|(text, _)| text));
            let expected: Vec<i32> = taken_dates.iter().map(|&(_, days)| days).collect();
            assert_eq!(dates(&texts).unwrap().values().to_vec(), expected);
            let texts =
                StringArray::from_iter_values(taken_timestamps.iter().map(|(text, _)| text));
            let expected: Vec<i64> = taken_timestamps.iter().map(|&(_, at)| at).collect();
            assert_eq!(timestamps(&texts).unwrap().values().to_vec(), expected);
        }
        let (taken_dates, taken_timestamps) = (taken_dates.len(), taken_timestamps.len());
        // Not vacuous: the well-formed text is taken here (most of the text is not).
        assert!(taken_dates > 8_000, "{taken_dates} dates taken");
        assert!(
            taken_timestamps > 10_000,
            "{taken_timestamps} timestamps taken"
        );
    }

    #[test]
    fn a_column_with_one_other_shape_is_left_to_arrow_and_nulls_stay_null() {
        let text = StringArray::from(vec![Some("2024-02-29T23:59:59.5Z"), None]);
        let parsed = timestamps(&text).unwrap();
        assert_eq!(parsed.value(0), 1_709_251_199_500_000);
        assert!(parsed.is_null(1));
        for other in [
            "2023-02-29T00:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.0000001Z",
        ] {
            let text = StringArray::from(vec!["2024-01-01T00:00:00Z", other]);
            assert!(timestamps(&text).is_none(), "{other}");
        }
        let days = StringArray::from(vec![Some("1969-12-31"), None, Some("0000-03-01")]);
        let parsed = dates(&days).unwrap();
        assert_eq!((parsed.value(0), parsed.is_null(1)), (-1, true));
        assert_eq!(parsed.value(2), -719_468);
        assert!(dates(&StringArray::from(vec!["2024-1-05"])).is_none());
    }
}
