//! The tenant context: every statement over org-owned rows goes through a
//! [`Tenant`], which binds the org as the statement's first parameter
//! (`?1`) and refuses any statement that is not bound to it.
//!
//! A `Tenant` is only made from a membership the caller holds, so a
//! handler holding one can neither name another org nor forget the org
//! filter: a statement without `org_id = ?1` (or, for an insert, an
//! `org_id` column taking `?1`) never runs.

use gatehouse_http::principal::OrgRole;
use gatehouse_http::{ErrorCode, Problem};

/// `sql` with comments and string literals blanked and white space folded,
/// so that nothing inside them can look like an org filter.
fn code_only(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // A literal, with '' as an escaped quote inside it.
                while let Some(d) = chars.next() {
                    if d == '\'' && chars.peek() != Some(&'\'') {
                        break;
                    }
                    if d == '\'' {
                        chars.next();
                    }
                }
                out.push_str("''");
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                out.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for d in chars.by_ref() {
                    if last == '*' && d == '/' {
                        break;
                    }
                    last = d;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parenthesis depth at each byte of `flat`.
fn depths(flat: &str) -> Vec<i32> {
    let mut depth = 0;
    flat.bytes()
        .map(|b| {
            match b {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            depth
        })
        .collect()
}

/// Whether the comparison `org_id = ?1` ending at `at` filters its
/// clause: it follows `WHERE` or `AND` (not `ON`, `OR`, `NOT`, `SELECT`…)
/// and no `OR` stands beside it at the same depth of the same clause.
/// `upper` is `flat` in upper case.
fn filters(flat: &str, upper: &str, depth: &[i32], start: usize) -> bool {
    let before = flat[..start].trim_end();
    let word = before
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if word != "WHERE" && word != "AND" {
        return false;
    }
    let level = depth[start];
    // The clause: from its WHERE at this depth to where the depth drops.
    let clause_start = upper[..start]
        .match_indices("WHERE ")
        .map(|(i, _)| i)
        .filter(|&i| depth[i] == level)
        .last()
        .unwrap_or(0);
    let clause_end = (start..flat.len())
        .find(|&i| depth[i] < level)
        .unwrap_or(flat.len());
    !upper[clause_start..clause_end]
        .match_indices(" OR ")
        .any(|(i, _)| depth[clause_start + i] == level)
}

/// Whether `sql` is bound to the org in `?1`, checked with comments and
/// string literals set aside:
///
/// - it filters on `org_id = ?1` (an alias may qualify the column:
///   `t.org_id = ?1`) right after `WHERE` or `AND`, with no `OR` beside it
///   in that clause; or it is an insert of one row whose column list starts
///   with `org_id` and whose values start with `?1`, and whose upsert (if
///   any) does not set `org_id`;
/// - no unnumbered `?` stands before the first `?1` (it would take the
///   number 1, that is, the org).
///
/// Unnumbered `?` after `?1` take the numbers 2, 3, … in order, so the
/// caller's own parameters follow the org; statements that need one of
/// theirs before the org filter (an `UPDATE … SET`) number them: `?2`.
/// This guards against forgetting the org, not against a statement
/// written to get around it.
pub fn is_scoped(sql: &str) -> bool {
    let flat = code_only(sql);
    let org_params: Vec<usize> = flat
        .match_indices("?1")
        .map(|(i, _)| i)
        .filter(|&i| !flat[i + 2..].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let Some(&first) = org_params.first() else {
        return false;
    };
    let head = &flat[..first];
    let unnumbered_before = head
        .match_indices('?')
        .any(|(i, _)| !head[i + 1..].starts_with(|c: char| c.is_ascii_digit()));
    if unnumbered_before {
        return false;
    }
    let depth = depths(&flat);
    let upper = flat.to_ascii_uppercase();
    let compared = org_params.iter().any(|&i| {
        flat[..i].strip_suffix("org_id = ").is_some_and(|head| {
            let column_start = head
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .map_or(0, |p| p + 1);
            let column = &head[column_start..];
            // `org_id` itself, or `alias.org_id`.
            (column.is_empty() || column.ends_with('.'))
                && filters(&flat, &upper, &depth, column_start)
        })
    });
    let inserted = upper[..first].starts_with("INSERT INTO ")
        && upper[..first].ends_with("VALUES (")
        && flat
            .split_once('(')
            .is_some_and(|(_, columns)| columns.trim_start().starts_with("org_id,"))
        && !upper[first..].contains("), (")
        && !upper
            .split_once("DO UPDATE SET")
            .is_some_and(|(_, set)| set.contains("ORG_ID ="));
    compared || inserted
}

/// Who acts in the org, as the tenant context knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user's id.
    pub user_id: String,
    /// The user's role in the org.
    pub role: OrgRole,
    /// The teams of the org the user belongs to.
    pub team_ids: Vec<String>,
}

impl Actor {
    /// Whether the actor administers the org.
    pub fn is_admin(&self) -> bool {
        self.role == OrgRole::Admin
    }

    /// 403 unless the actor administers the org. Only members get this
    /// far, so the org's existence is no secret to them.
    pub fn require_admin(&self) -> Result<(), Problem> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Problem::new(ErrorCode::Forbidden)
                .detail("only an admin of this organization may do this"))
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use store::Tenant;

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{Actor, is_scoped};
    use crate::db;
    use crate::membership::Membership;
    use gatehouse_http::Problem;
    use gatehouse_http::principal::{OrgRole, Principal, Subject};
    use spin_sdk::sqlite::{Connection, RowResult, Value};

    fn unscoped(sql: &str) -> Problem {
        eprintln!("tenant: refused a statement not bound to the org: {sql}");
        Problem::internal()
    }

    /// One org's rows, for one member of it.
    pub struct Tenant<'a> {
        conn: &'a Connection,
        org_id: String,
        actor: Actor,
    }

    impl<'a> Tenant<'a> {
        /// The tenant context for a membership the caller holds.
        pub fn for_member(conn: &'a Connection, user_id: &str, membership: &Membership) -> Self {
            Tenant {
                conn,
                org_id: membership.org_id.clone(),
                actor: Actor {
                    user_id: user_id.to_string(),
                    role: membership.role,
                    team_ids: membership.team_ids.clone(),
                },
            }
        }

        /// The context of an org the caller is entering with `role` without
        /// being a member yet: an org the caller is creating (as its admin),
        /// or one whose invitation the caller has just spent. Nothing else
        /// may call this.
        pub fn joining(
            conn: &'a Connection,
            user_id: &str,
            org_id: &str,
            role: gatehouse_http::principal::OrgRole,
        ) -> Self {
            Tenant {
                conn,
                org_id: org_id.to_string(),
                actor: Actor {
                    user_id: user_id.to_string(),
                    role,
                    team_ids: Vec::new(),
                },
            }
        }

        /// The context of background work for one org as a whole (a job
        /// that re-encrypts the org's secrets, say): its actor is the job
        /// kind, with no role of a member.
        pub fn for_job(conn: &'a Connection, org_id: &str, kind: &str) -> Self {
            Tenant {
                conn,
                org_id: org_id.to_string(),
                actor: Actor {
                    user_id: format!("job:{kind}"),
                    role: gatehouse_http::principal::OrgRole::Member,
                    team_ids: Vec::new(),
                },
            }
        }

        /// The tenant context of the org an authenticated principal acts
        /// in (403 when it acts in none). An API key acts for its owner,
        /// with no org role of its own.
        pub fn for_principal(conn: &'a Connection, principal: &Principal) -> Result<Self, Problem> {
            let org_id = principal.require_org()?.to_string();
            let user_id = match &principal.subject {
                Subject::User { id } => id.clone(),
                Subject::ApiKey { owner_user_id, id } => {
                    owner_user_id.clone().unwrap_or_else(|| id.clone())
                }
                Subject::Service { name } => name.clone(),
                Subject::External { provider, sub } => format!("{provider}:{sub}"),
            };
            Ok(Tenant {
                conn,
                org_id,
                actor: Actor {
                    user_id,
                    role: principal.org_role.unwrap_or(OrgRole::Member),
                    team_ids: principal.team_ids.clone(),
                },
            })
        }

        /// The org's id.
        pub fn org_id(&self) -> &str {
            &self.org_id
        }

        /// Who acts.
        pub fn actor(&self) -> &Actor {
            &self.actor
        }

        fn bind(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Value>, Problem> {
            if !Self::scoped_remembered(sql) {
                return Err(unscoped(sql));
            }
            let mut all = Vec::with_capacity(params.len() + 1);
            all.push(Value::Text(self.org_id.clone()));
            all.extend(params);
            Ok(all)
        }

        /// [`is_scoped`], remembered per statement text: the statements are
        /// the code's own, a few hundred at most, and the check reads the
        /// whole text (a long query's costs more than hashing it). The
        /// memory is the instance's; a full one is cleared, not grown.
        fn scoped_remembered(sql: &str) -> bool {
            use std::cell::RefCell;
            use std::collections::HashMap;
            const MOST: usize = 1024;
            thread_local! {
                static SEEN: RefCell<HashMap<String, bool>> = RefCell::new(HashMap::new());
            }
            if let Some(known) = SEEN.with(|seen| seen.borrow().get(sql).copied()) {
                return known;
            }
            let scoped = is_scoped(sql);
            SEEN.with(|seen| {
                let mut seen = seen.borrow_mut();
                if seen.len() >= MOST {
                    seen.clear();
                }
                seen.insert(sql.to_string(), scoped);
            });
            scoped
        }

        /// Runs a statement bound to the org (`?1`) with `params` as `?2…`.
        pub async fn query(
            &self,
            sql: &str,
            params: Vec<Value>,
        ) -> Result<Vec<RowResult>, Problem> {
            let params = self.bind(sql, params)?;
            db::query(self.conn, sql, params).await
        }

        /// [`Tenant::query`], answering the store's own error rather than a
        /// 500 (see [`db::query_or_error`]); the outer error is a statement
        /// not bound to the org.
        pub async fn query_or_error(
            &self,
            sql: &str,
            params: Vec<Value>,
        ) -> Result<Result<Vec<RowResult>, spin_sdk::sqlite::Error>, Problem> {
            let params = self.bind(sql, params)?;
            Ok(db::query_or_error(self.conn, sql, params).await)
        }

        /// Runs a statement bound to the org for its effect alone (no count:
        /// one call to the store fewer than [`Tenant::exec`]).
        pub async fn run(&self, sql: &str, params: Vec<Value>) -> Result<(), Problem> {
            let params = self.bind(sql, params)?;
            db::run(self.conn, sql, params).await
        }

        /// Runs a statement bound to the org for its effect; the changed row count.
        pub async fn exec(&self, sql: &str, params: Vec<Value>) -> Result<u64, Problem> {
            let params = self.bind(sql, params)?;
            db::exec(self.conn, sql, params).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_bound_to_the_org_are_scoped() {
        assert!(is_scoped(
            "SELECT id FROM teams WHERE org_id = ?1 AND id = ?"
        ));
        assert!(is_scoped(
            "UPDATE teams SET name = ?2\n  WHERE org_id = ?1 AND id = ?3"
        ));
        assert!(is_scoped(
            "SELECT t.id FROM teams t JOIN team_members m ON m.team_id = t.id WHERE t.org_id = ?1 AND m.user_id = ?"
        ));
        assert!(is_scoped(
            "INSERT INTO teams (org_id, id, name) VALUES (?1, ?, ?)"
        ));
        assert!(is_scoped(
            "INSERT INTO teams (\n  org_id, id) VALUES (?1, ?) ON CONFLICT DO NOTHING"
        ));
    }

    #[test]
    fn filters_that_only_look_bound_are_refused() {
        for sql in [
            "SELECT id FROM api_keys WHERE key_id = ?2 OR org_id = ?1",
            "SELECT id FROM teams -- org_id = ?1",
            "SELECT id FROM teams /* WHERE org_id = ?1 */ WHERE id = ?2",
            "SELECT id FROM teams WHERE name = 'x AND org_id = ?1'",
            "SELECT r.id FROM roles r LEFT JOIN role_grants g ON g.org_id = ?1 WHERE r.name = ?2",
            "SELECT org_id = ?1, id FROM teams",
            "SELECT id FROM teams WHERE NOT org_id = ?1",
            "INSERT INTO teams (org_id, id) VALUES (?1, ?), (?3, ?)",
            "INSERT INTO teams (org_id, id) VALUES (?1, ?) ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id",
        ] {
            assert!(!is_scoped(sql), "{sql}");
        }
        // Bound ones with ORs of their own inside parentheses still pass.
        assert!(is_scoped(
            "SELECT id FROM keys WHERE org_id = ?1 AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))"
        ));
        assert!(is_scoped(
            "WITH RECURSIVE up(id) AS (SELECT team_id FROM teams WHERE org_id = ?1 AND team_id = ?2 UNION ALL SELECT 1) SELECT id FROM up"
        ));
        assert!(is_scoped(
            "SELECT name FROM teams WHERE org_id = ?1 AND name = 'it''s'"
        ));
    }

    #[test]
    fn statements_without_the_org_are_refused() {
        // No org parameter at all.
        assert!(!is_scoped("SELECT id FROM teams"));
        assert!(!is_scoped("SELECT id FROM teams WHERE id = ?"));
        // An unnumbered parameter before the org would itself be number 1.
        assert!(!is_scoped(
            "UPDATE teams SET name = ? WHERE org_id = ?1 AND id = ?"
        ));
        assert!(!is_scoped(
            "SELECT id FROM teams WHERE id = ? AND org_id = ?1"
        ));
        // ?1 bound to another column, or to a column that only ends in org_id.
        assert!(!is_scoped("SELECT id FROM teams WHERE id = ?1"));
        assert!(!is_scoped("SELECT id FROM links WHERE other_org_id = ?1"));
        // ?10 is not ?1.
        assert!(!is_scoped("SELECT id FROM teams WHERE org_id = ?10"));
        // An insert whose first column is not the org.
        assert!(!is_scoped("INSERT INTO teams (id, org_id) VALUES (?1, ?)"));
    }

    #[test]
    fn only_admins_pass_the_admin_check() {
        let mut actor = Actor {
            user_id: "usr_1".into(),
            role: OrgRole::Member,
            team_ids: vec![],
        };
        assert_eq!(actor.require_admin().unwrap_err().status, 403);
        actor.role = OrgRole::Admin;
        assert!(actor.require_admin().is_ok());
    }
}
