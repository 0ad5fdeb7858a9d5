//! An org's provider as the bearer path and the sign-in need it, and the
//! choice of the one provider a bearer token belongs to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// the provider's tokens are not accepted as bearer credentials. An ID
    /// token never is, even when the client id is listed here (see
    /// [`super::token_kind`]).
    pub audiences: Vec<String>,
    /// Apps whose bearer tokens are accepted; empty means any.
    pub allowed_azp: Vec<String>,
    /// The Entra tenant (`tid`) tokens must come from, if bound to one.
    pub tenant_id: Option<String>,
    /// The claim holding the user's groups or roles at the provider.
    pub role_claim: String,
    /// Provider group or role → role name in the org.
    pub role_map: BTreeMap<String, String>,
    /// Whether bearer tokens must be typed `at+jwt` (RFC 9068); otherwise
    /// untyped tokens are taken unless they carry ID token claims.
    pub require_at_jwt_typ: bool,
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

    /// Whether the bearer audiences include the client id, the audience of
    /// the provider's ID tokens: then only the token's type and claims
    /// tell an access token from an ID token.
    pub fn audiences_include_client_id(&self) -> bool {
        self.audiences.contains(&self.client_id)
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
            require_at_jwt_typ: false,
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
    fn a_client_id_among_the_audiences_is_noticed() {
        let mut p = provider("org_a", &[]);
        assert!(!p.audiences_include_client_id());
        p.audiences.push(p.client_id.clone());
        assert!(p.audiences_include_client_id());
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
}
