//! A run, carried out: completions from the org's provider and the tool
//! calls they ask for, each recorded as it happens (the run first, as
//! `running`, so that one cut short still shows), until a final answer,
//! the step limit or a provider's failure.
//!
//! A tool call the model gets wrong (a tool not offered, arguments that
//! are no JSON or fail the schema) or that fails is answered to the model
//! as a tool message holding the error, never a failure of the run: the
//! model may correct itself. Each completion and tool call holds quota
//! first and settles it after ([`crate::spend`]); a refused hold stops
//! the run (`quota_exceeded`) before anything is sent.

use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use gatehouse_http::idempotency::unix_now;
use serde_json::{Value, json};

use crate::chat::{self, Answer};
use crate::execute::{self, ToolError};
use crate::llm;
use crate::model::Tool;
use crate::run_model::{
    Completion, FunctionCall, Message, Role, Run, Stage, Status, Step, ToolCall,
};
use crate::run_store as store;
use crate::settings::Settings;
use crate::spend::{Charge, Meter, Stop};

/// What a run is given, checked by the route.
pub struct Plan {
    /// How far it goes.
    pub stage: Stage,
    /// The conversation it starts from.
    pub messages: Vec<Message>,
    /// The tools offered: those the caller may run.
    pub offered: Vec<Tool>,
    /// For stage static: the tools called first, with their arguments.
    pub static_calls: Vec<(Tool, Value)>,
    /// The most completions.
    pub max_steps: i64,
}

/// Where a completion left the run.
enum Completed {
    /// An answer.
    Answer(Answer, Value),
    /// The run ends: its status and reason.
    End(Status, String),
}

struct Runner<'a, 't> {
    tenant: &'a Tenant<'t>,
    meter: &'a Meter<'a, 't>,
    settings: &'a Settings,
    api_key: &'a str,
    run: Run,
    steps: Vec<Step>,
}

/// Carries out `plan` for `user_id` with the org's `settings` and
/// `api_key`, metered by `meter`; the finished run.
pub async fn run<'a, 't>(
    meter: &'a Meter<'a, 't>,
    settings: &'a Settings,
    api_key: &'a str,
    user_id: &str,
    plan: Plan,
) -> Result<Run, Problem> {
    let tenant = meter.tenant;
    let run = Run {
        id: gatehouse_auth::db::new_sorted_id("run_"),
        user_id: user_id.to_string(),
        stage: plan.stage.as_str().to_string(),
        status: Status::Running,
        stop_reason: None,
        quota_refusal: None,
        model: settings.model.clone(),
        messages: Some(serde_json::to_value(&plan.messages).map_err(|_| Problem::internal())?),
        output: None,
        steps: None,
        step_count: 0,
        prompt_tokens: 0,
        completion_tokens: 0,
        created_at: unix_now(),
        finished_at: None,
    };
    store::start_run(tenant, &run).await?;
    let mut runner = Runner {
        tenant,
        meter,
        settings,
        api_key,
        run,
        steps: Vec::new(),
    };
    let (status, reason, output) = runner.go(plan).await?;
    runner.finish(status, reason, output).await
}

impl Runner<'_, '_> {
    async fn go(&mut self, plan: Plan) -> Result<(Status, String, Option<Value>), Problem> {
        let mut messages = plan.messages;
        if plan.stage == Stage::Raw {
            return Ok(match self.complete(&messages, &[]).await? {
                Completed::Answer(answer, response) => {
                    (Status::Completed, answer.finish_reason, Some(response))
                }
                Completed::End(status, reason) => (status, reason, None),
            });
        }
        if !plan.static_calls.is_empty()
            && let Some(end) = self.static_calls(&plan.static_calls, &mut messages).await?
        {
            return Ok(end);
        }
        let functions: Vec<Value> = plan.offered.iter().map(chat::function_tool).collect();
        for _ in 0..plan.max_steps {
            let answer = match self.complete(&messages, &functions).await? {
                Completed::Answer(answer, _) => answer,
                Completed::End(status, reason) => return Ok((status, reason, None)),
            };
            let calls = answer.tool_calls().to_vec();
            messages.push(answer.message.clone());
            if calls.is_empty() {
                let output = serde_json::to_value(&answer.message).ok();
                return Ok((Status::Completed, answer.finish_reason, output));
            }
            for call in &calls {
                match self.tool_call(call, &plan.offered).await? {
                    Ok(content) => messages.push(Message::tool(&call.id, content)),
                    Err(stop) => return Ok(self.stopped(stop)),
                }
            }
        }
        Ok((Status::Stopped, "max_steps".into(), None))
    }

    /// How a [`Stop`] ends the run: a refused quota stops it, with the
    /// refusal kept on the run; metering that fails fails it.
    fn stopped(&mut self, stop: Stop) -> (Status, String, Option<Value>) {
        let status = if stop.refusal.is_some() {
            Status::Stopped
        } else {
            Status::Failed
        };
        self.run.quota_refusal = stop.refusal;
        (status, stop.reason.to_string(), None)
    }

    /// Calls each of `calls` and adds them to `messages` as the model's
    /// calls and their tool messages; how the run ends when a hold or
    /// its settlement stops it.
    async fn static_calls(
        &mut self,
        calls: &[(Tool, Value)],
        messages: &mut Vec<Message>,
    ) -> Result<Option<(Status, String, Option<Value>)>, Problem> {
        let mut asked = Vec::with_capacity(calls.len());
        let mut answers = Vec::with_capacity(calls.len());
        for (i, (tool, arguments)) in calls.iter().enumerate() {
            let call = ToolCall {
                id: format!("call_static_{}", i + 1),
                kind: "function".into(),
                function: FunctionCall {
                    name: tool.name.clone(),
                    arguments: arguments.to_string(),
                },
            };
            let content = match self.execute(tool, arguments).await? {
                Ok(content) => content,
                Err(stop) => return Ok(Some(self.stopped(stop))),
            };
            answers.push(Message::tool(&call.id, content));
            asked.push(call);
        }
        messages.push(Message {
            role: Role::Assistant,
            content: None,
            name: None,
            tool_calls: Some(asked),
            tool_call_id: None,
        });
        messages.extend(answers);
        Ok(None)
    }

    /// One call the model asked for; the tool message's text.
    async fn tool_call(
        &mut self,
        call: &ToolCall,
        offered: &[Tool],
    ) -> Result<Result<String, Stop>, Problem> {
        let name = &call.function.name;
        let arguments = serde_json::from_str::<Value>(&call.function.arguments);
        // Only the tools offered, which the caller may run: the model
        // names whatever it likes.
        let error = match (offered.iter().find(|t| &t.name == name), &arguments) {
            (Some(tool), Ok(arguments)) => return self.execute(tool, arguments).await,
            (None, _) => json!(format!("the tool {name} is not available to this run")),
            (Some(_), Err(_)) => json!("the arguments are not valid JSON"),
        };
        let arguments =
            arguments.unwrap_or_else(|_| Value::String(call.function.arguments.clone()));
        self.add_step(Step {
            tool: Some(name.clone()),
            arguments: Some(arguments),
            result: Some(error.clone()),
            is_error: true,
            ..self.step("tool_call")
        })
        .await?;
        Ok(Ok(chat::error_text(&error)))
    }

    /// Runs `tool`; the tool message's text. A call refused (invalid
    /// arguments, a disabled tool) is an error the model reads, and holds
    /// no quota; one that runs holds a call first (a refusal stops the
    /// run) and is settled after, whatever the tool answered.
    async fn execute(
        &mut self,
        tool: &Tool,
        arguments: &Value,
    ) -> Result<Result<String, Stop>, Problem> {
        let (outcome, settled) = match execute::prepare(tool, arguments) {
            Ok(prepared) => {
                let hold = match self.meter.hold(Charge::ToolCall { tool: &tool.name }).await {
                    Ok(hold) => hold,
                    Err(stop) => return Ok(Err(stop)),
                };
                let outcome = prepared.run(self.tenant).await;
                (Ok(outcome), Some(self.meter.settle(hold, 1).await))
            }
            Err(refused) => (Err(refused), None),
        };
        // The step is kept whatever became of its count; a count that
        // failed stops the run after it.
        let (spent, stop) = match settled {
            Some(Ok(spent)) => (spent, None),
            Some(Err(stop)) => (None, Some(stop)),
            None => (None, None),
        };
        let (result, is_error, latency_ms) = match outcome {
            Ok(o) => (o.result, o.is_error, o.latency_ms),
            Err(ToolError::InvalidArguments(errors)) => (
                json!({"message": "the arguments do not match the tool's input schema", "errors": errors}),
                true,
                0,
            ),
            Err(ToolError::Disabled) => (json!("the tool is disabled"), true, 0),
            Err(ToolError::Internal) => (json!("the tool could not be run"), true, 0),
        };
        let content = if is_error {
            chat::error_text(&result)
        } else {
            chat::result_text(&result)
        };
        self.add_step(Step {
            tool: Some(tool.name.clone()),
            arguments: Some(arguments.clone()),
            result: Some(result),
            is_error,
            latency_ms: i64::try_from(latency_ms).unwrap_or(i64::MAX),
            cost: spent.as_ref().map(|s| s.amount.clone()),
            currency: spent.map(|s| s.currency),
            ..self.step("tool_call")
        })
        .await?;
        Ok(stop.map_or(Ok(content), Err))
    }

    /// One completion, recorded with its step.
    async fn complete(
        &mut self,
        messages: &[Message],
        functions: &[Value],
    ) -> Result<Completed, Problem> {
        let model = self.settings.model.as_str();
        let hold = match self.meter.hold(Charge::Completion { model }).await {
            Ok(hold) => hold,
            Err(stop) => {
                let (status, reason, _) = self.stopped(stop);
                return Ok(Completed::End(status, reason));
            }
        };
        let request = chat::request_body(model, messages, functions);
        let url = self.settings.completions_url();
        let exchange = llm::complete(&url, self.api_key, &request, self.settings.timeout_ms).await;
        let reported = exchange
            .response
            .as_ref()
            .filter(|r| r.get("usage").is_some())
            .map(chat::usage);
        let (prompt_tokens, completion_tokens) = reported.unwrap_or_default();
        let counted = tokens_counted(&exchange, reported, self.meter.held_tokens());
        let settled = self.meter.settle(hold, counted).await;
        let answer = match (&exchange.failure, &exchange.response) {
            (None, Some(response)) => chat::read_answer(response),
            _ => None,
        };
        let failure = match (exchange.failure, &answer) {
            (Some(reason), _) => Some(reason),
            (None, None) => Some("provider_invalid_response"),
            (None, Some(_)) => None,
        };
        let completion = Completion {
            id: gatehouse_auth::db::new_sorted_id("cmpl_"),
            run_id: self.run.id.clone(),
            model: model.to_string(),
            request,
            response: exchange.response.clone(),
            status: exchange.status.map(i64::from),
            prompt_tokens,
            completion_tokens,
            latency_ms: exchange.latency_ms,
            created_at: unix_now(),
        };
        store::add_completion(self.tenant, &completion).await?;
        self.run.prompt_tokens += prompt_tokens;
        self.run.completion_tokens += completion_tokens;
        let spent = settled.as_ref().ok().cloned().flatten();
        self.add_step(Step {
            is_error: failure.is_some(),
            latency_ms: exchange.latency_ms,
            prompt_tokens,
            completion_tokens,
            completion_id: Some(completion.id),
            result: failure.map(|f| json!(f)),
            cost: spent.as_ref().map(|s| s.amount.clone()),
            currency: spent.map(|s| s.currency),
            ..self.step("completion")
        })
        .await?;
        if let Err(stop) = settled {
            let (status, reason, _) = self.stopped(stop);
            return Ok(Completed::End(status, reason));
        }
        Ok(match (failure, answer, exchange.response) {
            (None, Some(answer), Some(response)) => Completed::Answer(answer, response),
            (reason, _, _) => Completed::End(
                Status::Failed,
                reason.unwrap_or("provider_invalid_response").to_string(),
            ),
        })
    }

    /// An empty step of `kind`, next in order.
    fn step(&self, kind: &str) -> Step {
        Step {
            seq: i64::try_from(self.steps.len()).unwrap_or(i64::MAX) + 1,
            kind: kind.to_string(),
            tool: None,
            arguments: None,
            result: None,
            is_error: false,
            latency_ms: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            completion_id: None,
            cost: None,
            currency: None,
        }
    }

    async fn add_step(&mut self, step: Step) -> Result<(), Problem> {
        store::add_step(self.tenant, &self.run.id, &step).await?;
        self.steps.push(step);
        Ok(())
    }

    async fn finish(
        mut self,
        status: Status,
        reason: String,
        output: Option<Value>,
    ) -> Result<Run, Problem> {
        self.run.status = status;
        self.run.stop_reason = Some(reason);
        self.run.output = output;
        self.run.step_count = i64::try_from(self.steps.len()).unwrap_or(i64::MAX);
        self.run.finished_at = Some(unix_now());
        store::finish_run(self.tenant, &self.run).await?;
        self.run.steps = Some(self.steps);
        Ok(self.run)
    }
}

/// The tokens a completion counts toward quotas: those the provider
/// reported; when it answered 2xx without saying, or the wait ended
/// before its answer did (the model may have run to the end and been
/// billed), the tokens held for it; an error status or a provider never
/// reached, none.
fn tokens_counted(exchange: &llm::Exchange, reported: Option<(i64, i64)>, held: i64) -> i64 {
    match (reported, exchange.status, exchange.failure) {
        (Some((prompt, completion)), _, _) => prompt.saturating_add(completion),
        (None, Some(200..=299), _) | (None, None, Some("provider_timeout")) => held,
        _ => 0,
    }
}
