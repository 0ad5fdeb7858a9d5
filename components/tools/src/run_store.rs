//! The tables of migration 0035 (`tool_settings`, `tool_runs`,
//! `tool_run_steps`, `completions`), always inside the caller's org.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use serde_json::Value;
use spin_sdk::sqlite::{RowResult, Value as Sql};

use crate::run_model::{Completion, Run, Status, Step};
use crate::settings::{PutSettings, Settings};

fn json_or_null(value: Option<&Value>) -> Sql {
    value.map_or(Sql::Null, |v| db::text(v.to_string()))
}

fn int_or_null(value: Option<i64>) -> Sql {
    value.map_or(Sql::Null, db::int)
}

/// The org's settings, if it has any.
pub async fn settings(tenant: &Tenant<'_>) -> Result<Option<Settings>, Problem> {
    let rows = tenant
        .query(
            "SELECT base_url, model, api_key_secret, max_steps, timeout_ms, updated_at, updated_by,
                    token_meter, tool_meter, reserve_tokens
             FROM tool_settings WHERE org_id = ?1",
            vec![],
        )
        .await?;
    Ok(rows.first().map(|row| Settings {
        base_url: db::get_text(row, 0),
        model: db::get_text(row, 1),
        api_key_secret: db::get_text(row, 2),
        max_steps: db::get_int(row, 3).unwrap_or_default(),
        timeout_ms: db::get_int(row, 4).unwrap_or_default(),
        updated_at: db::get_int(row, 5).unwrap_or_default(),
        updated_by: db::get_text(row, 6),
        token_meter: db::get_opt_text(row, 7),
        tool_meter: db::get_opt_text(row, 8),
        reserve_tokens: db::get_int(row, 9).unwrap_or_default(),
    }))
}

/// Stores `put` as the org's settings.
pub async fn put_settings(
    tenant: &Tenant<'_>,
    put: &PutSettings,
    actor: &str,
    now: i64,
) -> Result<(), Problem> {
    tenant
        .run(
            "INSERT INTO tool_settings (org_id, base_url, model, api_key_secret, max_steps, timeout_ms,
                                        updated_at, updated_by, token_meter, tool_meter, reserve_tokens)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (org_id) DO UPDATE SET base_url = excluded.base_url, model = excluded.model,
                 api_key_secret = excluded.api_key_secret, max_steps = excluded.max_steps,
                 timeout_ms = excluded.timeout_ms, updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by, token_meter = excluded.token_meter,
                 tool_meter = excluded.tool_meter, reserve_tokens = excluded.reserve_tokens",
            vec![
                db::text(&put.base_url),
                db::text(&put.model),
                db::text(&put.api_key_secret),
                db::int(put.max_steps),
                db::int(put.timeout_ms),
                db::int(now),
                db::text(actor),
                db::opt_text(put.token_meter.clone()),
                db::opt_text(put.tool_meter.clone()),
                db::int(put.reserve_tokens),
            ],
        )
        .await
}

/// A new run, `running`.
pub async fn start_run(tenant: &Tenant<'_>, run: &Run) -> Result<(), Problem> {
    tenant
        .run(
            "INSERT INTO tool_runs (org_id, run_id, user_id, stage, status, model, messages, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            vec![
                db::text(&run.id),
                db::text(&run.user_id),
                db::text(&run.stage),
                db::text(run.status.as_str()),
                db::text(&run.model),
                db::text(run.messages.clone().unwrap_or(Value::Null).to_string()),
                db::int(run.created_at),
            ],
        )
        .await
}

/// How `run` ended.
pub async fn finish_run(tenant: &Tenant<'_>, run: &Run) -> Result<(), Problem> {
    tenant
        .run(
            "UPDATE tool_runs SET status = ?2, stop_reason = ?3, output = ?4, steps = ?5,
                                  prompt_tokens = ?6, completion_tokens = ?7, finished_at = ?8,
                                  quota_refusal = ?10
             WHERE org_id = ?1 AND run_id = ?9",
            vec![
                db::text(run.status.as_str()),
                db::opt_text(run.stop_reason.clone()),
                json_or_null(run.output.as_ref()),
                db::int(run.step_count),
                db::int(run.prompt_tokens),
                db::int(run.completion_tokens),
                int_or_null(run.finished_at),
                db::text(&run.id),
                json_or_null(run.quota_refusal.as_ref()),
            ],
        )
        .await
}

/// One step of the run `run_id`.
pub async fn add_step(tenant: &Tenant<'_>, run_id: &str, step: &Step) -> Result<(), Problem> {
    tenant
        .run(
            "INSERT INTO tool_run_steps (org_id, run_id, seq, kind, tool, arguments, result, is_error,
                                         latency_ms, prompt_tokens, completion_tokens, completion_id,
                                         cost, currency)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            vec![
                db::text(run_id),
                db::int(step.seq),
                db::text(&step.kind),
                db::opt_text(step.tool.clone()),
                json_or_null(step.arguments.as_ref()),
                json_or_null(step.result.as_ref()),
                db::int(i64::from(step.is_error)),
                db::int(step.latency_ms),
                db::int(step.prompt_tokens),
                db::int(step.completion_tokens),
                db::opt_text(step.completion_id.clone()),
                db::opt_text(step.cost.clone()),
                db::opt_text(step.currency.clone()),
            ],
        )
        .await
}

/// One completion's record.
pub async fn add_completion(tenant: &Tenant<'_>, c: &Completion) -> Result<(), Problem> {
    tenant
        .run(
            "INSERT INTO completions (org_id, completion_id, run_id, model, request, response, status,
                                      prompt_tokens, completion_tokens, latency_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            vec![
                db::text(&c.id),
                db::text(&c.run_id),
                db::text(&c.model),
                db::text(c.request.to_string()),
                json_or_null(c.response.as_ref()),
                int_or_null(c.status),
                db::int(c.prompt_tokens),
                db::int(c.completion_tokens),
                db::int(c.latency_ms),
                db::int(c.created_at),
            ],
        )
        .await
}

/// The columns [`run_of`] reads, in order.
const RUN_COLUMNS: &str = "run_id, user_id, stage, status, stop_reason, model, output, steps, prompt_tokens, completion_tokens, created_at, finished_at, quota_refusal, messages";

/// A row of [`RUN_COLUMNS`], without its messages and steps.
fn run_of(row: &RowResult) -> Result<Run, Problem> {
    let id = db::get_text(row, 0);
    let status = Status::parse(&db::get_text(row, 3)).ok_or_else(|| {
        eprintln!("tools: run {id} has an unknown status");
        Problem::internal()
    })?;
    Ok(Run {
        user_id: db::get_text(row, 1),
        stage: db::get_text(row, 2),
        status,
        stop_reason: db::get_opt_text(row, 4),
        model: db::get_text(row, 5),
        messages: None,
        output: db::get_json(row, 6),
        steps: None,
        step_count: db::get_int(row, 7).unwrap_or_default(),
        prompt_tokens: db::get_int(row, 8).unwrap_or_default(),
        completion_tokens: db::get_int(row, 9).unwrap_or_default(),
        created_at: db::get_int(row, 10).unwrap_or_default(),
        finished_at: db::get_int(row, 11),
        quota_refusal: db::get_json(row, 12),
        id,
    })
}

/// The run `run_id` with its messages and steps.
pub async fn find_run(tenant: &Tenant<'_>, run_id: &str) -> Result<Option<Run>, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {RUN_COLUMNS} FROM tool_runs WHERE org_id = ?1 AND run_id = ?2"),
            vec![db::text(run_id)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut run = run_of(row)?;
    run.messages = db::get_json(row, 13);
    run.steps = Some(steps(tenant, run_id).await?);
    Ok(Some(run))
}

async fn steps(tenant: &Tenant<'_>, run_id: &str) -> Result<Vec<Step>, Problem> {
    let rows = tenant
        .query(
            "SELECT seq, kind, tool, arguments, result, is_error, latency_ms, prompt_tokens,
                    completion_tokens, completion_id, cost, currency
             FROM tool_run_steps WHERE org_id = ?1 AND run_id = ?2 ORDER BY seq",
            vec![db::text(run_id)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Step {
            seq: db::get_int(row, 0).unwrap_or_default(),
            kind: db::get_text(row, 1),
            tool: db::get_opt_text(row, 2),
            arguments: db::get_json(row, 3),
            result: db::get_json(row, 4),
            is_error: db::get_int(row, 5) == Some(1),
            latency_ms: db::get_int(row, 6).unwrap_or_default(),
            prompt_tokens: db::get_int(row, 7).unwrap_or_default(),
            completion_tokens: db::get_int(row, 8).unwrap_or_default(),
            completion_id: db::get_opt_text(row, 9),
            cost: db::get_opt_text(row, 10),
            currency: db::get_opt_text(row, 11),
        })
        .collect())
}

/// Runs newest first, before `before` (none: from the newest), at most
/// `count`; only `user`'s when given.
pub async fn page_runs(
    tenant: &Tenant<'_>,
    before: Option<&str>,
    count: u32,
    user: Option<&str>,
) -> Result<Vec<Run>, Problem> {
    // Run ids sort by time; `~` sorts after every id, so no cursor starts
    // from the newest.
    let before = db::text(before.unwrap_or("~"));
    let limit = db::int(i64::from(count));
    let rows = match user {
        Some(user) => {
            tenant
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM tool_runs WHERE org_id = ?1 AND user_id = ?2
                           AND run_id < ?3 ORDER BY run_id DESC LIMIT ?4"
                    ),
                    vec![db::text(user), before, limit],
                )
                .await?
        }
        None => {
            tenant
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM tool_runs WHERE org_id = ?1 AND run_id < ?2
                         ORDER BY run_id DESC LIMIT ?3"
                    ),
                    vec![before, limit],
                )
                .await?
        }
    };
    rows.iter().map(run_of).collect()
}

/// The completion `id` and the user whose run made it.
pub async fn find_completion(
    tenant: &Tenant<'_>,
    id: &str,
) -> Result<Option<(Completion, String)>, Problem> {
    let rows = tenant
        .query(
            "SELECT c.completion_id, c.run_id, c.model, c.request, c.response, c.status,
                    c.prompt_tokens, c.completion_tokens, c.latency_ms, c.created_at, r.user_id
             FROM completions c JOIN tool_runs r ON r.run_id = c.run_id
             WHERE c.org_id = ?1 AND r.org_id = ?1 AND c.completion_id = ?2",
            vec![db::text(id)],
        )
        .await?;
    Ok(rows.first().map(|row| {
        (
            Completion {
                id: db::get_text(row, 0),
                run_id: db::get_text(row, 1),
                model: db::get_text(row, 2),
                request: db::get_json(row, 3).unwrap_or(Value::Null),
                response: db::get_json(row, 4),
                status: db::get_int(row, 5),
                prompt_tokens: db::get_int(row, 6).unwrap_or_default(),
                completion_tokens: db::get_int(row, 7).unwrap_or_default(),
                latency_ms: db::get_int(row, 8).unwrap_or_default(),
                created_at: db::get_int(row, 9).unwrap_or_default(),
            },
            db::get_text(row, 10),
        )
    }))
}
