# The official MCP Python SDK (`mcp`, pinned in tests/requirements.txt) as an
# agent would use it against Gatehouse: its Streamable HTTP client transport
# with the caller's API key as a bearer token, then tools/list and the
# tools/call each of `calls` names. Reads {url, token, mode, calls} on stdin
# (`mode`: the SDK's own, "auto" probes server/discover, "legacy" runs the
# initialize handshake); writes what the client saw as JSON on stdout.
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


async def main(cfg):
    headers = {"Authorization": f"Bearer {cfg['token']}"}
    out = {"calls": []}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        transport = streamable_http_client(cfg["url"], http_client=http)
        async with Client(transport, mode=cfg.get("mode", "auto"), cache=None) as client:
            out["protocol_version"] = client.protocol_version
            listed = await client.list_tools()
            out["tools"] = [t.name for t in listed.tools]
            out["descriptions"] = {t.name: t.description for t in listed.tools}
            out["schemas"] = {t.name: t.input_schema for t in listed.tools}
            for call in cfg.get("calls", []):
                try:
                    r = await client.call_tool(call["name"], call.get("arguments", {}))
                    out["calls"].append({
                        "is_error": r.is_error,
                        "text": [c.text for c in r.content if getattr(c, "type", "") == "text"],
                        "structured": r.structured_content,
                    })
                except MCPError as e:
                    out["calls"].append({"error": {"code": e.code, "message": e.message, "data": e.data}})
    print(json.dumps(out))


asyncio.run(main(json.load(sys.stdin)))
