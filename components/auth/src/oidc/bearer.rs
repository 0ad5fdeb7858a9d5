//! Bearer tokens of the orgs' providers: the provider a token belongs to,
//! its verification against the provider's keys, and the principal it
//! stands for.

use super::{NoProvider, Provider, choose, keys, token_kind};
use crate::db;
use crate::jwt::LEEWAY_SECONDS;
use gatehouse_http::principal::{Credential, Principal, Subject};
use gatehouse_http::{ErrorCode, Problem, idempotency::unix_now};
use serde_json::{Map, Value};
use spin_sdk::sqlite::{Connection, RowResult};
use tokens_core::Expectations;

/// A provider from the first columns of a row that starts with
/// [`PROVIDER_COLUMNS`].
pub fn provider_from(row: &RowResult) -> Provider {
    let list = |i: usize| serde_json::from_str(&db::get_text(row, i)).unwrap_or_default();
    Provider {
        provider_id: db::get_text(row, 0),
        org_id: db::get_text(row, 1),
        name: db::get_text(row, 2),
        issuer: db::get_text(row, 3),
        client_id: db::get_text(row, 4),
        audiences: list(5),
        allowed_azp: list(6),
        tenant_id: db::get_opt_text(row, 7),
        role_claim: db::get_text(row, 8),
        role_map: serde_json::from_str(&db::get_text(row, 9)).unwrap_or_default(),
        require_at_jwt_typ: db::get_int(row, 10).unwrap_or_default() != 0,
    }
}

/// The columns [`provider_from`] reads, for `SELECT … FROM oidc_providers`.
pub const PROVIDER_COLUMNS: &str = "provider_id, org_id, name, issuer, client_id, audiences, allowed_azp, tenant_id, role_claim, role_map, require_at_jwt_typ";

/// Every org's providers for one issuer. Deliberately across orgs: the
/// token says nothing else about whose it is until one is chosen.
async fn providers_of_issuer(conn: &Connection, issuer: &str) -> Result<Vec<Provider>, Problem> {
    let rows = db::query(
        conn,
        &format!(
            "SELECT {PROVIDER_COLUMNS} FROM oidc_providers WHERE issuer = ? ORDER BY created_at"
        ),
        vec![db::text(issuer)],
    )
    .await?;
    Ok(rows.iter().map(provider_from).collect())
}

fn refused(detail: &str) -> Problem {
    Problem::new(ErrorCode::Unauthenticated)
        .detail(detail.to_string())
        .header("www-authenticate", "Bearer error=\"invalid_token\"")
}

/// A bearer JWT from one of the orgs' providers, if its issuer is one;
/// `Ok(None)` when no provider has that issuer. `unverified` are the
/// token's claims before any check (they pick the provider); `org` is
/// the org id `X-Org` names, if any.
pub async fn authenticate(
    conn: &Connection,
    token: &str,
    unverified: &Map<String, Value>,
    org: Option<&str>,
) -> Result<Option<Principal>, Problem> {
    let Some(issuer) = unverified.get("iss").and_then(Value::as_str) else {
        return Ok(None);
    };
    let candidates = providers_of_issuer(conn, issuer).await?;
    if candidates.is_empty() {
        return Ok(None);
    }
    // A token that X-Org's org does not take is still checked against
    // the provider that does take it, so that a valid token for another
    // org answers as any such token does (404), not as a bad one.
    let chosen = match choose(&candidates, unverified, org) {
        Err(NoProvider::None) if org.is_some() => choose(&candidates, unverified, None),
        other => other,
    };
    let provider = match chosen {
        Ok(p) => p,
        Err(NoProvider::None) => {
            eprintln!("oidc: no provider of {issuer} takes the token's audience, party or tenant");
            return Err(refused("the credentials are invalid or expired"));
        }
        Err(NoProvider::Ambiguous) => {
            return Err(refused(
                "several organizations accept tokens of this provider: name one with X-Org",
            ));
        }
    };
    let kid = tokens_core::key_id(token).unwrap_or_default();
    let keys = keys(&provider.issuer, &kid).await?;
    let audiences = provider.bearer_audiences();
    let expect = Expectations {
        issuer: &provider.issuer,
        audiences: &audiences,
        now: unix_now(),
        leeway: LEEWAY_SECONDS,
    };
    let claims = tokens_core::verify(token, &keys, &expect).map_err(|why| {
        eprintln!("oidc: token of {issuer} refused: {why:?}");
        refused("the credentials are invalid or expired")
    })?;
    // The header is the signed one now: its `typ` and the claims say
    // whether this is an access token at all.
    let typ = token_kind::header_type(token);
    let kind = token_kind::kind_for_client(typ.as_deref(), &claims, &provider.client_id);
    if let Some(why) = token_kind::refusal(kind, provider.require_at_jwt_typ) {
        eprintln!("oidc: token of {issuer} refused as a bearer credential: {kind:?}");
        return Err(refused(why));
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| refused("the token names no subject"))?;
    // A subject linked to a member is that member, as a session would
    // be; any other subject (an app, a user never signed in through
    // Gatehouse) holds only the roles its claims map to.
    let linked = db::query(
        conn,
        "SELECT i.user_id FROM oidc_identities i JOIN users u ON u.id = i.user_id
         WHERE i.provider_id = ? AND i.subject = ? AND u.status = 'active'",
        vec![db::text(&provider.provider_id), db::text(sub)],
    )
    .await?;
    if let Some(row) = linked.first() {
        let user_id = db::get_text(row, 0);
        let memberships = crate::session::memberships(conn, &user_id).await?;
        if let Some(membership) = memberships.iter().find(|m| m.org_id == provider.org_id) {
            return Ok(Some(crate::membership::user_principal(
                &user_id,
                Some(membership),
                Credential::Jwt,
            )));
        }
    }
    let grants =
        crate::access::role_grants_by_name(conn, &provider.org_id, &provider.mapped_roles(&claims))
            .await?;
    Ok(Some(Principal {
        subject: Subject::External {
            provider: provider.name.clone(),
            sub: sub.to_string(),
        },
        org_id: Some(provider.org_id.clone()),
        org_role: None,
        team_ids: Vec::new(),
        roles: grants.roles,
        permissions: grants.permissions,
        acting_as: None,
        credential: Credential::Jwt,
    }))
}
