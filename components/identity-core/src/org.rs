//! Orgs, team trees and preferences: the rules, apart from storage.

use serde_json::{Map, Value};

/// How deep a team tree may go: a top-level team has depth 1.
pub const MAX_TEAM_DEPTH: usize = 8;

/// Whether `handle` is a valid org handle: 3 to 40 characters of lower-case
/// letters, digits and single hyphens, starting with a letter and not
/// ending with a hyphen (it appears in URLs and headers as it is).
pub fn valid_handle(handle: &str) -> bool {
    let bytes = handle.as_bytes();
    (3..=40).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !handle.ends_with('-')
        && !handle.contains("--")
}

/// Why a team cannot move under a new parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeError {
    /// The new parent is the team itself or one of its descendants.
    Cycle,
    /// The team's subtree would reach deeper than [`MAX_TEAM_DEPTH`].
    TooDeep,
}

/// Checks a team's placement under `parent_chain`: the new parent and its
/// ancestors, nearest first (empty for a top-level team). `subtree_height`
/// is 1 for a team without children, 2 with children only, and so on.
pub fn check_placement(
    team_id: &str,
    parent_chain: &[String],
    subtree_height: usize,
) -> Result<(), TreeError> {
    if parent_chain.iter().any(|id| id == team_id) {
        return Err(TreeError::Cycle);
    }
    if parent_chain.len() + subtree_height > MAX_TEAM_DEPTH {
        return Err(TreeError::TooDeep);
    }
    Ok(())
}

/// Settings resolved from the least to the most specific layer (org, the
/// team's ancestors from the top, the team, the user): objects merge key by
/// key, any other value (arrays included) replaces what was there, and
/// `null` removes a key.
pub fn resolve(layers: &[Value]) -> Value {
    let mut effective = Value::Object(Map::new());
    for layer in layers {
        merge(&mut effective, layer);
    }
    effective
}

fn merge(into: &mut Value, layer: &Value) {
    match (into, layer) {
        (Value::Object(base), Value::Object(top)) => {
            for (key, value) in top {
                if value.is_null() {
                    base.remove(key);
                } else if let Some(existing) = base.get_mut(key) {
                    merge(existing, value);
                } else {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn handles_are_lower_case_words_joined_by_single_hyphens() {
        for ok in ["acme", "acme-corp", "a1b2c3", "abc"] {
            assert!(valid_handle(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Acme",
            "1acme",
            "acme-",
            "-acme",
            "ac--me",
            "acme corp",
            "acmé",
            "acme_corp",
            &"a".repeat(41),
        ] {
            assert!(!valid_handle(bad), "{bad}");
        }
    }

    fn chain(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_team_cannot_move_under_itself_or_its_descendants() {
        assert_eq!(
            check_placement("t1", &chain(&["t1"]), 1),
            Err(TreeError::Cycle)
        );
        // t3's ancestors are t2 then t1: moving t1 under t3 closes a loop.
        assert_eq!(
            check_placement("t1", &chain(&["t3", "t2", "t1"]), 3),
            Err(TreeError::Cycle)
        );
        assert_eq!(
            check_placement("t4", &chain(&["t3", "t2", "t1"]), 1),
            Ok(())
        );
        assert_eq!(check_placement("t4", &[], 1), Ok(()));
    }

    #[test]
    fn depth_counts_the_whole_subtree_that_moves() {
        let seven: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
        assert_eq!(check_placement("t", &seven, 1), Ok(()));
        assert_eq!(check_placement("t", &seven, 2), Err(TreeError::TooDeep));
        let eight: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
        assert_eq!(check_placement("t", &eight, 1), Err(TreeError::TooDeep));
    }

    #[test]
    fn the_most_specific_layer_wins_key_by_key() {
        let org =
            json!({"theme": "light", "locale": "en", "limits": {"daily": 10, "monthly": 100}});
        let team = json!({"limits": {"daily": 20}, "tags": ["a", "b"]});
        let user = json!({"theme": "dark", "tags": ["c"], "locale": null});
        assert_eq!(
            resolve(&[org, team, user]),
            json!({"theme": "dark", "limits": {"daily": 20, "monthly": 100}, "tags": ["c"]})
        );
        assert_eq!(resolve(&[]), json!({}));
    }
}
