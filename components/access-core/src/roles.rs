//! Roles' permission sets, and who may manage a group's members.
//!
//! A group is the set of roles named `group:role`. A subject holding, through
//! a role of group G, the permission [`ADD_USER`] may grant G's roles to
//! members; [`REMOVE_USER`] may revoke them. The permission counts only in
//! its own group: `add-user` held through `other:admin` manages `other`,
//! not `research`.

use crate::names::{group_of, valid_permission};

/// Grants a group's roles to members (held through a role of that group).
pub const ADD_USER: &str = "add-user";
/// Revokes a group's roles from members (held through a role of that group).
pub const REMOVE_USER: &str = "remove-user";
/// Asks `/v1/authz/check` and `/v1/authz/filter` on behalf of another member.
pub const AUTHZ_CHECK: &str = "authz:check";
/// Manages resource grants and ownership edges.
pub const AUTHZ_RESOURCES: &str = "authz:resources";
/// The most permissions a role may have.
pub const MAX_PERMISSIONS: usize = 100;

/// A wrong permission list: the index of the first bad entry, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionError {
    /// Entry `index` is not a permission.
    Invalid(usize),
    /// More than [`MAX_PERMISSIONS`].
    TooMany,
}

/// The permissions as stored: every one valid, sorted, each once.
pub fn normalize(permissions: &[String]) -> Result<Vec<String>, PermissionError> {
    if let Some(index) = permissions.iter().position(|p| !valid_permission(p)) {
        return Err(PermissionError::Invalid(index));
    }
    let mut set: Vec<String> = permissions.to_vec();
    set.sort();
    set.dedup();
    if set.len() > MAX_PERMISSIONS {
        return Err(PermissionError::TooMany);
    }
    Ok(set)
}

/// A change to who holds a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Granting the role.
    Add,
    /// Revoking it.
    Remove,
}

impl MemberChange {
    /// The group permission the change needs.
    pub fn permission(self) -> &'static str {
        match self {
            MemberChange::Add => ADD_USER,
            MemberChange::Remove => REMOVE_USER,
        }
    }
}

/// Whether a subject holding `held` (role name, its permissions) may make
/// `change` to role `target` as a manager of `target`'s group. Roles outside
/// any group are managed by org admins only, so this is `false` for them.
pub fn manages_group_of(
    held: &[(String, Vec<String>)],
    target: &str,
    change: MemberChange,
) -> bool {
    let Some(group) = group_of(target) else {
        return false;
    };
    held.iter().any(|(name, permissions)| {
        group_of(name) == Some(group) && permissions.iter().any(|p| p == change.permission())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn permissions_are_stored_sorted_and_unique() {
        assert_eq!(
            normalize(&strings(&["write", "read", "write"])),
            Ok(strings(&["read", "write"]))
        );
        assert_eq!(normalize(&[]), Ok(vec![]));
        assert_eq!(
            normalize(&strings(&["read", "Bad"])),
            Err(PermissionError::Invalid(1))
        );
        let many: Vec<String> = (0..=MAX_PERMISSIONS).map(|i| format!("p{i}")).collect();
        assert_eq!(normalize(&many), Err(PermissionError::TooMany));
    }

    #[test]
    fn add_user_in_a_group_manages_that_groups_roles_only() {
        let held = vec![
            (
                "mygroup:admin".to_string(),
                strings(&["add-user", "read", "remove-user"]),
            ),
            ("other:write".to_string(), strings(&["read", "write"])),
        ];
        assert!(manages_group_of(&held, "mygroup:write", MemberChange::Add));
        assert!(manages_group_of(
            &held,
            "mygroup:admin",
            MemberChange::Remove
        ));
        assert!(!manages_group_of(&held, "other:write", MemberChange::Add));
        assert!(!manages_group_of(&held, "auditor", MemberChange::Add));
    }

    #[test]
    fn add_and_remove_are_separate_permissions() {
        let adder = vec![("g:lead".to_string(), strings(&["add-user"]))];
        assert!(manages_group_of(&adder, "g:member", MemberChange::Add));
        assert!(!manages_group_of(&adder, "g:member", MemberChange::Remove));
        let elsewhere = vec![("h:lead".to_string(), strings(&["add-user", "remove-user"]))];
        assert!(!manages_group_of(&elsewhere, "g:member", MemberChange::Add));
        // A role outside any group whose name looks like the group is no member of it.
        let lookalike = vec![("g".to_string(), strings(&["add-user"]))];
        assert!(!manages_group_of(&lookalike, "g:member", MemberChange::Add));
    }
}
