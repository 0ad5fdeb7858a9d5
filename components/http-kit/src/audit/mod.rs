//! The audit trail of every mutation: each request to a route of
//! [`routes::ROUTES`] that the trail records leaves one row in
//! `audit_events` before its answer goes out, whatever the answer: who
//! (user, key, service, an org's identity provider's subject, the
//! operator, or nobody known), acting in which org, the action, the
//! resource, the request id, the client address, the status answered, the
//! body's field names and a digest of the resource as answered.
//!
//! Every component's handler runs inside [`serve`]; authentication and
//! the JSON body reader fill the request's [`Trail`]. The row is written
//! after the handler's own statements, in a statement of its own: a row
//! that cannot be written (the database failing just after the change was
//! kept) goes whole to the log instead, and the answer is not withheld,
//! since it may hold what is shown once (a new key, recovery codes).
//!
//! A record joins an org's trail only when the actor belongs to that org
//! ([`entry::OrgClaim`]); every other record (sign-ins, sign-ups, requests
//! refused for an org the caller is not in, operator routes, a deleted
//! org's deletion) is the deployment's, read by the operator.

pub mod entry;
pub mod routes;
pub mod trail;

pub use entry::Entry;
pub use trail::{Actor, Trail, note};

#[cfg(target_arch = "wasm32")]
pub use store::{purge, record, serve};

#[cfg(target_arch = "wasm32")]
mod store {
    use std::future::Future;

    use http_body_util::BodyExt;
    use spin_sdk::sqlite::{Connection, Value};

    use super::entry::Entry;
    use super::routes::find;
    use super::trail::Trail;
    use crate::{Problem, Response, response};

    /// What the trail keeps of the request itself.
    struct Seen {
        method: String,
        path: String,
        client_address: Option<String>,
    }

    fn text(value: impl Into<String>) -> Value {
        Value::Text(value.into())
    }

    fn opt_text(value: Option<impl Into<String>>) -> Value {
        value.map_or(Value::Null, text)
    }

    /// Serves `req` through `route`, recording it when its route is one
    /// the trail records.
    pub async fn serve<B, F, Fut>(mut req: http::Request<B>, request_id: &str, route: F) -> Response
    where
        F: FnOnce(http::Request<B>) -> Fut,
        Fut: Future<Output = Result<Response, Problem>>,
    {
        let matched = find(req.method().as_str(), req.uri().path());
        let Some(matched) = matched.filter(|m| m.action().is_some()) else {
            return response::answer(route(req).await, request_id);
        };
        let trail = Trail::default();
        req.extensions_mut().insert(trail.clone());
        let seen = Seen {
            method: req.method().as_str().to_string(),
            path: req.uri().path().chars().take(500).collect(),
            client_address: crate::client_address::of(&req).await,
        };
        let answer = response::answer(route(req).await, request_id);
        let (parts, body) = answer.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let Some(entry) = Entry::of(&matched, &trail.notes(), parts.status.as_u16(), &bytes) else {
            return http::Response::from_parts(parts, http_body_util::Full::new(bytes));
        };
        match write(&entry, &seen, Some(request_id)).await {
            Ok(()) => http::Response::from_parts(parts, http_body_util::Full::new(bytes)),
            Err(e) => {
                // The change is made and kept, and its answer may hold what
                // is shown once (a new key, recovery codes): it goes out, and
                // the record goes to the log whole, to be taken from there.
                eprintln!(
                    "audit: the record of {} could not be written ({e}); the record: {}",
                    entry.action,
                    serde_json::to_string(&entry).unwrap_or_default()
                );
                http::Response::from_parts(parts, http_body_util::Full::new(bytes))
            }
        }
    }

    /// Writes `entry`, made by a handler ([`Entry::by`]), for `req`, whose
    /// id is `request_id` when it is known.
    pub async fn record<B>(
        req: &http::Request<B>,
        entry: &Entry,
        request_id: Option<&str>,
    ) -> Result<(), Problem> {
        let seen = Seen {
            method: req.method().as_str().to_string(),
            path: req.uri().path().chars().take(500).collect(),
            client_address: crate::client_address::of(req).await,
        };
        write(entry, &seen, request_id).await.map_err(|e| {
            eprintln!(
                "audit: the record of {} could not be written: {e}",
                entry.action
            );
            Problem::internal()
        })
    }

    async fn write(entry: &Entry, seen: &Seen, request_id: Option<&str>) -> Result<(), String> {
        let conn = Connection::open_default()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| e.to_string())?;
        conn.execute(
            "INSERT INTO audit_events (event_id, org_id, occurred_at, action, actor_type, actor_id,
                 actor_user_id, subject_user_id, credential, resource_type, resource_id, method, path,
                 request_id, client_address, outcome, changed_fields, digest)
             VALUES (?1,
                 (SELECT o.org_id FROM orgs o
                   WHERE (o.org_id = ?2 OR o.handle = lower(?2))
                     AND (?3 IS NULL OR o.org_id = ?3)
                     AND (?4 IS NOT NULL OR ?3 IS NOT NULL)
                     AND (?4 IS NULL OR EXISTS (SELECT 1 FROM memberships m
                                                WHERE m.org_id = o.org_id AND m.user_id = ?4))),
                 ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            vec![
                text(format!("aud_{}", hex::encode(id))),
                opt_text(entry.org.reference.clone()),
                opt_text(entry.org.bound_to.clone()),
                opt_text(entry.org.member.clone()),
                Value::Integer(crate::idempotency::unix_now()),
                text(entry.action),
                text(entry.actor_type),
                opt_text(entry.actor_id.clone()),
                opt_text(entry.actor_user_id.clone()),
                opt_text(entry.subject_user_id.clone()),
                opt_text(entry.credential),
                text(entry.resource_type),
                opt_text(entry.resource_id.clone()),
                text(&seen.method),
                text(&seen.path),
                opt_text(request_id),
                opt_text(seen.client_address.clone()),
                entry.outcome.map_or(Value::Null, |s| Value::Integer(i64::from(s))),
                opt_text(entry.changed_fields.clone()),
                opt_text(entry.digest.clone()),
            ],
        )
        .await
        .map_err(|e| format!("{e:?}"))?
        .collect()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
    }

    /// Deletes records older than their retention: each org's
    /// `audit_retention_days`, and `deployment_days` for the deployment's
    /// own. At most `batch` rows a call; answers how many went.
    pub async fn purge(
        conn: &Connection,
        now: i64,
        deployment_days: i64,
        batch: i64,
    ) -> Result<u64, String> {
        let mut gone = 0;
        for statement in [
            "DELETE FROM audit_events WHERE rowid IN (
                 SELECT a.rowid FROM orgs o JOIN audit_events a ON a.org_id = o.org_id
                 WHERE a.occurred_at < ?1 - o.audit_retention_days * 86400 LIMIT ?3)",
            "DELETE FROM audit_events WHERE rowid IN (
                 SELECT rowid FROM audit_events
                 WHERE org_id IS NULL AND occurred_at < ?1 - ?2 * 86400 LIMIT ?3)",
        ] {
            conn.execute(
                statement,
                vec![
                    Value::Integer(now),
                    Value::Integer(deployment_days),
                    Value::Integer(batch),
                ],
            )
            .await
            .map_err(|e| format!("{e:?}"))?
            .collect()
            .await
            .map_err(|e| format!("{e:?}"))?;
            gone += conn.changes().await;
        }
        Ok(gone)
    }
}
