//! A Stripe subscription object read into what Gatehouse keeps of it.
//! Both shapes Stripe has used are read: the billing period on the
//! subscription itself (older API versions) or on its items (newer ones).

use serde_json::Value;

use crate::plans::Plans;

/// What Gatehouse keeps of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `sub_…`.
    pub id: String,
    /// `cus_…`.
    pub customer: String,
    /// Stripe's status: `trialing`, `active`, `past_due`, `canceled`, …
    pub status: String,
    /// The plan its price buys, if the deployment sells that price.
    pub plan_key: Option<String>,
    /// The price lookup key of the plan item, as Stripe names it.
    pub price: Option<String>,
    /// The quantity of the plan's seat price: seats bought beyond the
    /// included ones.
    pub seats_bought: i64,
    /// The current billing period `[start, end)`, unix seconds.
    pub period: Option<(i64, i64)>,
    /// Whether it ends at the period's end (classic billing mode).
    pub cancel_at_period_end: bool,
    /// When it is set to end, if it is (every billing mode).
    pub cancel_at: Option<i64>,
}

/// The object's id, whether Stripe sent it as an id or expanded.
pub fn id_of(value: &Value) -> Option<&str> {
    value
        .as_str()
        .or_else(|| value.get("id").and_then(Value::as_str))
}

/// Reads a Stripe subscription object.
pub fn read(object: &Value, plans: &Plans) -> Result<Subscription, String> {
    if object.get("object").and_then(Value::as_str) != Some("subscription") {
        return Err("not a subscription object".into());
    }
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
    let id = text("id").ok_or("a subscription without an id")?;
    let customer = object
        .get("customer")
        .and_then(id_of)
        .ok_or("a subscription without a customer")?
        .to_string();
    let status = text("status").ok_or("a subscription without a status")?;
    let items: &[Value] = object
        .pointer("/items/data")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let lookup = |item: &Value| {
        item.pointer("/price/lookup_key")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let plan_item = items
        .iter()
        .find(|item| lookup(item).is_some_and(|k| plans.by_price(&k).is_some()));
    let plan = plan_item.and_then(lookup).and_then(|k| plans.by_price(&k));
    let seat_price = plan
        .and_then(|p| p.seats.as_ref())
        .and_then(|s| s.price.as_deref());
    let seats_bought = items
        .iter()
        .filter(|item| seat_price.is_some() && lookup(item).as_deref() == seat_price)
        .filter_map(|item| item.get("quantity").and_then(Value::as_i64))
        .sum::<i64>()
        .max(0);
    let int = |v: &Value, key: &str| v.get(key).and_then(Value::as_i64);
    let period = match (
        int(object, "current_period_start"),
        int(object, "current_period_end"),
    ) {
        (Some(start), Some(end)) => Some((start, end)),
        _ => plan_item.or(items.first()).and_then(|item| {
            Some((
                int(item, "current_period_start")?,
                int(item, "current_period_end")?,
            ))
        }),
    };
    Ok(Subscription {
        id,
        customer,
        status,
        plan_key: plan.map(|p| p.key.clone()),
        price: plan_item
            .and_then(lookup)
            .or_else(|| items.first().and_then(lookup)),
        seats_bought,
        period,
        cancel_at_period_end: object
            .get("cancel_at_period_end")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        cancel_at: int(object, "cancel_at"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plans() -> Plans {
        Plans::parse(
            r#"[{"key": "free", "name": "Free", "default": true},
                {"key": "pro", "name": "Pro", "price": "pro_monthly", "seats": {"included": 5, "price": "pro_seat"}}]"#,
        )
        .unwrap()
    }

    fn item(lookup: &str, quantity: i64) -> Value {
        json!({"object": "subscription_item", "quantity": quantity,
               "current_period_start": 100, "current_period_end": 200,
               "price": {"object": "price", "id": format!("price_{lookup}"), "lookup_key": lookup}})
    }

    #[test]
    fn the_plan_and_the_seats_bought_come_from_the_items_prices() {
        let object = json!({"object": "subscription", "id": "sub_1", "customer": "cus_1",
            "status": "active", "cancel_at_period_end": true,
            "items": {"object": "list", "data": [item("pro_seat", 3), item("pro_monthly", 1)]}});
        let s = read(&object, &plans()).unwrap();
        assert_eq!(s.plan_key.as_deref(), Some("pro"));
        assert_eq!(s.seats_bought, 3);
        assert_eq!(s.period, Some((100, 200)));
        assert!(s.cancel_at_period_end);
        assert_eq!(s.cancel_at, None);
        assert_eq!(s.price.as_deref(), Some("pro_monthly"));
    }

    #[test]
    fn a_price_the_deployment_does_not_sell_is_no_plan() {
        let object = json!({"object": "subscription", "id": "sub_1", "customer": {"id": "cus_1"},
            "status": "active", "current_period_start": 1, "current_period_end": 2,
            "items": {"data": [item("other", 1)]}});
        let s = read(&object, &plans()).unwrap();
        assert_eq!(
            (s.plan_key, s.seats_bought, s.period),
            (None, 0, Some((1, 2)))
        );
        assert_eq!(s.customer, "cus_1");
    }

    #[test]
    fn other_objects_are_refused() {
        assert!(read(&json!({"object": "invoice", "id": "in_1"}), &plans()).is_err());
        assert!(read(&json!({"object": "subscription", "id": "sub_1"}), &plans()).is_err());
    }
}
