//! Unix seconds as dates: the days-from-civil arithmetic (proleptic
//! Gregorian, counted in 400-year eras of years that start on 1 March, so
//! the leap day ends its year) and the RFC 3339 form answers use.
//!
//! ```
//! use gatehouse_http::time::{civil_from_days, format_rfc3339};
//!
//! assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
//! assert_eq!(format_rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
//! assert_eq!(civil_from_days(-1), (1969, 12, 31));
//! ```

/// Seconds in a day.
const DAY: i64 = 86_400;

/// The date (year, month, day) of the day `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn dates_around_leap_days_eras_and_the_epoch() {
        for (seconds, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (1_764_417_600, "2025-11-29T12:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_800_000_000, "2027-01-15T08:00:00Z"),
        ] {
            assert_eq!(format_rfc3339(seconds), text, "{seconds}");
        }
    }
}
