//! Calendar periods in UTC and RFC 3339 times, as plain arithmetic on unix
//! seconds (no time zone data: periods are UTC in this version).

use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;

/// How long a quota's counter runs before it starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A calendar day, UTC.
    Day,
    /// A calendar month, UTC.
    Month,
    /// Never resets.
    Lifetime,
}

impl Period {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Lifetime => "lifetime",
        }
    }

    /// From a stored name.
    pub fn parse(name: &str) -> Option<Period> {
        match name {
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            "lifetime" => Some(Period::Lifetime),
            _ => None,
        }
    }

    /// The period holding `now`: its first second (0 for lifetime, which
    /// is one period) and the second the next one starts (none for
    /// lifetime).
    pub fn window(self, now: i64) -> (i64, Option<i64>) {
        match self {
            Period::Day => {
                let start = now.div_euclid(DAY) * DAY;
                (start, Some(start + DAY))
            }
            Period::Month => {
                let (y, m, _) = civil_from_days(now.div_euclid(DAY));
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (
                    days_from_civil(y, m, 1) * DAY,
                    Some(days_from_civil(ny, nm, 1) * DAY),
                )
            }
            Period::Lifetime => (0, None),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Years counted from March, so the leap day ends a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An RFC 3339 date-time (`2026-11-29T12:00:00Z`, fractions and offsets
/// allowed) as unix seconds; fractions are dropped, a leap second counts
/// as the second before it.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || !text.is_ascii() {
        return None;
    }
    let sep = |i: usize, c: u8| b[i] == c;
    let shaped = sep(4, b'-')
        && sep(7, b'-')
        && matches!(b[10], b'T' | b't')
        && sep(13, b':')
        && sep(16, b':');
    if !shaped {
        return None;
    }
    let year = digits(&text[0..4])?;
    let month = u32::try_from(digits(&text[5..7])?).ok()?;
    let day = u32::try_from(digits(&text[8..10])?).ok()?;
    let hour = digits(&text[11..13])?;
    let minute = digits(&text[14..16])?;
    let second = digits(&text[17..19])?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        rest = &fraction[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second.min(59);
    Some(seconds - offset)
}

/// Unix seconds as an RFC 3339 date-time in UTC (`2026-11-29T12:00:00Z`).
pub fn format_rfc3339(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(DAY));
    let of_day = seconds.rem_euclid(DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_round_trip() {
        for days in [-1_000_000, -1, 0, 59, 60, 365, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn a_month_runs_from_its_first_midnight_to_the_next() {
        // 2024-02-29T13:00:00Z, in a leap February.
        let now = 1_709_211_600;
        assert_eq!(
            Period::Month.window(now),
            (1_706_745_600, Some(1_709_251_200))
        );
        // 2026-12-31T23:59:59Z: the next month is in the next year.
        let (start, next) = Period::Month.window(1_798_761_599);
        assert_eq!((start, next), (1_796_083_200, Some(1_798_761_600)));
    }

    #[test]
    fn a_day_runs_from_midnight_utc_and_lifetime_never_resets() {
        assert_eq!(Period::Day.window(86_399), (0, Some(86_400)));
        assert_eq!(Period::Day.window(86_400), (86_400, Some(172_800)));
        assert_eq!(Period::Lifetime.window(1_700_000_000), (0, None));
    }

    #[test]
    fn rfc3339_times_read_with_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T13:00:00.123456Z"),
            Some(1_709_211_600)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T15:30:00+02:30"),
            Some(1_709_211_600)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T08:00:00-05:00"),
            Some(1_709_211_600)
        );
    }

    #[test]
    fn times_format_back_to_what_they_were_read_from() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T13:05:09Z",
            "1969-12-31T23:59:59Z",
        ] {
            let seconds = parse_rfc3339(text).unwrap();
            assert_eq!(format_rfc3339(seconds), text);
        }
    }

    #[test]
    fn malformed_times_are_refused() {
        for bad in [
            "",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0200",
            "2024-01-01",
            "1700000000",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
