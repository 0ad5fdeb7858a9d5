//! Who an event or a quota is about: `org:<id>`, `team:<id>`, `user:<id>`
//! or `key:<id>`, parsed at the boundary. Whether the id belongs to the
//! caller's org is the store's question, not this one's.

/// The kind of thing a subject names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The org itself.
    Org,
    /// A team of the org.
    Team,
    /// A member of the org.
    User,
    /// An API key of the org.
    Key,
}

impl Kind {
    /// The name used in subjects and rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Org => "org",
            Kind::Team => "team",
            Kind::User => "user",
            Kind::Key => "key",
        }
    }
}

/// A parsed subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// What it names.
    pub kind: Kind,
    /// Its id.
    pub id: String,
}

/// Ids are the app's own (`usr_…`, `team_…`): short and plain.
fn plain_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `kind:id` with a known kind and a plain id.
pub fn parse(text: &str) -> Option<Subject> {
    let (kind, id) = text.split_once(':')?;
    let kind = match kind {
        "org" => Kind::Org,
        "team" => Kind::Team,
        "user" => Kind::User,
        "key" => Kind::Key,
        _ => return None,
    };
    plain_id(id).then(|| Subject {
        kind,
        id: id.to_string(),
    })
}

/// A quota's entity: `org` (the caller's org), `team:<id>` or `user:<id>`.
/// `org` stands for the org the request acts in, which it must name
/// when written out (`org:<id>`).
pub fn parse_entity(text: &str, org_id: &str) -> Option<Subject> {
    if text == "org" {
        return Some(Subject {
            kind: Kind::Org,
            id: org_id.to_string(),
        });
    }
    parse(text).filter(|s| s.kind != Kind::Key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_read_as_kind_and_plain_id() {
        let user = parse("user:usr_0a1b").unwrap();
        assert_eq!((user.kind, user.id.as_str()), (Kind::User, "usr_0a1b"));
        assert_eq!(parse("key:key_1").map(|s| s.kind), Some(Kind::Key));
        for bad in [
            "user", "user:", "robot:r1", "user:a b", "USER:u1", ":u1", "user:u/1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_quota_entity_is_the_org_a_team_or_a_user() {
        assert_eq!(
            parse_entity("org", "org_1").map(|s| (s.kind, s.id)),
            Some((Kind::Org, "org_1".to_string()))
        );
        assert_eq!(
            parse_entity("team:team_9", "org_1").map(|s| s.kind),
            Some(Kind::Team)
        );
        assert_eq!(parse_entity("key:key_1", "org_1"), None);
    }
}
