//! The key-value store `default` of the app served, as the component's
//! cache (its middleware entry inherits `key_value_stores`). Losing an
//! entry only costs a call to Gatehouse; a store the app did not grant
//! leaves it working, uncached.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use spin_sdk::key_value::Store;

/// The store verdicts and keys are cached in.
pub struct Cache(Option<Store>);

impl Cache {
    /// The `default` store, or none when the app does not grant it.
    pub async fn open() -> Cache {
        match Store::open("default").await {
            Ok(store) => Cache(Some(store)),
            Err(e) => {
                eprintln!("gatehouse: no key-value store `default` ({e:?}); verifying uncached");
                Cache(None)
            }
        }
    }

    /// The value under `key`, if there is one that reads as `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = self.0.as_ref()?.get(key).await.ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores `value` under `key`; a failure only means a later miss.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T) {
        if let (Some(store), Ok(bytes)) = (self.0.as_ref(), serde_json::to_vec(value)) {
            let _ = store.set(key, &bytes).await;
        }
    }

    /// Forgets `key`.
    pub async fn remove(&self, key: &str) {
        if let Some(store) = self.0.as_ref() {
            let _ = store.delete(key).await;
        }
    }
}

/// A cache key naming `parts` by their SHA-256, so no credential is kept
/// in the store in plaintext.
pub fn key(kind: &str, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        // A separator no header value carries keeps ("ab","c") and ("a","bc") apart.
        hash.update([0u8]);
    }
    format!("gatehouse:v1:{kind}:{}", hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn cache_keys_hide_the_credential_and_keep_parts_apart() {
        let one = key("verdict", &["http://g", "gk_secret", ""]);
        assert!(one.starts_with("gatehouse:v1:verdict:"));
        assert!(!one.contains("secret"));
        assert_ne!(key("verdict", &["ab", "c"]), key("verdict", &["a", "bc"]));
        assert_ne!(one, key("verdict", &["http://g", "gk_secret", "org_1"]));
    }
}
