//! Values other capabilities seal at rest (TOTP secrets, signing keys,
//! identity provider client secrets, webhook secrets), by the same
//! envelope scheme as secrets: what each is sealed with and bound to, and
//! how its stored text reads.
//!
//! An org's values are sealed with the org's newest data key, a user's or
//! the deployment's with the deployment's newest data key (versioned,
//! random, sealed by the master key's derived key like an org's). Each is
//! bound to its owner, its kind, its row and the key version, so a value
//! copied into another row, kind or org does not open.
//!
//! Stored text: `v2.<key version>.<base64url of nonce and ciphertext>`.
//! Text sealed the old way (straight under a key derived from the master
//! key for the kind, bound to the row id alone) starts with `v1.`; it
//! still opens, and is sealed again the new way by the master key rewrap
//! and by an org's data key rotation job (see `rotation`).

use identity_core::sealed::SealingKey;

/// The prefix of text sealed by a data key.
pub const PREFIX: &str = "v2.";

/// The prefix of text sealed the old way, straight from the master key.
pub const LEGACY_PREFIX: &str = "v1.";

/// What a sealed value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user's TOTP secret (row: the user id).
    Totp,
    /// A private signing key of the deployment (row: the kid).
    SigningKey,
    /// The client secret of an org's identity provider (row: its id).
    OidcClientSecret,
    /// The verification settings of an org's webhook source (row: its id).
    WebhookSource,
    /// A secret or signing key of an org's webhook endpoint (row: its id;
    /// a rotated secret moves to `previous_secret` as it is).
    WebhookEndpoint,
}

impl Kind {
    /// Its name in bindings.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Totp => "totp",
            Kind::SigningKey => "signing-key",
            Kind::OidcClientSecret => "oidc-client-secret",
            Kind::WebhookSource => "webhook-source",
            Kind::WebhookEndpoint => "webhook-endpoint",
        }
    }

    /// The purpose its old-way key was derived from the master key for.
    pub fn legacy_purpose(self) -> &'static str {
        match self {
            Kind::Totp => "totp",
            Kind::SigningKey => "signing-keys",
            Kind::OidcClientSecret => "oidc-client-secret",
            Kind::WebhookSource => "webhook-sources",
            Kind::WebhookEndpoint => "webhook-endpoints",
        }
    }

    /// Whether an org owns values of this kind (else the deployment does).
    pub fn org_owned(self) -> bool {
        !matches!(self, Kind::Totp | Kind::SigningKey)
    }

    /// What a 503 says when the deployment has no usable master key.
    pub fn unavailable(self) -> &'static str {
        match self {
            Kind::Totp => "multi-factor authentication is not configured on this deployment",
            Kind::SigningKey => "token signing is not configured on this deployment",
            Kind::OidcClientSecret => {
                "identity providers with a client secret need the master_key variable set"
            }
            Kind::WebhookSource => {
                "webhook sources need the master_key variable (32 bytes of base64)"
            }
            Kind::WebhookEndpoint => {
                "webhook endpoints need the master_key variable (32 bytes of base64)"
            }
        }
    }
}

/// Whose data key seals a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// This org's.
    Org(&'a str),
    /// The deployment's (values of users and of the deployment itself).
    Deployment,
}

/// What a sealed value is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Whose data key seals it.
    pub owner: Owner<'a>,
    /// The id of its row.
    pub row: &'a str,
}

impl<'a> Binding<'a> {
    /// A value of an org's (`org_id`) row `row`.
    pub fn org(kind: Kind, org_id: &'a str, row: &'a str) -> Self {
        Binding {
            kind,
            owner: Owner::Org(org_id),
            row,
        }
    }

    /// A value of a user's or the deployment's row `row`.
    pub fn deployment(kind: Kind, row: &'a str) -> Self {
        Binding {
            kind,
            owner: Owner::Deployment,
            row,
        }
    }

    /// The associated data under data key `version`.
    pub fn context(&self, version: i64) -> String {
        let owner = match self.owner {
            Owner::Org(org_id) => format!("org/{org_id}"),
            Owner::Deployment => "deployment".into(),
        };
        format!("sealed/{owner}/{}/{}/{version}", self.kind.name(), self.row)
    }
}

/// What a deployment data key is bound to: its version.
pub fn deployment_key_context(version: i64) -> String {
    format!("deployment-data-key/{version}")
}

/// Stored text, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored<'a> {
    /// Sealed by data key `version`; `sealed` as [`SealingKey::open`] reads it.
    Enveloped {
        /// The data key version.
        version: i64,
        /// The sealed value.
        sealed: String,
    },
    /// Sealed the old way.
    Legacy(&'a str),
}

/// Reads stored text; `None` when it is neither format.
pub fn parse(stored: &str) -> Option<Stored<'_>> {
    if stored.starts_with(LEGACY_PREFIX) {
        return Some(Stored::Legacy(stored));
    }
    let (digits, body) = stored.strip_prefix(PREFIX)?.split_once('.')?;
    let version: i64 = digits.parse().ok().filter(|v| *v >= 1)?;
    // One spelling per version (no sign, no leading zero).
    if version.to_string() != digits || body.is_empty() || !body.bytes().all(is_base64url) {
        return None;
    }
    Some(Stored::Enveloped {
        version,
        sealed: format!("{LEGACY_PREFIX}{body}"),
    })
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `plain` sealed by data key `version` (`key`) for `binding`.
pub fn seal_with(key: &SealingKey, version: i64, binding: &Binding<'_>, plain: &[u8]) -> String {
    let sealed = key.seal(plain, &binding.context(version));
    let body = sealed.strip_prefix(LEGACY_PREFIX).unwrap_or(&sealed);
    format!("{PREFIX}{version}.{body}")
}

/// A legacy value opened under the old-way key of `binding`'s kind
/// derived from `master`; `None` when it does not open.
pub fn open_legacy(master: &str, binding: &Binding<'_>, sealed: &str) -> Option<Vec<u8>> {
    SealingKey::derive(master, binding.kind.legacy_purpose())
        .ok()?
        .open(sealed, binding.row)
}

/// Where sealed values live: a column of a table, its row id column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The table.
    pub table: &'static str,
    /// The column holding the row's id (the binding's row).
    pub id: &'static str,
    /// The column holding sealed text (NULL: nothing sealed).
    pub column: &'static str,
    /// What it holds; an org-owned kind's table has `org_id`.
    pub kind: Kind,
}

/// Every column holding sealed values, which rewraps and rotations pass
/// over. A new sealed column belongs here.
pub const COLUMNS: [Column; 7] = [
    Column {
        table: "mfa_totp",
        id: "user_id",
        column: "secret_sealed",
        kind: Kind::Totp,
    },
    Column {
        table: "signing_keys",
        id: "kid",
        column: "private_sealed",
        kind: Kind::SigningKey,
    },
    Column {
        table: "oidc_providers",
        id: "provider_id",
        column: "client_secret",
        kind: Kind::OidcClientSecret,
    },
    Column {
        table: "webhook_sources",
        id: "source_id",
        column: "config",
        kind: Kind::WebhookSource,
    },
    Column {
        table: "webhook_endpoints",
        id: "endpoint_id",
        column: "secret",
        kind: Kind::WebhookEndpoint,
    },
    Column {
        table: "webhook_endpoints",
        id: "endpoint_id",
        column: "previous_secret",
        kind: Kind::WebhookEndpoint,
    },
    Column {
        table: "webhook_endpoints",
        id: "endpoint_id",
        column: "signing_key",
        kind: Kind::WebhookEndpoint,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn data_key() -> SealingKey {
        SealingKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn a_value_opens_only_for_its_owner_kind_row_and_version() {
        let binding = Binding::org(Kind::OidcClientSecret, "org_a", "idp_1");
        let stored = seal_with(&data_key(), 3, &binding, b"client-secret");
        assert!(stored.starts_with("v2.3."), "{stored}");
        let Some(Stored::Enveloped { version, sealed }) = parse(&stored) else {
            panic!("not enveloped: {stored}");
        };
        assert_eq!(version, 3);
        let open = |b: &Binding<'_>, v: i64| data_key().open(&sealed, &b.context(v));
        assert_eq!(open(&binding, 3).as_deref(), Some(&b"client-secret"[..]));
        for other in [
            Binding::org(Kind::OidcClientSecret, "org_b", "idp_1"),
            Binding::org(Kind::OidcClientSecret, "org_a", "idp_2"),
            Binding::org(Kind::WebhookSource, "org_a", "idp_1"),
            Binding::deployment(Kind::OidcClientSecret, "idp_1"),
        ] {
            assert!(open(&other, 3).is_none(), "{other:?}");
        }
        assert!(open(&binding, 2).is_none());
    }

    #[test]
    fn stored_text_is_told_apart_by_its_prefix() {
        let legacy = SealingKey::derive(MASTER, "totp")
            .unwrap()
            .seal(b"JBSWY3DP", "usr_1");
        assert_eq!(parse(&legacy), Some(Stored::Legacy(&legacy)));
        let binding = Binding::deployment(Kind::Totp, "usr_1");
        assert_eq!(
            open_legacy(MASTER, &binding, &legacy).as_deref(),
            Some(&b"JBSWY3DP"[..])
        );
        let moved = Binding::deployment(Kind::Totp, "usr_2");
        assert!(open_legacy(MASTER, &moved, &legacy).is_none());
        for bad in [
            "",
            "v2.",
            "v2.1",
            "v2.0.AAAA",
            "v2.-1.AAAA",
            "v2.01.AAAA",
            "v2.x.AAAA",
            "v2.1.a+b",
            "v3.1.AAAA",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_totp_secrets_and_signing_keys_are_the_deployments() {
        assert!(!Kind::Totp.org_owned() && !Kind::SigningKey.org_owned());
        assert!(
            COLUMNS
                .iter()
                .filter(|c| c.kind.org_owned())
                .all(|c| c.table.starts_with("oidc_") || c.table.starts_with("webhook_"))
        );
    }
}
