//! Which mutating routes the audit trail records, and under which action.
//!
//! One table for the whole deployment, so the record of a route does not
//! depend on which component serves it; a unit test holds it to the
//! OpenAPI document (every mutating operation is here, and nothing else
//! is). A route is either recorded under an action (`<resource>.<verb>`,
//! the resource type being what precedes the last dot), or left to a
//! ledger of its own: reads that take a body (checks, verification) and
//! data-plane writes whose rows are themselves the record (usage events,
//! quota consumption, webhook ingest).

/// What the trail does with one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Recorded under this action.
    Action(&'static str),
    /// Not recorded here; the reason, for the reader of the table.
    Elsewhere(&'static str),
}

/// A mutating route: its method, its path template (`{name}` matches
/// one segment) and its record.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The OpenAPI path template.
    pub template: &'static str,
    /// What the trail does with it.
    pub record: Record,
}

const fn action(method: &'static str, template: &'static str, name: &'static str) -> Route {
    Route {
        method,
        template,
        record: Record::Action(name),
    }
}

const fn elsewhere(method: &'static str, template: &'static str, why: &'static str) -> Route {
    Route {
        method,
        template,
        record: Record::Elsewhere(why),
    }
}

const READ: &str = "a read that takes a body";
const LEDGER: &str = "its own rows are the record";
const MCP_CALLS: &str = "MCP messages; the handler records each tools/call as tool.call";

/// Every mutating route of the deployment.
pub const ROUTES: &[Route] = &[
    // Accounts and authentication.
    action("POST", "/v1/auth/register", "user.register"),
    action("POST", "/v1/auth/verify-email", "user.verify_email"),
    action("POST", "/v1/auth/login", "auth.login"),
    action("POST", "/v1/auth/logout", "auth.logout"),
    action("POST", "/v1/auth/mfa", "auth.mfa"),
    action("POST", "/v1/auth/password/forgot", "auth.password_forgot"),
    action("POST", "/v1/auth/password/reset", "auth.password_reset"),
    action("POST", "/v1/auth/mfa/totp", "mfa.totp_enroll"),
    action("DELETE", "/v1/auth/mfa/totp", "mfa.totp_disable"),
    action("POST", "/v1/auth/mfa/totp/confirm", "mfa.totp_confirm"),
    action("POST", "/v1/auth/mfa/recovery-codes", "mfa.recovery_codes"),
    action("PATCH", "/v1/me", "user.update"),
    action("DELETE", "/v1/me", "user.deactivate"),
    action("DELETE", "/v1/sessions", "session.revoke_others"),
    action("DELETE", "/v1/sessions/{id}", "session.revoke"),
    action("PUT", "/v1/me/preferences", "preferences.put"),
    action(
        "POST",
        "/v1/me/notifications/$read-all",
        "notification.read_all",
    ),
    action(
        "POST",
        "/v1/me/notifications/{id}/$read",
        "notification.read",
    ),
    action("DELETE", "/v1/me/notifications/{id}", "notification.delete"),
    // Orgs, teams, members, invitations.
    action("POST", "/v1/orgs", "org.create"),
    action("PATCH", "/v1/orgs/{org}", "org.update"),
    action("DELETE", "/v1/orgs/{org}", "org.delete"),
    action(
        "PATCH",
        "/v1/orgs/{org}/members/{user}",
        "member.change_role",
    ),
    action("DELETE", "/v1/orgs/{org}/members/{user}", "member.remove"),
    action("POST", "/v1/orgs/{org}/teams", "team.create"),
    action("PATCH", "/v1/orgs/{org}/teams/{team}", "team.update"),
    action("DELETE", "/v1/orgs/{org}/teams/{team}", "team.delete"),
    action(
        "PUT",
        "/v1/orgs/{org}/teams/{team}/members/{user}",
        "team_member.add",
    ),
    action(
        "DELETE",
        "/v1/orgs/{org}/teams/{team}/members/{user}",
        "team_member.remove",
    ),
    action("POST", "/v1/orgs/{org}/invitations", "invitation.create"),
    action(
        "DELETE",
        "/v1/orgs/{org}/invitations/{invitation}",
        "invitation.revoke",
    ),
    action("POST", "/v1/invitations/accept", "invitation.accept"),
    action("PUT", "/v1/orgs/{org}/preferences", "preferences.put"),
    action(
        "PUT",
        "/v1/orgs/{org}/teams/{team}/preferences",
        "preferences.put",
    ),
    // API keys.
    action("POST", "/v1/keys", "key.create"),
    action("PATCH", "/v1/keys/{name}", "key.update"),
    action("DELETE", "/v1/keys/{name}", "key.revoke"),
    action("POST", "/v1/keys/{name}/$rotate", "key.rotate"),
    action("PUT", "/v1/keys/{name}/roles/{role}", "key_role.grant"),
    action("DELETE", "/v1/keys/{name}/roles/{role}", "key_role.revoke"),
    action("POST", "/v1/keys/$import", "key.import"),
    elsewhere("POST", "/v1/keys/verify", READ),
    // Metering.
    action("POST", "/v1/meters", "meter.create"),
    action("PATCH", "/v1/meters/{key}", "meter.update"),
    action("DELETE", "/v1/meters/{key}", "meter.delete"),
    elsewhere("POST", "/v1/expenditure", LEDGER),
    elsewhere("POST", "/v1/usage/events", LEDGER),
    action("POST", "/v1/quotas", "quota.create"),
    action("PATCH", "/v1/quotas/{id}", "quota.update"),
    action("DELETE", "/v1/quotas/{id}", "quota.delete"),
    action("POST", "/v1/quotas/{id}/overrides", "quota_override.create"),
    action(
        "DELETE",
        "/v1/quotas/{id}/overrides/{override}",
        "quota_override.delete",
    ),
    elsewhere("POST", "/v1/quotas/check", READ),
    elsewhere("POST", "/v1/quotas/consume", LEDGER),
    elsewhere("POST", "/v1/quotas/reserve", LEDGER),
    elsewhere("POST", "/v1/quotas/reservations/{id}/commit", LEDGER),
    elsewhere("POST", "/v1/quotas/reservations/{id}/release", LEDGER),
    // Roles, permissions, resource access.
    action("POST", "/v1/roles", "role.create"),
    action("PATCH", "/v1/roles/{name}", "role.update"),
    action("DELETE", "/v1/roles/{name}", "role.delete"),
    action("POST", "/v1/roles/{name}/$copy", "role.copy"),
    action(
        "PUT",
        "/v1/roles/{name}/members/{user}",
        "role_member.grant",
    ),
    action(
        "DELETE",
        "/v1/roles/{name}/members/{user}",
        "role_member.revoke",
    ),
    action(
        "POST",
        "/v1/authz/grants/{service}/{collection}/{role}",
        "resource_grant.change",
    ),
    action(
        "PUT",
        "/v1/authz/resources/{service}/{collection}/{id}/owners/{type}/{owner}",
        "resource_owner.add",
    ),
    action(
        "DELETE",
        "/v1/authz/resources/{service}/{collection}/{id}/owners/{type}/{owner}",
        "resource_owner.remove",
    ),
    action("PUT", "/v1/authz/policies/{name}", "policy.put"),
    action("DELETE", "/v1/authz/policies/{name}", "policy.delete"),
    elsewhere("POST", "/v1/authz/check", READ),
    elsewhere("POST", "/v1/authz/filter", READ),
    // Tokens, services, identity providers.
    action("POST", "/v1/tokens", "token.issue"),
    action("POST", "/v1/signing-keys/$rotate", "signing_key.rotate"),
    action("POST", "/v1/services", "service.create"),
    action("DELETE", "/v1/services/{name}", "service.delete"),
    action("POST", "/v1/services/{name}/keys", "service_key.add"),
    action(
        "POST",
        "/v1/services/{name}/keys/$challenge",
        "service_key.challenge",
    ),
    action(
        "DELETE",
        "/v1/services/{name}/keys/{kid}",
        "service_key.revoke",
    ),
    action("POST", "/v1/oidc/providers", "oidc_provider.create"),
    action("PATCH", "/v1/oidc/providers/{name}", "oidc_provider.update"),
    action(
        "DELETE",
        "/v1/oidc/providers/{name}",
        "oidc_provider.delete",
    ),
    // Operator routes.
    action("POST", "/v1/admin/migrations", "migration.apply"),
    elsewhere(
        "POST",
        "/v1/admin/jobs/$run",
        "the scheduler calls it every minute; each job's row is the record",
    ),
    action("POST", "/v1/admin/jobs/{id}/$retry", "job.retry"),
    action("POST", "/v1/admin/secrets/$rewrap", "data_key.rewrap"),
    // Webhooks.
    action("POST", "/v1/webhooks/sources", "webhook_source.create"),
    action(
        "PATCH",
        "/v1/webhooks/sources/{id}",
        "webhook_source.update",
    ),
    action(
        "DELETE",
        "/v1/webhooks/sources/{id}",
        "webhook_source.delete",
    ),
    elsewhere("POST", "/v1/hooks/{source_id}", LEDGER),
    action(
        "POST",
        "/v1/webhooks/events/{id}/$replay",
        "webhook_event.replay",
    ),
    action("POST", "/v1/webhooks/endpoints", "webhook_endpoint.create"),
    action(
        "PATCH",
        "/v1/webhooks/endpoints/{id}",
        "webhook_endpoint.update",
    ),
    action(
        "DELETE",
        "/v1/webhooks/endpoints/{id}",
        "webhook_endpoint.delete",
    ),
    action(
        "POST",
        "/v1/webhooks/endpoints/{id}/secret/$rotate",
        "webhook_endpoint.rotate_secret",
    ),
    action(
        "POST",
        "/v1/webhooks/endpoints/{id}/messages/{msg}/$resend",
        "webhook_message.resend",
    ),
    action(
        "POST",
        "/v1/webhooks/endpoints/{id}/$recover",
        "webhook_endpoint.recover",
    ),
    // Billing.
    action("POST", "/v1/billing/checkout", "billing.checkout"),
    action(
        "POST",
        "/v1/billing/subscription",
        "billing.change_subscription",
    ),
    action("POST", "/v1/billing/portal", "billing.portal"),
    elsewhere("POST", "/v1/entitlements/check", READ),
    // Secrets.
    action(
        "POST",
        "/v1/orgs/{org}/secrets/$rotate-key",
        "data_key.rotate",
    ),
    action("PUT", "/v1/orgs/{org}/secrets/{name}", "secret.write"),
    action("DELETE", "/v1/orgs/{org}/secrets/{name}", "secret.delete"),
    action(
        "PUT",
        "/v1/orgs/{org}/teams/{team}/secrets/{name}",
        "secret.write",
    ),
    action(
        "DELETE",
        "/v1/orgs/{org}/teams/{team}/secrets/{name}",
        "secret.delete",
    ),
    action("PUT", "/v1/me/secrets/{name}", "secret.write"),
    action("DELETE", "/v1/me/secrets/{name}", "secret.delete"),
    // Tools.
    action("POST", "/v1/tools", "tool.create"),
    action("PATCH", "/v1/tools/{name}", "tool.update"),
    action("DELETE", "/v1/tools/{name}", "tool.delete"),
    action("POST", "/v1/tools/{name}/$call", "tool.call"),
    // MCP: named servers, and the endpoint, whose messages are mostly
    // reads (listing, discovery); each `tools/call` is recorded by the
    // handler as `tool.call`, like `$call`.
    action("POST", "/v1/mcp-servers", "mcp_server.create"),
    action("PATCH", "/v1/mcp-servers/{name}", "mcp_server.update"),
    action("DELETE", "/v1/mcp-servers/{name}", "mcp_server.delete"),
    action(
        "POST",
        "/v1/mcp-servers/{name}/$refresh",
        "mcp_server.refresh",
    ),
    elsewhere("POST", "/v1/mcp", MCP_CALLS),
    elsewhere("POST", "/v1/mcp/{server}", MCP_CALLS),
    // Tool runs.
    action("PUT", "/v1/tool-settings", "tool_settings.put"),
    action("POST", "/v1/tool-runs", "tool_run.create"),
];

/// Whether a method changes something.
pub fn mutating(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

/// A request matched to its route, with the path's parameters in order.
#[derive(Debug, Clone)]
pub struct Matched {
    /// The route.
    pub route: &'static Route,
    /// `(name, value)` for each `{name}` of the template.
    pub params: Vec<(&'static str, String)>,
}

impl Matched {
    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The action, when the trail records this route.
    pub fn action(&self) -> Option<&'static str> {
        match self.route.record {
            Record::Action(name) => Some(name),
            Record::Elsewhere(_) => None,
        }
    }
}

/// The route a mutating request takes, if it is one of [`ROUTES`].
/// Literal segments win over parameters (`/v1/keys/verify` is not the key
/// named `verify`).
pub fn find(method: &str, path: &str) -> Option<Matched> {
    if !mutating(method) {
        return None;
    }
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut best: Option<(usize, &'static Route)> = None;
    for route in ROUTES.iter().filter(|r| r.method == method) {
        // Compared without allocating: this runs on every mutating request,
        // hot checks such as /v1/keys/verify included.
        let mut template = route.template.split('/').filter(|s| !s.is_empty());
        let mut literals = 0;
        let mut fits = true;
        for segment in &segments {
            match template.next() {
                Some(t) if t.starts_with('{') => {}
                Some(t) if t == *segment => literals += 1,
                _ => {
                    fits = false;
                    break;
                }
            }
        }
        if fits && template.next().is_none() && best.is_none_or(|(l, _)| literals > l) {
            best = Some((literals, route));
        }
    }
    let (_, route) = best?;
    let params = route
        .template
        .split('/')
        .filter(|s| !s.is_empty())
        .zip(&segments)
        .filter_map(|(t, s)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            Some((name, (*s).to_string()))
        })
        .collect();
    Some(Matched { route, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_segment_wins_over_a_parameter() {
        let verify = find("POST", "/v1/keys/verify").expect("routed");
        assert_eq!(verify.action(), None);
        let rotate = find("POST", "/v1/keys/billing-key/$rotate").expect("routed");
        assert_eq!(rotate.action(), Some("key.rotate"));
        assert_eq!(rotate.param("name"), Some("billing-key"));
        let check = find("POST", "/v1/quotas/check").expect("routed");
        assert_eq!(check.action(), None);
    }

    #[test]
    fn reads_and_unknown_paths_are_not_routes_of_the_trail() {
        assert!(find("GET", "/v1/orgs/acme").is_none());
        assert!(find("POST", "/v1/nowhere").is_none());
        assert!(find("DELETE", "/v1/orgs/acme/teams").is_none());
        let m = find("DELETE", "/v1/orgs/acme/teams/tm_1?x=1").expect("routed");
        assert_eq!(m.action(), Some("team.delete"));
        assert_eq!(m.param("org"), Some("acme"));
        assert_eq!(m.param("team"), Some("tm_1"));
    }

    /// The table and the OpenAPI document describe the same mutating
    /// routes: a route added to one without the other fails here.
    #[test]
    fn every_mutating_operation_of_the_openapi_document_is_in_the_table() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/openapi.json"
        ))
        .expect("the OpenAPI document");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let mut documented = Vec::new();
        for (template, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                let method = method.to_ascii_uppercase();
                if mutating(&method) {
                    documented.push((method, template.clone()));
                }
            }
        }
        for (method, template) in &documented {
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.method == method && r.template == template),
                "{method} {template} is documented but not in the audit table"
            );
        }
        for route in ROUTES {
            assert!(
                documented
                    .iter()
                    .any(|(m, t)| m == route.method && t == route.template),
                "{} {} is in the audit table but not documented",
                route.method,
                route.template
            );
        }
    }
}
