//! A month's spend forecast: the spend so far, and a straight line from
//! the mean daily spend of the last full days to the month's end, with a
//! low and a high from the smallest and the largest of those days. Pure,
//! so the arithmetic is tested natively; every figure is exact billionths,
//! rounded half away from zero once.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::expenditure_query::Span;
use crate::money::format_nanos;
use crate::period::{Calendar, Unit};

const DAY: i128 = 86_400;

/// The full days a forecast averages: up to `most` calendar days before
/// the one starting at `today`, none starting before `floor` (the month's
/// first second, or the first day with spend when that is later); oldest
/// first.
pub fn base_days(cal: &Calendar, today: i64, floor: i64, most: u32) -> Vec<Span> {
    let mut days = Vec::new();
    let mut end = today;
    while days.len() < most as usize {
        let start = cal.start(Unit::Day, end - 1);
        if start < floor {
            break;
        }
        days.push(Span { start, end });
        end = start;
    }
    days.reverse();
    days
}

/// `n / d` rounded half away from zero; `d` is positive.
fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if r.abs() * 2 >= d { q + n.signum() } else { q }
}

/// One currency's forecast, in billionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projection {
    /// Spend recorded for the month.
    pub so_far: i128,
    /// `so_far` plus the mean daily spend over the time left.
    pub projected: i128,
    /// `so_far` plus the smallest daily spend over the time left.
    pub low: i128,
    /// `so_far` plus the largest daily spend over the time left.
    pub high: i128,
    /// The mean daily spend of the days averaged.
    pub daily_mean: i128,
    /// How many days were averaged.
    pub days: usize,
}

/// The projection from `so_far`, the spend of each day averaged (zero
/// for a day without any), and the seconds left in the month. Without a
/// day to average, every figure is the spend so far.
pub fn project(so_far: i128, daily: &[i128], seconds_left: i64) -> Projection {
    let left = i128::from(seconds_left.max(0));
    let n = daily.len() as i128;
    let (Some(&low), Some(&high)) = (daily.iter().min(), daily.iter().max()) else {
        return Projection {
            so_far,
            projected: so_far,
            low: so_far,
            high: so_far,
            daily_mean: 0,
            days: 0,
        };
    };
    let total: i128 = daily.iter().sum();
    Projection {
        so_far,
        projected: so_far + div_round(total * left, n * DAY),
        low: so_far + div_round(low * left, DAY),
        high: so_far + div_round(high * left, DAY),
        daily_mean: div_round(total, n),
        days: daily.len(),
    }
}

/// How the forecast is made, in words, for the answer.
pub fn method(most: u32) -> String {
    format!(
        "linear: the spend recorded for the month so far, plus the mean daily spend of the last {most} \
         full days of the month (fewer when the month, or the spend, is younger) times the days left \
         until the month ends; low and high take the smallest and the largest of those daily totals \
         instead of the mean. Days are calendar days of the organization's time zone; a day without \
         spend counts as zero. With no full day to average, every figure is the spend so far."
    )
}

/// One currency's forecast as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    /// Spend recorded for the month.
    pub so_far: String,
    /// The projected spend at the month's end.
    pub projected: String,
    /// The low end of the range.
    pub low: String,
    /// The high end of the range.
    pub high: String,
    /// The mean daily spend averaged.
    pub daily_mean: String,
    /// The full days averaged.
    pub days: usize,
}

impl From<Projection> for Shown {
    fn from(p: Projection) -> Shown {
        Shown {
            so_far: format_nanos(p.so_far),
            projected: format_nanos(p.projected),
            low: format_nanos(p.low),
            high: format_nanos(p.high),
            daily_mean: format_nanos(p.daily_mean),
            days: p.days,
        }
    }
}

/// The forecast of a month as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthForecast {
    /// The month's first second.
    pub month_start: String,
    /// The next month's first second.
    pub month_end: String,
    /// How the figures are made.
    pub method: String,
    /// By currency.
    pub currencies: BTreeMap<String, Shown>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::parse_rfc3339;

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn the_base_is_the_last_full_days_of_the_month() {
        let utc = Calendar::utc();
        let today = at("2026-11-17T00:00:00Z");
        let month = at("2026-11-01T00:00:00Z");
        let days = base_days(&utc, today, month, 7);
        assert_eq!(days.len(), 7);
        assert_eq!(days[0].start, at("2026-11-10T00:00:00Z"));
        assert_eq!(days[6].end, today);
        // Three days into the month, three days to average.
        assert_eq!(
            base_days(&utc, at("2026-11-04T00:00:00Z"), month, 7).len(),
            3
        );
        // On the first, none.
        assert!(base_days(&utc, month, month, 7).is_empty());
        // Spend that began on the 15th: two days.
        assert_eq!(
            base_days(&utc, today, at("2026-11-15T00:00:00Z"), 7).len(),
            2
        );
    }

    #[test]
    fn days_of_a_clock_change_are_whole_local_days() {
        let berlin = Calendar::of("Europe/Berlin").unwrap();
        let today = at("2026-03-30T22:00:00Z");
        let days = base_days(&berlin, today, 0, 2);
        assert_eq!(days[0].end - days[0].start, 23 * 3600);
        assert_eq!(days[1].end - days[1].start, 24 * 3600);
    }

    #[test]
    fn the_projection_is_a_line_from_the_daily_mean() {
        let unit = 1_000_000_000;
        // 2, 4 and 6 a day: mean 4; ten days left.
        let p = project(30 * unit, &[2 * unit, 4 * unit, 6 * unit], 10 * 86_400);
        assert_eq!(p.projected, 70 * unit);
        assert_eq!(p.low, 50 * unit);
        assert_eq!(p.high, 90 * unit);
        assert_eq!(p.daily_mean, 4 * unit);
        assert_eq!(p.days, 3);
        // Half a day left of a mean of 1 billionth a day: rounds up.
        assert_eq!(project(0, &[1], 43_200).projected, 1);
        let shown = Shown::from(p);
        assert_eq!(shown.projected, "70.00");
    }

    #[test]
    fn without_a_full_day_the_forecast_is_the_spend_so_far() {
        let p = project(5, &[], 86_400);
        assert_eq!((p.projected, p.low, p.high, p.days), (5, 5, 5, 0));
        assert!(method(7).contains("last 7 full days"));
    }
}
