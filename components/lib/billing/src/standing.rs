//! What an org is entitled to, from its billing state and the plans:
//! its plan's grants while its subscription is paid for (active or
//! trialing), and for a grace period after a payment fails (`past_due`);
//! the default plan's once the grace has run out, and with no
//! subscription, or a canceled, unpaid, paused or incomplete one.
//! Nothing is deleted when an org falls to the default plan: its grants
//! come back with the payment.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::plans::{Plan, Plans};

/// An org's billing state as kept from Stripe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingState {
    /// The plan its subscription buys (`None`: none, or a price the
    /// deployment does not sell).
    pub plan_key: Option<String>,
    /// Stripe's subscription status; `None` without a subscription.
    pub status: Option<String>,
    /// Seats bought beyond the plan's included ones.
    pub seats_bought: i64,
    /// Since when it has been `past_due` (unix seconds).
    pub past_due_since: Option<i64>,
    /// Features Stripe's entitlements grant the customer besides the plan.
    pub stripe_features: Vec<String>,
}

/// Why an org has what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Its subscription is paid for: the plan's grants.
    Paid,
    /// Its payment failed; the plan's grants until the grace ends.
    Grace,
    /// The default plan's grants.
    Default,
}

/// What an org may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entitlements {
    /// The plan whose grants apply (`None` when no plan is configured).
    pub plan: Option<String>,
    /// Why.
    pub access: Access,
    /// When the grace ends (unix seconds), during [`Access::Grace`].
    pub grace_ends_at: Option<i64>,
    /// The features granted.
    pub features: BTreeSet<String>,
    /// The numeric limits granted.
    pub limits: BTreeMap<String, i64>,
    /// How many members the org may have; `None`: no limit.
    pub seat_limit: Option<i64>,
}

/// The statuses whose subscription is paid for.
pub fn paid(status: &str) -> bool {
    matches!(status, "active" | "trialing")
}

/// The statuses of a subscription that can still charge and grant: paid
/// for, or past due. An org has one such subscription at most.
pub fn live(status: &str) -> bool {
    paid(status) || status == "past_due"
}

/// [`live`]'s statuses as an SQL list, for `status IN …`.
pub const LIVE_SQL: &str = "('active', 'trialing', 'past_due')";

/// Whether a subscription has not ended: anything but canceled or expired
/// unpaid can still charge or come back.
pub fn open(status: &str) -> bool {
    !matches!(status, "canceled" | "incomplete_expired")
}

/// What `state` entitles an org to at `now`, `grace` seconds being the
/// grace after a failed payment.
pub fn entitlements(
    plans: &Plans,
    state: Option<&BillingState>,
    now: i64,
    grace: i64,
) -> Entitlements {
    let bought = state.and_then(|s| {
        let plan = plans.get(s.plan_key.as_deref()?)?;
        let status = s.status.as_deref()?;
        if paid(status) {
            return Some((plan, Access::Paid, None));
        }
        if status == "past_due" {
            let ends = s.past_due_since?.saturating_add(grace);
            return (now < ends).then_some((plan, Access::Grace, Some(ends)));
        }
        None
    });
    match (bought, state) {
        (Some((plan, access, grace_ends_at)), Some(state)) => {
            let mut granted = grants(Some(plan), access, grace_ends_at, state.seats_bought);
            granted
                .features
                .extend(state.stripe_features.iter().cloned());
            granted
        }
        _ => grants(plans.default_plan(), Access::Default, None, 0),
    }
}

fn grants(
    plan: Option<&Plan>,
    access: Access,
    grace_ends_at: Option<i64>,
    seats_bought: i64,
) -> Entitlements {
    let seat_limit = plan.and_then(|p| p.seats.as_ref()).map(|seats| {
        let limit = seats.included.saturating_add(seats_bought.max(0));
        seats.max.map_or(limit, |max| limit.min(max))
    });
    Entitlements {
        plan: plan.map(|p| p.key.clone()),
        access,
        grace_ends_at,
        features: plan
            .map(|p| p.features.iter().cloned().collect())
            .unwrap_or_default(),
        limits: plan.map(|p| p.limits.clone()).unwrap_or_default(),
        seat_limit,
    }
}

/// The answer to "may the org use `feature` (`quantity` of it)?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether it may.
    pub allowed: bool,
    /// The feature asked about.
    pub feature: String,
    /// The limit that decided, for a numeric limit or seats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Seats in use, for `seats`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    /// Why not: `not_in_plan` or `limit_exceeded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The plan whose grants decided.
    pub plan: Option<String>,
}

/// The feature name that asks about seats.
pub const SEATS: &str = "seats";

/// Whether `granted` allows `feature`: a feature granted allows any
/// quantity; a numeric limit allows a quantity (default 1) up to it;
/// `seats` allows adding `quantity` members (default 1) to `seats_used`.
pub fn check(
    granted: &Entitlements,
    feature: &str,
    quantity: Option<i64>,
    seats_used: i64,
) -> Verdict {
    let quantity = quantity.unwrap_or(1);
    let verdict = |allowed: bool, limit: Option<i64>, used: Option<i64>, reason| Verdict {
        allowed,
        feature: feature.to_string(),
        limit,
        used,
        reason: (!allowed).then_some(reason),
        plan: granted.plan.clone(),
    };
    if feature == SEATS {
        return match granted.seat_limit {
            None => verdict(true, None, Some(seats_used), "limit_exceeded"),
            Some(limit) => verdict(
                seats_used.saturating_add(quantity) <= limit,
                Some(limit),
                Some(seats_used),
                "limit_exceeded",
            ),
        };
    }
    if granted.features.contains(feature) {
        return verdict(true, None, None, "not_in_plan");
    }
    match granted.limits.get(feature) {
        Some(&limit) => verdict(quantity <= limit, Some(limit), None, "limit_exceeded"),
        None => verdict(false, None, None, "not_in_plan"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Plans {
        Plans::parse(
            r#"[{"key": "free", "name": "Free", "default": true, "features": ["api"], "limits": {"projects": 3}, "seats": {"included": 2}},
                {"key": "pro", "name": "Pro", "price": "pro_monthly", "features": ["api", "sso"],
                 "limits": {"projects": 50}, "seats": {"included": 5, "price": "pro_seat", "max": 8}}]"#,
        )
        .unwrap()
    }

    fn pro(status: &str) -> BillingState {
        BillingState {
            plan_key: Some("pro".into()),
            status: Some(status.into()),
            seats_bought: 2,
            past_due_since: None,
            stripe_features: vec!["beta".into()],
        }
    }

    #[test]
    fn an_active_subscription_grants_its_plan_its_seats_and_stripes_features() {
        let e = entitlements(&plans(), Some(&pro("active")), 0, 100);
        assert_eq!((e.plan.as_deref(), e.access), (Some("pro"), Access::Paid));
        assert_eq!(e.seat_limit, Some(7));
        assert!(e.features.contains("sso") && e.features.contains("beta"));
        assert_eq!(e.limits["projects"], 50);
    }

    #[test]
    fn seats_bought_stop_at_the_plans_maximum() {
        let mut state = pro("trialing");
        state.seats_bought = 40;
        assert_eq!(
            entitlements(&plans(), Some(&state), 0, 0).seat_limit,
            Some(8)
        );
    }

    #[test]
    fn a_failed_payment_keeps_the_plan_until_the_grace_ends_then_falls_to_the_default() {
        let mut state = pro("past_due");
        state.past_due_since = Some(1_000);
        let during = entitlements(&plans(), Some(&state), 1_099, 100);
        assert_eq!(
            (during.access, during.grace_ends_at),
            (Access::Grace, Some(1_100))
        );
        assert_eq!(during.plan.as_deref(), Some("pro"));
        let after = entitlements(&plans(), Some(&state), 1_100, 100);
        assert_eq!(
            (after.plan.as_deref(), after.access),
            (Some("free"), Access::Default)
        );
        assert!(!after.features.contains("beta"));
        assert_eq!(after.seat_limit, Some(2));
    }

    #[test]
    fn the_live_statuses_are_the_same_in_code_and_in_sql() {
        for status in [
            "active",
            "trialing",
            "past_due",
            "unpaid",
            "canceled",
            "incomplete",
            "incomplete_expired",
            "paused",
        ] {
            assert_eq!(
                live(status),
                LIVE_SQL.contains(&format!("'{status}'")),
                "{status}"
            );
            assert!(!live(status) || open(status), "{status}");
        }
    }

    #[test]
    fn canceled_unpaid_and_unknown_plans_get_the_default_plan() {
        for status in [
            "canceled",
            "unpaid",
            "incomplete",
            "incomplete_expired",
            "paused",
        ] {
            let e = entitlements(&plans(), Some(&pro(status)), 0, 100);
            assert_eq!(e.plan.as_deref(), Some("free"), "{status}");
        }
        let mut unknown = pro("active");
        unknown.plan_key = Some("gone".into());
        assert_eq!(
            entitlements(&plans(), Some(&unknown), 0, 0).plan.as_deref(),
            Some("free")
        );
        assert_eq!(entitlements(&plans(), None, 0, 0).access, Access::Default);
    }

    #[test]
    fn without_plans_nothing_is_granted_and_seats_are_unlimited() {
        let e = entitlements(&Plans::default(), Some(&pro("active")), 0, 0);
        assert_eq!((e.plan, e.seat_limit), (None, None));
        assert!(e.features.is_empty());
    }

    #[test]
    fn checks_answer_features_limits_and_seats() {
        let e = entitlements(&plans(), Some(&pro("active")), 0, 0);
        assert!(check(&e, "sso", None, 0).allowed);
        let missing = check(&e, "audit", None, 0);
        assert_eq!(
            (missing.allowed, missing.reason),
            (false, Some("not_in_plan"))
        );
        assert!(check(&e, "projects", Some(50), 0).allowed);
        let over = check(&e, "projects", Some(51), 0);
        assert_eq!(
            (over.allowed, over.limit, over.reason),
            (false, Some(50), Some("limit_exceeded"))
        );
        assert!(check(&e, SEATS, None, 6).allowed);
        let full = check(&e, SEATS, Some(2), 6);
        assert_eq!(
            (full.allowed, full.used, full.limit),
            (false, Some(6), Some(7))
        );
    }
}
