//! The bodies of `POST /v1/quotas/reserve` and of a reservation's commit,
//! and a reservation as shown.

use gatehouse_http::FieldError;
use gatehouse_http::json::Validate;
use serde::{Deserialize, Serialize};

use crate::model::{MAX_UNITS, Use};

/// How long a reservation holds when the body does not say.
pub const DEFAULT_TTL: i64 = 300;
/// The longest a reservation holds: work that runs longer reserves again.
pub const MAX_TTL: i64 = 3600;

/// `POST /v1/quotas/reserve`: a use, held for `ttl_seconds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserve {
    pub subject: String,
    pub meter: String,
    pub amount: i64,
    #[serde(default = "default_ttl")]
    pub ttl_seconds: i64,
    #[serde(default)]
    pub item_type: Option<String>,
    #[serde(default)]
    pub item_id: Option<String>,
}

fn default_ttl() -> i64 {
    DEFAULT_TTL
}

impl Reserve {
    /// The use it holds, checked as a consume's is.
    pub fn as_use(&self) -> Use {
        Use {
            subject: self.subject.clone(),
            meter: self.meter.clone(),
            amount: self.amount,
            item_type: self.item_type.clone(),
            item_id: self.item_id.clone(),
        }
    }
}

impl Validate for Reserve {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = self.as_use().validate().err().unwrap_or_default();
        if !(1..=MAX_TTL).contains(&self.ttl_seconds) {
            errors.push(FieldError::new(
                "/ttl_seconds",
                "invalid_range",
                format!("ttl_seconds must be 1 to {MAX_TTL}"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `POST /v1/quotas/reservations/{id}/commit`: the units actually used,
/// at most those reserved (checked against the reservation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    pub amount: i64,
}

impl Validate for Commit {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if (0..=MAX_UNITS).contains(&self.amount) {
            Ok(())
        } else {
            Err(vec![FieldError::new(
                "/amount",
                "invalid_range",
                format!("amount must be 0 to {MAX_UNITS}"),
            )])
        }
    }
}

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Holding its amount.
    Held,
    /// Ended by a commit: its actual amount counted.
    Committed,
    /// Ended by a release: nothing counted.
    Released,
    /// Ended by its expiry: nothing counted.
    Expired,
}

impl State {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Held => "held",
            State::Committed => "committed",
            State::Released => "released",
            State::Expired => "expired",
        }
    }

    /// From the stored name.
    pub fn parse(name: &str) -> Option<State> {
        [
            State::Held,
            State::Committed,
            State::Released,
            State::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// A reservation as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Reservation {
    /// `rsv_…`.
    pub id: String,
    /// The meter's key.
    pub meter: String,
    /// `user:<id>`.
    pub subject: String,
    /// Units reserved.
    pub amount: i64,
    /// The item type it was reserved for, if any.
    pub item_type: Option<String>,
    /// The item it was reserved for, if any.
    pub item_id: Option<String>,
    /// Units counted by the commit; none unless committed.
    pub committed: Option<i64>,
    /// Its state.
    pub state: State,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: from then on it holds nothing.
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserve(amount: i64, ttl_seconds: i64) -> Reserve {
        Reserve {
            subject: "user:usr_1".into(),
            meter: "tokens".into(),
            amount,
            ttl_seconds,
            item_type: None,
            item_id: None,
        }
    }

    #[test]
    fn a_reservation_holds_for_one_second_to_an_hour() {
        assert!(reserve(5, 1).validate().is_ok());
        assert!(reserve(5, MAX_TTL).validate().is_ok());
        for ttl in [0, MAX_TTL + 1] {
            assert_eq!(
                reserve(5, ttl).validate().unwrap_err()[0].pointer,
                "/ttl_seconds"
            );
        }
        assert_eq!(reserve(0, 60).validate().unwrap_err()[0].pointer, "/amount");
    }

    #[test]
    fn a_commit_may_count_nothing_but_never_less() {
        assert!(Commit { amount: 0 }.validate().is_ok());
        assert!(Commit { amount: -1 }.validate().is_err());
    }
}
