//! `POST /v1/keys/verify`: the hot path. Every outcome but a malformed
//! request is a `200` with `valid` and a `code`; a key of another org, or
//! one the caller may not know of, answers exactly like one that does not
//! exist.

use gatehouse_auth::apikey::{self, Code, RateLimit};
use gatehouse_auth::db;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;

use crate::model::Access;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verify {
    key: String,
}

impl Validate for Verify {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if (1..=512).contains(&self.key.len()) {
            Ok(())
        } else {
            Err(vec![FieldError::new(
                "/key",
                "invalid_length",
                "key must be 1 to 512 characters",
            )])
        }
    }
}

#[derive(Serialize, Default)]
struct Verdict {
    valid: bool,
    code: Option<Code>,
    key_id: Option<String>,
    name: Option<String>,
    owner: Option<String>,
    org: Option<String>,
    roles: Vec<String>,
    permissions: Vec<String>,
    remaining: Option<i64>,
    ratelimit: Option<RateLimit>,
    expires_at: Option<i64>,
    metadata: Option<serde_json::Value>,
}

/// `POST /v1/keys/verify`.
pub async fn verify(req: Request, request_id: &str) -> Result<Response, Problem> {
    let access = Access::of(gatehouse_auth::authenticate(&req).await?)?;
    if !access.may_verify() {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("verifying keys takes the keys:verify permission"));
    }
    let body: Verify = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let conn = db::Lazy::new();
    let org = access.principal.org_id.as_deref().unwrap_or_default();
    let verification = apikey::verify_in_org(&conn, &body.key, org, unix_now()).await?;
    let verdict = match (&verification.key, verification.code) {
        (Some(key), code) => Verdict {
            valid: code == Code::Valid,
            code: Some(code),
            key_id: Some(key.key_id.clone()),
            name: Some(key.name.clone()),
            owner: Some(key.owner_user_id.clone()),
            org: Some(key.org_id.clone()),
            roles: verification.grants.roles.clone(),
            permissions: verification.grants.permissions.clone(),
            remaining: verification.remaining,
            ratelimit: verification.ratelimit,
            expires_at: key.expires_at,
            metadata: key.metadata.clone(),
        },
        (None, code) => Verdict {
            code: Some(code),
            ..Verdict::default()
        },
    };
    Ok(response::json(200, &verdict, request_id))
}
