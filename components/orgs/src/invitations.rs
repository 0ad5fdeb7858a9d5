//! Invitations: an admin invites an address with a role and teams; the
//! mail carries a single-use token (`ginv_` + 256 random bits, stored as
//! its SHA-256 digest) that works for seven days. The invitee accepts as a
//! signed-in user whose address matches, or by creating an account, which
//! the mailed token verifies. A newer invitation to the same address
//! replaces the older one; admins list and revoke them.

use gatehouse_auth::db;
use gatehouse_auth::session::user_from;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::principal::OrgRole;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use identity_core::email::{normalize_email, valid_email};
use identity_core::{password, token};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::{Connection, RowResult};

use crate::context::{Caller, memberships_changed};
use crate::fields::Fields;
use crate::member_events::{self, Member, Via};
use crate::members::{role_from, role_text};
use crate::{mail, no_content, teams};

/// Prefix of invitation tokens.
const INVITATION_PREFIX: &str = "ginv_";
/// How long an invitation may be accepted.
const INVITATION_TTL_SECONDS: i64 = 7 * 24 * 3600;
/// Teams one invitation may name.
const MAX_TEAMS: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invite {
    email: String,
    #[serde(default = "member")]
    role: OrgRole,
    #[serde(default)]
    team_ids: Vec<String>,
}

fn member() -> OrgRole {
    OrgRole::Member
}

impl Validate for Invite {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        if !valid_email(&self.email) {
            fields.push("/email", "invalid_format", "email must be a valid address");
        }
        if self.team_ids.len() > MAX_TEAMS {
            fields.push(
                "/team_ids",
                "too_many",
                &format!("at most {MAX_TEAMS} teams"),
            );
        }
        fields.finish()
    }
}

/// An invitation as admins see it (never with its token).
#[derive(Serialize)]
struct Invitation {
    id: String,
    email: String,
    role: OrgRole,
    team_ids: Vec<String>,
    status: &'static str,
    invited_by: String,
    created_at: i64,
    expires_at: i64,
    accepted_at: Option<i64>,
    accepted_by: Option<String>,
    revoked_at: Option<i64>,
}

const COLUMNS: &str = "invitation_id, email, role, team_ids, invited_by, created_at, expires_at, accepted_at, accepted_by, revoked_at";

fn invitation_from(row: &RowResult, now: i64) -> Invitation {
    let accepted_at = db::get_int(row, 7);
    let revoked_at = db::get_int(row, 9);
    let expires_at = db::get_int(row, 6).unwrap_or_default();
    let status = match (accepted_at, revoked_at) {
        (Some(_), _) => "accepted",
        (None, Some(_)) => "revoked",
        _ if expires_at <= now => "expired",
        _ => "pending",
    };
    Invitation {
        id: db::get_text(row, 0),
        email: db::get_text(row, 1),
        role: role_from(&db::get_text(row, 2)),
        team_ids: serde_json::from_str(&db::get_text(row, 3)).unwrap_or_default(),
        status,
        invited_by: db::get_text(row, 4),
        created_at: db::get_int(row, 5).unwrap_or_default(),
        expires_at,
        accepted_at,
        accepted_by: db::get_opt_text(row, 8),
        revoked_at,
    }
}

async fn load(tenant: &Tenant<'_>, id: &str) -> Result<Invitation, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {COLUMNS} FROM invitations WHERE org_id = ?1 AND invitation_id = ?"),
            vec![db::text(id)],
        )
        .await?;
    rows.first()
        .map(|r| invitation_from(r, unix_now()))
        .ok_or_else(|| Problem::not_found().detail("no such invitation"))
}

/// `POST /v1/orgs/{org}/invitations`: admins only.
pub async fn create(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    caller
        .create_once(req, request_id, |body: Invite| {
            invite(&caller, &tenant, body, request_id)
        })
        .await
}

async fn invite(
    caller: &Caller,
    tenant: &Tenant<'_>,
    body: Invite,
    request_id: &str,
) -> Result<Response, Problem> {
    let mut team_ids = body.team_ids.clone();
    team_ids.sort();
    team_ids.dedup();
    for (i, team) in team_ids.iter().enumerate() {
        if teams::load(tenant, team).await.is_err() {
            return Err(Problem::new(ErrorCode::ValidationFailed)
                .detail("the request body has invalid fields")
                .errors(vec![FieldError::new(
                    format!("/team_ids/{i}"),
                    "not_found",
                    "no such team in this organization",
                )]));
        }
    }
    let email = body.email.trim().to_string();
    let normalized = normalize_email(&email);
    let already = tenant
        .query(
            "SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = ?1 AND u.email_normalized = ?",
            vec![db::text(&normalized)],
        )
        .await?;
    if !already.is_empty() {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("this address already belongs to a member of the organization"));
    }
    let now = unix_now();
    // A newer invitation replaces any pending one to the same address.
    tenant
        .exec(
            "UPDATE invitations SET revoked_at = ?2 WHERE org_id = ?1 AND email_normalized = ?3 AND accepted_at IS NULL AND revoked_at IS NULL",
            vec![db::int(now), db::text(&normalized)],
        )
        .await?;
    let issued = token::issue(INVITATION_PREFIX);
    let id = db::new_id("inv_");
    tenant
        .exec(
            "INSERT INTO invitations (org_id, invitation_id, email, email_normalized, role, team_ids, token_digest, invited_by, created_at, expires_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&id),
                db::text(&email),
                db::text(&normalized),
                db::text(role_text(body.role)),
                db::text(serde_json::to_string(&team_ids).unwrap_or_else(|_| "[]".into())),
                db::text(&issued.digest),
                db::text(caller.user_id()),
                db::int(now),
                db::int(now + INVITATION_TTL_SECONDS),
            ],
        )
        .await?;
    let org_name = tenant
        .query("SELECT name FROM orgs WHERE org_id = ?1", vec![])
        .await?
        .first()
        .map(|r| db::get_text(r, 0))
        .unwrap_or_default();
    mail::send_invitation(
        &caller.conn,
        mail::Invitation {
            to: &email,
            org_name: &org_name,
            inviter: &caller.auth.user.display_name,
            token: &issued.secret,
        },
    )
    .await?;
    // An invitee who has an account hears of it in the app too (the
    // mail above carries the token, for any address).
    let invitee = db::query(
        &caller.conn,
        "SELECT id FROM users WHERE email_normalized = ? AND status = 'active'",
        vec![db::text(&normalized)],
    )
    .await?;
    if let Some(user) = invitee.first() {
        let data = serde_json::json!({
            "message": format!("{} invited you to join {org_name}.", caller.auth.user.display_name),
            "invitation_id": id,
            "org_name": org_name,
        });
        let user = db::get_text(user, 0);
        gatehouse_notify::notify_after(
            &caller.conn,
            Some(tenant.org_id()),
            &user,
            "invitation.received",
            data,
        )
        .await;
    }
    Ok(response::json(201, &load(tenant, &id).await?, request_id))
}

#[derive(Serialize, Deserialize)]
struct Position {
    created_at: i64,
    id: String,
}

/// `GET /v1/orgs/{org}/invitations[?status=pending]`: admins only, newest first.
pub async fn list(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let pending_only = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|p| p == "status=pending");
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    let now = unix_now();
    let (after_created, after_id) =
        after.map_or((i64::MAX, String::new()), |p| (p.created_at, p.id));
    let pending = if pending_only {
        "AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?5"
    } else {
        "AND ?5 = ?5"
    };
    let rows = tenant
        .query(
            &format!(
                "SELECT {COLUMNS} FROM invitations WHERE org_id = ?1 {pending}
                 AND (created_at < ?2 OR (created_at = ?2 AND invitation_id < ?3))
                 ORDER BY created_at DESC, invitation_id DESC LIMIT ?4"
            ),
            vec![
                db::int(after_created),
                db::text(&after_id),
                db::int(i64::from(page.fetch_count())),
                db::int(now),
            ],
        )
        .await?;
    let items: Vec<Invitation> = rows.iter().map(|r| invitation_from(r, now)).collect();
    let page = page.page(items, |i| {
        json_position(&Position {
            created_at: i.created_at,
            id: i.id.clone(),
        })
    });
    Ok(response::json(200, &page, request_id))
}

/// `DELETE /v1/orgs/{org}/invitations/{id}`: revokes a pending invitation.
pub async fn revoke(
    req: Request,
    org: &str,
    id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    let invitation = load(&tenant, id).await?;
    if invitation.status == "accepted" {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("the invitation was accepted: remove the member instead"));
    }
    tenant
        .exec(
            "UPDATE invitations SET revoked_at = ?2 WHERE org_id = ?1 AND invitation_id = ?3 AND accepted_at IS NULL AND revoked_at IS NULL",
            vec![db::int(unix_now()), db::text(id)],
        )
        .await?;
    no_content(request_id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Accept {
    token: String,
    /// Only when accepting without an account: the new account's password.
    #[serde(default)]
    password: Option<String>,
    /// Only when accepting without an account.
    #[serde(default)]
    display_name: Option<String>,
}

impl Validate for Accept {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

fn invalid_invitation() -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the invitation is invalid, expired, revoked or already used")
        .errors(vec![FieldError::new(
            "/token",
            "invalid_token",
            "the invitation is invalid, expired, revoked or already used",
        )])
}

/// A pending invitation found by its token, before it is spent.
struct Pending {
    org_id: String,
    email: String,
    email_normalized: String,
    role: OrgRole,
    team_ids: Vec<String>,
}

async fn pending(conn: &Connection, digest: &str, now: i64) -> Result<Pending, Problem> {
    // Found by the token alone, before any tenant is known: the token is
    // the credential that names the org.
    let rows = db::query(
        conn,
        "SELECT org_id, email, email_normalized, role, team_ids FROM invitations
         WHERE token_digest = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?",
        vec![db::text(digest), db::int(now)],
    )
    .await?;
    let row = rows.first().ok_or_else(invalid_invitation)?;
    Ok(Pending {
        org_id: db::get_text(row, 0),
        email: db::get_text(row, 1),
        email_normalized: db::get_text(row, 2),
        role: role_from(&db::get_text(row, 3)),
        team_ids: serde_json::from_str(&db::get_text(row, 4)).unwrap_or_default(),
    })
}

/// `POST /v1/invitations/accept`: with a session, the signed-in user joins
/// (the invitation's address must be theirs); without one, `password` and
/// `display_name` create the account, verified by the mailed token.
pub async fn accept(req: Request, request_id: &str) -> Result<Response, Problem> {
    let signed_in = match gatehouse_auth::bearer_token(&req) {
        Some(_) => Some(gatehouse_auth::authenticate_session(&req).await?),
        None => None,
    };
    let body: Accept = json::read_json(req, json::DEFAULT_LIMIT).await?;
    if !token::well_formed(&body.token, INVITATION_PREFIX) {
        return Err(invalid_invitation());
    }
    let digest = token::digest(&body.token);
    let now = unix_now();
    let conn = db::open().await?;
    let invitation = pending(&conn, &digest, now).await?;
    let (user_id, created) = match &signed_in {
        Some(auth) => {
            if normalize_email(&auth.user.email) != invitation.email_normalized {
                return Err(Problem::new(ErrorCode::Forbidden)
                    .detail("this invitation was sent to another address"));
            }
            (auth.user.id.clone(), false)
        }
        None => (new_account(&conn, &invitation, &body, now).await?, true),
    };
    let tenant = Tenant::joining(&conn, &user_id, &invitation.org_id, invitation.role);
    let email = signed_in
        .as_ref()
        .map_or(invitation.email.as_str(), |auth| auth.user.email.as_str());
    // One transaction spends the token, takes a seat and adds the member:
    // two acceptances cannot both spend it, and a refusal for want of a
    // seat leaves the invitation open for when one is free.
    let joining = async {
        let spent = tenant
            .exec(
                "UPDATE invitations SET accepted_at = ?3, accepted_by = ?4
                 WHERE org_id = ?1 AND token_digest = ?2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?3",
                vec![db::text(&digest), db::int(now), db::text(&user_id)],
            )
            .await?;
        if spent == 0 {
            return Err(invalid_invitation());
        }
        gatehouse_billing::take_seat(&tenant, &user_id, now).await?;
        let joined = tenant
            .exec(
                "INSERT INTO memberships (org_id, user_id, role, created_at, updated_at) VALUES (?1, ?, ?, ?, ?)
                 ON CONFLICT (org_id, user_id) DO NOTHING",
                vec![
                    db::text(&user_id),
                    db::text(role_text(invitation.role)),
                    db::int(now),
                    db::int(now),
                ],
            )
            .await?;
        // A member already (another invitation accepted first): no news.
        if joined == 1 {
            let member = Member {
                user_id: &user_id,
                email,
                role: invitation.role,
            };
            member_events::added(&tenant, &conn, &member, Via::Invitation, now).await?;
        }
        Ok(())
    };
    if let Err(problem) = db::transaction(&conn, joining).await {
        // The account made for this acceptance goes with it.
        if created {
            db::exec(
                &conn,
                "DELETE FROM users WHERE id = ?",
                vec![db::text(&user_id)],
            )
            .await?;
        }
        return Err(problem);
    }
    for team in &invitation.team_ids {
        // A team deleted since the invitation is skipped.
        if teams::load(&tenant, team).await.is_ok() {
            teams::add(&tenant, team, &user_id).await?;
        }
    }
    memberships_changed([&user_id]).await?;
    let role = crate::members::require_member(&tenant, &user_id).await?;
    let org = tenant
        .query("SELECT handle FROM orgs WHERE org_id = ?1", vec![])
        .await?
        .first()
        .map(|r| db::get_text(r, 0))
        .unwrap_or_default();
    let user = conn_user(&conn, &user_id).await?;
    let body = serde_json::json!({
        "org": {"id": invitation.org_id, "handle": org},
        "role": role,
        "user": user,
    });
    Ok(response::json(
        if created { 201 } else { 200 },
        &body,
        request_id,
    ))
}

async fn conn_user(conn: &Connection, user_id: &str) -> Result<serde_json::Value, Problem> {
    let rows = db::query(
        conn,
        "SELECT id, email, display_name, status, email_verified_at, created_at FROM users WHERE id = ?",
        vec![db::text(user_id)],
    )
    .await?;
    let user = rows.first().map(user_from).ok_or_else(Problem::internal)?;
    serde_json::to_value(user).map_err(|_| Problem::internal())
}

/// Creates the invitee's account, active and verified: the token arrived
/// at the address. An address that already has an account must sign in
/// and accept instead.
async fn new_account(
    conn: &Connection,
    invitation: &Pending,
    body: &Accept,
    now: i64,
) -> Result<String, Problem> {
    let mut fields = Fields::default();
    let password = body.password.as_deref().unwrap_or_default();
    let name = body.display_name.as_deref().unwrap_or_default().trim();
    if body.password.is_none() {
        fields.push(
            "/password",
            "required",
            "password is required to create an account (or sign in first)",
        );
    }
    if body.display_name.is_none() {
        fields.push(
            "/display_name",
            "required",
            "display_name is required to create an account",
        );
    } else {
        fields.length("/display_name", name, 1, 100);
    }
    let mut errors = fields.finish().err().unwrap_or_default();
    if body.password.is_some() {
        errors.extend(
            password::check(password, &invitation.email)
                .into_iter()
                .map(|w| FieldError::new("/password", w.code(), w.message())),
        );
    }
    if !errors.is_empty() {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("the request body has invalid fields")
            .errors(errors));
    }
    let user_id = db::new_id("usr_");
    let inserted = db::exec(
        conn,
        "INSERT INTO users (id, email, email_normalized, display_name, password_hash, status, email_verified_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?) ON CONFLICT (email_normalized) DO NOTHING",
        vec![
            db::text(&user_id),
            db::text(&invitation.email),
            db::text(&invitation.email_normalized),
            db::text(name),
            db::text(password::hash(password)),
            db::int(now),
            db::int(now),
            db::int(now),
        ],
    )
    .await?;
    if inserted == 0 {
        // Only the holder of the mailed token learns this.
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("this address already has an account: sign in, then accept the invitation"));
    }
    Ok(user_id)
}
