//! OpenAI's chat-completions wire format, as runs speak it: a tool
//! offered as a function, the request body, an answer read, and a tool's
//! outcome as the text of a tool message.

use serde_json::{Value, json};

use crate::model::Tool;
use crate::run_model::{Message, Role, ToolCall};

/// `tool` as a function tool: its name, description and input schema.
pub fn function_tool(tool: &Tool) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.input_schema,
        }
    })
}

/// The body of one completion; `tools` left out when there are none
/// (OpenAI refuses an empty list).
pub fn request_body(model: &str, messages: &[Message], tools: &[Value]) -> Value {
    let mut body = json!({ "model": model, "messages": messages });
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools.to_vec());
    }
    body
}

/// What one completion answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The assistant message, as it goes back into the conversation.
    pub message: Message,
    /// `stop`, `length`, `tool_calls`, …
    pub finish_reason: String,
    /// Prompt tokens, as the provider counted them.
    pub prompt_tokens: i64,
    /// Completion tokens, as the provider counted them.
    pub completion_tokens: i64,
}

impl Answer {
    /// The calls the model asks for.
    pub fn tool_calls(&self) -> &[ToolCall] {
        self.message.tool_calls.as_deref().unwrap_or_default()
    }
}

/// The tokens an answer (or an error answer) reports; none is zero.
pub fn usage(response: &Value) -> (i64, i64) {
    let count = |name: &str| response["usage"][name].as_i64().unwrap_or(0).max(0);
    (count("prompt_tokens"), count("completion_tokens"))
}

/// The first choice of a chat completion; none when `response` is not one.
pub fn read_answer(response: &Value) -> Option<Answer> {
    let choice = response["choices"].get(0)?;
    let message = &choice["message"];
    if message["role"] != "assistant" {
        return None;
    }
    let tool_calls: Option<Vec<ToolCall>> = match &message["tool_calls"] {
        Value::Null => None,
        calls => Some(serde_json::from_value(calls.clone()).ok()?),
    };
    let content = match &message["content"] {
        Value::Null => None,
        other => Some(other.clone()),
    };
    let (prompt_tokens, completion_tokens) = usage(response);
    Some(Answer {
        message: Message {
            role: Role::Assistant,
            content,
            name: None,
            tool_calls: tool_calls.filter(|c| !c.is_empty()),
            tool_call_id: None,
        },
        finish_reason: choice["finish_reason"]
            .as_str()
            .unwrap_or("stop")
            .to_string(),
        prompt_tokens,
        completion_tokens,
    })
}

/// A tool's result as a tool message's text: a string as itself, other
/// JSON as its text.
pub fn result_text(result: &Value) -> String {
    match result {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why a call failed, as a tool message's text the model can read.
pub fn error_text(error: &Value) -> String {
    json!({ "error": error }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_tool_calls_is_read_back_as_a_message() -> anyhow::Result<()> {
        let response = json!({
            "id": "chatcmpl-1",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null, "refusal": null, "annotations": [],
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "greet", "arguments": "{\"name\":\"Ada\"}"}}]
            }}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        });
        let answer = read_answer(&response).ok_or_else(|| anyhow::anyhow!("no answer"))?;
        assert_eq!(answer.tool_calls()[0].function.name, "greet");
        assert_eq!((answer.prompt_tokens, answer.completion_tokens), (12, 5));
        let back = serde_json::to_value(&answer.message)?;
        assert_eq!(back["role"], "assistant");
        assert!(back.get("content").is_none() && back.get("refusal").is_none());
        assert_eq!(read_answer(&json!({"error": {"message": "x"}})), None);
        Ok(())
    }

    #[test]
    fn no_tools_means_no_tools_field() {
        let body = request_body("m", &[], &[]);
        assert!(body.get("tools").is_none());
        assert_eq!(result_text(&json!("plain")), "plain");
        assert_eq!(result_text(&json!({"a": 1})), "{\"a\":1}");
        assert_eq!(error_text(&json!("boom")), "{\"error\":\"boom\"}");
    }
}
