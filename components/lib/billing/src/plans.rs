//! The deployment's plans, from the `billing_plans` variable: a JSON array
//! of plans, each a key, a name, the Stripe price (by lookup key) that
//! buys it, and what it grants:
//!
//! ```json
//! [{"key": "free", "name": "Free", "default": true,
//!   "features": ["api"], "limits": {"projects": 3}, "seats": {"included": 3}},
//!  {"key": "pro", "name": "Pro", "price": "pro_monthly",
//!   "features": ["api", "sso"], "limits": {"projects": 50},
//!   "seats": {"included": 5, "price": "pro_seat", "max": 100}}]
//! ```
//!
//! One plan is the default: what an org without a paid subscription (or
//! whose grace has run out) is entitled to. A plan without `seats` has no
//! seat limit; with `seats.price`, seats beyond the included ones are
//! bought per seat (the subscription item of that price, its quantity the
//! seats bought).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most plans a deployment lists.
pub const MAX_PLANS: usize = 50;

/// One plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Its key (`[a-z0-9_-]`, 1 to 64).
    pub key: String,
    /// Its name, for people.
    pub name: String,
    /// Whether it is the default plan.
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    /// The lookup key of the Stripe price that buys it (absent for a plan
    /// nobody buys, such as a free one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// The features it grants, by key.
    #[serde(default)]
    pub features: Vec<String>,
    /// Numeric limits it grants, by key.
    #[serde(default)]
    pub limits: BTreeMap<String, i64>,
    /// Its seats; absent: no seat limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<Seats>,
    /// Quotas it sets on the org's meters, while it is the org's plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<PlanQuota>,
    /// Usage it bills through Stripe's meters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metered: Vec<Metered>,
}

/// A quota a plan sets: an org-wide limit on one of the org's meters,
/// kept by billing as a quota of the org (`managed_by: plan`) that
/// follows the plan; an admin's override of it wins, as for any quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuota {
    /// The meter's key (an org without this meter gets the quota when it
    /// makes the meter).
    pub meter: String,
    /// The units allowed in each period.
    pub limit: i64,
    /// `day`, `week`, `month` (in the org's time zone) or `lifetime`.
    pub period: String,
    /// `hard` (refused past the limit, the default) or `soft`.
    #[serde(default = "hard")]
    pub enforcement: String,
}

fn hard() -> String {
    "hard".into()
}

/// Usage a plan bills: what the org's meter counts, reported to the
/// Stripe billing meter that `event_name` feeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metered {
    /// The org's meter whose usage is reported.
    pub meter: String,
    /// The `event_name` of the Stripe billing meter.
    pub event_name: String,
    /// The lookup key of the metered Stripe price a checkout adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A plan's seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seats {
    /// Seats that come with the plan.
    pub included: i64,
    /// The lookup key of the Stripe price of one more seat; absent: no
    /// seats beyond the included ones can be bought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// The most seats an org may have on the plan, included ones counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// The deployment's plans, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plans {
    plans: Vec<Plan>,
}

impl Plans {
    /// Parses and checks a `billing_plans` setting; empty text is no
    /// plans (billing off: no seat limit, no features).
    pub fn parse(text: &str) -> Result<Plans, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Plans::default());
        }
        let plans: Vec<Plan> = serde_json::from_str(text)
            .map_err(|e| format!("billing_plans is not a JSON array of plans: {e}"))?;
        check(&plans)?;
        Ok(Plans { plans })
    }

    /// Whether any plan is configured.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Every plan, as configured.
    pub fn all(&self) -> &[Plan] {
        &self.plans
    }

    /// The plan `key`.
    pub fn get(&self, key: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.key == key)
    }

    /// The default plan.
    pub fn default_plan(&self) -> Option<&Plan> {
        self.plans.iter().find(|p| p.default)
    }

    /// The plan bought by the Stripe price with `lookup_key`.
    pub fn by_price(&self, lookup_key: &str) -> Option<&Plan> {
        self.plans
            .iter()
            .find(|p| p.price.as_deref() == Some(lookup_key))
    }
}

fn check(plans: &[Plan]) -> Result<(), String> {
    if plans.len() > MAX_PLANS {
        return Err(format!("billing_plans lists more than {MAX_PLANS} plans"));
    }
    let mut keys = std::collections::HashSet::new();
    let mut prices = std::collections::HashSet::new();
    for plan in plans {
        let name = &plan.key;
        if !valid_key(&plan.key) {
            return Err(format!(
                "billing_plans: plan key {name:?} is not 1 to 64 of a-z, 0-9, _ and -"
            ));
        }
        if !keys.insert(plan.key.as_str()) {
            return Err(format!("billing_plans: plan {name:?} is listed twice"));
        }
        if plan.name.trim().is_empty() {
            return Err(format!("billing_plans: plan {name:?} has no name"));
        }
        for key in plan.features.iter().chain(plan.limits.keys()) {
            if !valid_key(key) && !key.contains(':') {
                return Err(format!(
                    "billing_plans: plan {name:?} names a feature {key:?} that is not 1 to 64 of a-z, 0-9, _, - and :"
                ));
            }
        }
        if plan.limits.values().any(|v| *v < 0) {
            return Err(format!("billing_plans: plan {name:?} has a negative limit"));
        }
        // The member who makes an org holds its first seat.
        if let Some(seats) = &plan.seats
            && (seats.included < 1 || seats.max.is_some_and(|m| m < seats.included))
        {
            return Err(format!(
                "billing_plans: plan {name:?} has seats.included below 1 or above seats.max"
            ));
        }
        check_usage(plan)?;
        let plan_prices = plan
            .price
            .iter()
            .chain(plan.seats.as_ref().and_then(|s| s.price.as_ref()))
            .chain(plan.metered.iter().filter_map(|m| m.price.as_ref()));
        for price in plan_prices {
            if price.is_empty() || !prices.insert(price.as_str()) {
                return Err(format!(
                    "billing_plans: price {price:?} of plan {name:?} is empty or sold by another plan"
                ));
            }
        }
        if plan.default && plan.price.is_some() {
            return Err(format!(
                "billing_plans: the default plan {name:?} cannot have a price: it is what orgs have without paying"
            ));
        }
    }
    match plans.iter().filter(|p| p.default).count() {
        1 => Ok(()),
        0 if plans.is_empty() => Ok(()),
        n => Err(format!(
            "billing_plans must mark exactly one plan \"default\": true (it marks {n})"
        )),
    }
}

/// A plan's quotas and metered usage: one of each per meter, known
/// periods and enforcements, Stripe event names as Stripe takes them.
fn check_usage(plan: &Plan) -> Result<(), String> {
    let name = &plan.key;
    let mut meters = std::collections::HashSet::new();
    for quota in &plan.quotas {
        if !valid_key(&quota.meter) || !meters.insert(quota.meter.as_str()) {
            return Err(format!(
                "billing_plans: plan {name:?} has a quota on meter {:?} that is not a meter key or is listed twice",
                quota.meter
            ));
        }
        if !matches!(quota.period.as_str(), "day" | "week" | "month" | "lifetime")
            || !matches!(quota.enforcement.as_str(), "hard" | "soft")
            || !(0..=MAX_QUOTA_UNITS).contains(&quota.limit)
        {
            return Err(format!(
                "billing_plans: plan {name:?}'s quota on {:?} needs a period of day, week, month or lifetime, an enforcement of hard or soft, and a limit from 0 to {MAX_QUOTA_UNITS}",
                quota.meter
            ));
        }
    }
    let mut billed = std::collections::HashSet::new();
    for m in &plan.metered {
        let event_ok = (1..=100).contains(&m.event_name.len())
            && m.event_name.bytes().all(|b| b.is_ascii_graphic());
        if !valid_key(&m.meter) || !billed.insert(m.meter.as_str()) || !event_ok {
            return Err(format!(
                "billing_plans: plan {name:?} bills meter {:?} twice, or with an event_name that is not 1 to 100 visible characters",
                m.meter
            ));
        }
    }
    Ok(())
}

/// The largest quota limit a plan sets (metering's own largest limit).
pub const MAX_QUOTA_UNITS: i64 = 1_000_000_000_000_000;

fn valid_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLANS: &str = r#"[
        {"key": "free", "name": "Free", "default": true, "features": ["api"], "limits": {"projects": 3}, "seats": {"included": 3}},
        {"key": "pro", "name": "Pro", "price": "pro_monthly", "features": ["api", "sso"],
         "limits": {"projects": 50}, "seats": {"included": 5, "price": "pro_seat", "max": 100}}
    ]"#;

    #[test]
    fn plans_are_found_by_key_by_price_and_as_the_default() {
        let plans = Plans::parse(PLANS).unwrap();
        assert_eq!(plans.get("pro").unwrap().name, "Pro");
        assert_eq!(plans.by_price("pro_monthly").unwrap().key, "pro");
        assert!(plans.by_price("pro_seat").is_none());
        assert_eq!(plans.default_plan().unwrap().key, "free");
    }

    #[test]
    fn empty_text_is_no_plans() {
        assert!(Plans::parse("").unwrap().is_empty());
        assert!(Plans::parse("[]").unwrap().is_empty());
    }

    #[test]
    fn a_setting_without_exactly_one_default_is_refused() {
        let none = r#"[{"key": "pro", "name": "Pro", "price": "p"}]"#;
        assert!(Plans::parse(none).unwrap_err().contains("exactly one"));
        let two = r#"[{"key": "a", "name": "A", "default": true}, {"key": "b", "name": "B", "default": true}]"#;
        assert!(Plans::parse(two).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn duplicate_keys_shared_prices_and_unknown_fields_are_refused() {
        let twice = r#"[{"key": "a", "name": "A", "default": true}, {"key": "a", "name": "B"}]"#;
        assert!(Plans::parse(twice).unwrap_err().contains("twice"));
        let shared = r#"[{"key": "a", "name": "A", "default": true}, {"key": "b", "name": "B", "price": "p"}, {"key": "c", "name": "C", "price": "p"}]"#;
        assert!(Plans::parse(shared).unwrap_err().contains("another plan"));
        let unknown = r#"[{"key": "a", "name": "A", "default": true, "seat": 3}]"#;
        assert!(Plans::parse(unknown).is_err());
        let priced_default = r#"[{"key": "a", "name": "A", "default": true, "price": "p"}]"#;
        assert!(
            Plans::parse(priced_default)
                .unwrap_err()
                .contains("cannot have a price")
        );
        let bad_key = r#"[{"key": "A B", "name": "A", "default": true}]"#;
        assert!(Plans::parse(bad_key).is_err());
    }
}
