//! The mail each admin of an org gets when one of its endpoints is
//! disabled for failing five days: the text is pure; sending queues it
//! with the change (wasm32 only).
//!
//! ```
//! use gatehouse_webhook_delivery::disabled_mail::text;
//!
//! let (subject, body) = text("Acme", "whep_1", "https://hooks.example.com/in?t=x",
//!     1_800_000_000, "the endpoint answered 503", 1_800_432_000);
//! assert_eq!(subject, "Acme: webhook endpoint whep_1 was disabled");
//! assert!(body.contains("hooks.example.com") && !body.contains("t=x"));
//! ```

use gatehouse_http::time::format_rfc3339;

/// The host of `url`, which is all the mail says of it: a URL's path and
/// query may hold a token of the receiver's.
fn host(url: &str) -> String {
    gatehouse_auth::oidc::policy::target(url)
        .map(|t| t.host)
        .unwrap_or_else(|| "an unreadable URL".into())
}

/// The subject and text of the mail telling that `endpoint_id` of
/// `org_name`, at `url`, failed every attempt since `since` and was
/// disabled at `now`; `error` is its last attempt's.
pub fn text(
    org_name: &str,
    endpoint_id: &str,
    url: &str,
    since: i64,
    error: &str,
    now: i64,
) -> (String, String) {
    let subject = format!("{org_name}: webhook endpoint {endpoint_id} was disabled");
    let body = format!(
        "Every delivery to the webhook endpoint {endpoint_id} of {org_name} (on {host}) has failed since {since}, so it was disabled at {now} and is sent no more events.\n\nThe last attempt: {error}.\n\nOnce it answers again, an admin can enable it (PATCH /v1/webhooks/endpoints/{endpoint_id} with {{\"enabled\": true}}) and have what it missed sent again (POST /v1/webhooks/endpoints/{endpoint_id}/$recover).\n",
        host = host(url),
        since = format_rfc3339(since),
        now = format_rfc3339(now),
    );
    (subject, body)
}

#[cfg(target_arch = "wasm32")]
pub use store::send;

#[cfg(target_arch = "wasm32")]
mod store {
    use gatehouse_jobs::JobError;
    use spin_sdk::sqlite::Connection;

    use super::text;
    use crate::deliver::DISABLED_MAIL;
    use gatehouse_auth::db::{self, get_opt_text};
    use gatehouse_jobs::rows;

    /// Queues the mail to each active admin of org `org_id` with a
    /// verified address, on the connection (and in the transaction) that
    /// disables the endpoint.
    pub async fn send(
        conn: &Connection,
        org_id: &str,
        endpoint_id: &str,
        url: &str,
        since: i64,
        error: &str,
        now: i64,
    ) -> Result<(), JobError> {
        let org = rows(
            conn,
            "SELECT name FROM orgs WHERE org_id = ?1",
            vec![db::text(org_id)],
        )
        .await?;
        let org_name = org
            .first()
            .and_then(|r| get_opt_text(r, 0))
            .unwrap_or_else(|| org_id.to_string());
        let admins = rows(
            conn,
            "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = ?1 AND m.role = 'admin' AND u.status = 'active'
               AND u.email_verified_at IS NOT NULL
             ORDER BY u.email",
            vec![db::text(org_id)],
        )
        .await?;
        let (subject, body) = text(&org_name, endpoint_id, url, since, error, now);
        for to in admins.iter().filter_map(|r| get_opt_text(r, 0)) {
            gatehouse_mail::enqueue(conn, &to, DISABLED_MAIL, &subject, &body, now)
                .await
                .map_err(|e| JobError::new(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_names_the_endpoint_its_host_the_times_and_the_last_error() {
        let (subject, body) = text(
            "Acme",
            "whep_0123",
            "https://user.example.com:8443/hooks/secret-token?sig=abc",
            1_800_000_000,
            "the endpoint answered 502",
            1_800_432_000,
        );
        assert_eq!(subject, "Acme: webhook endpoint whep_0123 was disabled");
        for part in [
            "user.example.com",
            "2027-01-15T08:00:00Z",
            "2027-01-20T08:00:00Z",
            "the endpoint answered 502",
            "/v1/webhooks/endpoints/whep_0123/$recover",
        ] {
            assert!(body.contains(part), "{part}: {body}");
        }
        assert!(
            !body.contains("secret-token") && !body.contains("sig=abc"),
            "{body}"
        );
    }
}
