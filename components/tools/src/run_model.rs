//! A tool run as asked for (`POST /v1/tool-runs`) and as answered: the
//! conversation in OpenAI's chat message format, checked at the boundary,
//! and the run document with its steps.

use gatehouse_http::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::valid_name;

/// The most messages a run starts from.
pub const MESSAGES_MAX: usize = 256;
/// The most tools a run offers (OpenAI's limit).
pub const TOOLS_MAX: usize = 128;
/// The most static calls before a run's first completion.
pub const STATIC_CALLS_MAX: usize = 16;

/// How far a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// One completion, no tools: the provider's answer as is.
    Raw,
    /// Completions and the tool calls they ask for, until a final answer.
    Call,
    /// Given static tools' answers first, then as `call`.
    Static,
}

impl Stage {
    /// As stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Raw => "raw",
            Stage::Call => "call",
            Stage::Static => "static",
        }
    }
}

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The person asking.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A function the model asks to call: its arguments are JSON text, which
/// a model may get wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// One call in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The id the tool message answers.
    pub id: String,
    /// `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What is called.
    pub function: FunctionCall,
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who says it.
    pub role: Role,
    /// A string, or an array of content parts; none for an assistant
    /// message that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// A participant's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An assistant's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a tool message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A tool message answering `call_id` with `content`.
    pub fn tool(call_id: &str, content: String) -> Message {
        Message {
            role: Role::Tool,
            content: Some(Value::String(content)),
            name: None,
            tool_calls: None,
            tool_call_id: Some(call_id.to_string()),
        }
    }
}

fn no_arguments() -> Value {
    Value::Object(serde_json::Map::new())
}

/// A static tool called before the first completion.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticCall {
    /// The tool's name.
    pub tool: String,
    /// Its arguments.
    #[serde(default = "no_arguments")]
    pub arguments: Value,
}

/// `POST /v1/tool-runs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// How far the run goes.
    pub stage: Stage,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// The tools offered by name; none: every tool the caller may run.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Fewer completions than the settings allow.
    #[serde(default)]
    pub max_steps: Option<i64>,
    /// For stage `static`: the calls made first.
    #[serde(default)]
    pub static_calls: Vec<StaticCall>,
}

/// Checked whole before the org's settings are read; [`CreateRun::check`]
/// again with their `max_steps`.
impl gatehouse_http::json::Validate for CreateRun {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let errors = self.check(crate::settings::MAX_STEPS_LIMIT);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn content_ok(content: &Value) -> bool {
    match content {
        Value::String(_) => true,
        Value::Array(parts) => !parts.is_empty() && parts.iter().all(Value::is_object),
        _ => false,
    }
}

fn check_message(i: usize, m: &Message, errors: &mut Vec<FieldError>) {
    let at = format!("/messages/{i}");
    let content = m.content.as_ref();
    let content_valid = content.is_none_or(content_ok);
    if !content_valid {
        errors.push(FieldError::new(
            format!("{at}/content"),
            "invalid",
            "content is a string or an array of content parts",
        ));
    }
    let needs_content = match m.role {
        Role::Assistant => m.tool_calls.as_ref().is_none_or(Vec::is_empty),
        _ => true,
    };
    if needs_content && content.is_none() {
        errors.push(FieldError::new(
            format!("{at}/content"),
            "required",
            "this message needs content",
        ));
    }
    if m.tool_calls.is_some() && m.role != Role::Assistant {
        errors.push(FieldError::new(
            format!("{at}/tool_calls"),
            "invalid",
            "only an assistant message calls tools",
        ));
    }
    if (m.role == Role::Tool) != m.tool_call_id.is_some() {
        errors.push(FieldError::new(
            format!("{at}/tool_call_id"),
            "invalid",
            "a tool message, and only one, answers a tool_call_id",
        ));
    }
}

impl CreateRun {
    /// Every failing field; `settings_max` is the org's `max_steps`.
    pub fn check(&self, settings_max: i64) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.messages.is_empty() || self.messages.len() > MESSAGES_MAX {
            errors.push(FieldError::new(
                "/messages",
                "invalid_length",
                "a run starts from 1 to 256 messages",
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            check_message(i, m, &mut errors);
        }
        if let Some(tools) = &self.tools {
            if tools.len() > TOOLS_MAX {
                errors.push(FieldError::new(
                    "/tools",
                    "too_many",
                    "a run offers at most 128 tools",
                ));
            }
            for (i, name) in tools.iter().enumerate() {
                if !valid_name(name) || tools[..i].contains(name) {
                    errors.push(FieldError::new(
                        format!("/tools/{i}"),
                        "invalid",
                        "a tool name, given once",
                    ));
                }
            }
        }
        if let Some(max) = self.max_steps
            && !(1..=settings_max).contains(&max)
        {
            errors.push(FieldError::new(
                "/max_steps",
                "out_of_range",
                format!("max_steps is 1 to {settings_max}, the org's tool settings"),
            ));
        }
        match (self.stage, self.static_calls.len()) {
            (Stage::Static, 0) => errors.push(FieldError::new(
                "/static_calls",
                "required",
                "stage static runs static_calls first",
            )),
            (Stage::Static, n) if n > STATIC_CALLS_MAX => errors.push(FieldError::new(
                "/static_calls",
                "too_many",
                "at most 16 static calls",
            )),
            (Stage::Raw | Stage::Call, n) if n > 0 => errors.push(FieldError::new(
                "/static_calls",
                "invalid",
                "static_calls are for stage static",
            )),
            _ => {}
        }
        errors
    }
}

/// What a run is doing or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Under way.
    Running,
    /// A final answer.
    Completed,
    /// The provider failed it.
    Failed,
    /// A limit ended it.
    Stopped,
}

impl Status {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }

    /// The stored spelling read back.
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "running" => Some(Status::Running),
            "completed" => Some(Status::Completed),
            "failed" => Some(Status::Failed),
            "stopped" => Some(Status::Stopped),
            _ => None,
        }
    }
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// 1, 2, … in order.
    pub seq: i64,
    /// `completion` or `tool_call`.
    pub kind: String,
    /// A tool call's tool.
    pub tool: Option<String>,
    /// A tool call's arguments (a string when they were no JSON).
    pub arguments: Option<Value>,
    /// A tool call's result, or why it failed.
    pub result: Option<Value>,
    /// Whether the step failed.
    pub is_error: bool,
    /// How long it took.
    pub latency_ms: i64,
    /// A completion's prompt tokens.
    pub prompt_tokens: i64,
    /// A completion's completion tokens.
    pub completion_tokens: i64,
    /// A completion's record (`GET /v1/completions/{id}`).
    pub completion_id: Option<String>,
    /// What it cost, as an exact decimal, when its meter has a price.
    pub cost: Option<String>,
    /// The cost's currency.
    pub currency: Option<String>,
}

/// A run, as answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// `run_<time-sorted hex>`.
    pub id: String,
    /// Who ran it.
    pub user_id: String,
    /// `raw`, `call` or `static`.
    pub stage: String,
    /// `running`, `completed`, `failed` or `stopped`.
    pub status: Status,
    /// Why it ended.
    pub stop_reason: Option<String>,
    /// When a quota stopped it (`stop_reason` `quota_exceeded`): what was
    /// about to run and the quota that refused it.
    pub quota_refusal: Option<Value>,
    /// The model asked.
    pub model: String,
    /// The conversation it started from (in a listing: left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Value>,
    /// The final answer: for `raw` the provider's whole answer, otherwise
    /// the final assistant message.
    pub output: Option<Value>,
    /// Its steps (in a listing: left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    /// How many steps.
    pub step_count: i64,
    /// Prompt tokens of all its completions.
    pub prompt_tokens: i64,
    /// Completion tokens of all its completions.
    pub completion_tokens: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; none while running.
    pub finished_at: Option<i64>,
}

/// A completion's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// `cmpl_<time-sorted hex>`.
    pub id: String,
    /// The run it belongs to.
    pub run_id: String,
    /// The model asked.
    pub model: String,
    /// The body sent (the API key travels in a header, never here).
    pub request: Value,
    /// The body answered; none when none came.
    pub response: Option<Value>,
    /// The provider's status; none when none came.
    pub status: Option<i64>,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// How long it took.
    pub latency_ms: i64,
    /// Unix seconds.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(value: Value) -> anyhow::Result<CreateRun> {
        Ok(serde_json::from_value(value)?)
    }

    #[test]
    fn a_conversation_in_openais_format_is_taken() -> anyhow::Result<()> {
        let body = run(json!({
            "stage": "call",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                  "function": {"name": "greet", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "hello"}
            ]
        }))?;
        assert!(body.check(8).is_empty());
        Ok(())
    }

    #[test]
    fn bad_runs_name_each_field() -> anyhow::Result<()> {
        let body = run(json!({
            "stage": "raw",
            "messages": [{"role": "user"}, {"role": "tool", "content": 3}],
            "tools": ["a", "a", "no space"],
            "max_steps": 9,
            "static_calls": [{"tool": "a"}]
        }))?;
        let found: Vec<String> = body.check(8).into_iter().map(|e| e.pointer).collect();
        for p in [
            "/messages/0/content",
            "/messages/1/content",
            "/messages/1/tool_call_id",
            "/tools/1",
            "/tools/2",
            "/max_steps",
            "/static_calls",
        ] {
            assert!(found.iter().any(|f| f == p), "{p} in {found:?}");
        }
        assert!(
            run(json!({"stage": "raw", "messages": [{"role": "robot", "content": "x"}]})).is_err()
        );
        let empty = run(json!({"stage": "static", "messages": []}))?;
        assert_eq!(empty.check(8).len(), 2);
        Ok(())
    }
}
