//! What is wrong with a saved provider that does not stop it from being
//! saved, told in the `warnings` of its answers. Whatever depends only on
//! the configuration and the deployment's settings is told on every read;
//! whether the provider's discovery document can be fetched and used is
//! checked when the provider is created or changed (it may not be running
//! yet: its redirect URI must be registered with it first).

use gatehouse_auth::oidc::{self, DiscoveryFault, OutboundPolicy, Provider};
use serde::Serialize;

/// One warning: a stable code and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Warning {
    code: &'static str,
    detail: String,
}

/// Warnings from the configuration and the settings of the moment.
pub(super) fn of_configuration(p: &Provider, policy: &OutboundPolicy) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if p.audiences_include_client_id() && !p.require_at_jwt_typ {
        warnings.push(Warning {
            code: "client_id_in_audiences",
            detail: "audiences include the client id, the audience of the provider's ID tokens: bearer tokens are then told from ID tokens only by their type and claims (ID tokens are refused). Set require_at_jwt_typ if the provider types its access tokens at+jwt (RFC 9068), or list the API's own identifier instead".into(),
        });
    }
    // Saving refuses such an issuer; a provider saved before the operator
    // changed the settings is told here why its sign-ins and bearer
    // tokens fail.
    if let Err(why) = policy.check(&p.issuer) {
        warnings.push(Warning {
            code: "issuer_not_allowed",
            detail: format!(
                "this deployment does not call the issuer: {why}. Sign-ins and bearer tokens of this provider fail until it is changed"
            ),
        });
    }
    warnings
}

/// The configuration's warnings and, fetched now, the discovery's.
pub(super) async fn on_save(p: &Provider, policy: &OutboundPolicy) -> Vec<Warning> {
    let mut warnings = of_configuration(p, policy);
    match oidc::check_discovery(&p.issuer, policy).await {
        None => {}
        Some(DiscoveryFault::Unreachable) => warnings.push(Warning {
            code: "discovery_unreachable",
            detail: format!(
                "{} could not be fetched now: sign-ins and bearer tokens of this provider fail until it answers",
                oidc::discovery_url(&p.issuer)
            ),
        }),
        Some(DiscoveryFault::Invalid(why)) => warnings.push(Warning {
            code: "discovery_invalid",
            detail: format!(
                "{why}: sign-ins and bearer tokens of this provider fail until this is fixed"
            ),
        }),
    }
    warnings
}
