// Webhook signatures made the way each provider makes them, for the
// webhook_signatures test. Reads a JSON array of jobs on stdin and prints a
// JSON array of results, one per job, in order.
//
// Jobs (bodies are strings, sent and signed as UTF-8):
//   {op:"stripe", secret, payload, timestamp}            -> {headers}
//   {op:"github", secret, payload, delivery, event}      -> {headers}
//   {op:"standard", secret, id, timestamp, payload}      -> {headers}
//   {op:"standard_verify", secret, payload, headers}     -> {ok, error?}
//   {op:"slack", secret, payload, timestamp}             -> {headers}
//   {op:"jira", secret, payload, identifier}             -> {headers}
//   {op:"teams", token, payload}                         -> {headers}
//   {op:"azure_devops", username, password}              -> {headers}
//
// Stripe, GitHub and Standard Webhooks use the providers' own libraries.
// Slack, Jira, Teams and Azure DevOps publish no small signing library on
// npm (Slack's official verifier, @slack/events-api, pulls in an HTTP
// framework, and none of them signs), so those are computed with node's
// crypto from each provider's documentation, as noted at each op.

import { createHmac } from "node:crypto";
import Stripe from "stripe";
import { sign as octokitSign } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";

const ops = {
  stripe: ({ secret, payload, timestamp }) => ({
    headers: {
      "Stripe-Signature": Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp }),
    },
  }),

  github: async ({ secret, payload, delivery, event }) => ({
    headers: {
      "X-GitHub-Delivery": delivery,
      "X-GitHub-Event": event,
      "X-Hub-Signature-256": await octokitSign(secret, payload),
    },
  }),

  standard: ({ secret, id, timestamp, payload }) => ({
    headers: {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": new Webhook(secret).sign(id, new Date(timestamp * 1000), payload),
    },
  }),

  // The library checks the timestamp against its own clock (five minutes).
  standard_verify: ({ secret, payload, headers }) => {
    try {
      new Webhook(secret).verify(payload, headers);
      return { ok: true };
    } catch (e) {
      return { ok: false, error: String(e.message) };
    }
  },

  // Slack's "verifying requests from Slack": HMAC-SHA256 of
  // "v0:{X-Slack-Request-Timestamp}:{body}" with the signing secret, hex,
  // sent as "v0={hex}".
  slack: ({ secret, payload, timestamp }) => ({
    headers: {
      "X-Slack-Request-Timestamp": String(timestamp),
      "X-Slack-Signature":
        "v0=" + createHmac("sha256", secret).update(`v0:${timestamp}:${payload}`, "utf8").digest("hex"),
    },
  }),

  // Jira Cloud's secure admin webhooks: WebSub's X-Hub-Signature,
  // "sha256={hex}" of an HMAC-SHA256 of the body with the webhook secret.
  jira: ({ secret, payload, identifier }) => ({
    headers: {
      "X-Atlassian-Webhook-Identifier": identifier,
      "X-Hub-Signature":
        "sha256=" + createHmac("sha256", secret).update(payload, "utf8").digest("hex"),
    },
  }),

  // Teams outgoing webhooks: "HMAC " + base64 of an HMAC-SHA256 of the
  // UTF-8 body, keyed with the bytes of the base64 security token.
  teams: ({ token, payload }) => ({
    headers: {
      Authorization:
        "HMAC " +
        createHmac("sha256", Buffer.from(token, "base64")).update(payload, "utf8").digest("base64"),
    },
  }),

  // Azure DevOps service hooks send the subscription's user name and
  // password as HTTP Basic authentication (RFC 7617).
  azure_devops: ({ username, password }) => ({
    headers: {
      Authorization: "Basic " + Buffer.from(`${username}:${password}`, "utf8").toString("base64"),
    },
  }),
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const job of JSON.parse(input)) {
  const op = ops[job.op];
  if (!op) throw new Error(`unknown op ${job.op}`);
  results.push(await op(job));
}
process.stdout.write(JSON.stringify(results));
