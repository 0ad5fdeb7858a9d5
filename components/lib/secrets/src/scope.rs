//! Where a secret lives: its org, one of its teams, or one of its
//! members; and secret names and references.

/// A secret's scope inside its org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The org itself.
    Org,
    /// One team of the org.
    Team(String),
    /// One member of the org.
    User(String),
}

impl Scope {
    /// `org`, `team` or `user`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Org => "org",
            Scope::Team(_) => "team",
            Scope::User(_) => "user",
        }
    }

    /// The team's or user's id; the org's for the org scope.
    pub fn id<'a>(&'a self, org_id: &'a str) -> &'a str {
        match self {
            Scope::Org => org_id,
            Scope::Team(id) | Scope::User(id) => id,
        }
    }

    /// `org`, `team/<id>` or `user/<id>`, as references and bindings
    /// spell it.
    pub fn path(&self) -> String {
        match self {
            Scope::Org => "org".into(),
            Scope::Team(id) => format!("team/{id}"),
            Scope::User(id) => format!("user/{id}"),
        }
    }
}

/// Whether `name` is a secret name: a letter or `_`, then up to 127
/// letters, digits, `_`, `-` and `.` (environment-variable friendly).
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A reference (`org/NAME`, `team/<id>/NAME`, `user/<id>/NAME`) parsed.
pub fn parse_reference(reference: &str) -> Option<(Scope, &str)> {
    let parts: Vec<&str> = reference.split('/').collect();
    let (scope, name) = match parts.as_slice() {
        ["org", name] => (Scope::Org, *name),
        ["team", id, name] if !id.is_empty() => (Scope::Team((*id).to_string()), *name),
        ["user", id, name] if !id.is_empty() => (Scope::User((*id).to_string()), *name),
        _ => return None,
    };
    valid_name(name).then_some((scope, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_references_are_checked() {
        assert!(valid_name("OPENAI_API_KEY") && valid_name("_x.y-z"));
        assert!(
            !valid_name("")
                && !valid_name("1abc")
                && !valid_name("a b")
                && !valid_name(&"a".repeat(129))
        );
        assert_eq!(parse_reference("org/OPENAI"), Some((Scope::Org, "OPENAI")));
        assert_eq!(
            parse_reference("team/tm_1/TOKEN"),
            Some((Scope::Team("tm_1".into()), "TOKEN"))
        );
        assert!(parse_reference("user//X").is_none() && parse_reference("org/a/b").is_none());
        assert!(parse_reference("org/1bad").is_none());
    }
}
