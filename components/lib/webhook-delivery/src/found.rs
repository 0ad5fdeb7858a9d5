//! A delivery job's message, loaded with its event and endpoint, and
//! what can be sent for it: the body and the endpoint's opened keys.

use gatehouse_auth::db::{get_int, get_opt_text, text};
use gatehouse_jobs::JobError;
use spin_sdk::sqlite::Connection;
use webhooks_core::{SigningKey, SigningSecret};

use crate::message::{self, Keys};
use crate::store::opened;

/// The message a job delivers, with its event and endpoint as stored.
pub(crate) struct Found {
    pub(crate) message_id: String,
    pub(crate) org_id: String,
    pub(crate) endpoint_id: String,
    pub(crate) event_id: String,
    pub(crate) status: String,
    /// Type, data and time, unless the event is gone.
    event: Option<(String, String, i64)>,
    /// Unless the endpoint row is gone.
    endpoint: Option<Endpoint>,
}

struct Endpoint {
    url: String,
    enabled: bool,
    deleted: bool,
    disabled_reason: Option<String>,
    secret: String,
    previous_secret: Option<String>,
    previous_expires_at: Option<i64>,
    signing_key: Option<String>,
}

/// The message `message_id` as stored, or none when it is gone, or its
/// org is (a deployment without foreign keys may keep an org's rows after
/// the org: they are nobody's to deliver).
pub(crate) async fn load(conn: &Connection, message_id: &str) -> Result<Option<Found>, JobError> {
    let found = gatehouse_jobs::rows(
        conn,
        "SELECT m.org_id, m.endpoint_id, m.event_id, m.status,
                e.event_type, e.data, e.created_at,
                p.endpoint_id, p.url, p.enabled, p.deleted_at, p.disabled_reason,
                p.secret, p.previous_secret, p.previous_expires_at, p.signing_key
         FROM webhook_messages m
         JOIN orgs o ON o.org_id = m.org_id
         LEFT JOIN org_events e ON e.event_id = m.event_id AND e.org_id = m.org_id
         LEFT JOIN webhook_endpoints p ON p.endpoint_id = m.endpoint_id AND p.org_id = m.org_id
         WHERE m.message_id = ?1",
        vec![text(message_id)],
    )
    .await?;
    Ok(found.first().map(|row| Found {
        message_id: message_id.to_string(),
        org_id: get_opt_text(row, 0).unwrap_or_default(),
        endpoint_id: get_opt_text(row, 1).unwrap_or_default(),
        event_id: get_opt_text(row, 2).unwrap_or_default(),
        status: get_opt_text(row, 3).unwrap_or_default(),
        event: get_opt_text(row, 4).map(|event_type| {
            let data = get_opt_text(row, 5).unwrap_or_default();
            (event_type, data, get_int(row, 6).unwrap_or_default())
        }),
        endpoint: get_opt_text(row, 7).map(|_| Endpoint {
            url: get_opt_text(row, 8).unwrap_or_default(),
            enabled: get_int(row, 9) == Some(1),
            deleted: get_int(row, 10).is_some(),
            disabled_reason: get_opt_text(row, 11),
            secret: get_opt_text(row, 12).unwrap_or_default(),
            previous_secret: get_opt_text(row, 13),
            previous_expires_at: get_int(row, 14),
            signing_key: get_opt_text(row, 15),
        }),
    }))
}

/// What to do with a loaded message.
pub(crate) enum Ready {
    /// Attempt it: to this URL, with this body, signed with these keys.
    Send(String, Vec<u8>, Keys),
    /// No attempt, ever: the message fails with this reason.
    Stop(String),
    /// No attempt now: this deployment cannot sign (its master key does
    /// not open the secrets); the job retries by the jobs' backoff.
    Wait(String),
}

pub(crate) async fn prepare(conn: &Connection, found: &Found, now: i64) -> Ready {
    let Some(endpoint) = found.endpoint.as_ref().filter(|e| !e.deleted) else {
        return Ready::Stop("the endpoint was deleted".into());
    };
    if !endpoint.enabled {
        let reason = endpoint.disabled_reason.as_deref().unwrap_or("admin");
        return Ready::Stop(format!("the endpoint is disabled ({reason})"));
    }
    let Some((event_type, data, created_at)) = &found.event else {
        return Ready::Stop("the event is no longer stored".into());
    };
    let Some(body) = message::body(event_type, *created_at, data) else {
        return Ready::Stop("the event's data is not a JSON object".into());
    };
    let cannot_open = || {
        Ready::Wait(
            "the endpoint's secrets do not open with its org's data key and this deployment's master_key"
                .into(),
        )
    };
    let (org, id) = (found.org_id.as_str(), found.endpoint_id.as_str());
    let secret = opened(conn, org, id, &endpoint.secret, |p| {
        SigningSecret::parse(p).ok()
    });
    let Ok(Some(secret)) = secret.await else {
        return cannot_open();
    };
    let previous = match (&endpoint.previous_secret, endpoint.previous_expires_at) {
        (Some(sealed), Some(until)) if until > now => {
            match opened(conn, org, id, sealed, |p| SigningSecret::parse(p).ok()).await {
                Ok(Some(previous)) => Some((previous, until)),
                _ => return cannot_open(),
            }
        }
        _ => None,
    };
    let signing_key = match &endpoint.signing_key {
        Some(sealed) => match opened(conn, org, id, sealed, |p| SigningKey::parse(p).ok()).await {
            Ok(Some(key)) => Some(key),
            _ => return cannot_open(),
        },
        None => None,
    };
    let keys = Keys {
        secret,
        previous,
        signing_key,
    };
    Ready::Send(endpoint.url.clone(), body, keys)
}
