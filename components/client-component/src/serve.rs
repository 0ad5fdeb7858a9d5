//! The exports: each call reads the app's settings, then asks what it
//! must (the cached keys and verdicts, or Gatehouse).

use gatehouse_client::authz::{
    CheckRequest, FieldNames, FilterRequest, Placeholder, ResourceRef, SqlStyle, Subject,
};
use gatehouse_client::{AuthzClient, AuthzError, SpinTransport};
use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, Problem};
use gatehouse_trust::quota::{self as quotas, Decision as QuotaDecision};
use gatehouse_trust::{Settings, authenticate};
use http::Method;
use serde_json::{Value, json};

use crate::convert;
use crate::exports::gatehouse::client::types;
use crate::exports::gatehouse::client::{authz, quota, verify};

/// The variables this component reads are `gatehouse_*`.
const PREFIX: &str = "gatehouse";

struct Client;

async fn settings() -> Result<std::rc::Rc<Settings>, types::Problem> {
    Settings::load(PREFIX).await.map_err(convert::problem)
}

/// Gatehouse refused the app's own service key: the app is misconfigured.
fn misconfigured(what: &str, status: u16, permission: &str) -> types::Problem {
    eprintln!(
        "gatehouse client: {what} answered {status} (is gatehouse_service_key set, with {permission}?)"
    );
    convert::problem(Problem::new(ErrorCode::Internal).detail("the request could not be completed"))
}

fn refused(detail: &str) -> types::Problem {
    convert::problem(Problem::new(ErrorCode::Forbidden).detail(detail))
}

impl verify::Guest for Client {
    async fn verify(
        authorization: Option<String>,
        org: Option<String>,
    ) -> Result<types::Principal, types::Problem> {
        let settings = settings().await?;
        authenticate(authorization.as_deref(), org.as_deref(), &settings)
            .await
            .map(|p| convert::principal(&p))
            .map_err(convert::problem)
    }
}

/// The member a decision is for: a user acting in the app's own org (the
/// service key's), where the decision is made. Anyone else is refused
/// rather than decided for in an org they are not acting in.
async fn member(who: &types::Principal, settings: &Settings) -> Result<String, types::Problem> {
    if who.kind != types::SubjectKind::User {
        return Err(refused(
            "authorization decisions through gatehouse:client are made for members; this credential is not one",
        ));
    }
    let org = service_org(settings).await?;
    if who.org.as_deref() != Some(org.as_str()) {
        return Err(refused(
            "the caller acts in another organization than this app's",
        ));
    }
    Ok(who.id.clone())
}

thread_local! {
    /// The org of the service key this instance asked about, by the key's
    /// cache digest.
    static SERVICE_ORG: std::cell::RefCell<Option<(String, String)>> =
        const { std::cell::RefCell::new(None) };
}

/// The org the app's service key acts in, asked of Gatehouse once per
/// instance.
async fn service_org(settings: &Settings) -> Result<String, types::Problem> {
    let key = authz_key(settings)?;
    let digest = gatehouse_trust::cache::key("service", &[&settings.gatehouse_url, key]);
    let known = SERVICE_ORG.with(|s| {
        s.borrow()
            .as_ref()
            .filter(|(d, _)| *d == digest)
            .map(|(_, org)| org.clone())
    });
    if let Some(org) = known {
        return Ok(org);
    }
    let what = "GET /v1/auth/whoami";
    let answer = gatehouse_trust::gatehouse::call(
        Method::GET,
        &settings.url("/v1/auth/whoami"),
        Some(key),
        &[],
        None,
        what,
    )
    .await
    .map_err(convert::problem)?;
    if answer.status != 200 {
        return Err(misconfigured(what, answer.status, "a valid key"));
    }
    let me: Principal = serde_json::from_slice(&answer.body)
        .map_err(|_| convert::problem(gatehouse_trust::gatehouse::unavailable(what)))?;
    let org = me
        .org_id
        .ok_or_else(|| misconfigured(what, answer.status, "an org"))?;
    SERVICE_ORG.with(|s| *s.borrow_mut() = Some((digest, org.clone())));
    Ok(org)
}

/// The app's service key, which authorization calls need.
fn authz_key(settings: &Settings) -> Result<&str, types::Problem> {
    settings
        .service_key
        .as_deref()
        .ok_or_else(|| misconfigured("an authorization call", 0, "authz:check"))
}

/// The authz client and the service key it asks with.
fn authz_client(
    settings: &Settings,
) -> Result<(AuthzClient<SpinTransport>, String), types::Problem> {
    let key = authz_key(settings)?.to_string();
    Ok((
        AuthzClient::new(&settings.gatehouse_url, SpinTransport),
        key,
    ))
}

fn authz_problem(error: AuthzError, what: &str) -> types::Problem {
    match error {
        AuthzError::Problem(p) if matches!(p.status, 401 | 403) => {
            misconfigured(what, p.status, "authz:check")
        }
        AuthzError::Problem(p) => convert::from_client(p),
        AuthzError::Transport(e) => {
            eprintln!("gatehouse client: {what}: {e}");
            convert::problem(gatehouse_trust::gatehouse::unavailable(what))
        }
        AuthzError::InvalidResponse(why) => {
            eprintln!("gatehouse client: {what}: {why}");
            convert::problem(gatehouse_trust::gatehouse::unavailable(what))
        }
    }
}

impl authz::Guest for Client {
    async fn check(
        who: types::Principal,
        policy: String,
        target: authz::ResourceRef,
    ) -> Result<authz::Decision, types::Problem> {
        let settings = settings().await?;
        let user = member(&who, &settings).await?;
        let (client, key) = authz_client(&settings)?;
        let request = CheckRequest {
            policy,
            resource: ResourceRef {
                service: target.service,
                collection: target.collection,
                id: target.id,
            },
            subject: Some(Subject::User { id: user }),
            version: None,
        };
        let d = client
            .check(&key, &request)
            .await
            .map_err(|e| authz_problem(e, "POST /v1/authz/check"))?;
        Ok(authz::Decision {
            allowed: d.allowed,
            reason: d.reason.as_str().to_string(),
            detail: d.detail,
            policy: format!("{}:{}", d.policy.name, d.policy.action),
            version: d.policy.version,
        })
    }

    async fn filter(
        who: types::Principal,
        request: authz::FilterRequest,
    ) -> Result<authz::DataFilter, types::Problem> {
        let settings = settings().await?;
        let user = member(&who, &settings).await?;
        let (client, key) = authz_client(&settings)?;
        let placeholder = request.placeholder.map(|p| match p {
            authz::Placeholder::Question => Placeholder::Question,
            authz::Placeholder::QuestionNumbered => Placeholder::QuestionNumbered,
            authz::Placeholder::Dollar => Placeholder::Dollar,
        });
        let sql = match (placeholder, request.first_parameter) {
            (None, None) => None,
            (placeholder, first) => Some(SqlStyle {
                placeholder: placeholder.unwrap_or(Placeholder::Question),
                first: first.unwrap_or(1),
            }),
        };
        let asked = FilterRequest {
            policy: request.policy,
            service: request.service,
            collection: request.collection,
            subject: Some(Subject::User { id: user }),
            version: None,
            fields: request.columns.map(|c| FieldNames {
                id: c.id,
                owner_user: c.owner_user,
                owner_team: c.owner_team,
                org: c.org,
            }),
            sql,
        };
        let answer = client
            .filter(&key, &asked)
            .await
            .map_err(|e| authz_problem(e, "POST /v1/authz/filter"))?;
        Ok(authz::DataFilter {
            policy: format!("{}:{}", answer.policy.name, answer.policy.action),
            version: answer.policy.version,
            service: answer.service,
            collection: answer.collection,
            tree: serde_json::to_string(&answer.filter).unwrap_or_default(),
            mongo: answer.mongo.to_string(),
            sql: authz::SqlCondition {
                condition: answer.sql.condition,
                params: answer.sql.params,
            },
        })
    }
}

/// A quota route's answer: the decision on 200, Gatehouse's problem
/// otherwise (its refusing the service key is the app misconfigured).
async fn ask_quota(
    path: &str,
    body: &Value,
    idempotency_key: Option<&str>,
) -> Result<Value, types::Problem> {
    let settings = settings().await?;
    let answer = quotas::post(path, body, idempotency_key, &settings)
        .await
        .map_err(convert::problem)?;
    match answer.status {
        200 => serde_json::from_slice(&answer.body)
            .map_err(|_| convert::problem(gatehouse_trust::gatehouse::unavailable(path))),
        401 | 403 => Err(misconfigured(path, answer.status, "quotas:consume")),
        status => Err(convert::answered(
            status,
            &answer.body,
            answer.retry_after.as_deref(),
        )),
    }
}

fn usage_body(who: &types::Principal, metered: quota::Usage) -> Result<Value, types::Problem> {
    let subject =
        convert::quota_subject(who).ok_or_else(|| convert::problem(quotas::no_subject()))?;
    let mut body =
        json!({"subject": subject, "meter": metered.meter, "amount": metered.amount.unwrap_or(1)});
    if let Some(t) = metered.item_type {
        body["item_type"] = json!(t);
    }
    if let Some(i) = metered.item_id {
        body["item_id"] = json!(i);
    }
    Ok(body)
}

fn decision(answer: Value) -> Result<quota::Decision, types::Problem> {
    let d: QuotaDecision = serde_json::from_value(answer).map_err(|_| {
        convert::problem(gatehouse_trust::gatehouse::unavailable("a quota decision"))
    })?;
    Ok(quota::Decision {
        allowed: d.allowed,
        remaining: convert::remaining(d.remaining.as_ref()),
        reset_at: d.reset_at,
        blocking: convert::blocking(d.blocking.as_ref()),
        reservation: d.reservation_id,
        expires_at: d.expires_at,
    })
}

/// `POST /v1/quotas/reservations/{id}/<step>`.
async fn finish(reservation: &str, step: &str, body: Value) -> Result<(), types::Problem> {
    if !convert::reservation_id(reservation) {
        return Err(convert::problem(
            Problem::not_found().detail("no such reservation"),
        ));
    }
    let path = format!("/v1/quotas/reservations/{reservation}/{step}");
    ask_quota(&path, &body, None).await.map(|_| ())
}

impl quota::Guest for Client {
    async fn consume(
        who: types::Principal,
        metered: quota::Usage,
        idempotency_key: Option<String>,
    ) -> Result<quota::Decision, types::Problem> {
        let body = usage_body(&who, metered)?;
        // Gatehouse keeps keys per caller, and the caller here is always the
        // app's service key: the key is made the subject's own.
        let scoped = idempotency_key.map(|key| {
            gatehouse_trust::cache::key("idempotency", &[&body["subject"].to_string(), &key])
        });
        decision(ask_quota("/v1/quotas/consume", &body, scoped.as_deref()).await?)
    }

    async fn reserve(
        who: types::Principal,
        metered: quota::Usage,
        ttl_seconds: Option<u32>,
    ) -> Result<quota::Decision, types::Problem> {
        let mut body = usage_body(&who, metered)?;
        if let Some(ttl) = ttl_seconds {
            body["ttl_seconds"] = json!(ttl);
        }
        decision(ask_quota("/v1/quotas/reserve", &body, None).await?)
    }

    async fn commit(reservation: String, actual: u64) -> Result<(), types::Problem> {
        finish(&reservation, "commit", json!({"amount": actual})).await
    }

    async fn release(reservation: String) -> Result<(), types::Problem> {
        finish(&reservation, "release", json!({})).await
    }
}

crate::export!(Client with_types_in crate);
