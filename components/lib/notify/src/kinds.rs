//! What a user can be notified of, on which channels, by default: one
//! table, so a capability that notifies of something new adds one line.

use serde::Serialize;

/// Where a notification reaches its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A mail through the outbox (`gatehouse-mail`).
    Email,
    /// A row the user reads at `GET /v1/me/notifications`.
    InApp,
    /// A text message through the configured SMS provider.
    Sms,
}

impl Channel {
    /// Every channel, in the order they are delivered.
    pub const ALL: [Channel; 3] = [Channel::InApp, Channel::Email, Channel::Sms];

    /// The channel's name in preferences and responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::InApp => "in_app",
            Channel::Sms => "sms",
        }
    }

    /// The channel named `name`, if any.
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// A kind of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Kind {
    /// Its name (`password.changed`).
    pub name: &'static str,
    /// What it tells, for people: a mail's subject, a list's title.
    pub title: &'static str,
    /// The channels it may be sent on.
    pub channels: &'static [Channel],
    /// The channels it is sent on unless a preference says otherwise.
    pub defaults: &'static [Channel],
    /// A critical kind cannot be muted: it always goes out on its default
    /// channels, and a preference turning one of them off is refused.
    pub critical: bool,
}

use Channel::{Email, InApp, Sms};

const ALL: &[Channel] = &[InApp, Email, Sms];
/// Kinds whose event already sends a mail of its own (the sign-in's
/// `new_sign_in` and the quota's `quota_alert` mails, with their details):
/// they offer no email channel, so nobody gets the same news twice.
const NO_MAIL: &[Channel] = &[InApp, Sms];

/// Every kind. Add a kind here, then call `gatehouse_notify::notify` where
/// it happens.
#[rustfmt::skip]
pub const KINDS: &[Kind] = &[
    Kind { name: "sign_in.new_device", title: "New sign-in to your account", channels: NO_MAIL, defaults: &[InApp], critical: false },
    Kind { name: "invitation.received", title: "You are invited to an organization", channels: ALL, defaults: &[InApp], critical: false },
    Kind { name: "password.changed", title: "Your password was changed", channels: ALL, defaults: &[InApp, Email], critical: true },
    Kind { name: "key.expiring", title: "An API key of yours expires soon", channels: ALL, defaults: &[InApp, Email], critical: false },
    Kind { name: "quota.threshold", title: "A quota reached an alert threshold", channels: NO_MAIL, defaults: &[InApp], critical: false },
    Kind { name: "payment.failed", title: "A payment of your organization failed", channels: ALL, defaults: &[InApp, Email], critical: true },
    Kind { name: "mfa.changed", title: "Two-factor sign-in was changed", channels: ALL, defaults: &[InApp, Email], critical: true },
];

/// The kind named `name`, if any.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

impl Kind {
    /// Whether it may be sent on `channel`.
    pub fn offers(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }

    /// Whether it is sent on `channel` when no preference says otherwise.
    pub fn default_on(&self, channel: Channel) -> bool {
        self.defaults.contains(&channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_name_and_defaults_among_its_channels() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert!(gatehouse_jobs::valid_kind(kind.name), "{}", kind.name);
            assert!(kind.name.contains('.'), "{}", kind.name);
            assert!(KINDS[..i].iter().all(|k| k.name != kind.name));
            assert!(
                kind.defaults.iter().all(|c| kind.offers(*c)),
                "{}",
                kind.name
            );
            assert!(!kind.defaults.is_empty(), "{}", kind.name);
        }
    }

    #[test]
    fn the_security_kinds_are_critical() {
        for name in ["password.changed", "payment.failed", "mfa.changed"] {
            assert_eq!(kind(name).map(|k| k.critical), Some(true), "{name}");
        }
        assert_eq!(kind("key.expiring").map(|k| k.critical), Some(false));
        assert!(kind("nothing.here").is_none());
    }

    #[test]
    fn channels_round_trip_by_name() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Channel::parse("push"), None);
    }
}
