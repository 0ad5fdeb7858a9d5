//! What an alert says: the data of its `org_events` row and the mail to
//! the org's admins. Pure, so the wording and shapes are tested natively.
//!
//! Amounts show as quotas show them: units as numbers, spend as decimal
//! strings in the currency. Times in event data are unix seconds, as
//! everywhere in the API; mails write them out in RFC 3339.

use serde_json::{Value, json};

use super::spend::{FACTOR, MIN_DAYS_WITH_SPEND, RULE, TRAILING_DAYS, Unusual};
use super::{Crossing, Threshold};
use crate::model::{Measure, show_amount};
use crate::period::format_rfc3339;

/// The event type of a threshold reached (the webhook event catalog's).
pub const THRESHOLD_REACHED: &str = gatehouse_webhook_delivery::catalog::QUOTA_THRESHOLD_REACHED;
/// The event type of unusual spend (the webhook event catalog's).
pub const SPEND_UNUSUAL: &str = gatehouse_webhook_delivery::catalog::SPEND_UNUSUAL;
/// The mail kind of a threshold reached.
pub const THRESHOLD_MAIL: &str = "quota_alert";
/// The mail kind of unusual spend.
pub const SPEND_MAIL: &str = "spend_alert";

fn spend(nanos: i64) -> String {
    crate::money::Amount::from_nanos(nanos).to_string()
}

/// An amount of `measure` in words: `800 tokens`, `USD 12.5`.
fn words(measure: &Measure, amount: i64) -> String {
    match measure {
        Measure::Meter(key) => format!("{amount} {key}"),
        Measure::Spend(currency) => format!("{currency} {}", spend(amount)),
    }
}

/// A threshold in words: `80%` or an amount.
fn threshold_words(measure: &Measure, threshold: &Threshold) -> String {
    match threshold {
        Threshold::Percent(p) => format!("{p}%"),
        Threshold::Units(units) => words(measure, *units),
    }
}

/// The data of a `quota.threshold_reached` event.
pub fn threshold_data(crossing: &Crossing<'_>, threshold: &Threshold) -> Value {
    let measure = &crossing.measure();
    let (meter, currency) = match measure {
        Measure::Meter(key) => (Some(key), None),
        Measure::Spend(currency) => (None, Some(currency)),
    };
    json!({
        "quota": {
            "id": crossing.quota_id,
            "entity": crossing.entity,
            "meter": meter,
            "currency": currency,
            "enforcement": crossing.enforcement,
        },
        "threshold": threshold,
        "level": show_amount(measure, threshold.level(crossing.limit)),
        "used": show_amount(measure, crossing.used),
        "limit": show_amount(measure, crossing.limit),
        "period": {"start": crossing.period_start, "reset_at": crossing.reset_at},
    })
}

/// The subject and text of the mail about a threshold reached.
pub fn threshold_mail(
    org_name: &str,
    crossing: &Crossing<'_>,
    threshold: &Threshold,
) -> (String, String) {
    let measure = &crossing.measure();
    let what = match measure {
        Measure::Meter(key) => format!("{key} quota"),
        Measure::Spend(currency) => format!("{currency} spend quota"),
    };
    let subject = format!(
        "{org_name}: {} reached {} of its {what}",
        crossing.entity,
        threshold_words(measure, threshold)
    );
    let reset = match crossing.reset_at {
        Some(at) => format!("The count resets at {}.", format_rfc3339(at)),
        None => "The quota never resets.".to_string(),
    };
    let body = format!(
        "{entity} in {org_name} has used {used} of its limit of {limit} (quota {id}, {enforcement}) in the period that started at {start}.\n\n{reset}\n\nEach threshold of a quota alerts once per period.\n",
        entity = crossing.entity,
        used = words(measure, crossing.used),
        limit = words(measure, crossing.limit),
        id = crossing.quota_id,
        enforcement = crossing.enforcement.as_str(),
        start = format_rfc3339(crossing.period_start),
    );
    (subject, body)
}

/// The data of a `spend.unusual` event.
pub fn spend_data(currency: &str, day: (i64, i64), unusual: &Unusual) -> Value {
    json!({
        "currency": currency,
        "day": {"start": day.0, "end": day.1},
        "today": spend(unusual.today),
        "trailing_days": TRAILING_DAYS,
        "trailing_total": spend(unusual.trailing_total),
        "trailing_daily_mean": spend(unusual.trailing_mean),
        "days_with_spend": unusual.days_with_spend,
        "factor": FACTOR,
        "min_days_with_spend": MIN_DAYS_WITH_SPEND,
        "rule": RULE,
    })
}

/// The subject and text of the mail about unusual spend.
pub fn spend_mail(
    org_name: &str,
    currency: &str,
    day: (i64, i64),
    unusual: &Unusual,
) -> (String, String) {
    let subject = format!("{org_name}: unusual {currency} spend today");
    let body = format!(
        "{org_name} has spent {currency} {today} in the day that started at {start}, against a mean of {currency} {mean} a day over the {TRAILING_DAYS} days before ({days} of them with spend).\n\nThe rule: {RULE}.\n\nThis alert comes at most once a day per currency.\n",
        today = spend(unusual.today),
        start = format_rfc3339(day.0),
        mean = spend(unusual.trailing_mean),
        days = unusual.days_with_spend,
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::spend::unusual;
    use crate::model::Enforcement;

    fn crossing(measure: &str) -> Crossing<'_> {
        Crossing {
            quota_id: "quo_1",
            entity: "user:usr_1",
            measure,
            limit: 1000,
            used: 812,
            period_start: 1_700_000_000,
            reset_at: Some(1_700_086_400),
            enforcement: Enforcement::Hard,
        }
    }

    #[test]
    fn a_threshold_event_names_the_quota_the_threshold_and_the_period() {
        let data = threshold_data(&crossing("tokens"), &Threshold::Percent(80));
        assert_eq!(
            data,
            json!({
                "quota": {"id": "quo_1", "entity": "user:usr_1", "meter": "tokens",
                          "currency": null, "enforcement": "hard"},
                "threshold": {"percent": 80},
                "level": 800,
                "used": 812,
                "limit": 1000,
                "period": {"start": 1_700_000_000, "reset_at": 1_700_086_400},
            })
        );
        let (subject, body) = threshold_mail("Acme", &crossing("tokens"), &Threshold::Percent(80));
        assert_eq!(subject, "Acme: user:usr_1 reached 80% of its tokens quota");
        assert!(
            body.contains("812 tokens of its limit of 1000 tokens"),
            "{body}"
        );
        assert!(body.contains("2023-11-15T22:13:20Z"), "{body}");
    }

    #[test]
    fn a_lifetime_quota_never_resets() {
        let mut lifetime = crossing("tokens");
        lifetime.reset_at = None;
        let (_, body) = threshold_mail("Acme", &lifetime, &Threshold::Units(500));
        assert!(body.contains("never resets"), "{body}");
        assert_eq!(
            threshold_data(&lifetime, &Threshold::Units(500))["period"]["reset_at"],
            Value::Null
        );
    }

    #[test]
    fn a_spend_quota_shows_its_amounts_as_decimals_in_its_currency() {
        let mut usd = crossing("USD");
        usd.limit = 25_000_000_000;
        usd.used = 20_500_000_000;
        let data = threshold_data(&usd, &Threshold::Percent(80));
        assert_eq!(
            (&data["quota"]["meter"], &data["quota"]["currency"]),
            (&Value::Null, &json!("USD"))
        );
        assert_eq!(
            (&data["level"], &data["used"], &data["limit"]),
            (&json!("20.00"), &json!("20.50"), &json!("25.00"))
        );
        let (subject, body) = threshold_mail("Acme", &usd, &Threshold::Units(5_000_000_000));
        assert_eq!(
            subject,
            "Acme: user:usr_1 reached USD 5.00 of its USD spend quota"
        );
        assert!(
            body.contains("USD 20.50 of its limit of USD 25.00"),
            "{body}"
        );
    }

    #[test]
    fn unusual_spend_states_its_rule_and_figures() {
        let found = unusual(4_000_000_000, &[1_000_000_000; 14]).unwrap();
        let data = spend_data("EUR", (1_700_000_000, 1_700_086_400), &found);
        assert_eq!(data["today"], "4.00");
        assert_eq!(data["trailing_daily_mean"], "1.00");
        assert_eq!(data["trailing_total"], "14.00");
        assert_eq!(data["days_with_spend"], 14);
        assert_eq!(data["factor"], 3);
        assert_eq!(data["rule"], RULE);
        let (subject, body) = spend_mail("Acme", "EUR", (1_700_000_000, 1_700_086_400), &found);
        assert_eq!(subject, "Acme: unusual EUR spend today");
        assert!(
            body.contains("EUR 4.00") && body.contains("EUR 1.00 a day"),
            "{body}"
        );
        assert!(body.contains(RULE), "{body}");
    }
}
