# A remote MCP server for Gatehouse to mount: the official MCP Python SDK's
# MCPServer (FastMCP, renamed in mcp 2) over Streamable HTTP at /mcp, behind
# a bearer token that Gatehouse must send from a sealed org secret. Run as
# `python remote_server.py <port> <token>`.
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

port, token = int(sys.argv[1]), sys.argv[2]
server = MCPServer("remote-weather")


@server.tool()
def forecast(city: str, days: int = 1) -> dict:
    """The forecast for a city."""
    return {"city": city, "days": days, "sky": "clear"}


@server.tool()
def fail(reason: str) -> str:
    """Always fails, saying why."""
    raise ValueError(reason)


class RequireToken:
    """Refuses every HTTP request without the bearer token."""

    def __init__(self, app, expected):
        self.app = app
        self.expected = f"Bearer {expected}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "unauthorized"}'})
            return
        await self.app(scope, receive, send)


uvicorn.run(RequireToken(server.streamable_http_app(), token), host="127.0.0.1", port=port, log_level="warning")
