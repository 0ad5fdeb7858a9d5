//! Preferences of notifications, kept in the preferences documents of an
//! org, a team and a user under the `notifications` key:
//!
//! ```json
//! {"notifications": {"key.expiring": {"email": false, "in_app": true},
//!                    "sms_number": "+15551234567"}}
//! ```
//!
//! Each kind's channel is on or off by the most specific layer that says
//! so: the user's, then the nearest of the user's teams up the tree (a
//! team the user is in, then its parent, …; between teams at the same
//! distance, on wins, so one team cannot silence what another asked
//! for), then the org's, then the kind's default. A critical kind's
//! default channels are always on, and no layer may turn them off.
//! `sms_number` (E.164) is where the user's text messages go; only a
//! user's own document holds one.

use gatehouse_http::FieldError;
use serde::Serialize;
use serde_json::Value;

use crate::kinds::{Channel, KINDS, Kind, kind};

/// The key of the preferences document this crate owns.
pub const KEY: &str = "notifications";
/// The key, inside [`KEY`], of the user's number for text messages.
pub const SMS_NUMBER: &str = "sms_number";

/// Whose preferences document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// An org's.
    Org,
    /// A team's.
    Team,
    /// A user's own.
    User,
}

/// The field errors of the `notifications` key of a preferences document
/// written at `level`; none when it is absent or valid.
pub fn validate(settings: &Value, level: Level) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(section) = settings.get(KEY) else {
        return errors;
    };
    let base = format!("/{KEY}");
    let entries = match section {
        Value::Null => return errors,
        Value::Object(entries) => entries,
        _ => {
            errors.push(FieldError::new(
                base,
                "invalid_type",
                "notifications is an object of kinds",
            ));
            return errors;
        }
    };
    for (name, value) in entries {
        let pointer = format!("{base}/{}", escape(name));
        if name == SMS_NUMBER {
            sms_number_errors(&pointer, value, level, &mut errors);
            continue;
        }
        let Some(kind) = kind(name) else {
            let known: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            errors.push(FieldError::new(
                pointer,
                "unknown_kind",
                format!(
                    "no such notification kind; the kinds are {}",
                    known.join(", ")
                ),
            ));
            continue;
        };
        match value {
            Value::Null => {}
            Value::Object(channels) => {
                for (channel, on) in channels {
                    channel_errors(kind, &pointer, channel, on, &mut errors);
                }
            }
            _ => errors.push(FieldError::new(
                pointer,
                "invalid_type",
                "a kind's preferences are an object of channels, each true or false",
            )),
        }
    }
    errors
}

fn channel_errors(kind: &Kind, base: &str, name: &str, on: &Value, errors: &mut Vec<FieldError>) {
    let pointer = format!("{base}/{}", escape(name));
    let Some(channel) = Channel::parse(name).filter(|c| kind.offers(*c)) else {
        let offered: Vec<&str> = kind.channels.iter().map(|c| c.as_str()).collect();
        errors.push(FieldError::new(
            pointer,
            "unknown_channel",
            format!("{} is sent on {}", kind.name, offered.join(", ")),
        ));
        return;
    };
    match on {
        Value::Null | Value::Bool(true) => {}
        Value::Bool(false) if kind.critical && kind.default_on(channel) => {
            errors.push(FieldError::new(
                pointer,
                "critical_kind",
                format!(
                    "{} is critical: it is always sent on {}",
                    kind.name,
                    channel.as_str()
                ),
            ));
        }
        Value::Bool(false) => {}
        _ => errors.push(FieldError::new(
            pointer,
            "invalid_type",
            "a channel is true (on) or false (off)",
        )),
    }
}

fn sms_number_errors(pointer: &str, value: &Value, level: Level, errors: &mut Vec<FieldError>) {
    if level != Level::User {
        errors.push(FieldError::new(
            pointer,
            "user_only",
            "only a user's own preferences hold an sms_number",
        ));
        return;
    }
    match value {
        Value::Null => {}
        Value::String(number) if valid_number(number) => {}
        _ => errors.push(FieldError::new(
            pointer,
            "invalid_phone_number",
            "sms_number is an E.164 number: + and 8 to 15 digits",
        )),
    }
}

/// Whether `number` is E.164: `+`, then 8 to 15 digits, the first not 0.
pub fn valid_number(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A JSON pointer's reference token for `key` (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The preferences documents that decide a user's notifications: the
/// org's (empty when the notification is about no org), the documents of
/// the user's teams and their ancestors with their distance (0: a team
/// the user is in), and the user's own.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// The org's document.
    pub org: Value,
    /// Team documents, each with its distance up from a team of the user.
    pub teams: Vec<(u32, Value)>,
    /// The user's document.
    pub user: Value,
}

/// What decided a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The kind's default.
    Default,
    /// The org's preferences.
    Org,
    /// A team's preferences.
    Team,
    /// The user's own.
    User,
    /// The kind is critical: always on.
    Critical,
}

/// One channel of a kind, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The channel.
    pub channel: Channel,
    /// Whether the kind is sent on it.
    pub on: bool,
    /// Which layer decided.
    pub source: Source,
}

fn said(doc: &Value, kind: &Kind, channel: Channel) -> Option<bool> {
    doc.get(KEY)?
        .get(kind.name)?
        .get(channel.as_str())?
        .as_bool()
}

/// Each channel `kind` offers, on or off for the user `layers` describe.
pub fn resolve(kind: &Kind, layers: &Layers) -> Vec<Setting> {
    kind.channels
        .iter()
        .map(|&channel| {
            let (on, source) = if kind.critical && kind.default_on(channel) {
                (true, Source::Critical)
            } else if let Some(on) = said(&layers.user, kind, channel) {
                (on, Source::User)
            } else if let Some(on) = nearest_team(&layers.teams, kind, channel) {
                (on, Source::Team)
            } else if let Some(on) = said(&layers.org, kind, channel) {
                (on, Source::Org)
            } else {
                (kind.default_on(channel), Source::Default)
            };
            Setting {
                channel,
                on,
                source,
            }
        })
        .collect()
}

fn nearest_team(teams: &[(u32, Value)], kind: &Kind, channel: Channel) -> Option<bool> {
    let mut best: Option<(u32, bool)> = None;
    for (distance, doc) in teams {
        let Some(on) = said(doc, kind, channel) else {
            continue;
        };
        best = match best {
            Some((d, _)) if *distance > d => best,
            Some((d, was)) if *distance == d => Some((d, was || on)),
            _ => Some((*distance, on)),
        };
    }
    best.map(|(_, on)| on)
}

/// The user's number for text messages, from their own document.
pub fn sms_number(user: &Value) -> Option<&str> {
    user.get(KEY)?
        .get(SMS_NUMBER)?
        .as_str()
        .filter(|n| valid_number(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind_named(name: &str) -> &'static Kind {
        kind(name).expect("a kind of the table")
    }

    fn on(kind: &Kind, layers: &Layers, channel: Channel) -> (bool, Source) {
        let s = resolve(kind, layers)
            .into_iter()
            .find(|s| s.channel == channel)
            .expect("an offered channel");
        (s.on, s.source)
    }

    #[test]
    fn the_user_beats_the_nearest_team_which_beats_the_org_which_beats_the_default() {
        let k = kind_named("key.expiring");
        let mut layers = Layers::default();
        assert_eq!(on(k, &layers, Channel::Email), (true, Source::Default));
        layers.org = json!({"notifications": {"key.expiring": {"email": false}}});
        assert_eq!(on(k, &layers, Channel::Email), (false, Source::Org));
        layers.teams = vec![
            (
                1,
                json!({"notifications": {"key.expiring": {"email": false}}}),
            ),
            (
                0,
                json!({"notifications": {"key.expiring": {"email": true}}}),
            ),
        ];
        assert_eq!(on(k, &layers, Channel::Email), (true, Source::Team));
        layers.user = json!({"notifications": {"key.expiring": {"email": false}}});
        assert_eq!(on(k, &layers, Channel::Email), (false, Source::User));
        // Other channels keep their own resolution.
        assert_eq!(on(k, &layers, Channel::InApp), (true, Source::Default));
        assert_eq!(on(k, &layers, Channel::Sms), (false, Source::Default));
    }

    #[test]
    fn between_teams_at_one_distance_on_wins_and_farther_ones_lose() {
        let k = kind_named("key.expiring");
        let off = json!({"notifications": {"key.expiring": {"sms": false}}});
        let yes = json!({"notifications": {"key.expiring": {"sms": true}}});
        let layers = Layers {
            teams: vec![(0, off.clone()), (0, yes.clone()), (2, off.clone())],
            ..Layers::default()
        };
        assert_eq!(on(k, &layers, Channel::Sms), (true, Source::Team));
        let layers = Layers {
            teams: vec![(1, yes), (0, off)],
            ..Layers::default()
        };
        assert_eq!(on(k, &layers, Channel::Sms), (false, Source::Team));
    }

    #[test]
    fn a_critical_kind_stays_on_its_defaults_whatever_is_stored() {
        let k = kind_named("password.changed");
        let layers = Layers {
            user: json!({"notifications": {"password.changed": {"email": false, "sms": true}}}),
            ..Layers::default()
        };
        assert_eq!(on(k, &layers, Channel::Email), (true, Source::Critical));
        assert_eq!(on(k, &layers, Channel::Sms), (true, Source::User));
    }

    #[test]
    fn muting_a_critical_kind_is_refused_at_every_level() {
        let doc = json!({"notifications": {"mfa.changed": {"email": false}}});
        for level in [Level::Org, Level::Team, Level::User] {
            let errors = validate(&doc, level);
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].code, "critical_kind");
            assert_eq!(errors[0].pointer, "/notifications/mfa.changed/email");
        }
        // Turning on a channel it does not use by default is fine.
        let doc = json!({"notifications": {"mfa.changed": {"sms": true, "email": true}}});
        assert!(validate(&doc, Level::User).is_empty());
    }

    #[test]
    fn unknown_kinds_channels_and_values_are_named() {
        let doc = json!({"notifications": {
            "nope.never": {"email": true},
            "sign_in.new_device": {"email": true, "in_app": "yes"},
        }});
        let mut codes: Vec<(String, String)> = validate(&doc, Level::Org)
            .into_iter()
            .map(|e| (e.pointer, e.code))
            .collect();
        codes.sort();
        assert_eq!(
            codes,
            vec![
                ("/notifications/nope.never".into(), "unknown_kind".into()),
                (
                    "/notifications/sign_in.new_device/email".into(),
                    "unknown_channel".into()
                ),
                (
                    "/notifications/sign_in.new_device/in_app".into(),
                    "invalid_type".into()
                ),
            ]
        );
        assert_eq!(
            validate(&json!({"notifications": []}), Level::User)[0].code,
            "invalid_type"
        );
        assert!(validate(&json!({"theme": "dark"}), Level::Org).is_empty());
    }

    #[test]
    fn an_sms_number_is_e164_and_only_a_users_own() {
        let doc = json!({"notifications": {"sms_number": "+15551234567"}});
        assert!(validate(&doc, Level::User).is_empty());
        assert_eq!(validate(&doc, Level::Org)[0].code, "user_only");
        assert_eq!(sms_number(&doc), Some("+15551234567"));
        for bad in ["15551234567", "+1555", "+0123456789", "+1555123456x"] {
            let doc = json!({"notifications": {"sms_number": bad}});
            assert_eq!(validate(&doc, Level::User)[0].code, "invalid_phone_number");
            assert_eq!(sms_number(&doc), None);
        }
    }
}
