//! The `mcp_servers` table (migration 0037), always inside the caller's
//! org.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::{ErrorCode, Problem};
use serde_json::Value;
use spin_sdk::sqlite::RowResult;

use super::mount::RemoteTool;
use super::servers::McpServer;

const COLUMNS: &str = "server_id, name, description, tools, created_by, created_at, updated_at, remote, permission, remote_tools, refreshed_at";

/// A row of [`COLUMNS`], its endpoint under `base`.
fn server_of(row: &RowResult, base: &str) -> Result<McpServer, Problem> {
    let id = db::get_text(row, 0);
    let tools: Vec<String> = db::get_json(row, 3)
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| {
            eprintln!("tools: MCP server {id} has an unreadable tool list");
            Problem::internal()
        })?;
    let name = db::get_text(row, 1);
    let remote_tools = match db::get_opt_text(row, 9) {
        None => None,
        Some(text) => Some(serde_json::from_str(&text).map_err(|_| {
            eprintln!("tools: MCP server {id} has unreadable remote tools");
            Problem::internal()
        })?),
    };
    Ok(McpServer {
        remote: db::get_json(row, 7),
        permission: db::get_opt_text(row, 8),
        remote_tools,
        refreshed_at: db::get_int(row, 10),
        endpoint: super::metadata::resource(base, Some(&name)),
        name,
        description: db::get_text(row, 2),
        tools,
        created_by: db::get_text(row, 4),
        created_at: db::get_int(row, 5).unwrap_or_default(),
        updated_at: db::get_int(row, 6).unwrap_or_default(),
        id,
    })
}

/// The server named `name`, if the org has one.
pub async fn find(
    tenant: &Tenant<'_>,
    name: &str,
    base: &str,
) -> Result<Option<McpServer>, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {COLUMNS} FROM mcp_servers WHERE org_id = ?1 AND name = ?2"),
            vec![db::text(name)],
        )
        .await?;
    rows.first().map(|r| server_of(r, base)).transpose()
}

/// Servers by name after `after`, at most `count`.
pub async fn page(
    tenant: &Tenant<'_>,
    after: &str,
    count: u32,
    base: &str,
) -> Result<Vec<McpServer>, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {COLUMNS} FROM mcp_servers WHERE org_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3"
            ),
            vec![db::text(after), db::int(i64::from(count))],
        )
        .await?;
    rows.iter().map(|r| server_of(r, base)).collect()
}

fn tools_text(tools: &[String]) -> Result<String, Problem> {
    serde_json::to_string(tools).map_err(|_| Problem::internal())
}

/// What a write leaves a server with.
pub struct Fields<'a> {
    /// Its description.
    pub description: &'a str,
    /// Its tools (none for a mount).
    pub tools: &'a [String],
    /// A mount's remote, as stored.
    pub remote: Option<&'a Value>,
    /// A mount's permission.
    pub permission: Option<&'a str>,
}

/// Stores a new server; 409 when the org has one of that name.
pub async fn insert(
    tenant: &Tenant<'_>,
    name: &str,
    fields: &Fields<'_>,
    actor: &str,
    now: i64,
) -> Result<(), Problem> {
    let inserted = tenant
        .exec(
            "INSERT INTO mcp_servers (org_id, server_id, name, description, tools, remote, permission,
                                      created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
             ON CONFLICT (org_id, name) DO NOTHING",
            vec![
                db::text(db::new_id("mcps_")),
                db::text(name),
                db::text(fields.description),
                db::text(tools_text(fields.tools)?),
                db::opt_text(fields.remote.map(Value::to_string)),
                db::opt_text(fields.permission.map(str::to_string)),
                db::text(actor),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("the organization has an MCP server with this name"));
    }
    Ok(())
}

/// Stores `fields` over the server `name`; `false` when it is gone. A
/// changed remote forgets the tools listed from the old one.
pub async fn update(
    tenant: &Tenant<'_>,
    name: &str,
    fields: &Fields<'_>,
    now: i64,
) -> Result<bool, Problem> {
    let changed = tenant
        .exec(
            // `remote IS ?5`: NULL-safe, so an unchanged remote keeps its tools.
            "UPDATE mcp_servers SET description = ?2, tools = ?3, permission = ?4,
                    remote_tools = CASE WHEN remote IS ?5 THEN remote_tools ELSE NULL END,
                    refreshed_at = CASE WHEN remote IS ?5 THEN refreshed_at ELSE NULL END,
                    remote = ?5, updated_at = ?6
             WHERE org_id = ?1 AND name = ?7",
            vec![
                db::text(fields.description),
                db::text(tools_text(fields.tools)?),
                db::opt_text(fields.permission.map(str::to_string)),
                db::opt_text(fields.remote.map(Value::to_string)),
                db::int(now),
                db::text(name),
            ],
        )
        .await?;
    Ok(changed > 0)
}

/// Keeps `tools` as the mount `name`'s remote tools, listed at `now`.
pub async fn set_remote_tools(
    tenant: &Tenant<'_>,
    name: &str,
    remote: &Value,
    tools: &[RemoteTool],
    now: i64,
) -> Result<bool, Problem> {
    let text = serde_json::to_string(tools).map_err(|_| Problem::internal())?;
    // Only while the remote is still the one listed: a change made during
    // the listing keeps its own tools from another remote.
    let changed = tenant
        .exec(
            "UPDATE mcp_servers SET remote_tools = ?2, refreshed_at = ?3
             WHERE org_id = ?1 AND name = ?4 AND remote = ?5",
            vec![
                db::text(text),
                db::int(now),
                db::text(name),
                db::text(remote.to_string()),
            ],
        )
        .await?;
    Ok(changed > 0)
}

/// The org's mounts that have listed tools, by name.
pub async fn mounts(tenant: &Tenant<'_>, base: &str) -> Result<Vec<McpServer>, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {COLUMNS} FROM mcp_servers WHERE org_id = ?1 AND remote_tools IS NOT NULL
                 ORDER BY name"
            ),
            vec![],
        )
        .await?;
    rows.iter().map(|r| server_of(r, base)).collect()
}

/// Deletes the server `name`; whether there was one.
pub async fn delete(tenant: &Tenant<'_>, name: &str) -> Result<bool, Problem> {
    let gone = tenant
        .exec(
            "DELETE FROM mcp_servers WHERE org_id = ?1 AND name = ?2",
            vec![db::text(name)],
        )
        .await?;
    Ok(gone > 0)
}

/// Which of `names` the org has tools of.
pub async fn existing_tools(tenant: &Tenant<'_>, names: &[String]) -> Result<Vec<String>, Problem> {
    let list = tools_text(names)?;
    let rows = tenant
        .query(
            "SELECT name FROM tools WHERE org_id = ?1 AND name IN (SELECT value FROM json_each(?2))",
            vec![db::text(list)],
        )
        .await?;
    Ok(rows.iter().map(|r| db::get_text(r, 0)).collect())
}
