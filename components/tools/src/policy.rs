//! Where HTTP tools may be called, from the deployment's variables
//! `tool_outbound_hosts` (one `allowed_outbound_hosts` entry: the same
//! rule Spin enforces on this component) and `tool_allow_private_hosts`.
//! The URL check is the one OIDC issuers pass; see
//! [`gatehouse_auth::oidc::policy`].

use gatehouse_auth::oidc::OutboundPolicy;

/// The deployment's policy for tools' URLs; without the variables, one
/// that takes nothing.
pub async fn tools() -> OutboundPolicy {
    let Ok(rule) = spin_sdk::variables::get("tool_outbound_hosts").await else {
        eprintln!("tools: the component has no tool_outbound_hosts variable; no tool URL is taken");
        return OutboundPolicy::deny_all();
    };
    let allow_private = spin_sdk::variables::get("tool_allow_private_hosts")
        .await
        .unwrap_or_default();
    OutboundPolicy::new(&rule, &allow_private)
}

/// The deployment's policy for the LLM providers orgs' runs call, from
/// `llm_outbound_hosts` and `llm_allow_private_hosts`: the same address
/// classes as tools' URLs, under a rule of its own (an operator may allow
/// one provider without allowing tools to reach it, and the reverse).
pub async fn llm() -> OutboundPolicy {
    let Ok(rule) = spin_sdk::variables::get("llm_outbound_hosts").await else {
        eprintln!("tools: the component has no llm_outbound_hosts variable; no provider is taken");
        return OutboundPolicy::deny_all();
    };
    let allow_private = spin_sdk::variables::get("llm_allow_private_hosts")
        .await
        .unwrap_or_default();
    OutboundPolicy::new(&rule, &allow_private)
}
