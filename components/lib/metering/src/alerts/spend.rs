//! The unusual-spend rule. Today's spend in a currency (the org's whole
//! spend, its calendar day in the org's time zone) is unusual when it is
//! more than [`FACTOR`] times the mean daily spend of the
//! [`TRAILING_DAYS`] full days before today, and at least
//! [`MIN_DAYS_WITH_SPEND`] of those days had spend: an org that has
//! barely spent yet has no usual to compare with. The mean counts days
//! without spend as zero. Pure, so the rule is tested natively.

use crate::period::{Calendar, Unit};

/// Full days before today that make the usual.
pub const TRAILING_DAYS: usize = 14;
/// Days of those that must have had spend for a comparison.
pub const MIN_DAYS_WITH_SPEND: usize = 7;
/// How many times the mean today must exceed.
pub const FACTOR: i64 = 3;
/// The rule in words, as events and mails state it.
pub const RULE: &str = "today's spend is more than 3 times the mean daily spend of the 14 full days before today (days without spend count as zero), and at least 7 of those days had spend";

/// Today and the trailing days, each `(first second, next day's first
/// second)` in the calendar's zone; the trailing days newest first.
pub fn days(calendar: &Calendar, now: i64) -> ((i64, i64), Vec<(i64, i64)>) {
    let today = calendar.window(Unit::Day, now);
    let mut trailing = Vec::with_capacity(TRAILING_DAYS);
    let mut end = today.0;
    for _ in 0..TRAILING_DAYS {
        let start = calendar.start(Unit::Day, end - 1);
        trailing.push((start, end));
        end = start;
    }
    (today, trailing)
}

/// Why a day's spend was flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusual {
    /// Today's spend, in billionths.
    pub today: i64,
    /// The trailing days' spend together, in billionths.
    pub trailing_total: i64,
    /// Their mean per day, in billionths (rounded down).
    pub trailing_mean: i64,
    /// How many of them had spend.
    pub days_with_spend: usize,
}

/// Whether `today`'s spend is unusual against the `trailing` days' (one
/// total per day, [`TRAILING_DAYS`] of them; fewer is no comparison).
pub fn unusual(today: i64, trailing: &[i64]) -> Option<Unusual> {
    if trailing.len() != TRAILING_DAYS || today <= 0 {
        return None;
    }
    let days_with_spend = trailing.iter().filter(|&&day| day > 0).count();
    let total: i128 = trailing.iter().map(|&day| i128::from(day)).sum();
    // today > FACTOR × total / days, without dividing.
    let days = TRAILING_DAYS as i128;
    let spike = i128::from(today) * days > i128::from(FACTOR) * total;
    (days_with_spend >= MIN_DAYS_WITH_SPEND && spike).then(|| Unusual {
        today,
        trailing_total: i64::try_from(total).unwrap_or(i64::MAX),
        trailing_mean: i64::try_from(total.div_euclid(days)).unwrap_or(i64::MAX),
        days_with_spend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::parse_rfc3339;

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    /// `with` days of `amount` spend, the rest without.
    fn history(with: usize, amount: i64) -> Vec<i64> {
        (0..TRAILING_DAYS)
            .map(|i| if i < with { amount } else { 0 })
            .collect()
    }

    #[test]
    fn more_than_three_times_the_mean_is_unusual() {
        // 14 days of 100: mean 100.
        let usual = history(14, 100);
        assert_eq!(unusual(300, &usual), None);
        let flagged = unusual(301, &usual).unwrap();
        assert_eq!(
            flagged,
            Unusual {
                today: 301,
                trailing_total: 1400,
                trailing_mean: 100,
                days_with_spend: 14
            }
        );
    }

    #[test]
    fn days_without_spend_count_as_zero_in_the_mean() {
        // 7 days of 200 in 14: mean 100, so 301 is unusual, 300 is not.
        let half = history(7, 200);
        assert_eq!(unusual(300, &half), None);
        assert_eq!(unusual(301, &half).map(|u| u.trailing_mean), Some(100));
    }

    #[test]
    fn fewer_than_seven_days_with_spend_is_no_usual_to_compare_with() {
        assert_eq!(unusual(1_000_000, &history(6, 10)), None);
        assert!(unusual(1_000_000, &history(7, 10)).is_some());
        assert_eq!(unusual(1_000_000, &history(0, 0)), None);
        // A short history (a caller's mistake) never flags.
        assert_eq!(unusual(1_000_000, &[10; 13]), None);
        // No spend today is never unusual.
        assert_eq!(unusual(0, &history(14, 0)), None);
    }

    #[test]
    fn refunds_lower_the_usual_but_only_spend_counts_as_a_day_with_spend() {
        let mut days = history(7, 100);
        days[13] = -700;
        // Total 0: any spend today is more than 3 × 0.
        assert_eq!(unusual(1, &days).map(|u| u.trailing_mean), Some(0));
        days[6] = -100;
        assert_eq!(unusual(1, &days), None, "only 6 days with spend");
    }

    #[test]
    fn the_trailing_days_are_the_zones_full_days_before_today() {
        let utc = Calendar::utc();
        let (today, trailing) = days(&utc, at("2026-03-20T15:00:00Z"));
        assert_eq!(
            today,
            (at("2026-03-20T00:00:00Z"), at("2026-03-21T00:00:00Z"))
        );
        assert_eq!(trailing.len(), TRAILING_DAYS);
        assert_eq!(
            trailing[0],
            (at("2026-03-19T00:00:00Z"), at("2026-03-20T00:00:00Z"))
        );
        assert_eq!(trailing[13].0, at("2026-03-06T00:00:00Z"));
        // New York moves its clocks on 2026-03-08: that day has 23 hours,
        // and every day still starts at the zone's midnight.
        let new_york = Calendar::of("America/New_York").unwrap();
        let (today, trailing) = days(&new_york, at("2026-03-20T15:00:00Z"));
        assert_eq!(today.0, at("2026-03-20T04:00:00Z"));
        let short = trailing
            .iter()
            .find(|(start, _)| *start == at("2026-03-08T05:00:00Z"))
            .unwrap();
        assert_eq!(short.1 - short.0, 23 * 3600);
        assert_eq!(trailing[13].0, at("2026-03-06T05:00:00Z"));
        assert!(trailing.windows(2).all(|w| w[1].1 == w[0].0));
    }
}
