//! What this instance has already verified, kept in its own memory: Spin
//! reuses an instance for many requests, so a caller who sends the same
//! credential again is answered without the key-value store, the JWK Set
//! or a signature check. Nothing is kept past the moment the same check
//! would stop accepting it (a JWT's `exp`, a verdict's cache bound), and
//! an instance is never older than the host lets it be, so a memo never
//! outlives what the key-value cache would keep.

use std::cell::RefCell;
use std::collections::HashMap;
use std::thread::LocalKey;

/// The most entries a memo holds; past it, expired ones go, then all.
pub const CAPACITY: usize = 1024;

/// A memo: a key's value and the Unix second it stops being good.
pub type Memo<V> = RefCell<HashMap<String, (V, i64)>>;

/// The value under `key`, while `now` is before its end.
pub fn get<V: Clone>(memo: &'static LocalKey<Memo<V>>, key: &str, now: i64) -> Option<V> {
    memo.with(|m| {
        let mut m = m.borrow_mut();
        match m.get(key) {
            Some((value, until)) if now < *until => Some(value.clone()),
            Some(_) => {
                m.remove(key);
                None
            }
            None => None,
        }
    })
}

/// Keeps `value` under `key` until `until`.
pub fn put<V>(memo: &'static LocalKey<Memo<V>>, key: String, value: V, until: i64, now: i64) {
    memo.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= CAPACITY {
            m.retain(|_, (_, end)| now < *end);
            if m.len() >= CAPACITY {
                m.clear();
            }
        }
        m.insert(key, (value, until));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SEEN: Memo<u32> = RefCell::new(HashMap::new());
    }

    #[test]
    fn an_entry_is_good_until_its_end_and_a_full_memo_makes_room() {
        put(&SEEN, "a".into(), 1, 100, 0);
        assert_eq!(get(&SEEN, "a", 99), Some(1));
        assert_eq!(get(&SEEN, "a", 100), None);
        assert_eq!(get(&SEEN, "a", 0), None, "an ended entry is gone");
        for i in 0..CAPACITY {
            put(
                &SEEN,
                format!("k{i}"),
                2,
                if i % 2 == 0 { 10 } else { 1_000 },
                0,
            );
        }
        // Full: the ended half goes, the rest stays.
        put(&SEEN, "new".into(), 3, 1_000, 500);
        assert_eq!(get(&SEEN, "k1", 500), Some(2));
        assert_eq!(get(&SEEN, "new", 500), Some(3));
        SEEN.with(|m| assert_eq!(m.borrow().len(), CAPACITY / 2 + 1));
    }
}
