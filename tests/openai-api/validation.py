"""The checks OpenAI's chat-completions endpoint makes on a request body, for
the fields Gatehouse sends: each failure is an ApiError carrying the status,
message, type, param and code OpenAI answers with.

OpenAI's messages come in two generations: the newer schema checks name a
parameter as `messages[1].content` and carry a `code`; the older checks on
the conversation (tool messages and tool calls) name it `messages.[1].role`
and carry no code, spelling included ("preceeding"). Both are kept as
OpenAI sends them, since clients match on them.
"""

import re

CHAT_PARAMS = {
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "messages", "metadata", "modalities", "model", "n",
    "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop",
    "store", "stream", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs",
    "top_p", "user", "verbosity", "web_search_options",
}
# In the order OpenAI lists them when refusing another.
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")


class ApiError(Exception):
    """An answer in OpenAI's error envelope."""

    def __init__(self, status, message, type_="invalid_request_error", param=None, code=None,
                 headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self):
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def kind(value):
    """A JSON value's type as OpenAI's messages name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def invalid_type(param, expected, value):
    return ApiError(400, f"Invalid type for '{param}': expected {expected}, but got "
                         f"{kind(value)} instead.", param=param, code="invalid_type")


def missing(param):
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param,
                    code="missing_required_parameter")


def invalid_value(param, value, supported):
    names = [f"'{s}'" for s in supported]
    listed = " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + ", and " + names[-1]
    return ApiError(400, f"Invalid value: '{value}'. Supported values are: {listed}.",
                    param=param, code="invalid_value")


def empty_array(param):
    return ApiError(400, f"Invalid '{param}': empty array. Expected an array with minimum length 1,"
                         " but got an empty array instead.", param=param, code="empty_array")


def unsupported(param, what):
    """Valid for OpenAI, but outside what this server implements: said so
    plainly rather than answered wrongly."""
    return ApiError(400, f"{what} is not implemented by the local OpenAI API test server.",
                    param=param, code="unsupported_by_test_server")


def check_request(body):
    """Raises the ApiError OpenAI would answer `body` with, if any."""
    if not isinstance(body, dict):
        raise ApiError(400, f"Invalid type for body: expected an object, but got {kind(body)} "
                            "instead.", code="invalid_type")
    for name in body:
        if name not in CHAT_PARAMS:
            raise ApiError(400, f"Unrecognized request argument supplied: {name}")
    model = body.get("model")
    if model is None:
        raise ApiError(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    check_messages(body.get("messages"))
    check_sampling(body)
    check_tools(body.get("tools"), body.get("tool_choice"), "tool_choice" in body)


def check_sampling(body):
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise invalid_type("temperature", "a decimal", temperature)
        if temperature > 2:
            raise ApiError(400, "Invalid 'temperature': decimal above maximum value. Expected a "
                                f"value <= 2, but got {temperature} instead.",
                           param="temperature", code="decimal_above_max_value")
        if temperature < 0:
            raise ApiError(400, "Invalid 'temperature': decimal below minimum value. Expected a "
                                f"value >= 0, but got {temperature} instead.",
                           param="temperature", code="decimal_below_min_value")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type(name, "an integer", value)
        if value < 1:
            raise ApiError(400, f"Invalid '{name}': integer below minimum value. Expected a value "
                                f">= 1, but got {value} instead.",
                           param=name, code="integer_below_min_value")
    if body.get("n", 1) != 1:
        raise unsupported("n", "More than one choice (n > 1)")
    if body.get("stream") is True:
        raise unsupported("stream", "Streaming (stream: true)")


def check_messages(messages):
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise empty_array("messages")
    for i, message in enumerate(messages):
        check_message(i, message)
    check_conversation(messages)


def check_message(i, message):
    at = f"messages[{i}]"
    if not isinstance(message, dict):
        raise invalid_type(at, "an object", message)
    role = message.get("role")
    if role is None:
        raise missing(f"{at}.role")
    if role not in ROLES:
        raise invalid_value(f"{at}.role", role, ROLES)
    if role == "function":
        raise unsupported(f"{at}.role", "The deprecated 'function' role")
    if "name" in message and not isinstance(message["name"], str):
        raise invalid_type(f"{at}.name", "a string", message["name"])
    content = message.get("content")
    if role == "assistant":
        check_assistant(i, message)
    elif content is None:
        if role == "tool" and "tool_call_id" not in message:
            raise missing_tool_call_id(i)
        raise missing(f"{at}.content")
    else:
        check_content(f"{at}.content", content)
    if role == "tool":
        if "tool_call_id" not in message:
            raise missing_tool_call_id(i)
        if not isinstance(message["tool_call_id"], str):
            raise invalid_type(f"{at}.tool_call_id", "a string", message["tool_call_id"])


def missing_tool_call_id(i):
    return ApiError(400, "Missing parameter 'tool_call_id': messages with role 'tool' must have a "
                         "'tool_call_id'.", param=f"messages.[{i}].tool_call_id")


def check_content(param, content):
    """A string, or an array of content parts; only text parts are looked
    into (Gatehouse sends no images or audio)."""
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid_type(param, "one of a string or array of objects", content)
    if not content:
        raise empty_array(param)
    for j, part in enumerate(content):
        at = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(at, "an object", part)
        if "type" not in part:
            raise missing(f"{at}.type")
        if part["type"] == "text":
            if "text" not in part:
                raise missing(f"{at}.text")
            if not isinstance(part["text"], str):
                raise invalid_type(f"{at}.text", "a string", part["text"])


def check_assistant(i, message):
    at = f"messages[{i}]"
    content = message.get("content")
    calls = message.get("tool_calls")
    if content is not None:
        check_content(f"{at}.content", content)
    if calls is None:
        if content is None and message.get("function_call") is None:
            raise ApiError(400, "Invalid value for 'content': expected a string, got null.",
                           param=f"messages.[{i}].content")
        return
    if not isinstance(calls, list):
        raise invalid_type(f"{at}.tool_calls", "an array", calls)
    if not calls:
        raise empty_array(f"{at}.tool_calls")
    for j, call in enumerate(calls):
        check_tool_call(f"{at}.tool_calls[{j}]", call)


def check_tool_call(at, call):
    if not isinstance(call, dict):
        raise invalid_type(at, "an object", call)
    for field in ("id", "type", "function"):
        if field not in call:
            raise missing(f"{at}.{field}")
    if not isinstance(call["id"], str):
        raise invalid_type(f"{at}.id", "a string", call["id"])
    if call["type"] != "function":
        raise invalid_value(f"{at}.type", call["type"], ("function", "custom"))
    function = call["function"]
    if not isinstance(function, dict):
        raise invalid_type(f"{at}.function", "an object", function)
    for field in ("name", "arguments"):
        if field not in function:
            raise missing(f"{at}.function.{field}")
        # A client that sends the arguments back parsed, as an object, is
        # refused: OpenAI takes them only as the JSON text it produced.
        if not isinstance(function[field], str):
            raise invalid_type(f"{at}.function.{field}", "a string", function[field])


def check_conversation(messages):
    """Each tool message answers a call of the assistant message just before
    its run of tool messages, and each such call is answered."""
    open_calls = None  # (index of the assistant message, ids not answered yet)
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            if open_calls is None:
                raise ApiError(400, "Invalid parameter: messages with role 'tool' must be a "
                                    "response to a preceeding message with 'tool_calls'.",
                               param=f"messages.[{i}].role")
            call_id = message["tool_call_id"]
            if call_id not in open_calls[2]:
                raise ApiError(400, f"Invalid parameter: 'tool_call_id' of '{call_id}' not found "
                                    "in 'tool_calls' of previous message.",
                               param=f"messages.[{i}].tool_call_id")
            open_calls[1].discard(call_id)
            continue
        close(open_calls)
        open_calls = None
        if role == "assistant" and message.get("tool_calls"):
            ids = [call["id"] for call in message["tool_calls"]]
            open_calls = (i, set(ids), set(ids))
    close(open_calls)


def close(open_calls):
    if open_calls is None or not open_calls[1]:
        return
    index, unanswered, _ = open_calls
    raise ApiError(400, "An assistant message with 'tool_calls' must be followed by tool messages "
                        "responding to each 'tool_call_id'. The following tool_call_ids did not "
                        f"have response messages: {', '.join(sorted(unanswered))}",
                   param=f"messages.[{index}].role")


def check_tools(tools, tool_choice, has_tool_choice):
    names = []
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_type("tools", "an array", tools)
        if not tools:
            raise empty_array("tools")
        for i, tool in enumerate(tools):
            names.append(check_tool(i, tool))
    if not has_tool_choice or tool_choice is None:
        return
    if tools is None:
        raise ApiError(400, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                            "'tools' are specified.", param="tool_choice")
    if isinstance(tool_choice, str):
        if tool_choice not in ("none", "auto", "required"):
            raise invalid_value("tool_choice", tool_choice, ("none", "auto", "required"))
        return
    if not isinstance(tool_choice, dict):
        raise invalid_type("tool_choice", "one of a string or object", tool_choice)
    if tool_choice.get("type") != "function":
        raise unsupported("tool_choice.type", "A tool_choice other than a named function")
    function = tool_choice.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise missing("tool_choice.function.name")
    if function["name"] not in names:
        raise ApiError(400, f"Invalid value for 'tool_choice': function '{function['name']}' is "
                            "not among 'tools'.", param="tool_choice")


def check_tool(i, tool):
    """The tool's function name, once its definition is found valid."""
    at = f"tools[{i}]"
    if not isinstance(tool, dict):
        raise invalid_type(at, "an object", tool)
    if "type" not in tool:
        raise missing(f"{at}.type")
    if tool["type"] != "function":
        if tool["type"] == "custom":
            raise unsupported(f"{at}.type", "A custom tool")
        raise invalid_value(f"{at}.type", tool["type"], ("function", "custom"))
    function = tool.get("function")
    if function is None:
        raise missing(f"{at}.function")
    if not isinstance(function, dict):
        raise invalid_type(f"{at}.function", "an object", function)
    name = function.get("name")
    if name is None:
        raise missing(f"{at}.function.name")
    if not isinstance(name, str):
        raise invalid_type(f"{at}.function.name", "a string", name)
    if len(name) > 64:
        raise ApiError(400, f"Invalid '{at}.function.name': string too long. Expected a string with"
                            f" maximum length 64, but got a string with length {len(name)} "
                            "instead.", param=f"{at}.function.name", code="string_above_max_length")
    if not FUNCTION_NAME.match(name):
        raise ApiError(400, f"Invalid '{at}.function.name': string does not match pattern. "
                            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                       param=f"{at}.function.name", code="invalid_value")
    if "description" in function and not isinstance(function["description"], str):
        raise invalid_type(f"{at}.function.description", "a string", function["description"])
    if "parameters" in function and not isinstance(function["parameters"], dict):
        raise invalid_type(f"{at}.function.parameters", "an object", function["parameters"])
    if "strict" in function and not isinstance(function["strict"], (bool, type(None))):
        raise invalid_type(f"{at}.function.strict", "a boolean", function["strict"])
    return name
