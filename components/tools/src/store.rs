//! The `tools` table (migration 0034), always inside the caller's org.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::{ErrorCode, Problem};
use serde_json::Value;
use spin_sdk::sqlite::RowResult;

use crate::definition::Definition;
use crate::model::{Kind, Tool};

/// The columns [`tool_of`] reads, in order.
pub const COLUMNS: &str = "tool_id, name, description, kind, input_schema, config, permission, enabled, created_by, created_at, updated_at";

/// A row of [`COLUMNS`]. A row this code did not write (an unknown kind,
/// unreadable JSON) is a fault, logged, never answered as a tool.
pub fn tool_of(row: &RowResult) -> Result<Tool, Problem> {
    let id = db::get_text(row, 0);
    let fault = |what: &str| {
        eprintln!("tools: tool {id} has {what}");
        Problem::internal()
    };
    let kind = Kind::parse(&db::get_text(row, 3)).ok_or_else(|| fault("an unknown kind"))?;
    let input_schema: Value =
        db::get_json(row, 4).ok_or_else(|| fault("an unreadable input schema"))?;
    let config: Value = db::get_json(row, 5).ok_or_else(|| fault("an unreadable config"))?;
    Ok(Tool {
        name: db::get_text(row, 1),
        description: db::get_text(row, 2),
        kind,
        input_schema,
        config,
        permission: db::get_opt_text(row, 6),
        enabled: db::get_int(row, 7) == Some(1),
        created_by: db::get_text(row, 8),
        created_at: db::get_int(row, 9).unwrap_or_default(),
        updated_at: db::get_int(row, 10).unwrap_or_default(),
        id,
    })
}

/// The tool named `name`, if the org has one.
pub async fn find(tenant: &Tenant<'_>, name: &str) -> Result<Option<Tool>, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {COLUMNS} FROM tools WHERE org_id = ?1 AND name = ?2"),
            vec![db::text(name)],
        )
        .await?;
    rows.first().map(tool_of).transpose()
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

/// Stores a new tool; 409 when the org has one of that name.
pub async fn insert(
    tenant: &Tenant<'_>,
    name: &str,
    definition: &Definition,
    enabled: bool,
    actor: &str,
    now: i64,
) -> Result<Tool, Problem> {
    let inserted = tenant
        .exec(
            "INSERT INTO tools (org_id, tool_id, name, description, kind, input_schema, config, permission,
                                enabled, created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
             ON CONFLICT (org_id, name) DO NOTHING",
            vec![
                db::text(db::new_id("tool_")),
                db::text(name),
                db::text(&definition.description),
                db::text(definition.kind.as_str()),
                db::text(json_text(&definition.input_schema)),
                db::text(json_text(&definition.config.to_value())),
                db::opt_text(definition.permission.clone()),
                db::int(i64::from(enabled)),
                db::text(actor),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(
            Problem::new(ErrorCode::Conflict).detail("the organization has a tool with this name")
        );
    }
    find(tenant, name).await?.ok_or_else(Problem::internal)
}

/// Stores `definition` and `enabled` over the tool `name`; `false` when
/// it is gone.
pub async fn update(
    tenant: &Tenant<'_>,
    name: &str,
    definition: &Definition,
    enabled: bool,
    now: i64,
) -> Result<bool, Problem> {
    let changed = tenant
        .exec(
            "UPDATE tools SET description = ?2, input_schema = ?3, config = ?4, permission = ?5,
                              enabled = ?6, updated_at = ?7
             WHERE org_id = ?1 AND name = ?8",
            vec![
                db::text(&definition.description),
                db::text(json_text(&definition.input_schema)),
                db::text(json_text(&definition.config.to_value())),
                db::opt_text(definition.permission.clone()),
                db::int(i64::from(enabled)),
                db::int(now),
                db::text(name),
            ],
        )
        .await?;
    Ok(changed > 0)
}

/// Deletes the tool `name`; whether there was one.
pub async fn delete(tenant: &Tenant<'_>, name: &str) -> Result<bool, Problem> {
    let gone = tenant
        .exec(
            "DELETE FROM tools WHERE org_id = ?1 AND name = ?2",
            vec![db::text(name)],
        )
        .await?;
    Ok(gone > 0)
}

/// Tools by name after `after`, at most `count`: all of them when
/// `all_visible`, else those without a permission of their own or whose
/// permission is one of `permissions`.
pub async fn page(
    tenant: &Tenant<'_>,
    after: &str,
    count: u32,
    all_visible: bool,
    permissions: &[String],
) -> Result<Vec<Tool>, Problem> {
    let held = serde_json::to_string(permissions).map_err(|_| Problem::internal())?;
    let rows = tenant
        .query(
            &format!(
                // NULL permission: tools:run alone runs the tool.
                "SELECT {COLUMNS} FROM tools WHERE org_id = ?1 AND name > ?2
                   AND (?3 = 1 OR permission IS NULL OR permission IN (SELECT value FROM json_each(?4)))
                 ORDER BY name LIMIT ?5"
            ),
            vec![
                db::text(after),
                db::int(i64::from(all_visible)),
                db::text(held),
                db::int(i64::from(count)),
            ],
        )
        .await?;
    rows.iter().map(tool_of).collect()
}
