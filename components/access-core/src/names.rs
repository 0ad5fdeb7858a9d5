//! Names: what a role, a group, a permission, a service, a collection, a
//! policy, an action and a resource id may look like, and path segments.
//!
//! Names are lower-case so that two spellings never name two things; they
//! travel in URLs, JSON and SQL parameters, never in SQL text.

/// The longest simple name (a group, a role's own part, a service, …).
pub const MAX_NAME: usize = 64;
/// The longest permission (`:`-separated simple names).
pub const MAX_PERMISSION: usize = 100;
/// The longest resource id.
pub const MAX_RESOURCE_ID: usize = 200;

/// A simple name: 1 to 64 of `a-z 0-9 _ . -`, starting with a letter or
/// digit. Services, collections, policies, actions and each part of a role
/// name are simple names.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && name.len() <= MAX_NAME
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// A role name: a simple name (`auditor`), or `group:role`
/// (`research:admin`), which makes the role one of group `research`'s.
pub fn valid_role_name(name: &str) -> bool {
    match name.split_once(':') {
        Some((group, role)) => valid_name(group) && valid_name(role),
        None => valid_name(name),
    }
}

/// The group a role belongs to: `research` for `research:admin`.
pub fn group_of(role_name: &str) -> Option<&str> {
    role_name.split_once(':').map(|(group, _)| group)
}

/// A permission: up to 100 characters of simple names joined by `:`
/// (`read`, `add-user`, `authz:check`, `datasources:read-all`).
pub fn valid_permission(permission: &str) -> bool {
    permission.len() <= MAX_PERMISSION && permission.split(':').all(valid_name)
}

/// A resource id: 1 to 200 characters, no control characters, no `/` (ids
/// travel as one path segment).
pub fn valid_resource_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_RESOURCE_ID
        && !id.chars().any(|c| c.is_control() || c == '/')
}

/// A path segment with its `%XX` escapes decoded; `None` when an escape is
/// malformed or the result is not UTF-8.
pub fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string, decoded (`+` is a space).
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| decode_segment(&v.replace('+', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_names_are_lower_case_and_bounded() {
        for ok in [
            "read",
            "datasources",
            "a",
            "v1.2",
            "my_group",
            "x-y",
            "9lives",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        for bad in [
            "", "Read", "-x", "_x", ".x", "a b", "a:b", "a/b", "é", &long,
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn role_names_may_name_one_group() {
        assert!(valid_role_name("auditor"));
        assert!(valid_role_name("mygroup:admin"));
        assert_eq!(group_of("mygroup:admin"), Some("mygroup"));
        assert_eq!(group_of("auditor"), None);
        for bad in ["a:b:c", ":admin", "mygroup:", "MyGroup:admin", "$copy"] {
            assert!(!valid_role_name(bad), "{bad}");
        }
    }

    #[test]
    fn permissions_are_colon_separated_names() {
        for ok in ["read", "add-user", "authz:check", "datasources:read-all"] {
            assert!(valid_permission(ok), "{ok}");
        }
        let long = format!("{}:{}", "a".repeat(60), "b".repeat(60));
        for bad in ["", "read:", ":read", "READ", "re ad", &long] {
            assert!(!valid_permission(bad), "{bad}");
        }
    }

    #[test]
    fn resource_ids_are_one_printable_segment() {
        assert!(valid_resource_id("ds_1"));
        assert!(valid_resource_id("64f1c0ffee:ümlaut"));
        assert!(!valid_resource_id(""));
        assert!(!valid_resource_id("a/b"));
        assert!(!valid_resource_id("a\nb"));
        assert!(!valid_resource_id(&"x".repeat(MAX_RESOURCE_ID + 1)));
    }

    #[test]
    fn segments_and_query_values_are_percent_decoded() {
        assert_eq!(
            decode_segment("mygroup%3Aadmin").as_deref(),
            Some("mygroup:admin")
        );
        assert_eq!(decode_segment("plain").as_deref(), Some("plain"));
        assert_eq!(decode_segment("%C3%BC").as_deref(), Some("ü"));
        for bad in ["%", "%4", "%zz", "%FF"] {
            assert_eq!(decode_segment(bad), None, "{bad}");
        }
        let q = Some("limit=2&group=my%3Ag&x&name=a+b");
        assert_eq!(query_param(q, "group").as_deref(), Some("my:g"));
        assert_eq!(query_param(q, "name").as_deref(), Some("a b"));
        assert_eq!(query_param(q, "x").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param(None, "group"), None);
    }
}
