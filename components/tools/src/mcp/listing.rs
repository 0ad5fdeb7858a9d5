//! The tools an MCP client is shown: those the caller may run (what
//! `GET /v1/tools` shows a holder of `tools:run`, and no more: a tool that
//! a writer may see but not run is not offered), enabled, and, on a
//! named server, among its tools.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use gatehouse_http::principal::Principal;

use crate::access;
use crate::model::Tool;
use crate::store::{COLUMNS, tool_of};

/// Tools by name after `after`, at most `count`, that `caller` may run,
/// among `only` when given.
pub async fn page(
    tenant: &Tenant<'_>,
    caller: &Principal,
    after: &str,
    count: u32,
    only: Option<&[String]>,
) -> Result<Vec<Tool>, Problem> {
    if !caller.has_permission(access::RUN) {
        return Ok(Vec::new());
    }
    let held = serde_json::to_string(&caller.permissions).map_err(|_| Problem::internal())?;
    let only = only
        .map(serde_json::to_string)
        .transpose()
        .map_err(|_| Problem::internal())?;
    let rows = tenant
        .query(
            &format!(
                // NULL permission: tools:run alone runs the tool. NULL
                // `only`: the org's whole set.
                "SELECT {COLUMNS} FROM tools WHERE org_id = ?1 AND name > ?2 AND enabled = 1
                   AND (permission IS NULL OR permission IN (SELECT value FROM json_each(?3)))
                   AND (?4 IS NULL OR name IN (SELECT value FROM json_each(?4)))
                 ORDER BY name LIMIT ?5"
            ),
            vec![
                db::text(after),
                db::text(held),
                db::opt_text(only),
                db::int(i64::from(count)),
            ],
        )
        .await?;
    rows.iter().map(tool_of).collect()
}
