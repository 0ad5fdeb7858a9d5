// A local server speaking Stripe's HTTP API wire format for the billing
// end-to-end tests (Stripe itself cannot be reached from the test
// machines): form-encoded requests with bracket notation, secret-key
// authentication, idempotency keys, Stripe's object and error shapes, and
// webhook events signed by stripe-node itself.
//
// Environment:
//   PORT               the port to listen on (0: any free one)
//   STRIPE_SECRET_KEY  the only API key accepted
//   WEBHOOK_SECRET     the whsec_ secret events are signed with
//   PRICES             JSON array of prices to preload ({id, lookup_key,
//                      unit_amount, currency, recurring, product})
//
// Routes under /_test/ (no authentication) are the test's levers and
// records: the clock, checkout completion, subscription changes, payment
// outcomes, entitlements, and the events, requests and meter events so
// far. Prints "listening <port>" once it accepts connections.

import { createServer } from 'node:http';
import Stripe from 'stripe';
import { canonical, FormError, parseForm } from './form.mjs';
import { handle } from './api.mjs';
import * as control from './control.mjs';
import { newId } from './objects.mjs';
import { Store, StripeError, invalid } from './state.mjs';

const MAX_BODY = 1 << 20;

const store = new Store({
  secretKey: process.env.STRIPE_SECRET_KEY ?? '',
  webhookSecret: process.env.WEBHOOK_SECRET ?? '',
  prices: JSON.parse(process.env.PRICES || '[]'),
  apiVersion: Stripe.API_VERSION,
});
if (!store.secretKey || !store.webhookSecret) {
  console.error('STRIPE_SECRET_KEY and WEBHOOK_SECRET are required');
  process.exit(2);
}

function reply(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw invalid('The request body is too large.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// The key from `Authorization: Bearer <key>` or HTTP Basic with the key as the user.
function apiKey(header) {
  if (!header) return null;
  const [scheme, value = ''] = header.split(' ', 2);
  if (scheme.toLowerCase() === 'bearer') return value.trim();
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded.split(':')[0];
  }
  return null;
}

function authenticate(req) {
  const key = apiKey(req.headers.authorization);
  const unauthorized = (message) =>
    new StripeError(401, 'invalid_request_error', message, { headers: { 'WWW-Authenticate': 'Basic realm="Stripe"' } });
  if (!key) {
    throw unauthorized('No API key provided. Send your secret key in the Authorization header as a Bearer token.');
  }
  if (key !== store.secretKey) {
    throw unauthorized(`Invalid API Key provided: ${key.slice(0, 8)}${'*'.repeat(8)}${key.slice(-4)}`);
  }
}

function parseParams(req, url, text) {
  const query = parseForm(url.search.slice(1));
  if (req.method === 'GET' || !text) return query;
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw invalid('Invalid request: the body must be application/x-www-form-urlencoded.');
  }
  return { ...query, ...parseForm(text) };
}

// Stripe's idempotency: a key is bound to its first endpoint and
// parameters; a repeat answers the saved status and body again. Only a
// request that got past validation is saved, so a refused one can be retried.
function idempotent(req, path, params, key, requestId, run) {
  if (req.method !== 'POST' || !key) return run();
  if (key.length > 255) throw invalid('Idempotency keys are at most 255 characters long.');
  const saved = store.idempotency.get(key);
  if (!saved) {
    const answer = run();
    if (answer.status < 400) {
      store.idempotency.set(key, { path, params: canonical(params), ...answer, requestId });
    }
    return answer;
  }
  const retry = `Try using a key other than '${key}' if you meant to execute a different request.`;
  if (saved.path !== path) {
    throw new StripeError(400, 'idempotency_error',
      `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${saved.path}' vs '${path}'). ${retry}`);
  }
  if (saved.params !== canonical(params)) {
    throw new StripeError(400, 'idempotency_error',
      `Keys for idempotent requests can only be used with the same parameters they were first used with. ${retry}`);
  }
  return {
    status: saved.status,
    body: saved.body,
    replayed: true,
    headers: { 'Idempotent-Replayed': 'true', 'Original-Request': saved.requestId },
  };
}

async function serveApi(req, res, url) {
  const requestId = newId('req', 14);
  const key = req.headers['idempotency-key'];
  const record = {
    method: req.method,
    path: url.pathname,
    params: {},
    idempotency_key: key ?? null,
    stripe_version: req.headers['stripe-version'] ?? null,
    request_id: requestId,
    status: 0,
    replayed: false,
  };
  const headers = { 'Request-Id': requestId, 'Stripe-Version': record.stripe_version ?? store.apiVersion };
  if (key) headers['Idempotency-Key'] = key;
  let answer;
  try {
    const text = await readBody(req);
    authenticate(req);
    record.params = parseParams(req, url, text);
    answer = idempotent(req, url.pathname, record.params, key, requestId, () => ({
      status: 200,
      body: handle(store, req.method, url.pathname, record.params),
    }));
  } catch (e) {
    if (e instanceof FormError) e = invalid(e.message);
    if (!(e instanceof StripeError)) throw e;
    answer = { status: e.status, body: e.body(), headers: e.headers };
  }
  record.status = answer.status;
  record.replayed = answer.replayed === true;
  store.requests.push(record);
  reply(res, answer.status, answer.body, { ...headers, ...answer.headers });
}

const CONTROL = [
  ['POST', /^\/_test\/clock$/, (_, body) => {
    if (!Number.isInteger(body.now)) throw new control.ControlError(400, 'now is unix seconds');
    store.fixedNow = body.now;
    return { now: store.now() };
  }],
  ['POST', /^\/_test\/checkout\/([^/]+)\/complete$/, ([cs], body) => control.completeCheckout(store, cs, body)],
  ['POST', /^\/_test\/subscriptions\/([^/]+)\/payment_failed$/, ([id]) => control.paymentFailed(store, id)],
  ['POST', /^\/_test\/subscriptions\/([^/]+)\/payment_succeeded$/, ([id]) => control.paymentSucceeded(store, id)],
  ['POST', /^\/_test\/subscriptions\/([^/]+)$/, ([id], body) => control.updateSubscription(store, id, body)],
  ['POST', /^\/_test\/customers\/([^/]+)\/entitlements$/, ([id], body) =>
    control.setEntitlements(store, id, body.features)],
  ['GET', /^\/_test\/events$/, () => store.events],
  ['GET', /^\/_test\/requests$/, () => store.requests],
  ['GET', /^\/_test\/meter_events$/, () => store.meterEvents],
];

async function serveControl(req, res, url) {
  try {
    const text = await readBody(req);
    let body = {};
    try {
      if (text) body = JSON.parse(text);
    } catch {
      throw new control.ControlError(400, 'The body is not JSON');
    }
    for (const [method, pattern, run] of CONTROL) {
      const m = pattern.exec(url.pathname);
      if (m && method === req.method) {
        const args = m.slice(1).map(decodeURIComponent);
        return reply(res, 200, run(args, body ?? {}));
      }
    }
    throw new control.ControlError(404, `No test route ${req.method} ${url.pathname}`);
  } catch (e) {
    if (!(e instanceof control.ControlError)) throw e;
    return reply(res, e.status, { error: { message: e.message } });
  }
}

// The pages a browser would be sent to: enough to show the link works.
function servePage(res, url) {
  const known = /^\/(pay|portal|invoice)\/[A-Za-z0-9_]+(\/pdf)?$/.test(url.pathname);
  if (!known) return reply(res, 404, { error: { type: 'invalid_request_error', message: 'Not found' } });
  return reply(res, 200, `<!doctype html><title>Stripe test page</title><p>${url.pathname}</p>`);
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  let serve;
  if (url.pathname.startsWith('/v1/')) serve = serveApi(req, res, url);
  else if (url.pathname.startsWith('/_test/')) serve = serveControl(req, res, url);
  else serve = Promise.resolve(servePage(res, url));
  serve.catch((e) => {
    console.error(e);
    if (!res.headersSent) {
      reply(res, 500, { error: { type: 'api_error', message: 'An unexpected error occurred in the test server.' } });
    }
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  store.baseUrl = `http://127.0.0.1:${port}`;
  console.log(`listening ${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
