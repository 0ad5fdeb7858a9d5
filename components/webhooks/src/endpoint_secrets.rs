//! `GET /v1/webhooks/endpoints/{id}/secret` and `POST
//! …/secret/$rotate`: an endpoint's `whsec_` signing secret, for its org's
//! admins. A rotation keeps the old secret signing beside the new one for
//! [`PREVIOUS_SECRET_SECONDS`], so a receiver that still verifies with the
//! old one keeps accepting deliveries while it is updated. A second
//! rotation within that day would end the old secret early (a receiver
//! mid-switch would start refusing deliveries), so it is refused unless the
//! admin asks for that (`expire_previous_now`).
//!
//! Every answer holding a secret is marked `Cache-Control: no-store`
//! ([`not_stored`]): no cache between the admin and Gatehouse may keep it.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, json, response};
use gatehouse_webhook_delivery::{open_secret, seal_secret};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;
use webhooks_core::SigningSecret;

use crate::endpoint_input::RotateSecret;
use crate::endpoints::{admin, no_endpoint};

/// How long a rotated-out secret keeps signing: a day.
pub const PREVIOUS_SECRET_SECONDS: i64 = 24 * 60 * 60;

/// `res`, which holds a secret, marked for no cache to store.
pub fn not_stored(mut res: Response) -> Response {
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    res
}

/// A new random secret of 32 bytes (the specification allows 24 to 64).
pub fn new_secret() -> Result<SigningSecret, Problem> {
    SigningSecret::from_random(&identity_core::random::bytes::<32>())
        .map_err(|_| Problem::internal())
}

/// An endpoint's secrets as answered.
#[derive(Debug, Serialize)]
struct Secrets {
    /// The `whsec_` secret every delivery is signed with.
    secret: String,
    /// The secret it replaced, which signs beside it until
    /// `previous_expires_at`; absent once that has passed.
    previous_secret: Option<String>,
    previous_expires_at: Option<i64>,
}

/// What `sealed` holds for the tenant's endpoint `id`.
async fn opened(
    conn: &Connection,
    tenant: &Tenant<'_>,
    sealed: &str,
    id: &str,
) -> Result<String, Problem> {
    open_secret(conn, tenant.org_id(), id, sealed)
        .await?
        .ok_or_else(|| {
            eprintln!("webhooks: endpoint {id}'s secret does not open for its row");
            Problem::internal()
        })
}

/// The live endpoint `id`'s secrets at `now`.
async fn secrets(
    conn: &Connection,
    tenant: &Tenant<'_>,
    id: &str,
    now: i64,
) -> Result<Secrets, Problem> {
    let rows = tenant
        .query(
            "SELECT secret, previous_secret, previous_expires_at FROM webhook_endpoints
             WHERE org_id = ?1 AND endpoint_id = ?2 AND deleted_at IS NULL",
            vec![db::text(id)],
        )
        .await?;
    let row = rows.first().ok_or_else(no_endpoint)?;
    let secret = opened(conn, tenant, &db::get_text(row, 0), id).await?;
    // NULL expiry with a previous secret does not happen; treat it as expired.
    let (previous_secret, previous_expires_at) =
        match (db::get_opt_text(row, 1), db::get_int(row, 2)) {
            (Some(sealed), Some(expires)) if expires > now => (
                Some(opened(conn, tenant, &sealed, id).await?),
                Some(expires),
            ),
            _ => (None, None),
        };
    Ok(Secrets {
        secret,
        previous_secret,
        previous_expires_at,
    })
}

/// `GET /v1/webhooks/endpoints/{id}/secret`.
pub async fn get(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let secrets = secrets(&caller.conn, &tenant, id, unix_now()).await?;
    Ok(not_stored(response::json(200, &secrets, request_id)))
}

/// 409: the secret rotated out before still signs, until `until`.
fn rotation_in_progress(until: i64) -> Problem {
    let when = jiff::Timestamp::from_second(until)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| until.to_string());
    let message = format!(
        "the previous secret signs until {when} (unix {until}): rotate again after that, or with \
         expire_previous_now: true to end it now"
    );
    Problem::new(ErrorCode::Conflict)
        .detail(message.clone())
        .errors(vec![FieldError::new("", "rotation_in_progress", message)])
}

/// `POST /v1/webhooks/endpoints/{id}/secret/$rotate`, with no body (a new
/// random secret) or `{"secret": "whsec_…"}`: the new secret signs from
/// now on, the old one beside it for a day. `409 rotation_in_progress`
/// while a secret rotated out earlier still signs, unless
/// `"expire_previous_now": true`, which stops that one now.
pub async fn rotate(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let (parts, body) = req.into_parts();
    let bytes = json::read_body(&parts.headers, body, json::DEFAULT_LIMIT).await?;
    // Whitespace alone is no body, as an empty one is.
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        json::parse_valid(json::content_type(&parts.headers), &bytes)?
    };
    let chosen = body.chosen().map_err(crate::endpoints::invalid)?;
    let expire_previous = body.expire_previous_now == Some(true);
    let secret = match chosen {
        Some(secret) => secret,
        None => new_secret()?,
    };
    let now = unix_now();
    let sealed = seal_secret(&caller.conn, tenant.org_id(), id, &secret.to_whsec(), now).await?;
    // The sealed old secret moves as it is: sealed for the same endpoint.
    // The condition and the change are one statement, so two rotations at
    // once cannot both pass it.
    let changed = tenant
        .exec(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = ?2,
                 secret = ?3, updated_at = ?4
             WHERE org_id = ?1 AND endpoint_id = ?5 AND deleted_at IS NULL
               AND (?6 = 1 OR previous_expires_at IS NULL OR previous_expires_at <= ?4)",
            vec![
                db::int(now + PREVIOUS_SECRET_SECONDS),
                db::text(sealed),
                db::int(now),
                db::text(id),
                db::int(i64::from(expire_previous)),
            ],
        )
        .await?;
    if changed == 0 {
        return Err(refused_rotation(&tenant, id).await);
    }
    let secrets = secrets(&caller.conn, &tenant, id, now).await?;
    Ok(not_stored(response::json(200, &secrets, request_id)))
}

/// Why endpoint `id`'s secret was not rotated: there is no such live
/// endpoint, or its previous secret still signs.
async fn refused_rotation(tenant: &Tenant<'_>, id: &str) -> Problem {
    let rows = tenant
        .query(
            "SELECT previous_expires_at FROM webhook_endpoints
             WHERE org_id = ?1 AND endpoint_id = ?2 AND deleted_at IS NULL",
            vec![db::text(id)],
        )
        .await;
    match rows {
        Ok(rows) => match rows.first().map(|r| db::get_int(r, 0)) {
            Some(Some(until)) => rotation_in_progress(until),
            // Changed or deleted since: as if it were not there.
            _ => no_endpoint(),
        },
        Err(problem) => problem,
    }
}
