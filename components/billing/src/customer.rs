//! The Stripe customer of an org: made on the org's first checkout or
//! portal session, with the org's id in its metadata, and remembered in
//! `org_billing`. Made with an idempotency key of the org, so two first
//! sessions at once make one customer.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use gatehouse_http::idempotency::unix_now;

use gatehouse_billing::stripe::Stripe;
use serde_json::Value;

/// The metadata key naming the org on every object Gatehouse makes.
pub const ORG_METADATA: &str = "gatehouse_org_id";

/// The org's Stripe customer id, made now if it has none.
pub async fn ensure(tenant: &Tenant<'_>, stripe: &Stripe) -> Result<String, Problem> {
    if let Some(known) = known(tenant).await? {
        return Ok(known);
    }
    let org = tenant.org_id().to_string();
    let handle = tenant
        .query("SELECT handle, name FROM orgs WHERE org_id = ?1", vec![])
        .await?;
    let name = handle
        .first()
        .map(|row| db::get_opt_text(row, 1).unwrap_or_else(|| db::get_text(row, 0)))
        .unwrap_or_else(|| org.clone());
    let made = stripe
        .post(
            "/v1/customers",
            &[
                ("name".into(), name),
                (format!("metadata[{ORG_METADATA}]"), org.clone()),
            ],
            &format!("gatehouse-customer-{org}"),
        )
        .await
        .map_err(|f| f.problem("make the organization's customer"))?;
    let Some(id) = made.get("id").and_then(|v| v.as_str()) else {
        eprintln!("billing: Stripe made a customer without an id");
        return Err(Problem::internal());
    };
    let now = unix_now();
    tenant
        .run(
            "INSERT INTO org_billing (org_id, stripe_customer_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (org_id) DO UPDATE SET stripe_customer_id = COALESCE(stripe_customer_id, excluded.stripe_customer_id),
                 updated_at = excluded.updated_at",
            vec![db::text(id), db::int(now)],
        )
        .await?;
    // Another first session may have stored its customer first (the same
    // one, by the idempotency key): the stored one is the org's.
    known(tenant).await?.ok_or_else(Problem::internal)
}

async fn known(tenant: &Tenant<'_>) -> Result<Option<String>, Problem> {
    let rows = tenant
        .query(
            "SELECT stripe_customer_id FROM org_billing WHERE org_id = ?1",
            vec![],
        )
        .await?;
    Ok(rows.first().and_then(|row| db::get_opt_text(row, 0)))
}

/// The customer's subscriptions as Stripe lists them now, whatever their
/// status (the 20 newest: an org has one live at most).
pub async fn subscriptions(stripe: &Stripe, customer: &str) -> Result<Vec<Value>, Problem> {
    let listed = stripe
        .get(&format!(
            "/v1/subscriptions?customer={customer}&status=all&limit=20"
        ))
        .await
        .map_err(|f| f.problem("list the customer's subscriptions"))?;
    Ok(listed["data"].as_array().cloned().unwrap_or_default())
}
