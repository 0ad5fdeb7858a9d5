//! Teams: a tree per org (`parent_team_id`), with cycles refused and depth
//! bounded; members of a team are members of the org. Members read teams;
//! admins change them.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use identity_core::org::{MAX_TEAM_DEPTH, TreeError, check_placement};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::RowResult;

use crate::context::{Caller, memberships_changed};
use crate::fields::{Fields, patch_field};
use crate::members::require_member;
use crate::no_content;

/// A team.
#[derive(Serialize)]
pub struct Team {
    id: String,
    name: String,
    description: String,
    parent_team_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const TEAM_COLUMNS: &str = "team_id, name, description, parent_team_id, created_at, updated_at";

fn team_from(row: &RowResult) -> Team {
    Team {
        id: db::get_text(row, 0),
        name: db::get_text(row, 1),
        description: db::get_text(row, 2),
        parent_team_id: db::get_opt_text(row, 3),
        created_at: db::get_int(row, 4).unwrap_or_default(),
        updated_at: db::get_int(row, 5).unwrap_or_default(),
    }
}

fn no_team() -> Problem {
    Problem::not_found().detail("no such team")
}

/// The team, or 404 (a team of another org answers the same).
pub async fn load(tenant: &Tenant<'_>, team_id: &str) -> Result<Team, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {TEAM_COLUMNS} FROM teams WHERE org_id = ?1 AND team_id = ?"),
            vec![db::text(team_id)],
        )
        .await?;
    rows.first().map(team_from).ok_or_else(no_team)
}

/// The team and its ancestors, nearest first.
pub async fn chain(tenant: &Tenant<'_>, team_id: &str) -> Result<Vec<String>, Problem> {
    let rows = tenant
        .query(
            "WITH RECURSIVE up(team_id, parent_team_id, n) AS (
                 SELECT team_id, parent_team_id, 0 FROM teams WHERE org_id = ?1 AND team_id = ?2
                 UNION ALL
                 SELECT t.team_id, t.parent_team_id, up.n + 1 FROM teams t JOIN up ON t.team_id = up.parent_team_id
                 WHERE t.org_id = ?1 AND up.n < ?3)
             SELECT team_id FROM up ORDER BY n",
            vec![db::text(team_id), db::int(MAX_TEAM_DEPTH as i64)],
        )
        .await?;
    Ok(rows.iter().map(|r| db::get_text(r, 0)).collect())
}

/// How many levels the team's subtree spans (1: no children).
async fn height(tenant: &Tenant<'_>, team_id: &str) -> Result<usize, Problem> {
    let rows = tenant
        .query(
            "WITH RECURSIVE down(team_id, d) AS (
                 SELECT team_id, 1 FROM teams WHERE org_id = ?1 AND team_id = ?2
                 UNION ALL
                 SELECT t.team_id, down.d + 1 FROM teams t JOIN down ON t.parent_team_id = down.team_id
                 WHERE t.org_id = ?1 AND down.d < ?3)
             SELECT MAX(d) FROM down",
            vec![db::text(team_id), db::int(MAX_TEAM_DEPTH as i64 + 1)],
        )
        .await?;
    Ok(rows
        .first()
        .and_then(|r| db::get_int(r, 0))
        .map_or(1, |d| d.max(1) as usize))
}

fn placement_problem(error: TreeError) -> Problem {
    let (code, message) = match error {
        TreeError::Cycle => (
            "cycle",
            "a team cannot be placed under itself or one of its descendants".to_string(),
        ),
        TreeError::TooDeep => (
            "too_deep",
            format!("teams nest at most {MAX_TEAM_DEPTH} levels deep"),
        ),
    };
    Problem::new(ErrorCode::ValidationFailed)
        .detail(message.clone())
        .errors(vec![FieldError::new("/parent_team_id", code, message)])
}

fn unknown_parent() -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the parent team does not exist")
        .errors(vec![FieldError::new(
            "/parent_team_id",
            "not_found",
            "no such team in this organization",
        )])
}

/// Checks that `team_id` (new or moving, spanning `height` levels) may sit
/// under `parent`.
async fn check_parent(
    tenant: &Tenant<'_>,
    team_id: &str,
    parent: Option<&str>,
    height: usize,
) -> Result<(), Problem> {
    let ancestors = match parent {
        Some(parent) => {
            let chain = chain(tenant, parent).await?;
            if chain.is_empty() {
                return Err(unknown_parent());
            }
            chain
        }
        None => Vec::new(),
    };
    check_placement(team_id, &ancestors, height).map_err(placement_problem)
}

async fn require_unique_name(
    tenant: &Tenant<'_>,
    name: &str,
    parent: Option<&str>,
    except: &str,
) -> Result<(), Problem> {
    let rows = tenant
        .query(
            "SELECT 1 FROM teams WHERE org_id = ?1 AND parent_team_id IS ?2 AND name = ?3 AND team_id <> ?4",
            vec![
                db::opt_text(parent.map(str::to_string)),
                db::text(name),
                db::text(except),
            ],
        )
        .await?;
    if rows.is_empty() {
        Ok(())
    } else {
        Err(Problem::new(ErrorCode::Conflict)
            .detail("a team with this name already sits under the same parent")
            .errors(vec![FieldError::new(
                "/name",
                "taken",
                "the name is taken among the team's siblings",
            )]))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTeam {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parent_team_id: Option<String>,
}

impl Validate for CreateTeam {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        fields.length("/name", self.name.trim(), 1, 100);
        if let Some(d) = &self.description {
            fields.prose("/description", d, 0, 500);
        }
        fields.finish()
    }
}

/// `POST /v1/orgs/{org}/teams`.
pub async fn create(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    caller
        .create_once(req, request_id, |body: CreateTeam| {
            create_team(&tenant, body, request_id)
        })
        .await
}

async fn create_team(
    tenant: &Tenant<'_>,
    body: CreateTeam,
    request_id: &str,
) -> Result<Response, Problem> {
    let team_id = db::new_id("team_");
    let name = body.name.trim();
    let parent = body.parent_team_id.as_deref();
    check_parent(tenant, &team_id, parent, 1).await?;
    require_unique_name(tenant, name, parent, &team_id).await?;
    let now = unix_now();
    tenant
        .exec(
            "INSERT INTO teams (org_id, team_id, name, description, parent_team_id, created_at, updated_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&team_id),
                db::text(name),
                db::text(body.description.unwrap_or_default()),
                db::opt_text(body.parent_team_id),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    Ok(response::json(
        201,
        &load(tenant, &team_id).await?,
        request_id,
    ))
}

#[derive(Serialize, Deserialize)]
struct Position {
    name: String,
    id: String,
}

/// Which teams a listing shows.
enum Under {
    Anywhere,
    Top,
    Team(String),
}

fn parent_filter(query: Option<&str>) -> Under {
    let value = query
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("parent="));
    match value {
        None => Under::Anywhere,
        Some("" | "root") => Under::Top,
        Some(id) => Under::Team(id.to_string()),
    }
}

/// `GET /v1/orgs/{org}/teams[?parent=<team id>|root]`: by name.
pub async fn list(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let under = parent_filter(req.uri().query());
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    if let Under::Team(parent) = &under {
        load(&tenant, parent).await?;
    }
    let (after_name, after_id) = after.map_or((String::new(), String::new()), |p| (p.name, p.id));
    let (filter, parent) = match under {
        Under::Anywhere => ("1 = 1", None),
        Under::Top => ("parent_team_id IS NULL", None),
        Under::Team(id) => ("parent_team_id = ?5", Some(id)),
    };
    let rows = tenant
        .query(
            &format!(
                "SELECT {TEAM_COLUMNS} FROM teams WHERE org_id = ?1 AND {filter}
                 AND (name > ?2 OR (name = ?2 AND team_id > ?3)) ORDER BY name, team_id LIMIT ?4"
            ),
            [
                db::text(&after_name),
                db::text(&after_id),
                db::int(i64::from(page.fetch_count())),
            ]
            .into_iter()
            .chain(parent.map(db::text))
            .collect(),
        )
        .await?;
    let teams: Vec<Team> = rows.iter().map(team_from).collect();
    let page = page.page(teams, |t| {
        json_position(&Position {
            name: t.name.clone(),
            id: t.id.clone(),
        })
    });
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/orgs/{org}/teams/{team}`.
pub async fn get(
    req: Request,
    org: &str,
    team: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    Ok(response::json(200, &load(&tenant, team).await?, request_id))
}

#[derive(Serialize)]
struct SubtreeTeam {
    #[serde(flatten)]
    team: Team,
    /// 0 for the team asked for, 1 for its children, …
    depth: i64,
}

/// `GET /v1/orgs/{org}/teams/{team}/subtree`: the team and every team
/// below it, parents before children.
pub async fn subtree(
    req: Request,
    org: &str,
    team: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    load(&tenant, team).await?;
    let columns = TEAM_COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = tenant
        .query(
            &format!(
                "WITH RECURSIVE down(team_id, depth, path) AS (
                     SELECT team_id, 0, name || char(0) || team_id FROM teams WHERE org_id = ?1 AND team_id = ?2
                     UNION ALL
                     SELECT t.team_id, down.depth + 1, down.path || char(1) || t.name || char(0) || t.team_id
                     FROM teams t JOIN down ON t.parent_team_id = down.team_id
                     WHERE t.org_id = ?1 AND down.depth < ?3)
                 SELECT {columns}, down.depth FROM down JOIN teams t ON t.team_id = down.team_id
                 WHERE t.org_id = ?1 ORDER BY down.path"
            ),
            vec![db::text(team), db::int(MAX_TEAM_DEPTH as i64)],
        )
        .await?;
    let items: Vec<SubtreeTeam> = rows
        .iter()
        .map(|r| SubtreeTeam {
            team: team_from(r),
            depth: db::get_int(r, 6).unwrap_or_default(),
        })
        .collect();
    Ok(response::json(
        200,
        &serde_json::json!({ "items": items }),
        request_id,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateTeam {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "patch_field")]
    parent_team_id: Option<Option<String>>,
}

impl Validate for UpdateTeam {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        if let Some(name) = &self.name {
            fields.length("/name", name.trim(), 1, 100);
        }
        if let Some(d) = &self.description {
            fields.prose("/description", d, 0, 500);
        }
        fields.finish()
    }
}

/// `PATCH /v1/orgs/{org}/teams/{team}`: rename, describe, or move
/// (`parent_team_id`: a team id, or `null` for the top level).
pub async fn update(
    req: Request,
    org: &str,
    team: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    let body: UpdateTeam = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let current = load(&tenant, team).await?;
    let parent = match body.parent_team_id {
        Some(change) => change,
        None => current.parent_team_id.clone(),
    };
    if parent != current.parent_team_id {
        let span = height(&tenant, team).await?;
        check_parent(&tenant, team, parent.as_deref(), span).await?;
    }
    let name = body
        .name
        .as_deref()
        .map_or(current.name.clone(), |n| n.trim().to_string());
    require_unique_name(&tenant, &name, parent.as_deref(), team).await?;
    tenant
        .exec(
            "UPDATE teams SET name = ?2, description = ?3, parent_team_id = ?4, updated_at = ?5 WHERE org_id = ?1 AND team_id = ?6",
            vec![
                db::text(name),
                db::text(body.description.unwrap_or(current.description)),
                db::opt_text(parent),
                db::int(unix_now()),
                db::text(team),
            ],
        )
        .await?;
    Ok(response::json(200, &load(&tenant, team).await?, request_id))
}

/// `DELETE /v1/orgs/{org}/teams/{team}`: a team with child teams cannot be
/// deleted (move or delete them first).
pub async fn delete(
    req: Request,
    org: &str,
    team: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    load(&tenant, team).await?;
    let children = tenant
        .query(
            "SELECT 1 FROM teams WHERE org_id = ?1 AND parent_team_id = ? LIMIT 1",
            vec![db::text(team)],
        )
        .await?;
    if !children.is_empty() {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("the team has child teams: move or delete them first"));
    }
    let members = member_ids(&tenant, team).await?;
    tenant
        .exec(
            "DELETE FROM team_members WHERE org_id = ?1 AND team_id = ?",
            vec![db::text(team)],
        )
        .await?;
    tenant
        .exec(
            "DELETE FROM preferences WHERE org_id = ?1 AND scope = 'team' AND scope_id = ?",
            vec![db::text(team)],
        )
        .await?;
    tenant
        .exec(
            "DELETE FROM teams WHERE org_id = ?1 AND team_id = ?",
            vec![db::text(team)],
        )
        .await?;
    memberships_changed(members).await?;
    no_content(request_id)
}

async fn member_ids(tenant: &Tenant<'_>, team: &str) -> Result<Vec<String>, Problem> {
    let rows = tenant
        .query(
            "SELECT user_id FROM team_members WHERE org_id = ?1 AND team_id = ?",
            vec![db::text(team)],
        )
        .await?;
    Ok(rows.iter().map(|r| db::get_text(r, 0)).collect())
}

#[derive(Serialize)]
struct TeamMember {
    user_id: String,
    email: String,
    display_name: String,
    added_at: i64,
}

/// `GET /v1/orgs/{org}/teams/{team}/members`.
pub async fn members(
    req: Request,
    org: &str,
    team: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    load(&tenant, team).await?;
    let rows = tenant
        .query(
            "SELECT tm.user_id, u.email, u.display_name, tm.created_at
             FROM team_members tm JOIN users u ON u.id = tm.user_id
             WHERE tm.org_id = ?1 AND tm.team_id = ? ORDER BY tm.created_at, tm.user_id",
            vec![db::text(team)],
        )
        .await?;
    let items: Vec<TeamMember> = rows
        .iter()
        .map(|r| TeamMember {
            user_id: db::get_text(r, 0),
            email: db::get_text(r, 1),
            display_name: db::get_text(r, 2),
            added_at: db::get_int(r, 3).unwrap_or_default(),
        })
        .collect();
    Ok(response::json(
        200,
        &serde_json::json!({ "items": items }),
        request_id,
    ))
}

/// `PUT /v1/orgs/{org}/teams/{team}/members/{user}`: adds an org member to
/// the team (idempotent).
pub async fn add_member(
    req: Request,
    org: &str,
    team: &str,
    user_id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    load(&tenant, team).await?;
    require_member(&tenant, user_id).await?;
    add(&tenant, team, user_id).await?;
    memberships_changed([user_id]).await?;
    no_content(request_id)
}

/// Puts a member in a team (nothing when already there).
pub async fn add(tenant: &Tenant<'_>, team: &str, user_id: &str) -> Result<(), Problem> {
    tenant
        .exec(
            "INSERT INTO team_members (org_id, team_id, user_id, created_at) VALUES (?1, ?, ?, ?)
             ON CONFLICT (team_id, user_id) DO NOTHING",
            vec![db::text(team), db::text(user_id), db::int(unix_now())],
        )
        .await?;
    Ok(())
}

/// `DELETE /v1/orgs/{org}/teams/{team}/members/{user}`.
pub async fn remove_member(
    req: Request,
    org: &str,
    team: &str,
    user_id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    load(&tenant, team).await?;
    let removed = tenant
        .exec(
            "DELETE FROM team_members WHERE org_id = ?1 AND team_id = ? AND user_id = ?",
            vec![db::text(team), db::text(user_id)],
        )
        .await?;
    if removed == 0 {
        return Err(Problem::not_found().detail("no such team member"));
    }
    memberships_changed([user_id]).await?;
    no_content(request_id)
}
