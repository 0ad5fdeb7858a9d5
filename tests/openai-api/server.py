"""A local stand-in for OpenAI's chat-completions API, for the tests of
Gatehouse's tool-calling loops (Python standard library only): no test can
reach a real model, so the test scripts what the model answers, turn by
turn, and this server speaks OpenAI's wire format around those answers.

Implemented, as OpenAI answers it:
- POST /v1/chat/completions with a Bearer API key: a missing key and a
  wrong one answer 401 in OpenAI's envelope {"error": {"message", "type",
  "param", "code"}} (`invalid_api_key`, the key masked as OpenAI masks it).
- The request checked as OpenAI checks the fields Gatehouse sends
  (validation.py): an unparsable body, unknown top-level parameters,
  model, messages (roles system, developer, user, assistant, tool; text
  content; assistant tool_calls with string arguments; tool messages with
  tool_call_id), the conversation (a tool message answers a call of the
  assistant message before its run of tool messages, and every call is
  answered), tools (type function, name pattern and length, description,
  parameters), tool_choice, temperature, max_tokens, max_completion_tokens.
  Each failure is a 400 with OpenAI's message, param and code.
- A model with no script answers 404 `model_not_found`; an unknown route
  404 "Invalid URL (METHOD /path)".
- Answers: the next turn of the model's script (turns.py) as a
  chat.completion object (id `chatcmpl-...`, created, model, one choice with
  the assistant message, `call_...` tool call ids, finish_reason, usage,
  service_tier, system_fingerprint), with `x-request-id` and
  `openai-processing-ms` headers; or an error turn (429 with `retry-after`,
  `insufficient_quota`, 500, 503), a delay, or a dropped connection.
- GET /v1/models and GET /v1/models/{id}: the scripted models.

Not implemented: streaming (stream: true) and n > 1 answer 400 with code
`unsupported_by_test_server`, as do custom tools, the deprecated function
role and tool_choice objects other than a named function; images, audio,
response_format and the many sampling parameters are accepted and ignored;
content is never filtered or checked for size; rate limits happen only when
scripted. The few answers whose exact words OpenAI does not publish (a
named tool_choice that matches no tool, a 503) keep its status, type, param
and code.

Test control (no key needed):
- POST /_script {"model": m, "turns": [...], "response_model"?: name}
  replaces model m's script; each chat request to m, once it passes the
  checks above, takes the next turn. A request with no turn left answers
  400 `script_exhausted`. "response_model" is the `model` the answers name
  (OpenAI names a dated snapshot), m by default.
- GET /_requests: every request but these two, in order: method, path,
  headers (lower-case names), body (parsed JSON, else the text under
  "raw"), status answered and the turn it took (null when none).

Environment: PORT (0 for a free one), OPENAI_API_KEY. Prints
"listening <port>" once it listens. tests/openai_api.rs starts it for the
Rust tests; official_client.mjs runs the official `openai` client against
it, as a check that it answers as OpenAI does.
"""

import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import turns
from validation import ApiError, check_request

API_KEY = os.environ["OPENAI_API_KEY"]
LOCK = threading.Lock()
# model -> {"turns": [...], "next": int, "response_model": str}
SCRIPTS = {}
REQUESTS = []
# One per server, as OpenAI keeps one per backend configuration.
FINGERPRINT = "fp_" + secrets.token_hex(5)
MODEL_CREATED = 1_700_000_000


def masked(key):
    """A wrong key as OpenAI quotes it back: the start and end of a long
    one, a short one whole."""
    if len(key) <= 12:
        return key
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def authenticate(header):
    """The ApiError for a request with Authorization `header`, or None."""
    if not header or not header.startswith("Bearer ") or not header[7:].strip():
        return ApiError(401, "You didn't provide an API key. You need to provide your API key in "
                             "an Authorization header using Bearer auth (i.e. Authorization: "
                             "Bearer YOUR_KEY), or as the password field (with blank username) if "
                             "you're accessing the API from your browser and are prompted for a "
                             "username and password. You can obtain an API key from "
                             "https://platform.openai.com/account/api-keys.")
    key = header[7:].strip()
    if key != API_KEY:
        return ApiError(401, f"Incorrect API key provided: {masked(key)}. You can find your API "
                             "key at https://platform.openai.com/account/api-keys.",
                        code="invalid_api_key")
    return None


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as OpenAI's clients expect; every answer has a length.
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        raw = self.read_body()
        if self.path == "/_script" and method == "POST":
            return self.register_script(raw)
        if self.path == "/_requests" and method == "GET":
            with LOCK:
                return self.answer(200, list(REQUESTS))
        record = {"method": method, "path": self.path,
                  "headers": {k.lower(): v for k, v in self.headers.items()},
                  "status": None, "turn": None}
        try:
            record["body"] = json.loads(raw) if raw else None
        except ValueError:
            record["body"] = None
            record["raw"] = raw.decode("utf-8", "replace")
        with LOCK:
            REQUESTS.append(record)
        started = time.monotonic()
        try:
            status, headers, body, delay, drop = self.api(method, raw, record)
        except ApiError as e:
            status, headers, body, delay, drop = e.status, e.headers, e.body(), 0, False
        with LOCK:
            record["status"] = None if drop else status
        if delay:
            time.sleep(delay / 1000)
        if drop:
            self.close_connection = True
            return None
        headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))
        return self.answer(status, body, headers)

    def api(self, method, raw, record):
        """(status, headers, body, delay_ms, drop) of a call to /v1/."""
        path = self.path.split("?", 1)[0]
        if path == "/v1/chat/completions" and method == "POST":
            return self.chat(raw, record)
        if path == "/v1/models" and method == "GET":
            self.require_key()
            with LOCK:
                data = [model_object(m) for m in SCRIPTS]
            return 200, {}, {"object": "list", "data": data}, 0, False
        if path.startswith("/v1/models/") and method == "GET":
            self.require_key()
            name = path[len("/v1/models/"):]
            with LOCK:
                known = name in SCRIPTS
            if not known:
                raise ApiError(404, f"The model '{name}' does not exist", param="model",
                               code="model_not_found")
            return 200, {}, model_object(name), 0, False
        raise ApiError(404, f"Invalid URL ({method} {path})")

    def require_key(self):
        refused = authenticate(self.headers.get("authorization"))
        if refused:
            raise refused

    def chat(self, raw, record):
        self.require_key()
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, "We could not parse the JSON body of your request. (HINT: This "
                                "likely means you aren't using your HTTP library correctly. The "
                                "OpenAI API expects a JSON payload, but what was sent was not valid"
                                " JSON. If you have trouble figuring out how to fix this, please "
                                "contact us through our help center at help.openai.com.)") from None
        check_request(body)
        model = body["model"]
        with LOCK:
            script = SCRIPTS.get(model)
            if script is None:
                raise ApiError(404, f"The model `{model}` does not exist or you do not have "
                                    "access to it.", code="model_not_found")
            index = script["next"]
            if index >= len(script["turns"]):
                raise ApiError(400, f"The script of model `{model}` has no turn left: it had "
                                    f"{len(script['turns'])}.", code="script_exhausted")
            script["next"] += 1
            record["turn"] = index
            turn = script["turns"][index]
            response_model = script["response_model"]
        delay = turn.get("delay_ms", 0)
        if turn.get("drop"):
            return 0, {}, None, delay, True
        if "error" in turn:
            status, headers, answer = turns.error_answer(turn["error"], response_model)
            return status, headers, answer, delay, False
        answer = turns.completion(turn, body, response_model, FINGERPRINT)
        return 200, {}, answer, delay, False

    def register_script(self, raw):
        try:
            script = json.loads(raw)
        except ValueError:
            return self.answer(400, {"error": "the script is not JSON"})
        if not isinstance(script, dict) or not isinstance(script.get("model"), str) \
                or not isinstance(script.get("turns"), list):
            return self.answer(400, {"error": "a script is {\"model\": name, \"turns\": [...]}"})
        for i, turn in enumerate(script["turns"]):
            problem = turns.check_turn(turn)
            if problem:
                return self.answer(400, {"error": f"turn {i}: {problem}"})
        model = script["model"]
        with LOCK:
            SCRIPTS[model] = {"turns": script["turns"], "next": 0,
                              "response_model": script.get("response_model", model)}
        return self.answer(200, {"model": model, "turns": len(script["turns"])})

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if self.path.startswith("/v1/"):
                self.send_header("x-request-id", "req_" + secrets.token_hex(16))
                self.send_header("openai-version", "2020-10-01")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (a timeout test): nothing to answer.
            self.close_connection = True

    def read_body(self):
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def log_message(self, *_):
        pass


def model_object(name):
    return {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": "openai"}


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "0"))), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
