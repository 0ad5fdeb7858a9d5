//! What a request tells the audit trail about itself while it is served:
//! who turned out to be calling, and which fields its body set.
//!
//! The trail is a slot in the request's extensions, put there by
//! [`serve`](super::serve) for the routes it records; authentication fills
//! the actor, the JSON body reader the field names. It belongs to one
//! request, so requests served at once by one instance never share one.

use std::sync::{Arc, Mutex};

use crate::principal::Principal;

/// Who a request acted as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A credential's principal.
    Principal(Principal),
    /// A person the request itself names rather than a credential: the
    /// account signing in, registering or resetting its password.
    User(String),
    /// The deployment's operator token.
    Operator,
}

/// What the trail learned about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    /// Who, once known.
    pub actor: Option<Actor>,
    /// The top-level field names of the JSON body, sorted; never values.
    pub fields: Vec<String>,
}

/// The slot of one request.
#[derive(Debug, Clone, Default)]
pub struct Trail(Arc<Mutex<Notes>>);

/// The most field names kept, and the longest name.
const MAX_FIELDS: usize = 50;
const MAX_FIELD_LEN: usize = 64;

impl Trail {
    /// The request's slot, if its route is recorded.
    pub fn of(extensions: &http::Extensions) -> Option<Trail> {
        extensions.get::<Trail>().cloned()
    }

    /// The request's slot, or a detached one that keeps what it is told
    /// to itself: for handlers that learn who is acting after the request
    /// is consumed.
    pub fn of_request<B>(req: &http::Request<B>) -> Trail {
        Trail::of(req.extensions()).unwrap_or_default()
    }

    /// Records who the request acts as; a later, more precise answer
    /// (the principal after impersonation) replaces an earlier one.
    pub fn set_actor(&self, actor: Actor) {
        if let Ok(mut notes) = self.0.lock() {
            notes.actor = Some(actor);
        }
    }

    /// Records the top-level field names of a JSON object body.
    pub fn set_fields(&self, body: &[u8]) {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
            return;
        };
        let mut fields: Vec<String> = map
            .keys()
            .take(MAX_FIELDS)
            .map(|k| k.chars().take(MAX_FIELD_LEN).collect())
            .collect();
        fields.sort();
        if let Ok(mut notes) = self.0.lock() {
            notes.fields = fields;
        }
    }

    /// What was learned.
    pub fn notes(&self) -> Notes {
        self.0.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

/// Records the actor on the request's trail, when it has one.
pub fn note<B>(req: &http::Request<B>, actor: Actor) {
    if let Some(trail) = Trail::of(req.extensions()) {
        trail.set_actor(actor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_kept_sorted_and_values_never() {
        let trail = Trail::default();
        trail.set_fields(br#"{"password":"hunter2","email":"a@example.com"}"#);
        assert_eq!(trail.notes().fields, vec!["email", "password"]);
        let notes = format!("{:?}", trail.notes());
        assert!(!notes.contains("hunter2"));
        trail.set_fields(b"[1,2]");
        assert_eq!(trail.notes().fields, vec!["email", "password"]);
    }

    #[test]
    fn a_request_without_a_slot_records_nothing() {
        let req = http::Request::new(());
        note(&req, Actor::Operator);
        assert!(Trail::of(req.extensions()).is_none());
        let mut req = http::Request::new(());
        let trail = Trail::default();
        req.extensions_mut().insert(trail.clone());
        note(&req, Actor::User("usr_1".into()));
        assert_eq!(trail.notes().actor, Some(Actor::User("usr_1".into())));
    }
}
