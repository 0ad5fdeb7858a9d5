// The official MCP TypeScript SDK (`@modelcontextprotocol/sdk`, pinned in
// package.json) as an agent would use it against Gatehouse: its Streamable
// HTTP client transport with the caller's API key in an Authorization
// header, the initialize handshake (this SDK speaks 2025-11-25), tools/list
// and the tools/call each of `calls` names. Reads {url, token, calls} on
// stdin; writes what the client saw as JSON on stdout.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { url, token, calls = [] } = JSON.parse(input);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: 'gatehouse-tests', version: '1.0.0' });
await client.connect(transport);
const out = {
  protocolVersion: transport.protocolVersion,
  sessionId: transport.sessionId ?? null,
  serverInfo: client.getServerVersion(),
  capabilities: client.getServerCapabilities(),
  calls: [],
};
const listed = await client.listTools();
out.tools = listed.tools.map((t) => t.name);
out.schemas = Object.fromEntries(listed.tools.map((t) => [t.name, t.inputSchema]));
for (const call of calls) {
  try {
    const r = await client.callTool({ name: call.name, arguments: call.arguments ?? {} });
    out.calls.push({
      isError: r.isError ?? false,
      text: r.content.filter((c) => c.type === 'text').map((c) => c.text),
      structured: r.structuredContent ?? null,
    });
  } catch (e) {
    out.calls.push({ error: { code: e.code ?? null, message: String(e.message) } });
  }
}
await client.close();
process.stdout.write(JSON.stringify(out));
