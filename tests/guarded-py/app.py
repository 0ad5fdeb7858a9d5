"""A Python handler behind the Gatehouse guard, for tests/guard_python_e2e.rs.

Built by scripts/test with componentize-py into a `wasi:http/service@0.3.0`
component (the world vendored in wit/deps/http@0.3.0), then served with the
guard as its middleware (tests/guarded-py/spin.toml). It serves each caller
their own data by the principal the guard verified:

- `GET /py/whoami`: who the caller is, from the `x-gatehouse-*` headers;
- `GET /py/notes`: a small document of the caller's own, built from their
  subject (another caller never sees it).

It trusts nothing but those headers: the guard removes every `x-gatehouse-*`
header a client sends before it sets its own, and this handler never reads
`Authorization`, cookies or the query. A request that reaches it without a
subject (the guard is not in front of it) is refused.
"""

import hashlib
import json

import componentize_py_async_support
import wit_world
from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.wasi_http_types import Fields, Method_Get, Request, Response

PRINCIPAL_HEADERS = (
    "x-gatehouse-subject",
    "x-gatehouse-org",
    "x-gatehouse-roles",
    "x-gatehouse-permissions",
    "x-gatehouse-credential",
)


class Handler(exports.Handler):
    """`wasi:http/handler@0.3.0`: one call per request, possibly several at
    once on one instance, so nothing of a request is kept in globals."""

    async def handle(self, request: Request) -> Response:
        path = (request.get_path_with_query() or "/").split("?", 1)[0]
        if path not in ROUTES:
            return respond(404, problem(404, "not_found", "no route matches this path"))
        if not isinstance(request.get_method(), Method_Get):
            return respond(405, problem(405, "method_not_allowed", "only GET is served"), [("allow", b"GET")])
        principal = verified_principal(request.get_headers())
        if principal is None:
            return respond(500, problem(500, "internal", "no verified principal: the guard is not in front of this handler"))
        return respond(200, ROUTES[path](principal))


def verified_principal(headers: Fields) -> dict | None:
    """The principal the guard set, or None when there is none (or a
    header the guard sets once arrives twice, which the guard never does)."""
    values = {}
    for name in PRINCIPAL_HEADERS:
        found = headers.get(name)
        if len(found) > 1:
            return None
        values[name] = found[0].decode("utf-8", "replace") if found else ""
    if not values["x-gatehouse-subject"]:
        return None
    return {
        "subject": values["x-gatehouse-subject"],
        "org": values["x-gatehouse-org"] or None,
        "roles": split_list(values["x-gatehouse-roles"]),
        "permissions": split_list(values["x-gatehouse-permissions"]),
        "credential": values["x-gatehouse-credential"],
    }


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def whoami(principal: dict) -> dict:
    return {**principal, "language": "python"}


def notes(principal: dict) -> dict:
    """The caller's own notes: derived from their subject alone, so two
    callers can only ever see different documents."""
    subject = principal["subject"]
    tag = hashlib.sha256(subject.encode()).hexdigest()[:12]
    return {
        "owner": subject,
        "org": principal["org"],
        "notes": [
            {"id": f"note_{tag}_1", "title": f"Welcome, {subject}"},
            {"id": f"note_{tag}_2", "title": "Only you can read this"},
        ],
        "language": "python",
    }


ROUTES = {"/py/whoami": whoami, "/py/notes": notes}


def problem(status: int, code: str, detail: str) -> dict:
    titles = {404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
    return {
        "type": f"urn:gatehouse:problem:{code}",
        "title": titles[status],
        "status": status,
        "code": code,
        "detail": detail,
    }


def respond(status: int, document: dict, extra: list[tuple[str, bytes]] | None = None) -> Response:
    """A JSON response (a problem document for an error status). The body
    is written after the response is returned, by a task of this call."""
    body = json.dumps(document).encode()
    media = "application/json" if status < 400 else "application/problem+json"
    headers = Fields.from_list(
        [("content-type", media.encode()), ("content-length", str(len(body)).encode())] + (extra or [])
    )
    writer, reader = wit_world.byte_stream()
    _, trailers = wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(lambda: Ok(None))
    response, _ = Response.new(headers, reader, trailers)
    response.set_status_code(status)
    componentize_py_async_support.spawn(send(writer, body))
    return response


async def send(writer, body: bytes) -> None:
    with writer:
        await writer.write_all(body)
