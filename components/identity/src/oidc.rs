//! An org's own OpenID Connect providers: their configuration (org
//! admins change it, members read it; the client secret is sealed at rest
//! with the org's data key and never shown), and sign-in through them with the authorization code
//! flow, PKCE (S256), `state` bound to the browser by a cookie, and
//! `nonce` checked in the ID token.
//!
//! A provider subject is linked to one Gatehouse user: on first sign-in a
//! new account is made for it, unless its email belongs to an account
//! already, which must link itself (start the sign-in with its session).
//! Every sign-in makes the user a member of the provider's org and syncs
//! the roles the provider's claims map to (grants made by the provider are
//! taken back when the claims no longer map to them).
//!
//! - `providers`: the configuration routes, and what a provider is told
//!   when it is saved (`fields`, `warnings`).
//! - `sign_in`: `/start` and `/callback`; `accounts`: the user a
//!   provider's subject is, and the org membership and roles it brings.

mod accounts;
mod fields;
mod providers;
mod sign_in;
mod warnings;

pub use providers::{create, delete, get, list, update};
pub use sign_in::{callback, start};

use gatehouse_auth::oidc::{self, Provider};
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use gatehouse_secrets::sealed::{Binding, Kind};
use serde::Serialize;
use spin_sdk::sqlite::{Connection, RowResult};

use crate::db;

fn no_provider() -> Problem {
    Problem::not_found().detail("no such identity provider")
}

/// What a provider's client secret is bound to: its org and its id. It
/// is sealed with the org's data key (`gatehouse_secrets::sealing`), so
/// deleting the org leaves nothing that opens it.
fn client_secret_of<'a>(org_id: &'a str, provider_id: &'a str) -> Binding<'a> {
    Binding::org(Kind::OidcClientSecret, org_id, provider_id)
}

/// The shared provider columns, then what only this component reads.
fn columns() -> String {
    format!(
        "{}, client_secret, scopes, created_at, updated_at",
        oidc::PROVIDER_COLUMNS
    )
}

/// A provider row as this component reads it.
struct Stored {
    provider: Provider,
    client_secret: Option<String>,
    scopes: String,
    created_at: i64,
    updated_at: i64,
}

fn stored_from(row: &RowResult) -> Stored {
    Stored {
        provider: oidc::provider_from(row),
        client_secret: db::get_opt_text(row, 11),
        scopes: db::get_text(row, 12),
        created_at: db::get_int(row, 13).unwrap_or_default(),
        updated_at: db::get_int(row, 14).unwrap_or_default(),
    }
}

fn redirect_uri(base: &str, provider_id: &str) -> String {
    format!("{base}/v1/oidc/{provider_id}/callback")
}

fn json_text<T: Serialize>(value: &T) -> Result<String, Problem> {
    serde_json::to_string(value).map_err(|_| Problem::internal())
}

/// A provider of the org by name.
async fn load(tenant: &Tenant<'_>, name: &str) -> Result<Stored, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {} FROM oidc_providers WHERE org_id = ?1 AND name = ?",
                columns()
            ),
            vec![db::text(name)],
        )
        .await?;
    rows.first().map(stored_from).ok_or_else(no_provider)
}

/// A provider by id, across orgs: the sign-in routes are reached before
/// anyone is authenticated, and the id is all they are given.
async fn by_id(conn: &Connection, provider_id: &str) -> Result<Stored, Problem> {
    let rows = db::query(
        conn,
        &format!(
            "SELECT {} FROM oidc_providers WHERE provider_id = ?",
            columns()
        ),
        vec![db::text(provider_id)],
    )
    .await?;
    rows.first().map(stored_from).ok_or_else(no_provider)
}
