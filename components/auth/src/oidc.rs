//! Tokens of an org's own OpenID Connect providers (Auth0, Okta, Entra,
//! any conforming issuer): which configured provider a token belongs to,
//! what it must say, and the roles its claims map to. The provider's
//! discovery document and JWK Set are fetched over outbound HTTP and kept
//! in the key-value store; a token naming a `kid` the cached set lacks
//! triggers a refetch, at most once per [`JWKS_REFETCH_FLOOR_SECONDS`].
//!
//! A provider is told apart from others with the same issuer (one Auth0
//! tenant serving several apps, or several orgs trusting one tenant) by
//! the token's audience and authorized party (`azp`, or `client_id`,
//! `cid`, `appid` where providers name it so), and by its `tid` for a
//! provider bound to one Entra tenant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The fewest seconds between two fetches of one JWK Set when tokens name
/// keys it lacks: unknown `kid`s cannot make Gatehouse hammer a provider.
pub const JWKS_REFETCH_FLOOR_SECONDS: i64 = 60;
/// How long a fetched JWK Set or discovery document is used before it is
/// fetched again even when every `kid` is known (keys get retired).
pub const METADATA_MAX_AGE_SECONDS: i64 = 3600;

/// An org's provider, as the bearer path and the login flow need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// `idp_…`.
    pub provider_id: String,
    /// The org that configured it.
    pub org_id: String,
    /// Its name in the org.
    pub name: String,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The client Gatehouse signs users in as.
    pub client_id: String,
    /// Audiences a bearer token may carry (an API identifier); empty means
    /// the provider's tokens are not accepted as bearer credentials (an ID
    /// token, whose audience is the client id, never is).
    pub audiences: Vec<String>,
    /// Apps whose bearer tokens are accepted; empty means any.
    pub allowed_azp: Vec<String>,
    /// The Entra tenant (`tid`) tokens must come from, if bound to one.
    pub tenant_id: Option<String>,
    /// The claim holding the user's groups or roles at the provider.
    pub role_claim: String,
    /// Provider group or role → role name in the org.
    pub role_map: BTreeMap<String, String>,
}

impl Provider {
    /// The audiences bearer tokens must name one of.
    pub fn bearer_audiences(&self) -> Vec<&str> {
        self.audiences.iter().map(String::as_str).collect()
    }

    /// Whether the provider names the token's app or tenant itself, rather
    /// than accepting any app of the issuer.
    fn names(&self, claims: &Map<String, Value>) -> bool {
        let party = authorized_party(claims);
        self.tenant_id.is_some() || party.is_some_and(|p| self.allowed_azp.iter().any(|a| a == p))
    }

    /// Whether a token's unverified claims are meant for this provider's
    /// bearer path: audience, authorized party and tenant. (The signature,
    /// issuer and times are checked after the key is found.)
    pub fn accepts_bearer(&self, claims: &Map<String, Value>) -> bool {
        let audiences = self.bearer_audiences();
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => audiences.contains(&a.as_str()),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| audiences.contains(&a)),
            _ => false,
        };
        let party_ok = self.allowed_azp.is_empty()
            || authorized_party(claims).is_some_and(|p| self.allowed_azp.iter().any(|a| a == p));
        audience_ok && party_ok && self.tenant_ok(claims)
    }

    /// Whether the token's `tid` is the bound tenant (when bound).
    pub fn tenant_ok(&self, claims: &Map<String, Value>) -> bool {
        match &self.tenant_id {
            Some(tid) => claims.get("tid").and_then(Value::as_str) == Some(tid.as_str()),
            None => true,
        }
    }

    /// The org roles the claims map to, sorted and unique. The role claim
    /// may hold a string or a list of strings; unmapped values are ignored.
    pub fn mapped_roles(&self, claims: &Map<String, Value>) -> Vec<String> {
        let values: Vec<&str> = match claims.get(&self.role_claim) {
            Some(Value::String(v)) => vec![v.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut roles: Vec<String> = values
            .iter()
            .filter_map(|v| self.role_map.get(*v).cloned())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }
}

/// The app a token was issued to: OIDC's `azp` (Auth0, Entra v2), RFC
/// 9068's `client_id`, Okta's `cid`, Entra v1's `appid`.
pub fn authorized_party(claims: &Map<String, Value>) -> Option<&str> {
    ["azp", "client_id", "cid", "appid"]
        .iter()
        .find_map(|name| claims.get(*name).and_then(Value::as_str))
}

/// Why no single provider takes a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoProvider {
    /// None of the issuer's providers accepts its audience, party or tenant.
    None,
    /// Several orgs' providers accept it: the caller must name the org.
    Ambiguous,
}

/// The one provider among `candidates` (those of the token's issuer) that
/// takes the token, restricted to the org `org` names when given.
pub fn choose<'a>(
    candidates: &'a [Provider],
    claims: &Map<String, Value>,
    org: Option<&str>,
) -> Result<&'a Provider, NoProvider> {
    let taking: Vec<&Provider> = candidates
        .iter()
        .filter(|p| org.is_none_or(|o| o == p.org_id))
        .filter(|p| p.accepts_bearer(claims))
        .collect();
    // A provider that names the token's app or tenant wins over those that
    // take any app of the issuer: another org cannot make an org's tokens
    // ambiguous by trusting the same tenant loosely.
    let naming: Vec<&Provider> = taking.iter().copied().filter(|p| p.names(claims)).collect();
    let pool = if naming.is_empty() { taking } else { naming };
    match pool.as_slice() {
        [p] => Ok(p),
        [] => Err(NoProvider::None),
        _ => Err(NoProvider::Ambiguous),
    }
}

/// The endpoints of a provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Must equal the configured issuer exactly.
    pub issuer: String,
    /// Where users are sent to sign in.
    pub authorization_endpoint: String,
    /// Where codes are exchanged.
    pub token_endpoint: String,
    /// The provider's JWK Set.
    pub jwks_uri: String,
    /// The user-info endpoint, if any.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery
/// 1.0, section 4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Reads a discovery document, refusing one that names another issuer
/// (section 4.3) or lacks an endpoint.
pub fn parse_discovery(body: &[u8], expected_issuer: &str) -> Result<Discovery, String> {
    let doc: Discovery = serde_json::from_slice(body)
        .map_err(|e| format!("the discovery document is not usable: {e}"))?;
    if doc.issuer != expected_issuer {
        return Err(format!(
            "the discovery document names issuer {} instead of {expected_issuer}",
            doc.issuer
        ));
    }
    // Endpoints use the issuer's scheme: an https issuer never sends the
    // client secret or fetches keys in clear.
    let scheme = if expected_issuer.starts_with("https://") {
        "https://"
    } else {
        "http://"
    };
    for url in [
        &doc.authorization_endpoint,
        &doc.token_endpoint,
        &doc.jwks_uri,
    ] {
        if !url.starts_with(scheme) {
            return Err(format!("the discovery document has a bad endpoint: {url}"));
        }
    }
    Ok(doc)
}

/// The unverified claims of a JWT (to pick the issuer's keys).
pub fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A cached JWK Set, when it was fetched, and when a fetch was last tried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedKeys {
    /// The usable keys.
    pub keys: Vec<tokens_core::Jwk>,
    /// Unix seconds.
    pub fetched_at: i64,
    /// Unix seconds; a failed fetch counts too, so a provider that is down
    /// is not asked again before the floor has passed.
    #[serde(default)]
    pub attempted_at: i64,
}

impl CachedKeys {
    /// Whether the set must be fetched again for a token naming `kid`:
    /// when it is too old, or lacks `kid` — and, either way, no fetch was
    /// tried within the floor.
    pub fn needs_refetch(&self, kid: &str, now: i64) -> bool {
        let age = now - self.fetched_at;
        let wanted = age >= METADATA_MAX_AGE_SECONDS || !self.keys.iter().any(|k| k.kid == kid);
        wanted && now - self.attempted_at.max(self.fetched_at) >= JWKS_REFETCH_FLOOR_SECONDS
    }
}

#[cfg(target_arch = "wasm32")]
pub use store::{PROVIDER_COLUMNS, authenticate, discovery, keys, post_form, provider_from};

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{CachedKeys, Discovery, NoProvider, Provider, choose};
    use crate::db;
    use crate::jwt::LEEWAY_SECONDS;
    use bytes::Bytes;
    use gatehouse_http::principal::{Credential, Principal, Subject};
    use gatehouse_http::{ErrorCode, Problem, idempotency::unix_now};
    use http_body_util::{BodyExt, Limited};
    use serde_json::{Map, Value};
    use spin_sdk::http::FullBody;
    use spin_sdk::key_value::Store;
    use spin_sdk::sqlite::{Connection, RowResult};
    use tokens_core::Expectations;

    const MAX_BODY_BYTES: usize = 512 * 1024;

    fn unavailable(what: &str) -> Problem {
        Problem::new(ErrorCode::Unavailable).detail(format!(
            "the identity provider could not be reached ({what}); retry later"
        ))
    }

    async fn send(
        req: http::Request<FullBody<Bytes>>,
        what: &str,
    ) -> Result<(u16, Vec<u8>), Problem> {
        let mut req = req;
        req.extensions_mut()
            .insert(gatehouse_http::outbound::timeouts());
        let res = spin_sdk::http::send(req).await.map_err(|e| {
            eprintln!("oidc: {what} failed: {e:?}");
            unavailable(what)
        })?;
        let status = res.status().as_u16();
        let body = Limited::new(res.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|_| unavailable(what))?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    }

    /// `GET url` as JSON; a non-2xx answer or a body that is not JSON is
    /// the provider being unavailable.
    async fn get_json(url: &str, what: &str) -> Result<Vec<u8>, Problem> {
        let req = http::Request::get(url)
            .header("accept", "application/json")
            .body(FullBody::new(Bytes::new()))
            .map_err(|_| unavailable(what))?;
        let (status, body) = send(req, what).await?;
        if !(200..300).contains(&status) {
            eprintln!("oidc: {what} answered {status}");
            return Err(unavailable(what));
        }
        Ok(body)
    }

    /// `POST url` with a form body and optional basic credentials; the
    /// status and body, whatever the status.
    pub async fn post_form(
        url: &str,
        form: &str,
        basic: Option<&str>,
        what: &str,
    ) -> Result<(u16, Vec<u8>), Problem> {
        let mut builder = http::Request::post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        if let Some(credentials) = basic {
            builder = builder.header("authorization", format!("Basic {credentials}"));
        }
        let req = builder
            .body(FullBody::new(Bytes::from(form.to_string())))
            .map_err(|_| unavailable(what))?;
        send(req, what).await
    }

    fn cache_key(kind: &str, url: &str) -> String {
        format!("oidc:{kind}:{}", identity_core::token::digest(url))
    }

    async fn cached<T: serde::de::DeserializeOwned>(store: Option<&Store>, key: &str) -> Option<T> {
        let bytes = store?.get(key).await.ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    async fn put<T: serde::Serialize>(store: Option<&Store>, key: &str, value: &T) {
        if let (Some(store), Ok(bytes)) = (store, serde_json::to_vec(value)) {
            let _ = store.set(key, &bytes).await;
        }
    }

    /// The provider's discovery document, from the cache while fresh.
    pub async fn discovery(issuer: &str) -> Result<Discovery, Problem> {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Entry {
            doc: Discovery,
            fetched_at: i64,
        }
        let now = unix_now();
        let store = Store::open_default().await.ok();
        let key = cache_key("discovery", issuer);
        if let Some(entry) = cached::<Entry>(store.as_ref(), &key).await
            && now - entry.fetched_at < super::METADATA_MAX_AGE_SECONDS
        {
            return Ok(entry.doc);
        }
        let body = get_json(&super::discovery_url(issuer), "discovery").await?;
        let doc = super::parse_discovery(&body, issuer).map_err(|why| {
            eprintln!("oidc: {why}");
            unavailable("discovery")
        })?;
        put(
            store.as_ref(),
            &key,
            &Entry {
                doc: doc.clone(),
                fetched_at: now,
            },
        )
        .await;
        Ok(doc)
    }

    /// The issuer's keys for a token naming `kid`: the cached set (one
    /// key-value read), or a fresh one from the `jwks_uri` its discovery
    /// document names when the cached set is stale or lacks `kid` (at most
    /// once a floor period).
    pub async fn keys(issuer: &str, kid: &str) -> Result<Vec<tokens_core::Jwk>, Problem> {
        let now = unix_now();
        let store = Store::open_default().await.ok();
        let key = cache_key("keys", issuer);
        let known = cached::<CachedKeys>(store.as_ref(), &key).await;
        if let Some(set) = &known
            && !set.needs_refetch(kid, now)
        {
            return Ok(set.keys.clone());
        }
        let fetched = match discovery(issuer).await {
            Ok(doc) => get_json(&doc.jwks_uri, "jwks").await,
            Err(problem) => Err(problem),
        };
        let fresh = fetched.and_then(|body| {
            serde_json::from_slice::<Value>(&body).map_err(|_| unavailable("jwks"))
        });
        let value = match fresh {
            Ok(value) => value,
            Err(problem) => {
                // An unreachable provider leaves the keys it last published,
                // and is not asked again before the floor has passed.
                let keep = CachedKeys {
                    keys: known.as_ref().map(|k| k.keys.clone()).unwrap_or_default(),
                    fetched_at: known.as_ref().map_or(0, |k| k.fetched_at),
                    attempted_at: now,
                };
                put(store.as_ref(), &key, &keep).await;
                return match known {
                    Some(k) => Ok(k.keys),
                    None => Err(problem),
                };
            }
        };
        let fresh = CachedKeys {
            keys: tokens_core::key_set(&value),
            fetched_at: now,
            attempted_at: now,
        };
        put(store.as_ref(), &key, &fresh).await;
        Ok(fresh.keys)
    }

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
        }
    }

    /// The columns [`provider_from`] reads, for `SELECT … FROM oidc_providers`.
    pub const PROVIDER_COLUMNS: &str = "provider_id, org_id, name, issuer, client_id, audiences, allowed_azp, tenant_id, role_claim, role_map";

    /// Every org's providers for one issuer. Deliberately across orgs: the
    /// token says nothing else about whose it is until one is chosen.
    async fn providers_of_issuer(
        conn: &Connection,
        issuer: &str,
    ) -> Result<Vec<Provider>, Problem> {
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
                eprintln!(
                    "oidc: no provider of {issuer} takes the token's audience, party or tenant"
                );
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
        let grants = crate::access::role_grants_by_name(
            conn,
            &provider.org_id,
            &provider.mapped_roles(&claims),
        )
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(org: &str, azp: &[&str]) -> Provider {
        Provider {
            provider_id: format!("idp_{org}"),
            org_id: org.into(),
            name: "auth0".into(),
            issuer: "https://acme.eu.auth0.com/".into(),
            client_id: "web-app".into(),
            audiences: vec!["https://api.acme.test".into()],
            allowed_azp: azp.iter().map(|s| s.to_string()).collect(),
            tenant_id: None,
            role_claim: "https://acme.test/roles".into(),
            role_map: BTreeMap::from([
                ("Engineering".into(), "engineer".into()),
                ("Admins".into(), "org-admin".into()),
            ]),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn one_auth0_tenant_serving_several_apps_is_told_apart_by_azp() {
        let providers = [provider("org_a", &["app-a"]), provider("org_b", &["app-b"])];
        let of_b = claims(
            serde_json::json!({"aud": ["https://api.acme.test", "https://acme.eu.auth0.com/userinfo"], "azp": "app-b"}),
        );
        assert_eq!(
            choose(&providers, &of_b, None).map(|p| p.org_id.as_str()),
            Ok("org_b")
        );
        // X-Org naming the other org finds nothing.
        assert_eq!(
            choose(&providers, &of_b, Some("org_a")),
            Err(NoProvider::None)
        );
        let unknown_app =
            claims(serde_json::json!({"aud": "https://api.acme.test", "azp": "app-c"}));
        assert_eq!(
            choose(&providers, &unknown_app, None),
            Err(NoProvider::None)
        );
        let wrong_audience =
            claims(serde_json::json!({"aud": "https://other.test", "azp": "app-a"}));
        assert_eq!(
            choose(&providers, &wrong_audience, None),
            Err(NoProvider::None)
        );
    }

    #[test]
    fn a_provider_naming_the_app_wins_over_one_taking_any_app() {
        let providers = [provider("org_a", &["app-a"]), provider("org_b", &[])];
        let token = claims(serde_json::json!({"aud": "https://api.acme.test", "azp": "app-a"}));
        assert_eq!(
            choose(&providers, &token, None).map(|p| p.org_id.as_str()),
            Ok("org_a")
        );
        // Without audiences a provider takes no bearer token at all (an ID
        // token's audience is the client id).
        let mut no_api = provider("org_a", &[]);
        no_api.audiences.clear();
        assert!(!no_api.accepts_bearer(&claims(serde_json::json!({"aud": "web-app"}))));
    }

    #[test]
    fn providers_accepting_any_app_are_ambiguous_without_an_org() {
        let providers = [provider("org_a", &[]), provider("org_b", &[])];
        let token = claims(serde_json::json!({"aud": "https://api.acme.test", "client_id": "x"}));
        assert_eq!(choose(&providers, &token, None), Err(NoProvider::Ambiguous));
        assert_eq!(
            choose(&providers, &token, Some("org_a")).map(|p| p.org_id.as_str()),
            Ok("org_a")
        );
    }

    #[test]
    fn the_party_is_read_from_the_claim_each_provider_uses() {
        for name in ["azp", "client_id", "cid", "appid"] {
            let mut map = Map::new();
            map.insert(name.into(), "app-a".into());
            assert_eq!(authorized_party(&map), Some("app-a"), "{name}");
        }
        assert_eq!(authorized_party(&Map::new()), None);
    }

    #[test]
    fn an_entra_provider_takes_only_its_tenant() {
        let mut entra = provider("org_a", &[]);
        entra.tenant_id = Some("9188040d-6c67-4c5b-b112-36a304b66dad".into());
        entra.audiences = vec!["web-app".into()];
        let ours = claims(
            serde_json::json!({"aud": "web-app", "tid": "9188040d-6c67-4c5b-b112-36a304b66dad"}),
        );
        let theirs = claims(
            serde_json::json!({"aud": "web-app", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47"}),
        );
        assert!(entra.accepts_bearer(&ours));
        assert!(!entra.accepts_bearer(&theirs));
        assert!(!entra.accepts_bearer(&claims(serde_json::json!({"aud": "web-app"}))));
    }

    #[test]
    fn claims_map_to_org_roles() {
        let p = provider("org_a", &[]);
        let list = claims(
            serde_json::json!({"https://acme.test/roles": ["Engineering", "Sales", "Admins", "Engineering"]}),
        );
        assert_eq!(p.mapped_roles(&list), vec!["engineer", "org-admin"]);
        let one = claims(serde_json::json!({"https://acme.test/roles": "Engineering"}));
        assert_eq!(p.mapped_roles(&one), vec!["engineer"]);
        assert!(
            p.mapped_roles(&claims(serde_json::json!({"roles": ["Admins"]})))
                .is_empty()
        );
    }

    #[test]
    fn discovery_must_name_the_configured_issuer() {
        let doc = serde_json::json!({
            "issuer": "https://idp.test", "authorization_endpoint": "https://idp.test/auth",
            "token_endpoint": "https://idp.test/token", "jwks_uri": "https://idp.test/jwks"
        });
        let bytes = doc.to_string().into_bytes();
        assert_eq!(
            parse_discovery(&bytes, "https://idp.test").map(|d| d.jwks_uri),
            Ok("https://idp.test/jwks".to_string())
        );
        assert!(parse_discovery(&bytes, "https://evil.test").is_err());
        let downgraded = doc
            .to_string()
            .replace("https://idp.test/token", "http://idp.test/token");
        assert!(parse_discovery(downgraded.as_bytes(), "https://idp.test").is_err());
        assert!(parse_discovery(b"{}", "https://idp.test").is_err());
        assert_eq!(
            discovery_url("https://idp.test/"),
            "https://idp.test/.well-known/openid-configuration"
        );
    }

    #[test]
    fn key_sets_are_refetched_for_unknown_kids_no_more_than_the_floor_allows() {
        let key = tokens_core::SigningKey::from_secret(tokens_core::Algorithm::EdDSA, &[1; 32])
            .map(|k| k.jwk())
            .unwrap_or_else(|_| unreachable!());
        let set = CachedKeys {
            keys: vec![key.clone()],
            fetched_at: 1000,
            attempted_at: 1000,
        };
        assert!(!set.needs_refetch(&key.kid, 1001));
        assert!(!set.needs_refetch("new-kid", 1000 + JWKS_REFETCH_FLOOR_SECONDS - 1));
        assert!(set.needs_refetch("new-kid", 1000 + JWKS_REFETCH_FLOOR_SECONDS));
        assert!(set.needs_refetch(&key.kid, 1000 + METADATA_MAX_AGE_SECONDS));
        // A failed fetch holds the next one off for the floor too.
        let failed = CachedKeys {
            keys: Vec::new(),
            fetched_at: 0,
            attempted_at: 5000,
        };
        assert!(!failed.needs_refetch("kid", 5000 + JWKS_REFETCH_FLOOR_SECONDS - 1));
        assert!(failed.needs_refetch("kid", 5000 + JWKS_REFETCH_FLOOR_SECONDS));
        assert!(unverified_claims("a.eyJpc3MiOiJ4In0.c").is_some_and(|c| c["iss"] == "x"));
        assert!(unverified_claims("a.!!.c").is_none());
    }
}
