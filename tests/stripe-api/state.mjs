// What the server holds: the objects made so far, the clock, the events
// emitted (signed by stripe-node itself), the requests received and the
// meter events recorded. Everything lives in memory for one test.

import Stripe from 'stripe';
import * as objects from './objects.mjs';

/** An error answered in Stripe's `{"error": {...}}` shape. */
export class StripeError extends Error {
  constructor(status, type, message, { code, param, headers } = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
    this.headers = headers ?? {};
  }

  body() {
    const error = {};
    if (this.code) {
      error.code = this.code;
      error.doc_url = `https://stripe.com/docs/error-codes/${this.code.replaceAll('_', '-')}`;
    }
    error.message = this.message;
    if (this.param) error.param = this.param;
    error.type = this.type;
    return { error };
  }
}

/** A 400 `invalid_request_error`. */
export const invalid = (message, options) => new StripeError(400, 'invalid_request_error', message, options);

/** A 400 for a required parameter left out. */
export const missing = (param) =>
  invalid(`Missing required param: ${param}.`, { code: 'parameter_missing', param });

/** "No such <kind>" for an id: 404 in the URL path, 400 when a parameter names it. */
export const noSuch = (kind, id, param = 'id') =>
  new StripeError(param === 'id' ? 404 : 400, 'invalid_request_error', `No such ${kind}: '${id}'`, {
    code: 'resource_missing',
    param,
  });

export class Store {
  constructor({ secretKey, webhookSecret, prices, apiVersion }) {
    this.secretKey = secretKey;
    this.webhookSecret = webhookSecret;
    this.apiVersion = apiVersion;
    this.baseUrl = '';
    this.fixedNow = null;
    this.customers = new Map();
    this.prices = new Map();
    // checkout session id -> { session, lines: [{price, quantity}], subscriptionData }
    this.checkouts = new Map();
    this.portalSessions = new Map();
    this.subscriptions = new Map();
    this.invoices = new Map();
    this.meterEvents = [];
    this.meterIdentifiers = new Set();
    // idempotency key -> { method, path, params, status, body, requestId }
    this.idempotency = new Map();
    this.requests = [];
    this.events = [];
    // feature lookup key -> feat_ id; customer -> (lookup key -> entitlement)
    this.features = new Map();
    this.entitlements = new Map();
    this.portalConfiguration = objects.newId('bpc');
    const created = this.now();
    for (const input of prices) {
      const p = objects.price(input, created);
      this.prices.set(p.id, p);
    }
  }

  /** The server's clock in unix seconds: the test's, else real time. */
  now() {
    return this.fixedNow ?? Math.floor(Date.now() / 1000);
  }

  priceByLookupKey(lookupKey) {
    return [...this.prices.values()].find((p) => p.lookup_key === lookupKey);
  }

  /**
   * Emits an event of `type` for `object` as it is at this moment; the
   * payload is the exact text a webhook would carry, signed with the
   * webhook secret at the server's clock.
   */
  emit(type, object, previous) {
    const now = this.now();
    const evt = objects.event({ type, object, previous, now, apiVersion: this.apiVersion });
    const payload = JSON.stringify(evt, null, 2);
    const signature = Stripe.webhooks.generateTestHeaderString({
      payload,
      secret: this.webhookSecret,
      timestamp: now,
    });
    this.events.push({ id: evt.id, type, created: now, payload, signature });
    return evt;
  }
}
