//! Where a run meets the org's quotas: before each completion and each
//! tool call a run holds quota on the meter its settings name (a
//! reservation of metering's), and after it settles the hold with what
//! was used, which counts it for the member (and their teams and org)
//! and records its spend from the meter's price. A completion holds the
//! settings' `reserve_tokens` and is settled with its actual total
//! tokens, item `model:<model>`; a tool call holds and is settled with
//! one, item `tool:<name>`. A refused hold stops the run before anything
//! is sent, naming the quota that refused.

use gatehouse_auth::tenant::Tenant;
use gatehouse_http::principal::{Principal, Subject};
use gatehouse_http::{ErrorCode, Problem};
use gatehouse_metering::holding::{self, Ask, Held, Spent};
use serde_json::{Value, json};
use spin_sdk::sqlite::Connection;

use crate::execute::{self, Outcome, ToolError};
use crate::model::Tool;
use crate::settings::Settings;

/// Seconds a tool call's hold lasts if it is never settled: longer than
/// any tool's timeout.
const TOOL_HOLD_SECONDS: i64 = 120;

/// What is about to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge<'a> {
    /// One completion of `model`.
    Completion {
        /// The model asked.
        model: &'a str,
    },
    /// One call of the tool named `tool`.
    ToolCall {
        /// The tool.
        tool: &'a str,
    },
}

impl Charge<'_> {
    fn describe(&self) -> Value {
        match self {
            Charge::Completion { model } => json!({"kind": "completion", "model": model}),
            Charge::ToolCall { tool } => json!({"kind": "tool_call", "tool": tool}),
        }
    }
}

/// A hold to settle once the charge is used.
#[derive(Debug)]
pub enum Hold {
    /// The charge's meter is not set: nothing is held or counted.
    Unmetered,
    /// A reservation of metering's.
    Held(String),
}

/// Why a run stops at a hold or a settlement.
#[derive(Debug)]
pub struct Stop {
    /// The run's `stop_reason`.
    pub reason: &'static str,
    /// For `quota_exceeded`: the charge and the quota that refused it.
    pub refusal: Option<Value>,
}

impl Stop {
    fn failed(what: &str, problem: &Problem) -> Stop {
        eprintln!(
            "tools: metering could not {what} ({}: {})",
            problem.status,
            problem.detail.as_deref().unwrap_or("")
        );
        Stop {
            reason: "metering_failed",
            refusal: None,
        }
    }
}

/// Whom a metered run counts for: a member (`user:<id>`) or an API key
/// (`key:<id>`, counted for its owner too); none for a service or an
/// external subject, which no quota applies to.
pub fn subject_of(principal: &Principal) -> Option<String> {
    match &principal.subject {
        Subject::User { id } => Some(format!("user:{id}")),
        Subject::ApiKey { id, .. } => Some(format!("key:{id}")),
        Subject::Service { .. } | Subject::External { .. } => None,
    }
}

/// The meters an org's tool settings name, and how much a completion
/// holds for how long.
#[derive(Debug, Clone, Default)]
pub struct Meters {
    token: Option<String>,
    tool: Option<String>,
    reserve_tokens: i64,
    completion_hold_seconds: i64,
}

impl Meters {
    /// The meters of `settings`; none without settings.
    pub fn of(settings: Option<&Settings>) -> Meters {
        settings.map_or_else(Meters::default, |s| Meters {
            token: s.token_meter.clone(),
            tool: s.tool_meter.clone(),
            reserve_tokens: s.reserve_tokens,
            // Longer than the completion may take.
            completion_hold_seconds: s.timeout_ms / 1000 + 61,
        })
    }

    /// Whether anything is metered.
    pub fn any(&self) -> bool {
        self.token.is_some() || self.tool.is_some()
    }
}

/// A caller whose use is metered must be a member or an API key.
pub fn refuse_unmetered(meters: &Meters, subject: Option<&str>) -> Result<(), Problem> {
    if meters.any() && subject.is_none() {
        return Err(Problem::new(ErrorCode::Forbidden).detail(
            "this organization's tool use counts toward its members' quotas: call as a member or with an API key",
        ));
    }
    Ok(())
}

/// The meter of a caller (`principal`, recorded as `actor`) of the org
/// of `tenant`, from its tool settings; a 403 when the org meters tool
/// use and the caller is neither a member nor an API key.
pub async fn meter_for<'a, 't>(
    tenant: &'a Tenant<'t>,
    conn: &'a Connection,
    principal: &Principal,
    actor: &'a str,
) -> Result<Meter<'a, 't>, Problem> {
    let settings = crate::run_store::settings(tenant).await?;
    let meters = Meters::of(settings.as_ref());
    let subject = subject_of(principal);
    refuse_unmetered(&meters, subject.as_deref())?;
    Ok(Meter {
        tenant,
        conn,
        meters,
        subject,
        actor,
    })
}

/// One caller's meter: the org's meters and whom they count for.
pub struct Meter<'a, 't> {
    /// The caller's org.
    pub tenant: &'a Tenant<'t>,
    /// The tenant's connection, for metering's transactions.
    pub conn: &'a Connection,
    /// The org's meters.
    pub meters: Meters,
    /// From [`subject_of`]; required when anything is metered.
    pub subject: Option<String>,
    /// Who called, for the spend's record.
    pub actor: &'a str,
}

impl Meter<'_, '_> {
    /// Tokens a completion holds, counted when its own count is unknown.
    pub fn held_tokens(&self) -> i64 {
        self.meters.reserve_tokens
    }

    fn meter_of(&self, charge: Charge<'_>) -> Option<&str> {
        match charge {
            Charge::Completion { .. } => self.meters.token.as_deref(),
            Charge::ToolCall { .. } => self.meters.tool.as_deref(),
        }
    }

    /// Holds quota for `charge`; a [`Stop`] when a quota refuses it or
    /// metering fails (nothing is then sent).
    pub async fn hold(&self, charge: Charge<'_>) -> Result<Hold, Stop> {
        let Some(meter) = self.meter_of(charge) else {
            return Ok(Hold::Unmetered);
        };
        let Some(subject) = self.subject.clone() else {
            // The route refuses metered runs for such callers first.
            return Err(Stop {
                reason: "metering_failed",
                refusal: None,
            });
        };
        let (amount, ttl_seconds, item_type, item_id) = match charge {
            Charge::Completion { model } => (
                self.meters.reserve_tokens,
                self.meters.completion_hold_seconds,
                "model",
                model,
            ),
            Charge::ToolCall { tool } => (1, TOOL_HOLD_SECONDS, "tool", tool),
        };
        let ask = Ask {
            subject,
            meter,
            amount,
            ttl_seconds,
            item_type,
            item_id,
        };
        match holding::hold(self.tenant, self.conn, ask).await {
            Ok(Held::Granted(id)) => Ok(Hold::Held(id)),
            Ok(Held::Refused(decision)) => Err(Stop {
                reason: "quota_exceeded",
                refusal: Some(json!({
                    "charge": charge.describe(),
                    "meter": meter,
                    "blocking": decision.blocking,
                    "reset_at": decision.reset_at,
                })),
            }),
            Err(problem) => Err(Stop::failed("hold quota", &problem)),
        }
    }

    /// Settles `hold` with `used` units; what they cost, when the meter
    /// has a price. A [`Stop`] (logged here) when metering fails: the use
    /// happened, uncounted; a run goes no further.
    pub async fn settle(&self, hold: Hold, used: i64) -> Result<Option<Spent>, Stop> {
        let Hold::Held(id) = hold else {
            return Ok(None);
        };
        holding::settle(self.tenant, self.conn, &id, used.max(0), self.actor)
            .await
            .map_err(|problem| Stop::failed("settle a hold", &problem))
    }
}

/// Calls `tool` for a caller outside a run (its route, MCP): checked
/// first (a call refused for its arguments holds nothing), then one call
/// held on the tool meter, run, and settled. `Err` when the hold was
/// refused (nothing ran). A settlement that fails is logged and the
/// outcome still answered: the tool has run, and a retry would run it
/// again.
pub async fn call_tool(
    meter: &Meter<'_, '_>,
    tool: &Tool,
    arguments: &Value,
) -> Result<Result<Outcome, ToolError>, Stop> {
    let prepared = match execute::prepare(tool, arguments) {
        Ok(prepared) => prepared,
        Err(refused) => return Ok(Err(refused)),
    };
    let hold = meter.hold(Charge::ToolCall { tool: &tool.name }).await?;
    let outcome = prepared.run(meter.tenant).await;
    let _ = meter.settle(hold, 1).await;
    Ok(Ok(outcome))
}

impl Stop {
    /// The answer of a route refused by a quota (429 `quota_exceeded`,
    /// with `Retry-After` when the quota's count falls) or by metering
    /// that failed (503).
    pub fn problem(&self) -> Problem {
        let Some(refusal) = &self.refusal else {
            return Problem::new(ErrorCode::Unavailable)
                .detail("the call could not be metered; try again");
        };
        let blocking = &refusal["blocking"];
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut problem = Problem::new(ErrorCode::QuotaExceeded).detail(format!(
            "the quota {} of {} is used up ({} of {})",
            text(&blocking["id"]),
            text(&blocking["entity"]),
            text(&blocking["used"]),
            text(&blocking["limit"]),
        ));
        if let Some(reset_at) = refusal["reset_at"].as_i64() {
            let wait = reset_at
                .saturating_sub(gatehouse_http::idempotency::unix_now())
                .max(1);
            problem = problem.header("retry-after", wait.to_string());
        }
        problem
    }

    /// The refusal as a tool result an agent reads.
    pub fn tool_result(&self) -> Value {
        match &self.refusal {
            Some(refusal) => {
                json!({"message": "a quota refused this call", "quota_refusal": refusal})
            }
            None => json!({"message": "the call could not be metered; try again"}),
        }
    }
}
