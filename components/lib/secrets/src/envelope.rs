//! Data keys and values: what each is sealed with and bound to.

use identity_core::sealed::SealingKey;

use crate::scope::Scope;

/// The purpose the master key's derived key seals data keys for.
pub const KEY_PURPOSE: &str = "org data keys";

/// What a data key is bound to: its org and version.
pub fn key_context(org_id: &str, version: i64) -> String {
    format!("data-key/{org_id}/{version}")
}

/// What a value is bound to: its org, scope, name and key version.
pub fn value_context(org_id: &str, scope: &Scope, name: &str, version: i64) -> String {
    format!("secret/{org_id}/{}/{name}/{version}", scope.path())
}

/// A new random data key, and it sealed by `kek` for `org_id`'s `version`.
pub fn new_data_key(kek: &SealingKey, org_id: &str, version: i64) -> (SealingKey, String) {
    let key = identity_core::random::bytes::<32>();
    let wrapped = kek.seal(&key, &key_context(org_id, version));
    (SealingKey::from_bytes(&key), wrapped)
}

/// A sealed data key opened, if it is `org_id`'s `version` under `kek`.
pub fn open_data_key(
    kek: &SealingKey,
    wrapped: &str,
    org_id: &str,
    version: i64,
) -> Option<SealingKey> {
    let bytes = kek.open(wrapped, &key_context(org_id, version))?;
    let key: [u8; 32] = bytes.try_into().ok()?;
    Some(SealingKey::from_bytes(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn a_value_opens_only_in_its_own_org_scope_name_and_version() {
        let kek = SealingKey::derive(MASTER, KEY_PURPOSE).unwrap();
        let (key, wrapped) = new_data_key(&kek, "org_a", 1);
        let org = Scope::Org;
        let sealed = key.seal(b"sk-live-123", &value_context("org_a", &org, "OPENAI", 1));
        let opened = open_data_key(&kek, &wrapped, "org_a", 1).unwrap();
        let context = value_context("org_a", &org, "OPENAI", 1);
        assert_eq!(
            opened.open(&sealed, &context).as_deref(),
            Some(&b"sk-live-123"[..])
        );
        for other in [
            value_context("org_b", &org, "OPENAI", 1),
            value_context("org_a", &org, "OTHER", 1),
            value_context("org_a", &Scope::User("usr_1".into()), "OPENAI", 1),
            value_context("org_a", &org, "OPENAI", 2),
        ] {
            assert!(opened.open(&sealed, &other).is_none(), "{other}");
        }
    }

    #[test]
    fn a_data_key_opens_only_for_its_org_and_version() {
        let kek = SealingKey::derive(MASTER, KEY_PURPOSE).unwrap();
        let (_, wrapped) = new_data_key(&kek, "org_a", 1);
        assert!(open_data_key(&kek, &wrapped, "org_b", 1).is_none());
        assert!(open_data_key(&kek, &wrapped, "org_a", 2).is_none());
        let other = SealingKey::derive(MASTER, "another purpose").unwrap();
        assert!(open_data_key(&other, &wrapped, "org_a", 1).is_none());
    }
}
