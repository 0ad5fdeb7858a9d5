//! A local server speaking OpenAI's chat-completions wire format
//! (`tests/openai-api/server.py`), for the tests of Gatehouse's tool-calling
//! loops: no test can reach a real model. The test scripts what the model
//! answers, turn by turn ([`Turn`]); the server checks each request as
//! OpenAI does (API key, messages, tool calls and their results, tools),
//! answers with OpenAI's objects and errors, and records every request so
//! the test can read what Gatehouse sent.
//!
//! ```no_run
//! # use gatehouse_tests::openai_api::{OpenAiApi, Turn};
//! # use serde_json::json;
//! # fn main() -> anyhow::Result<()> {
//! let api = OpenAiApi::start("sk-test-key")?;
//! api.script("gpt-4o", &[
//!     Turn::tool_calls(&[("seat_count", json!({"org": "acme"}))]).usage(120, 18),
//!     Turn::answer("Acme has 7 seats.").usage(160, 9),
//! ])?;
//! // ... point Gatehouse at `api.base_url` with `api.api_key`, run it ...
//! let sent = api.chat_requests()?;
//! # Ok(()) }
//! ```

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Reply, get, root, send};

/// The server process, stopped on drop.
pub struct OpenAiApi {
    /// `http://127.0.0.1:<port>/v1`: the base URL an OpenAI client is
    /// given instead of `https://api.openai.com/v1`.
    pub base_url: String,
    /// The only API key the server accepts.
    pub api_key: String,
    origin: String,
    child: Child,
}

impl Drop for OpenAiApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scripted answer of the model: what the next chat request to its
/// model gets (the server's `turns.py` describes the JSON).
#[derive(Debug, Clone)]
pub struct Turn(Value);

impl Turn {
    /// A final answer: assistant `content`, finish_reason `stop`.
    pub fn answer(content: &str) -> Turn {
        Turn(json!({ "content": content }))
    }

    /// Calls of the functions named, each with its arguments (sent as
    /// their JSON text) and a generated `call_...` id; finish_reason
    /// `tool_calls`.
    pub fn tool_calls(calls: &[(&str, Value)]) -> Turn {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(name, arguments)| json!({ "name": name, "arguments": arguments }))
            .collect();
        Turn(json!({ "tool_calls": calls }))
    }

    /// One call of `name` whose arguments are `arguments` verbatim, so a
    /// test can hand Gatehouse malformed JSON as a model may produce.
    pub fn raw_tool_call(name: &str, arguments: &str) -> Turn {
        Turn(json!({ "tool_calls": [{ "name": name, "arguments": arguments }] }))
    }

    /// An answer cut off at the token limit: finish_reason `length`.
    pub fn truncated(content: &str) -> Turn {
        Turn(json!({ "content": content, "finish_reason": "length" }))
    }

    /// An error answer with `status` in OpenAI's words: 429 a rate limit
    /// (`rate_limit_exceeded`), 500 and 503 `server_error`.
    pub fn error(status: u16) -> Turn {
        Turn(json!({ "error": { "status": status } }))
    }

    /// A 429 `insufficient_quota`: out of credit, which no retry cures.
    pub fn quota_exceeded() -> Turn {
        Turn(json!({ "error": { "status": 429, "code": "insufficient_quota" } }))
    }

    /// The connection closed with no answer.
    pub fn dropped() -> Turn {
        Turn(json!({ "drop": true }))
    }

    /// The usage the answer reports (`total_tokens` is their sum);
    /// without it the server counts roughly from the text.
    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Turn {
        self.0["usage"] = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        });
        self
    }

    /// A `retry-after` header of `seconds` on an error turn (nothing on
    /// another turn).
    pub fn retry_after(mut self, seconds: u64) -> Turn {
        if let Some(error) = self.0.get_mut("error") {
            error["retry_after"] = json!(seconds);
        }
        self
    }

    /// The server waits `by` before answering (or dropping), to try a
    /// client's timeout.
    pub fn delayed(mut self, by: Duration) -> Turn {
        self.0["delay_ms"] = json!(by.as_millis() as u64);
        self
    }

    /// The turn's JSON, as registered.
    pub fn json(&self) -> &Value {
        &self.0
    }
}

impl OpenAiApi {
    /// Starts the server on a free loopback port, accepting only `api_key`.
    pub fn start(api_key: &str) -> Result<OpenAiApi> {
        // -B: no bytecode files written into the source tree.
        let mut child = Command::new("python3")
            .arg("-B")
            .arg(root().join("tests/openai-api/server.py"))
            // Port 0: the server binds a free port and reports it, so no
            // other process can take it in between.
            .env("PORT", "0")
            .env("OPENAI_API_KEY", api_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("python3 runs tests/openai-api/server.py")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(port) = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse::<u16>().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the OpenAI API server did not start: {line:?}");
        };
        let origin = format!("http://127.0.0.1:{port}");
        Ok(OpenAiApi {
            base_url: format!("{origin}/v1"),
            api_key: api_key.to_string(),
            origin,
            child,
        })
    }

    /// The absolute URL of `path` (`/v1/...`, or a control route).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Replaces `model`'s script: its next chat requests get `turns`, in
    /// order, and one past the last answers 400 `script_exhausted`.
    pub fn script(&self, model: &str, turns: &[Turn]) -> Result<()> {
        let turns: Vec<&Value> = turns.iter().map(Turn::json).collect();
        let body = json!({ "model": model, "turns": turns });
        let reply = send(
            "POST",
            &self.url("/_script"),
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )?;
        if reply.status != 200 {
            bail!("script for {model}: {} {}", reply.status, reply.text());
        }
        Ok(())
    }

    /// Every API request so far (control routes aside), oldest first: `method`, `path`,
    /// `headers` (lower-case names), `body` (parsed JSON; `raw` text when
    /// it is not), the `status` answered and the script `turn` it took.
    pub fn requests(&self) -> Result<Vec<Value>> {
        let reply = get(&self.url("/_requests"), &[])?;
        if reply.status != 200 {
            bail!("/_requests: {} {}", reply.status, reply.text());
        }
        match reply.json()? {
            Value::Array(items) => Ok(items),
            other => bail!("/_requests: not a list: {other}"),
        }
    }

    /// The bodies of the chat requests that took a turn: what the model
    /// was asked, in order.
    pub fn chat_requests(&self) -> Result<Vec<Value>> {
        Ok(self
            .requests()?
            .into_iter()
            .filter(|r| r["path"] == "/v1/chat/completions" && !r["turn"].is_null())
            .map(|r| r["body"].clone())
            .collect())
    }

    /// `POST /v1/chat/completions` with `body`, as a client with the key.
    pub fn complete(&self, body: &Value) -> Result<Reply> {
        self.complete_with(Some(&self.api_key), body)
    }

    /// `POST /v1/chat/completions` with `body` and `key` (none: no
    /// Authorization header).
    pub fn complete_with(&self, key: Option<&str>, body: &Value) -> Result<Reply> {
        let auth = key.map(|k| format!("Bearer {k}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        send(
            "POST",
            &self.url("/v1/chat/completions"),
            &headers,
            body.to_string().as_bytes(),
        )
    }
}
