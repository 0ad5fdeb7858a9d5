//! Quota periods: calendar days, weeks (from Monday) and months in an
//! org's time zone, rolling windows and lifetime; and RFC 3339 times as
//! plain arithmetic on unix seconds.

pub use gatehouse_http::time::format_rfc3339;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;

/// A calendar unit an org's periods and buckets follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// From midnight to midnight.
    Day,
    /// From Monday's midnight to the next Monday's.
    Week,
    /// From the first's midnight to the next month's.
    Month,
}

impl Unit {
    /// The name used in periods and queries.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
        }
    }

    /// From its name.
    pub fn parse(name: &str) -> Option<Unit> {
        [Unit::Day, Unit::Week, Unit::Month]
            .into_iter()
            .find(|u| u.as_str() == name)
    }
}

/// An org's calendar: its time zone (IANA), whose midnights start days,
/// weeks and months. A day is not always 24 hours long (daylight saving
/// time), so every boundary is computed in the zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    zone: TimeZone,
    name: String,
}

impl Calendar {
    /// The calendar of a zone name (`Europe/Berlin`, `UTC`); none for a
    /// name the bundled database does not know.
    pub fn of(name: &str) -> Option<Calendar> {
        let zone = TimeZone::get(name).ok()?;
        Some(Calendar {
            zone,
            name: name.to_string(),
        })
    }

    /// Coordinated universal time.
    pub fn utc() -> Calendar {
        Calendar {
            zone: TimeZone::UTC,
            name: "UTC".to_string(),
        }
    }

    /// The zone's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn zoned(&self, seconds: i64) -> Zoned {
        let at = Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH);
        at.to_zoned(self.zone.clone())
    }

    fn midnight(&self, date: Date) -> i64 {
        // A day that starts in a gap starts at the gap's end (jiff's
        // compatible disambiguation).
        date.to_zoned(self.zone.clone())
            .map(|z| z.timestamp().as_second())
            .unwrap_or_else(|_| date_seconds(date))
    }

    /// The first second of the `unit` holding `seconds`.
    pub fn start(&self, unit: Unit, seconds: i64) -> i64 {
        let date = self.zoned(seconds).date();
        let first = match unit {
            Unit::Day => date,
            Unit::Week => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                date.checked_sub(back.days()).unwrap_or(date)
            }
            Unit::Month => date.first_of_month(),
        };
        self.midnight(first)
    }

    /// The first second of the `unit` after the one starting at `start`.
    pub fn next(&self, unit: Unit, start: i64) -> i64 {
        let date = self.zoned(start).date();
        let step = match unit {
            Unit::Day => 1.day(),
            Unit::Week => 1.week(),
            Unit::Month => 1.month(),
        };
        let next = date.checked_add(step).unwrap_or(date);
        let next = if unit == Unit::Month {
            next.first_of_month()
        } else {
            next
        };
        self.midnight(next).max(start + 1)
    }

    /// The `unit` holding `seconds`: its first second and the next one's.
    pub fn window(&self, unit: Unit, seconds: i64) -> (i64, i64) {
        let start = self.start(unit, seconds);
        (start, self.next(unit, start))
    }
}

/// How long a quota's counter runs before it starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A calendar day, week or month in the org's time zone.
    Calendar(Unit),
    /// The last `window` seconds, counted in [`Period::bucket`]s.
    Rolling {
        /// Seconds.
        window: i64,
    },
    /// Never resets.
    Lifetime,
}

/// The shortest and longest rolling windows: a minute to a year.
pub const ROLLING_WINDOWS: std::ops::RangeInclusive<i64> = 60..=366 * DAY;

impl Period {
    /// The name stored and shown (`day`, `week`, `month`, `rolling`,
    /// `lifetime`).
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Calendar(unit) => unit.as_str(),
            Period::Rolling { .. } => "rolling",
            Period::Lifetime => "lifetime",
        }
    }

    /// From a stored or requested name and, for `rolling`, its window.
    pub fn parse(name: &str, window: Option<i64>) -> Option<Period> {
        match (name, window) {
            ("rolling", Some(w)) if ROLLING_WINDOWS.contains(&w) => {
                Some(Period::Rolling { window: w })
            }
            ("lifetime", None) => Some(Period::Lifetime),
            (name, None) => Unit::parse(name).map(Period::Calendar),
            _ => None,
        }
    }

    /// The rolling window's seconds, if rolling.
    pub fn window_seconds(self) -> Option<i64> {
        match self {
            Period::Rolling { window } => Some(window),
            _ => None,
        }
    }

    /// A rolling window's counters are buckets of a sixtieth of it: a use
    /// counts from its bucket's start until the window has passed its
    /// bucket's end, so it counts for at least the whole window and at
    /// most one bucket longer. Never less than a second.
    pub fn bucket(window: i64) -> i64 {
        (window / 60).max(1)
    }

    /// The counter a use at `now` raises: the period's (or bucket's)
    /// first second, 0 for lifetime.
    pub fn counter_start(self, calendar: &Calendar, now: i64) -> i64 {
        match self {
            Period::Calendar(unit) => calendar.start(unit, now),
            Period::Rolling { window } => {
                let b = Period::bucket(window);
                now.div_euclid(b) * b
            }
            Period::Lifetime => 0,
        }
    }

    /// The counters that count at `now`: those starting at or after the
    /// returned second (calendar and lifetime: exactly the current one).
    pub fn counting_from(self, calendar: &Calendar, now: i64) -> i64 {
        match self {
            Period::Rolling { window } => {
                let b = Period::bucket(window);
                // A bucket [s, s + b) counts while s + b > now - window.
                now - window - b + 1
            }
            other => other.counter_start(calendar, now),
        }
    }

    /// When what counts now stops counting: the next period's first
    /// second; for a rolling window, when the oldest counting bucket
    /// (starting at `oldest`, if any use counts) leaves it; none for
    /// lifetime.
    pub fn reset_at(self, calendar: &Calendar, now: i64, oldest: Option<i64>) -> Option<i64> {
        match self {
            Period::Calendar(unit) => Some(calendar.window(unit, now).1),
            Period::Rolling { window } => {
                let b = Period::bucket(window);
                Some(oldest.map_or(now, |s| s + b + window))
            }
            Period::Lifetime => None,
        }
    }
}

fn date_seconds(date: Date) -> i64 {
    days_from_civil(
        i64::from(date.year()),
        u32::try_from(date.month()).unwrap_or(1),
        u32::try_from(date.day()).unwrap_or(1),
    ) * DAY
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

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_http::time::civil_from_days;

    #[test]
    fn days_and_dates_round_trip() {
        for days in [-1_000_000, -1, 0, 59, 60, 365, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn a_month_runs_from_its_first_midnight_to_the_next() {
        let utc = Calendar::utc();
        // In a leap February.
        assert_eq!(
            utc.window(Unit::Month, at("2024-02-29T13:00:00Z")),
            (at("2024-02-01T00:00:00Z"), at("2024-03-01T00:00:00Z"))
        );
        // The next month is in the next year.
        assert_eq!(
            utc.window(Unit::Month, at("2026-12-31T23:59:59Z")),
            (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn days_and_weeks_start_at_the_zones_midnight() {
        let berlin = Calendar::of("Europe/Berlin").unwrap();
        // 23:30 UTC on Sunday 2026-11-29 is already Monday in Berlin.
        let now = at("2026-11-29T23:30:00Z");
        assert_eq!(berlin.start(Unit::Day, now), at("2026-11-29T23:00:00Z"));
        assert_eq!(berlin.start(Unit::Week, now), at("2026-11-29T23:00:00Z"));
        assert_eq!(
            Calendar::utc().start(Unit::Week, now),
            at("2026-11-23T00:00:00Z")
        );
        let tokyo = Calendar::of("Asia/Tokyo").unwrap();
        assert_eq!(
            tokyo.window(Unit::Month, at("2026-11-30T16:00:00Z")),
            (at("2026-11-30T15:00:00Z"), at("2026-12-31T15:00:00Z"))
        );
    }

    #[test]
    fn a_day_with_a_clock_change_is_not_24_hours() {
        let new_york = Calendar::of("America/New_York").unwrap();
        // 2026-03-08: clocks go forward at 02:00; the day has 23 hours.
        let (start, next) = new_york.window(Unit::Day, at("2026-03-08T12:00:00Z"));
        assert_eq!(start, at("2026-03-08T05:00:00Z"));
        assert_eq!(next - start, 23 * 3600);
        assert!(Calendar::of("Mars/Olympus_Mons").is_none());
    }

    #[test]
    fn a_rolling_window_counts_its_buckets_and_lifetime_never_resets() {
        let utc = Calendar::utc();
        let hour = Period::parse("rolling", Some(3600)).unwrap();
        assert_eq!(Period::bucket(3600), 60);
        assert_eq!(hour.counter_start(&utc, 1_000_030), 1_000_020);
        // The bucket [996_420, 996_480) ends 3,600 s before 1_000_080.
        assert_eq!(hour.counting_from(&utc, 1_000_080), 996_421);
        assert_eq!(
            hour.reset_at(&utc, 1_000_080, Some(996_480)),
            Some(1_000_140)
        );
        assert_eq!(Period::parse("rolling", Some(30)), None);
        assert_eq!(Period::parse("day", Some(60)), None);
        assert_eq!(Period::Lifetime.counter_start(&utc, 1_700_000_000), 0);
        assert_eq!(Period::Lifetime.reset_at(&utc, 1, None), None);
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
