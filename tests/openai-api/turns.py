"""Scripted turns: what a test says the model answers next, checked when the
script is registered, and the chat.completion object or error each becomes.

A turn is a JSON object, one of:

  {"content": "text"}                          a final answer, finish_reason "stop"
  {"content": "text", "finish_reason": "length"}  an answer cut off at max_tokens
  {"tool_calls": [{"name": "f", "arguments": {...}}, ...]}
                                               calls, finish_reason "tool_calls";
      "arguments" is an object (sent as its JSON text) or a string sent as
      is (malformed JSON included); "id" is generated (`call_...`) unless
      given; "content" may accompany the calls
  {"error": {"status": 429, "retry_after": 2}}  an error answer; status 429
      (rate limit, or "code": "insufficient_quota"), 500, 503 or any other
      with "message", "type", "code"; "retry_after" seconds become a
      `retry-after` header
  {"drop": true}                               the connection closed unanswered

and any of them may add "usage": {"prompt_tokens", "completion_tokens"
[, "total_tokens"]} (otherwise counted roughly from the text) and
"delay_ms": wait that long before answering, to try a client's timeout.
"""

import json
import secrets
import string
import time

ALPHANUMERIC = string.ascii_letters + string.digits
TURN_KEYS = {"content", "finish_reason", "tool_calls", "error", "drop", "usage", "delay_ms"}


def random_id(prefix, length):
    return prefix + "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def check_turn(turn):
    """Why `turn` is not a valid turn, or None."""
    if not isinstance(turn, dict):
        return "a turn is an object"
    unknown = set(turn) - TURN_KEYS
    if unknown:
        return f"unknown turn fields {sorted(unknown)}"
    kinds = [k for k in ("content", "tool_calls", "error", "drop") if k in turn]
    if not kinds:
        return "a turn has content, tool_calls, error or drop"
    if ("error" in turn or "drop" in turn) and len(kinds) > 1:
        return "an error or drop turn answers nothing else"
    if turn.get("finish_reason") not in (None, "stop", "length", "tool_calls", "content_filter"):
        return f"unknown finish_reason {turn['finish_reason']!r}"
    for call in turn.get("tool_calls", []):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) \
                or "arguments" not in call:
            return "a tool call has a name and arguments"
    error = turn.get("error")
    if error is not None and not isinstance(error.get("status") if isinstance(error, dict)
                                            else None, int):
        return "an error turn has a numeric status"
    usage = turn.get("usage", {})
    if not isinstance(usage, dict) or not all(isinstance(v, int) for v in usage.values()):
        return "usage holds integers"
    return None


def tokens(text):
    """A rough count, about four characters a token, for turns that give no
    usage: the numbers need only be plausible, tests that check them script
    them."""
    return max(1, (len(text) + 3) // 4)


def usage(turn, request, message):
    given = turn.get("usage", {})
    prompt = given.get("prompt_tokens", tokens(json.dumps(request.get("messages", []))))
    completion = given.get("completion_tokens", tokens(json.dumps(message)))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": given.get("total_tokens", prompt + completion),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def completion(turn, request, model, fingerprint):
    """The chat.completion object answering `request` with an answer turn."""
    message = {"role": "assistant", "content": turn.get("content"), "refusal": None,
               "annotations": []}
    finish = "stop"
    if "tool_calls" in turn:
        message["tool_calls"] = [tool_call(call) for call in turn["tool_calls"]]
        finish = "tool_calls"
    return {
        "id": random_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": turn.get("finish_reason", finish),
        }],
        "usage": usage(turn, request, message),
        "service_tier": "default",
        "system_fingerprint": fingerprint,
    }


def tool_call(call):
    arguments = call["arguments"]
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, separators=(",", ":"))
    return {
        "id": call.get("id") or random_id("call_", 24),
        "type": "function",
        "function": {"name": call["name"], "arguments": arguments},
    }


def error_answer(error, model):
    """(status, headers, body) of an error turn, worded as OpenAI's."""
    status = error["status"]
    headers = {}
    if "retry_after" in error:
        headers["retry-after"] = str(error["retry_after"])
    if status == 429 and error.get("code") == "insufficient_quota":
        defaults = ("You exceeded your current quota, please check your plan and billing details. "
                    "For more information on this error, read the docs: "
                    "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                    "insufficient_quota", "insufficient_quota")
    elif status == 429:
        wait = error.get("retry_after", 1)
        defaults = (f"Rate limit reached for {model} in organization org-gatehouse-test on tokens "
                    f"per min (TPM): Limit 30000, Used 30000, Requested 120. Please try again in "
                    f"{wait}s. Visit https://platform.openai.com/account/rate-limits to learn more.",
                    "tokens", "rate_limit_exceeded")
        headers.update({"x-ratelimit-limit-tokens": "30000", "x-ratelimit-remaining-tokens": "0",
                        "x-ratelimit-reset-tokens": f"{wait}s"})
    elif status == 503:
        defaults = ("The server is overloaded or not ready yet.", "server_error", None)
    elif status >= 500:
        defaults = ("The server had an error while processing your request. Sorry about that!",
                    "server_error", None)
    else:
        defaults = ("The request was refused.", "invalid_request_error", None)
    message, type_, code = defaults
    body = {"error": {"message": error.get("message", message), "type": error.get("type", type_),
                      "param": error.get("param"), "code": error.get("code", code)}}
    return status, headers, body
