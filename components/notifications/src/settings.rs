//! The kinds there are, and the caller's channels for each.

use gatehouse_http::{Problem, Response, response};
use gatehouse_notify::kinds::{Channel, KINDS};
use gatehouse_notify::prefs;
use serde_json::{Map, Value, json};
use spin_sdk::http::Request;

use crate::inbox::me;

/// Whether the deployment sends text messages: the provider's account
/// and sender are set. (The auth token, a secret, is only given to the
/// job runner, which checks it too.)
async fn sms_configured() -> bool {
    let var = |name: &'static str| async move {
        spin_sdk::variables::get(name).await.unwrap_or_default()
    };
    !var("sms_api_base_url").await.trim().is_empty()
        && !var("sms_account_sid").await.trim().is_empty()
        && !var("sms_from").await.trim().is_empty()
}

async fn channels() -> Value {
    let sms = sms_configured().await;
    let items: Vec<Value> = Channel::ALL
        .into_iter()
        .map(|c| {
            let mut entry = json!({"name": c.as_str(), "available": true});
            if c == Channel::Sms && !sms {
                entry["available"] = json!(false);
                entry["detail"] = json!(gatehouse_notify::sms::OFF);
            }
            entry
        })
        .collect();
    Value::Array(items)
}

/// `GET /v1/notification-kinds`.
pub async fn kinds(req: Request, request_id: &str) -> Result<Response, Problem> {
    gatehouse_auth::authenticate(&req).await?;
    let items: Vec<Value> = KINDS
        .iter()
        .map(|k| {
            json!({
                "kind": k.name,
                "title": k.title,
                "channels": k.channels,
                "defaults": k.defaults,
                "critical": k.critical,
            })
        })
        .collect();
    let body = json!({"items": items, "channels": channels().await});
    Ok(response::json(200, &body, request_id))
}

/// `GET /v1/me/notification-preferences`: for each kind, each channel on
/// or off for the caller in the org the request acts in, and which layer
/// decided (`user`, `team`, `org`, `default`, or `critical`).
pub async fn effective(req: Request, request_id: &str) -> Result<Response, Problem> {
    let (principal, user, conn) = me(&req).await?;
    let org = principal.org_id.as_deref();
    let layers = gatehouse_notify::layers(&conn, org, &user).await?;
    let kinds: Vec<Value> = KINDS
        .iter()
        .map(|k| {
            let mut channels = Map::new();
            for s in prefs::resolve(k, &layers) {
                channels.insert(
                    s.channel.as_str().to_string(),
                    json!({"on": s.on, "source": s.source}),
                );
            }
            json!({"kind": k.name, "critical": k.critical, "channels": channels})
        })
        .collect();
    let body = json!({
        "org_id": org,
        "kinds": kinds,
        "sms_number": prefs::sms_number(&layers.user),
        "channels": channels().await,
    });
    Ok(response::json(200, &body, request_id))
}
