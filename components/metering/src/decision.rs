//! The quota decision: given where every applicable quota stands, may
//! `amount` more units be used? Pure, so the rule is tested natively.
//!
//! Only hard quotas refuse. Of those that would be exceeded, the one with
//! the fewest units left blocks (the most restrictive wins); `remaining` is
//! what the tightest hard quota has left once the amount is counted (or,
//! when refused, what the blocking one has left now).

use serde::Serialize;

/// One applicable quota in its current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The quota's id.
    pub id: String,
    /// `org:<id>`, `team:<id>` or `user:<id>`.
    pub entity: String,
    /// Units per period.
    pub limit: i64,
    /// Units used in the current period, counting those held by open
    /// reservations.
    pub used: i64,
    /// Whether it refuses (hard) or only counts (soft).
    pub hard: bool,
    /// When its current period ends; none for lifetime quotas.
    pub reset_at: Option<i64>,
}

impl Standing {
    fn left(&self) -> i64 {
        self.limit.saturating_sub(self.used).max(0)
    }
}

/// The quota that refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocking {
    /// The quota's id.
    pub id: String,
    /// Whom it limits.
    pub entity: String,
    /// Its limit.
    pub limit: i64,
    /// Units used in its current period, counting those held by open
    /// reservations.
    pub used: i64,
}

/// The answer of a check or a consume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the amount may be used.
    pub allowed: bool,
    /// Units left under the tightest hard quota; none when no hard quota applies.
    pub remaining: Option<i64>,
    /// When that quota's period ends; none for lifetime or no quota.
    pub reset_at: Option<i64>,
    /// The quota that refused; none when allowed.
    pub blocking: Option<Blocking>,
}

/// Decides `amount` against `quotas`.
pub fn decide(quotas: &[Standing], amount: i64) -> Decision {
    let hard = quotas.iter().filter(|q| q.hard);
    // Ties go to the smaller limit, then the id, so the answer is stable.
    let tightest = |q: &&Standing| (q.left(), q.limit, q.id.clone());
    let refusing = hard
        .clone()
        .filter(|q| q.used.saturating_add(amount) > q.limit)
        .min_by_key(tightest);
    if let Some(q) = refusing {
        return Decision {
            allowed: false,
            remaining: Some(q.left()),
            reset_at: q.reset_at,
            blocking: Some(Blocking {
                id: q.id.clone(),
                entity: q.entity.clone(),
                limit: q.limit,
                used: q.used,
            }),
        };
    }
    let tightest = hard.min_by_key(tightest);
    Decision {
        allowed: true,
        remaining: tightest.map(|q| q.left() - amount),
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
            limit,
            used,
            hard,
            reset_at: Some(86_400),
        }
    }

    #[test]
    fn without_hard_quotas_everything_is_allowed() {
        let d = decide(&[quota("soft", 1, 5, false)], 10);
        assert!(d.allowed && d.blocking.is_none());
        assert_eq!((d.remaining, d.reset_at), (None, None));
    }

    #[test]
    fn the_quota_with_the_fewest_units_left_blocks() {
        let quotas = [quota("org", 10, 9, true), quota("team", 3, 3, true)];
        let d = decide(&quotas, 2);
        assert!(!d.allowed);
        assert_eq!(d.blocking.map(|b| b.id).as_deref(), Some("team"));
        assert_eq!(d.remaining, Some(0));
    }

    #[test]
    fn an_allowed_amount_leaves_what_the_tightest_quota_has_left() {
        let quotas = [quota("org", 10, 2, true), quota("team", 5, 1, true)];
        let d = decide(&quotas, 4);
        assert!(d.allowed);
        assert_eq!(d.remaining, Some(0));
        assert!(!decide(&quotas, 5).allowed);
    }
}
