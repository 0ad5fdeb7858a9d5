// A receiver of outgoing webhooks for the webhooks_e2e delivery tests: an
// HTTP server on 127.0.0.1 that checks every delivery with the
// standardwebhooks library (v1, with each secret it holds) and node's
// Ed25519 (v1a, with the endpoint's whpk_ public key), answers with the
// statuses it is told, and keeps a log the test reads.
//
//   node receive.mjs '{"clock": "http://127.0.0.1:<port>/.host/clock"}'
//   -> prints {"port": <port>} once listening
//
//   POST /.control {secrets: ["whsec_…"], public_key: "whpk_…" | null,
//                   answers: [500, 500], then: 200,
//                   delay_ms: 0,        -> wait this long before answering
//                   trickle_ms: 0}      -> send the status at once, then the
//                                          body a byte at a time over this long
//                                          (replaces what is given)
//   GET  /.log                                        -> every delivery so far
//   any other request is a delivery: logged as
//   {path, id, timestamp, signature, body, status, v1: [ok per secret], v1a: ok | null,
//    inflight, inflight_path}  (deliveries under way when it came, it included:
//                               in all, and to its path)
//
// The library checks a delivery's timestamp against its own clock, five
// minutes each way. The tests move the app's clock (the host's
// /.host/clock) instead of waiting, so each check reads the time there.

import { createServer } from "node:http";
import { createPublicKey, verify } from "node:crypto";
import { Webhook } from "standardwebhooks";

const config = JSON.parse(process.argv[2] ?? "{}");
const state = { secrets: [], public_key: null, answers: [], then: 200, delay_ms: 0, trickle_ms: 0 };
const log = [];
const inflight = new Map();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function read(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function appNow() {
  if (!config.clock) return Math.floor(Date.now() / 1000);
  const reading = await (await fetch(config.clock)).json();
  return reading.now;
}

// standardwebhooks' verify, with its clock set to the app's.
function v1(secret, payload, headers, now) {
  const real = Date.now;
  Date.now = () => now * 1000;
  try {
    new Webhook(secret).verify(payload, headers);
    return true;
  } catch {
    return false;
  } finally {
    Date.now = real;
  }
}

// Any v1a signature in the header that the public key verifies.
function v1a(publicKey, payload, headers) {
  if (!publicKey) return null;
  const raw = Buffer.from(publicKey.replace(/^whpk_/, ""), "base64");
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
    format: "jwk",
  });
  const signed = Buffer.from(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${payload}`);
  return (headers["webhook-signature"] ?? "")
    .split(" ")
    .filter((s) => s.startsWith("v1a,"))
    .some((s) => verify(null, signed, key, Buffer.from(s.slice(4), "base64")));
}

// The status and headers at once, then the body a byte at a time over `ms`.
async function trickle(res, status, ms) {
  const body = "x".repeat(20);
  res.writeHead(status, { "content-type": "text/plain", "content-length": body.length });
  res.flushHeaders();
  for (const byte of body) {
    await sleep(ms / body.length);
    if (res.destroyed) return;
    res.write(byte);
  }
  res.end();
}

function answer(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

const server = createServer(async (req, res) => {
  try {
    const body = await read(req);
    if (req.url === "/.control") {
      Object.assign(state, JSON.parse(body.toString("utf8")));
      return answer(res, 200, state);
    }
    if (req.url === "/.log") return answer(res, 200, log);
    const payload = body.toString("utf8");
    const all = [...inflight.values()].reduce((a, b) => a + b, 0) + 1;
    const here = (inflight.get(req.url) ?? 0) + 1;
    inflight.set(req.url, here);
    const headers = {
      "webhook-id": req.headers["webhook-id"],
      "webhook-timestamp": req.headers["webhook-timestamp"],
      "webhook-signature": req.headers["webhook-signature"],
    };
    const now = await appNow();
    const status = state.answers.length > 0 ? state.answers.shift() : state.then;
    log.push({
      path: req.url,
      content_type: req.headers["content-type"],
      id: headers["webhook-id"],
      timestamp: headers["webhook-timestamp"],
      signature: headers["webhook-signature"],
      body: payload,
      status,
      v1: state.secrets.map((secret) => v1(secret, payload, headers, now)),
      v1a: v1a(state.public_key, payload, headers),
      inflight: all,
      inflight_path: here,
    });
    try {
      if (state.delay_ms > 0) await sleep(state.delay_ms);
      if (state.trickle_ms > 0) return await trickle(res, status, state.trickle_ms);
    } finally {
      inflight.set(req.url, inflight.get(req.url) - 1);
    }
    answer(res, status, status < 300 ? { ok: true } : { error: "not now" });
  } catch (e) {
    answer(res, 599, { error: String(e) });
  }
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
