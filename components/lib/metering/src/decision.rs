//! The quota decision: given where every applicable quota stands, may
//! this use go ahead? Pure, so the rule is tested natively.
//!
//! A use adds its units to meter quotas and its cost to spend quotas:
//! each standing carries what the use adds to it (`need`). Only hard
//! quotas refuse. Quotas of different measures are compared by how many
//! more uses of this size they admit (what is left over what the use
//! needs), so the most restrictive one wins whatever it counts; among
//! equals, the smaller limit, then the id. `remaining` is what that quota
//! has left once the use is counted (or, when refused, what the blocking
//! one has left now), in its own measure.

use std::cmp::Ordering;

use serde::Serialize;

use crate::model::{Measure, show_amount};

/// One applicable quota in its current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The quota's id.
    pub id: String,
    /// `org:<id>`, `team:<id>` or `user:<id>`.
    pub entity: String,
    /// What it counts.
    pub measure: Measure,
    /// Its limit in the current period (an override's, while one runs).
    pub limit: i64,
    /// Used in the current period, counting what open reservations hold.
    pub used: i64,
    /// What this use adds to it.
    pub need: i64,
    /// Whether it refuses (hard) or only counts (soft).
    pub hard: bool,
    /// When what counts now stops counting; none for lifetime quotas.
    pub reset_at: Option<i64>,
}

impl Standing {
    fn left(&self) -> i64 {
        self.limit.saturating_sub(self.used).max(0)
    }

    fn refuses(&self) -> bool {
        self.hard && self.used.saturating_add(self.need) > self.limit
    }
}

/// Orders by how many uses of this size fit (fewest first), then limit,
/// then id.
fn tighter(a: &Standing, b: &Standing) -> Ordering {
    let fits =
        |q: &Standing, other: &Standing| i128::from(q.left()) * i128::from(other.need.max(1));
    fits(a, b)
        .cmp(&fits(b, a))
        .then(a.limit.cmp(&b.limit))
        .then_with(|| a.id.cmp(&b.id))
}

/// The quota that refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocking {
    /// The quota's id.
    pub id: String,
    /// Whom it limits.
    pub entity: String,
    /// What it counts.
    pub measure: Measure,
    /// Its limit.
    pub limit: i64,
    /// Used in its current period, counting what open reservations hold.
    pub used: i64,
}

impl Serialize for Blocking {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (meter, currency) = match &self.measure {
            Measure::Meter(key) => (Some(key), None),
            Measure::Spend(currency) => (None, Some(currency)),
        };
        serde_json::json!({
            "id": self.id,
            "entity": self.entity,
            "meter": meter,
            "currency": currency,
            "limit": show_amount(&self.measure, self.limit),
            "used": show_amount(&self.measure, self.used),
        })
        .serialize(serializer)
    }
}

/// The answer of a check or a consume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Whether the use may go ahead.
    pub allowed: bool,
    /// What the tightest hard quota has left (units as a number, spend as
    /// a decimal string); none when no hard quota applies.
    pub remaining: Option<serde_json::Value>,
    /// When that quota's count next falls; none for lifetime or no quota.
    pub reset_at: Option<i64>,
    /// The quota that refused; none when allowed.
    pub blocking: Option<Blocking>,
}

/// Decides the use described by `quotas`' needs.
pub fn decide(quotas: &[Standing]) -> Decision {
    let hard = quotas.iter().filter(|q| q.hard);
    if let Some(q) = hard
        .clone()
        .filter(|q| q.refuses())
        .min_by(|a, b| tighter(a, b))
    {
        return Decision {
            allowed: false,
            remaining: Some(show_amount(&q.measure, q.left())),
            reset_at: q.reset_at,
            blocking: Some(Blocking {
                id: q.id.clone(),
                entity: q.entity.clone(),
                measure: q.measure.clone(),
                limit: q.limit,
                used: q.used,
            }),
        };
    }
    let tightest = hard.min_by(|a, b| tighter(a, b));
    Decision {
        allowed: true,
        remaining: tightest.map(|q| show_amount(&q.measure, q.left() - q.need)),
        reset_at: tightest.and_then(|q| q.reset_at),
        blocking: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(id: &str, limit: i64, used: i64, hard: bool) -> Standing {
        Standing {
            id: id.into(),
            entity: format!("team:{id}"),
            measure: Measure::Meter("tokens".into()),
            limit,
            used,
            need: 0,
            hard,
            reset_at: Some(86_400),
        }
    }

    fn needing(mut quotas: Vec<Standing>, need: i64) -> Vec<Standing> {
        for q in &mut quotas {
            q.need = need;
        }
        quotas
    }

    #[test]
    fn without_hard_quotas_everything_is_allowed() {
        let d = decide(&needing(vec![quota("soft", 1, 5, false)], 10));
        assert!(d.allowed && d.blocking.is_none());
        assert_eq!((d.remaining, d.reset_at), (None, None));
    }

    #[test]
    fn the_quota_with_the_fewest_units_left_blocks() {
        let quotas = vec![quota("org", 10, 9, true), quota("team", 3, 3, true)];
        let d = decide(&needing(quotas, 2));
        assert!(!d.allowed);
        assert_eq!(d.blocking.map(|b| b.id).as_deref(), Some("team"));
        assert_eq!(d.remaining, Some(0.into()));
    }

    #[test]
    fn an_allowed_amount_leaves_what_the_tightest_quota_has_left() {
        let quotas = vec![quota("org", 10, 2, true), quota("team", 5, 1, true)];
        let d = decide(&needing(quotas.clone(), 4));
        assert!(d.allowed);
        assert_eq!(d.remaining, Some(0.into()));
        assert!(!decide(&needing(quotas, 5)).allowed);
    }

    #[test]
    fn quotas_of_different_measures_compare_by_uses_left() {
        // 100 units left at 10 a use: ten uses. 0.50 left at 0.25 a use:
        // two uses. The spend quota is the tighter one.
        let units = Standing {
            need: 10,
            ..quota("units", 1000, 900, true)
        };
        let spend = Standing {
            measure: Measure::Spend("USD".into()),
            need: 250_000_000,
            ..quota("spend", 5_000_000_000, 4_500_000_000, true)
        };
        let d = decide(&[units.clone(), spend.clone()]);
        assert!(d.allowed);
        assert_eq!(d.remaining, Some("0.25".into()));
        let broke = Standing {
            used: 4_900_000_000,
            ..spend
        };
        let d = decide(&[units, broke]);
        assert!(!d.allowed);
        assert_eq!(d.blocking.map(|b| b.id).as_deref(), Some("spend"));
        assert_eq!(d.remaining, Some("0.10".into()));
    }
}
