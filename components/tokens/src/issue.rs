//! `POST /v1/tokens`: a session or an API key exchanged for a short-lived
//! JWT that services verify offline against JWKS. The caller may narrow
//! the token (an audience, fewer roles or permissions, a shorter life, the
//! client it is for as `azp`) but never widen it.

use gatehouse_auth::db;
use gatehouse_auth::jwt::{AUDIENCE, issuer};
use gatehouse_http::json::{self, Validate};
use gatehouse_http::principal::{Credential, Subject};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spin_sdk::http::Request;

use crate::signing::{current, max_ttl};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Exchange {
    /// Audiences; `gatehouse` (Gatehouse's own routes) when absent.
    #[serde(default)]
    audience: Vec<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    ttl_seconds: Option<i64>,
    /// The client the token is for (`azp`).
    #[serde(default)]
    client_id: Option<String>,
}

fn visible(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

impl Validate for Exchange {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.audience.len() > 10 || self.audience.iter().any(|a| !visible(a, 200)) {
            errors.push(FieldError::new(
                "/audience",
                "invalid",
                "audience must be 1 to 10 names of 1 to 200 visible characters",
            ));
        }
        if self.ttl_seconds.is_some_and(|t| t < 1) {
            errors.push(FieldError::new(
                "/ttl_seconds",
                "invalid_range",
                "ttl_seconds must be at least 1",
            ));
        }
        if self.client_id.as_deref().is_some_and(|c| !visible(c, 200)) {
            errors.push(FieldError::new(
                "/client_id",
                "invalid",
                "client_id must be 1 to 200 visible characters",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Serialize)]
struct Issued {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    kid: String,
}

fn wider(what: &str, extra: &[String]) -> Problem {
    Problem::new(ErrorCode::Forbidden).detail(format!(
        "a token may narrow the caller's {what}, never widen them: not held: {}",
        extra.join(", ")
    ))
}

/// Keeps `asked` when every item is in `held`; 403 naming the others.
fn narrowed(
    what: &str,
    asked: Option<Vec<String>>,
    held: &[String],
) -> Result<Vec<String>, Problem> {
    let Some(asked) = asked else {
        return Ok(held.to_vec());
    };
    let extra: Vec<String> = asked
        .iter()
        .filter(|a| !held.contains(a))
        .cloned()
        .collect();
    if extra.is_empty() {
        Ok(asked)
    } else {
        Err(wider(what, &extra))
    }
}

/// `POST /v1/tokens`.
pub async fn exchange(req: Request, request_id: &str) -> Result<Response, Problem> {
    let principal = gatehouse_auth::authenticate(&req).await?;
    if principal.credential == Credential::Jwt {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("exchange a session or an API key; a token cannot mint tokens"));
    }
    let body: Exchange = if req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v == "0")
    {
        Exchange::default()
    } else {
        json::read_json(req, json::DEFAULT_LIMIT).await?
    };
    let roles = narrowed("roles", body.roles, &principal.roles)?;
    let permissions = narrowed("permissions", body.permissions, &principal.permissions)?;
    let max = max_ttl().await;
    let ttl = body.ttl_seconds.map_or(max, |t| t.min(max));
    let now = unix_now();
    let conn = db::open().await?;
    let (kid, key) = current(&conn, now).await?;
    let mut claims = Map::new();
    let mut put = |name: &str, value: Value| {
        claims.insert(name.to_string(), value);
    };
    put("iss", Value::from(issuer().await));
    let (sub, owner) = match &principal.subject {
        Subject::User { id } => (id.clone(), None),
        Subject::ApiKey { id, owner_user_id } => (id.clone(), owner_user_id.clone()),
        Subject::Service { name } => (name.clone(), None),
        Subject::External { provider, sub } => (format!("{provider}:{sub}"), None),
    };
    put("sub", Value::from(sub));
    if let Some(owner) = owner {
        put("owner", Value::from(owner));
    }
    let audience = if body.audience.is_empty() {
        vec![AUDIENCE.to_string()]
    } else {
        body.audience
    };
    put("aud", Value::from(audience));
    put("iat", Value::from(now));
    put("nbf", Value::from(now));
    put("exp", Value::from(now + ttl));
    put("jti", Value::from(db::new_id("")));
    if let Subject::User { id } = &principal.subject {
        // The user's token generation: signing out everywhere, a new
        // password or deactivation moves it on, and ends this token on
        // Gatehouse's routes.
        let standing = gatehouse_auth::authority::standing(&conn, id, now)
            .await?
            .ok_or_else(Problem::internal)?;
        put(
            gatehouse_auth::authority::GENERATION_CLAIM,
            Value::from(standing.generation),
        );
    }
    if let Some(org) = &principal.org_id {
        put("org", Value::from(org.clone()));
    }
    if let Some(role) = principal.org_role {
        // `admin` or `member`, as the role serializes everywhere.
        put("org_role", serde_json::json!(role));
    }
    if !principal.team_ids.is_empty() {
        put("teams", Value::from(principal.team_ids.clone()));
    }
    put("roles", Value::from(roles));
    put("permissions", Value::from(permissions));
    if let Some(client) = body.client_id {
        put("azp", Value::from(client));
    }
    // A token issued while an admin acts as the caller names both (RFC
    // 8693 `act`); every request made with it is audited.
    if let Some(acting) = &principal.acting_as {
        put(
            "act",
            serde_json::json!({ "sub": acting.impersonator_user_id }),
        );
    }
    let token = tokens_core::sign(&key, &kid, &claims);
    let issued = Issued {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl,
        kid,
    };
    Ok(response::json(200, &issued, request_id))
}
