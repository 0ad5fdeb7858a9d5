//! A meter's price: what its units cost, in one currency. Pure, so the
//! rules are tested natively.
//!
//! Two shapes, as JSON (every money value a decimal string):
//!
//! - one price per unit: `{"currency": "USD", "unit_price": "0.000002"}`;
//! - graduated tiers: `{"currency": "USD", "tiers": [{"up_to": 1000,
//!   "unit_price": "0"}, {"up_to": null, "unit_price": "0.001",
//!   "flat_fee": "5"}]}`. Tiers count the org's units of the meter in the
//!   current calendar month (in the org's time zone). A tier takes the
//!   units after the previous tier's `up_to` up to and including its own;
//!   each unit costs the `unit_price` of the tier it falls in, and a
//!   tier's `flat_fee` (default 0) is charged once a month, by the use
//!   that brings the month's first unit into the tier. The last tier has
//!   no end (`up_to` null or left out); every other tier's `up_to` is a
//!   whole number above the previous one's.
//!
//! A cost is summed exactly in trillionths and rounded once, half-up, to
//! billionths.

use gatehouse_http::FieldError;
use serde::{Deserialize, Serialize};

use crate::money::{Amount, DecimalError, UnitPrice, valid_currency};

/// The most tiers a price has.
pub const MAX_TIERS: usize = 16;

/// A price as sent (and as stored): checked into a [`Price`] by
/// [`Price::from_body`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    /// ISO 4217-shaped code.
    pub currency: String,
    /// One price for every unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<String>,
    /// Graduated tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<TierBody>>,
}

/// One tier as sent.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierBody {
    /// The month's last unit in this tier; none for the last tier.
    #[serde(default)]
    pub up_to: Option<i64>,
    /// What each unit in the tier costs.
    pub unit_price: String,
    /// Charged once a month on entering the tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat_fee: Option<String>,
}

/// One tier of a graduated price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The month's last unit in this tier; none: no end.
    pub up_to: Option<i64>,
    /// What each unit in the tier costs.
    pub unit_price: UnitPrice,
    /// Charged once a month, by the use that enters the tier.
    pub flat_fee: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    PerUnit(UnitPrice),
    Tiers(Vec<Tier>),
}

/// A checked price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    currency: String,
    shape: Shape,
}

fn decimal_error(pointer: String, field: &str, error: DecimalError) -> FieldError {
    FieldError::new(pointer, error.code(), error.message(field))
}

impl Price {
    /// The currency its costs are in.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// Whether its tiers count the month's units (so a use must take its
    /// units into the month's count to be priced).
    pub fn is_tiered(&self) -> bool {
        matches!(self.shape, Shape::Tiers(_))
    }

    /// Checks a price as sent; field errors point under `pointer`
    /// (`/price`).
    pub fn from_body(body: &PriceBody, pointer: &str) -> Result<Price, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !valid_currency(&body.currency) {
            errors.push(FieldError::new(
                format!("{pointer}/currency"),
                "invalid_currency",
                "currency must be three upper-case letters, an ISO 4217 code such as USD",
            ));
        }
        let shape = match (&body.unit_price, &body.tiers) {
            (Some(text), None) => match UnitPrice::read(text) {
                Ok(price) => Some(Shape::PerUnit(price)),
                Err(e) => {
                    errors.push(decimal_error(
                        format!("{pointer}/unit_price"),
                        "unit_price",
                        e,
                    ));
                    None
                }
            },
            (None, Some(tiers)) => check_tiers(tiers, pointer, &mut errors).map(Shape::Tiers),
            _ => {
                errors.push(FieldError::new(
                    pointer,
                    "unit_price_or_tiers",
                    "a price has either unit_price or tiers: give exactly one",
                ));
                None
            }
        };
        match shape {
            Some(shape) if errors.is_empty() => Ok(Price {
                currency: body.currency.clone(),
                shape,
            }),
            _ => Err(errors),
        }
    }

    /// A price as stored (its [`Price::to_stored`] JSON); none for text
    /// that is not one, which only a hand-edited row holds.
    pub fn from_stored(text: &str) -> Option<Price> {
        let body: PriceBody = serde_json::from_str(text).ok()?;
        Price::from_body(&body, "").ok()
    }

    /// The canonical body: what is stored and shown.
    pub fn body(&self) -> PriceBody {
        let (unit_price, tiers) = match &self.shape {
            Shape::PerUnit(price) => (Some(price.to_string()), None),
            Shape::Tiers(tiers) => (
                None,
                Some(
                    tiers
                        .iter()
                        .map(|t| TierBody {
                            up_to: t.up_to,
                            unit_price: t.unit_price.to_string(),
                            flat_fee: Some(t.flat_fee.to_string()),
                        })
                        .collect(),
                ),
            ),
        };
        PriceBody {
            currency: self.currency.clone(),
            unit_price,
            tiers,
        }
    }

    /// The JSON stored in `meters.price`.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.body()).unwrap_or_default()
    }

    /// What `units` more cost when the org has used
    /// `units_before_this_month` of the meter this calendar month (only
    /// tiers look at it); none past the range of an amount. Zero or fewer
    /// units cost nothing.
    pub fn checked_cost(&self, units_before_this_month: i64, units: i64) -> Option<Amount> {
        if units <= 0 {
            return Some(Amount::ZERO);
        }
        match &self.shape {
            Shape::PerUnit(price) => price.checked_cost(units),
            Shape::Tiers(tiers) => {
                Amount::from_picos_rounded(tiered_picos(tiers, units_before_this_month, units)?)
            }
        }
    }

    /// [`Price::checked_cost`], or [`Amount::MAX`] past the range of an
    /// amount (more than 9.2 billion units of the currency in one use,
    /// which no real price reaches).
    pub fn cost(&self, units_before_this_month: i64, units: i64) -> Amount {
        self.checked_cost(units_before_this_month, units)
            .unwrap_or(Amount::MAX)
    }
}

impl Serialize for Price {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body().serialize(serializer)
    }
}

fn check_tiers(
    tiers: &[TierBody],
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<Tier>> {
    if tiers.is_empty() || tiers.len() > MAX_TIERS {
        errors.push(FieldError::new(
            format!("{pointer}/tiers"),
            "invalid_tiers",
            format!("tiers must hold 1 to {MAX_TIERS} tiers"),
        ));
        return None;
    }
    let before = errors.len();
    let mut checked = Vec::with_capacity(tiers.len());
    let mut previous = 0;
    for (i, tier) in tiers.iter().enumerate() {
        let at = format!("{pointer}/tiers/{i}");
        let last = i + 1 == tiers.len();
        match (tier.up_to, last) {
            (None, true) => {}
            (None, false) => errors.push(FieldError::new(
                format!("{at}/up_to"),
                "unbounded_before_last",
                "only the last tier has no up_to",
            )),
            (Some(_), true) => errors.push(FieldError::new(
                format!("{at}/up_to"),
                "last_tier_bounded",
                "the last tier has no end: make its up_to null",
            )),
            (Some(n), false) if n <= previous => errors.push(FieldError::new(
                format!("{at}/up_to"),
                "not_increasing",
                "each up_to must be a whole number above the previous tier's (and above 0)",
            )),
            (Some(n), false) => previous = n,
        }
        let unit_price = UnitPrice::read(&tier.unit_price)
            .map_err(|e| errors.push(decimal_error(format!("{at}/unit_price"), "unit_price", e)));
        let flat_fee = tier
            .flat_fee
            .as_deref()
            .map_or(Ok(Amount::ZERO), Amount::read_non_negative)
            .map_err(|e| errors.push(decimal_error(format!("{at}/flat_fee"), "flat_fee", e)));
        if let (Ok(unit_price), Ok(flat_fee)) = (unit_price, flat_fee) {
            checked.push(Tier {
                up_to: tier.up_to,
                unit_price,
                flat_fee,
            });
        }
    }
    (errors.len() == before).then_some(checked)
}

/// The exact cost in trillionths of the month's units `before + 1` to
/// `before + units`, tier by tier; none on overflow.
fn tiered_picos(tiers: &[Tier], before: i64, units: i64) -> Option<i128> {
    let start = i128::from(before.max(0));
    let end = start + i128::from(units);
    let mut floor = 0_i128;
    let mut total = 0_i128;
    for tier in tiers {
        let ceiling = tier.up_to.map_or(i128::MAX, i128::from);
        let taken = end.min(ceiling) - start.max(floor);
        if taken > 0 {
            let cost = taken.checked_mul(i128::from(tier.unit_price.picos()))?;
            total = total.checked_add(cost)?;
        }
        // The tier's first unit is `floor + 1`: this use brings it in.
        if start <= floor && floor < end {
            let fee = i128::from(tier.flat_fee.nanos()) * 1_000;
            total = total.checked_add(fee)?;
        }
        if ceiling >= end {
            break;
        }
        floor = ceiling;
    }
    Some(total)
}

/// `PATCH /v1/meters/{key}`: the price to set, or null to clear it. Only
/// the price changes after a meter is made: its event type and
/// aggregation give its past usage its meaning.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterPatch {
    /// Present and null: clear; present: set; absent: a 422.
    #[serde(default, deserialize_with = "present")]
    pub price: Option<Option<PriceBody>>,
}

/// A field that is present, even as null: `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

impl gatehouse_http::json::Validate for MeterPatch {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match &self.price {
            None => Err(vec![FieldError::new(
                "/price",
                "required",
                "price is required: a price to set, or null to clear it",
            )]),
            Some(Some(body)) => Price::from_body(body, "/price").map(|_| ()),
            Some(None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn price(value: serde_json::Value) -> Result<Price, Vec<FieldError>> {
        let body: PriceBody = serde_json::from_value(value).unwrap();
        Price::from_body(&body, "/price")
    }

    fn codes(value: serde_json::Value) -> Vec<(String, String)> {
        price(value)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.pointer, e.code))
            .collect()
    }

    fn tiered() -> Price {
        price(json!({"currency": "USD", "tiers": [
            {"up_to": 1000, "unit_price": "0"},
            {"up_to": 5000, "unit_price": "0.001", "flat_fee": "5"},
            {"up_to": null, "unit_price": "0.0005"}
        ]}))
        .unwrap()
    }

    #[test]
    fn a_price_per_unit_multiplies_and_rounds_once() {
        let p = price(json!({"currency": "USD", "unit_price": "0.0000000015"})).unwrap();
        assert!(!p.is_tiered());
        assert_eq!(p.currency(), "USD");
        assert_eq!(p.cost(0, 1).nanos(), 2);
        assert_eq!(p.cost(123, 3).nanos(), 5);
        assert_eq!(p.cost(0, 1_000_000_000).to_string(), "1.50");
        assert_eq!(p.cost(0, 0), Amount::ZERO);
    }

    #[test]
    fn graduated_tiers_price_each_unit_in_its_tier() {
        let p = tiered();
        assert!(p.is_tiered());
        // Inside the free tier.
        assert_eq!(p.cost(0, 1000), Amount::ZERO);
        // 1,001st unit: the fee of tier two and one unit of it.
        assert_eq!(p.cost(1000, 1).to_string(), "5.001");
        // Later units of tier two pay no fee again.
        assert_eq!(p.cost(1001, 10).to_string(), "0.01");
        // Across every tier at once: 0 + 5 + 4,000 × 0.001 + 1,000 × 0.0005.
        assert_eq!(p.cost(0, 6000).to_string(), "9.50");
        // The same units in two uses cost the same as in one.
        let split = p.cost(0, 2500).nanos() + p.cost(2500, 3500).nanos();
        assert_eq!(split, p.cost(0, 6000).nanos());
    }

    #[test]
    fn sub_billionth_tier_prices_add_up_before_rounding() {
        let p = price(json!({"currency": "EUR", "tiers": [
            {"up_to": 1, "unit_price": "0.0000000004"},
            {"unit_price": "0.0000000004"}
        ]}))
        .unwrap();
        // 0.4 + 0.4 billionths is 0.8, rounded to 1; each alone rounds to 0.
        assert_eq!(p.cost(0, 2).nanos(), 1);
    }

    #[test]
    fn a_price_reads_back_from_what_is_stored() {
        let p = tiered();
        let stored = p.to_stored();
        assert_eq!(Price::from_stored(&stored), Some(p.clone()));
        assert_eq!(
            serde_json::to_value(&p).unwrap()["tiers"][1],
            json!({"up_to": 5000, "unit_price": "0.001", "flat_fee": "5.00"})
        );
        let flat = price(json!({"currency": "USD", "unit_price": "2.5"})).unwrap();
        assert_eq!(
            serde_json::to_value(&flat).unwrap(),
            json!({"currency": "USD", "unit_price": "2.50"})
        );
        assert_eq!(Price::from_stored("{"), None);
    }

    #[test]
    fn malformed_prices_name_each_bad_field() {
        let pair = |p: &str, c: &str| (p.to_string(), c.to_string());
        assert_eq!(
            codes(json!({"currency": "usd", "unit_price": "1"})),
            vec![pair("/price/currency", "invalid_currency")]
        );
        assert_eq!(
            codes(json!({"currency": "USD", "unit_price": "1e-3"})),
            vec![pair("/price/unit_price", "invalid_decimal")]
        );
        assert_eq!(
            codes(json!({"currency": "USD", "unit_price": "-1"})),
            vec![pair("/price/unit_price", "negative")]
        );
        assert_eq!(
            codes(json!({"currency": "USD"})),
            vec![pair("/price", "unit_price_or_tiers")]
        );
        assert_eq!(
            codes(json!({"currency": "USD", "unit_price": "1", "tiers": []})),
            vec![pair("/price", "unit_price_or_tiers")]
        );
        assert_eq!(
            codes(json!({"currency": "USD", "tiers": []})),
            vec![pair("/price/tiers", "invalid_tiers")]
        );
        assert_eq!(
            codes(json!({"currency": "USD", "tiers": [
                {"up_to": 10, "unit_price": "1"},
                {"up_to": 10, "unit_price": "1", "flat_fee": "-2"},
                {"unit_price": "1"},
                {"up_to": 50, "unit_price": "0.0000000000001"}
            ]})),
            vec![
                pair("/price/tiers/1/up_to", "not_increasing"),
                pair("/price/tiers/1/flat_fee", "negative"),
                pair("/price/tiers/2/up_to", "unbounded_before_last"),
                pair("/price/tiers/3/up_to", "last_tier_bounded"),
                pair("/price/tiers/3/unit_price", "too_precise"),
            ]
        );
        assert_eq!(
            codes(
                json!({"currency": "USD", "tiers": [{"up_to": 0, "unit_price": "1"}, {"unit_price": "1"}]})
            ),
            vec![pair("/price/tiers/0/up_to", "not_increasing")]
        );
    }

    #[test]
    fn a_price_as_a_json_number_is_not_a_price() {
        let number: Result<PriceBody, _> =
            serde_json::from_value(json!({"currency": "USD", "unit_price": 0.1}));
        assert!(number.is_err());
    }

    #[test]
    fn a_patch_sets_or_clears_the_price_and_needs_it_named() {
        use gatehouse_http::json::Validate;
        let patch = |v: serde_json::Value| serde_json::from_value::<MeterPatch>(v).unwrap();
        assert!(matches!(patch(json!({"price": null})).price, Some(None)));
        let set = patch(json!({"price": {"currency": "USD", "unit_price": "1"}}));
        assert!(matches!(set.price, Some(Some(_))) && set.validate().is_ok());
        let missing = patch(json!({})).validate().unwrap_err();
        assert_eq!(missing[0].code, "required");
        let bad = patch(json!({"price": {"currency": "USD", "unit_price": "x"}}));
        assert_eq!(bad.validate().unwrap_err()[0].pointer, "/price/unit_price");
    }
}
