// Runs the official OpenAI client (the `openai` npm package, pinned in
// package.json) against server.py, as an independent check that the server
// answers as OpenAI does: the client's own tool-calling loop (runTools)
// reads the tool calls, sends the results back and retries a 429, and its
// error classes read the error envelope. Reads {baseURL, apiKey, model} on
// stdin, with the model scripted to call `seat_count` then answer (a 429
// between is fine); writes what the client saw as JSON on stdout.
import OpenAI from 'openai';
let input = '';
for await (const chunk of process.stdin) input += chunk;
const { baseURL, apiKey, model } = JSON.parse(input);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 1 });
const out = { toolArgs: [] };
const runner = client.chat.completions.runTools({
  model,
  messages: [{ role: 'user', content: 'How many seats has acme?' }],
  tools: [{
    type: 'function',
    function: {
      name: 'seat_count',
      description: 'The seats of an organization',
      parameters: { type: 'object', properties: { org: { type: 'string' } }, required: ['org'] },
      parse: JSON.parse,
      function: (args) => { out.toolArgs.push(args); return { seats: 7 }; },
    },
  }],
});
out.finalContent = await runner.finalContent();
out.usage = await runner.totalUsage();
out.completions = runner.allChatCompletions().length;
const errorOf = async (promise) => {
  try { await promise; return null; } catch (e) {
    return { class: e.constructor.name, status: e.status, type: e.type, code: e.code, param: e.param };
  }
};
const hello = [{ role: 'user', content: 'hi' }];
out.wrongKey = await errorOf(new OpenAI({ baseURL, apiKey: 'sk-wrong-0123456789abcdef', maxRetries: 0 })
  .chat.completions.create({ model, messages: hello }));
out.orphanTool = await errorOf(client.chat.completions.create({
  model, messages: [...hello, { role: 'tool', tool_call_id: 'call_nowhere', content: '{}' }] }));
process.stdout.write(JSON.stringify(out));
