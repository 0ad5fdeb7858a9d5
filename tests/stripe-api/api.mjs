// Stripe's API endpoints the billing component calls, each validating its
// parameters as Stripe does and answering the object Stripe answers.

import { randomUUID } from 'node:crypto';
import * as objects from './objects.mjs';
import * as p from './params.mjs';
import { expireCheckoutSession, listSubscriptions, updateSubscription } from './subscriptions.mjs';
import { StripeError, invalid, missing, noSuch } from './state.mjs';

const PAGINATION = ['ending_before', 'limit', 'starting_after'];
const CUSTOMER_CREATE = [
  'address', 'balance', 'business_name', 'cash_balance', 'description', 'email', 'expand',
  'individual_name', 'invoice_prefix', 'invoice_settings', 'metadata', 'name', 'next_invoice_sequence',
  'payment_method', 'phone', 'preferred_locales', 'shipping', 'source', 'tax', 'tax_exempt',
  'tax_id_data', 'test_clock', 'validate',
];
const PRICE_LIST = ['active', 'created', 'currency', 'expand', 'lookup_keys', 'product', 'recurring', 'type', ...PAGINATION];
const CHECKOUT_CREATE = [
  'adaptive_pricing', 'after_expiration', 'allow_promotion_codes', 'allowed_payment_method_types',
  'automatic_tax', 'billing_address_collection', 'branding_settings', 'cancel_url', 'client_reference_id',
  'consent_collection', 'currency', 'custom_fields', 'custom_text', 'customer', 'customer_account',
  'customer_creation', 'customer_email', 'customer_update', 'discounts', 'excluded_payment_method_types',
  'expand', 'expires_at', 'integration_identifier', 'invoice_creation', 'line_items', 'locale',
  'managed_payments', 'metadata', 'mode', 'name_collection', 'optional_items', 'origin_context',
  'payment_intent_data', 'payment_method_collection', 'payment_method_configuration', 'payment_method_data',
  'payment_method_options', 'permissions', 'phone_number_collection', 'redirect_on_completion', 'return_url',
  'saved_payment_method_options', 'setup_intent_data', 'shipping_address_collection', 'shipping_options',
  'submit_type', 'subscription_data', 'success_url', 'tax_id_collection', 'ui_mode', 'wallet_options',
];
const CHECKOUT_LINE_ITEM = ['adjustable_quantity', 'metadata', 'price', 'price_data', 'quantity', 'tax_rates'];
const CHECKOUT_SUBSCRIPTION_DATA = [
  'application_fee_percent', 'billing_cycle_anchor', 'billing_cycle_anchor_config', 'billing_mode',
  'default_tax_rates', 'description', 'invoice_settings', 'metadata', 'on_behalf_of',
  'pending_invoice_item_interval', 'proration_behavior', 'transfer_data', 'trial_end', 'trial_period_days',
  'trial_settings',
];
const PORTAL_CREATE = [
  'after_expiration', 'configuration', 'customer', 'customer_account', 'expand', 'flow_data', 'locale',
  'on_behalf_of', 'return_url',
];
const METER_EVENT_CREATE = ['event_name', 'expand', 'identifier', 'payload', 'timestamp'];
const ENTITLEMENT_LIST = ['customer', 'expand', ...PAGINATION];

/**
 * `expand[]` paths this server can expand on each object: the id at the
 * path becomes the object it names.
 */
function expander(store) {
  const lookups = {
    customer: (id) => store.customers.get(id),
    subscription: (id) => store.subscriptions.get(id),
    invoice: (id) => store.invoices.get(id),
    latest_invoice: (id) => store.invoices.get(id),
  };
  return (object, paths) => {
    const out = structuredClone(object);
    for (const path of p.array(paths, 'expand') ?? []) {
      if (path === 'line_items' && out.object === 'checkout.session') {
        const checkout = store.checkouts.get(out.id);
        out.line_items = objects.checkoutLineItems(out, checkout.lines);
        continue;
      }
      const lookup = lookups[path];
      if (!lookup || !Object.hasOwn(out, path)) {
        throw invalid(`This property cannot be expanded (${path}).`, { param: 'expand' });
      }
      if (typeof out[path] === 'string') out[path] = structuredClone(lookup(out[path]) ?? out[path]);
    }
    return out;
  };
}

function createCustomer(store, params) {
  p.onlyKnown(params, CUSTOMER_CREATE);
  const input = {
    email: p.string(params.email, 'email', 512),
    name: p.string(params.name, 'name', 256),
    description: p.string(params.description, 'description'),
    phone: p.string(params.phone, 'phone', 20),
    metadata: p.metadata(params.metadata),
  };
  const c = objects.customer(input, store.now());
  store.customers.set(c.id, c);
  return c;
}

function listPrices(store, params) {
  p.onlyKnown(params, PRICE_LIST);
  const lookupKeys = p.array(params.lookup_keys, 'lookup_keys');
  if (lookupKeys && lookupKeys.length > 10) {
    throw invalid('Invalid array: lookup_keys can have at most 10 entries', { param: 'lookup_keys' });
  }
  const active = p.boolean(params.active, 'active');
  const limit = p.integer(params.limit, 'limit', { min: 1 }) ?? 10;
  if (limit > 100) throw invalid('This value must be less than or equal to 100.', { param: 'limit' });
  const matching = [...store.prices.values()].filter(
    (price) =>
      (!lookupKeys || lookupKeys.includes(price.lookup_key)) &&
      (active === undefined || price.active === active) &&
      (params.currency === undefined || price.currency === params.currency) &&
      (params.product === undefined || price.product === params.product),
  );
  const page = objects.list(matching.slice(0, limit), '/v1/prices');
  page.has_more = matching.length > limit;
  return page;
}

// `line_items` of a subscription-mode session: preloaded prices, a quantity
// on each licensed one and none on a metered one.
function checkoutLines(store, params) {
  const items = p.array(params.line_items, 'line_items');
  if (!items || items.length === 0) throw missing('line_items');
  return items.map((raw, i) => {
    const at = `line_items[${i}]`;
    const item = p.hash(raw, at);
    if (!item) throw missing(`${at}[price]`);
    p.onlyKnown(item, CHECKOUT_LINE_ITEM, at);
    if (item.price_data !== undefined) {
      throw invalid('This server knows only preloaded prices: pass line_items[].price', { param: `${at}[price_data]` });
    }
    const priceId = p.string(item.price, `${at}[price]`);
    if (!priceId) throw missing(`${at}[price]`);
    const price = store.prices.get(priceId);
    if (!price) throw noSuch('price', priceId, `${at}[price]`);
    if (price.recurring.usage_type === 'metered') {
      if (item.quantity !== undefined) {
        throw invalid(`Quantity is not allowed for a metered price: remove ${at}[quantity].`, {
          param: `${at}[quantity]`,
        });
      }
      return { price, quantity: undefined };
    }
    if (item.quantity === undefined) throw missing(`${at}[quantity]`);
    return { price, quantity: p.integer(item.quantity, `${at}[quantity]`, { min: 1 }) };
  });
}

function subscriptionData(params) {
  const data = p.hash(params.subscription_data, 'subscription_data') ?? {};
  p.onlyKnown(data, CHECKOUT_SUBSCRIPTION_DATA, 'subscription_data');
  return {
    metadata: p.metadata(data.metadata, 'subscription_data[metadata]'),
    trialPeriodDays: p.integer(data.trial_period_days, 'subscription_data[trial_period_days]', { min: 1 }),
  };
}

function createCheckoutSession(store, params) {
  p.onlyKnown(params, CHECKOUT_CREATE);
  const mode = p.string(params.mode, 'mode');
  if (!mode) throw missing('mode');
  const lines = checkoutLines(store, params);
  if (mode !== 'subscription') {
    // Every preloaded price is recurring, which only subscription mode takes.
    throw invalid(`You passed recurring prices in \`${mode}\` mode: use \`subscription\` mode for them.`, {
      param: 'mode',
    });
  }
  const currencies = new Set(lines.map((l) => l.price.currency));
  if (currencies.size > 1) throw invalid('All prices must be in the same currency.', { param: 'line_items' });
  const intervals = new Set(lines.map((l) => `${l.price.recurring.interval_count} ${l.price.recurring.interval}`));
  if (intervals.size > 1) {
    throw invalid('All recurring prices must have the same billing interval.', { param: 'line_items' });
  }
  const customerId = p.string(params.customer, 'customer');
  if (customerId && !store.customers.has(customerId)) throw noSuch('customer', customerId, 'customer');
  if (customerId && params.customer_email !== undefined) {
    throw invalid('You may only specify one of these parameters: customer, customer_email.', {
      param: 'customer_email',
    });
  }
  const input = {
    mode,
    customer: customerId,
    customer_email: p.string(params.customer_email, 'customer_email', 800),
    client_reference_id: p.string(params.client_reference_id, 'client_reference_id', 200),
    success_url: p.url(params.success_url, 'success_url'),
    cancel_url: p.url(params.cancel_url, 'cancel_url'),
    allow_promotion_codes: p.boolean(params.allow_promotion_codes, 'allow_promotion_codes'),
    billing_address_collection: p.string(params.billing_address_collection, 'billing_address_collection'),
    locale: p.string(params.locale, 'locale'),
    metadata: p.metadata(params.metadata),
    expires_at: p.integer(params.expires_at, 'expires_at'),
  };
  const data = subscriptionData(params);
  const session = objects.checkoutSession(input, lines, store.now(), store.baseUrl);
  store.checkouts.set(session.id, { session, lines, subscriptionData: data });
  return session;
}

function createPortalSession(store, params) {
  p.onlyKnown(params, PORTAL_CREATE);
  const customerId = p.string(params.customer, 'customer');
  if (!customerId) throw missing('customer');
  if (!store.customers.has(customerId)) throw noSuch('customer', customerId, 'customer');
  const input = {
    customer: customerId,
    return_url: p.url(params.return_url, 'return_url'),
    locale: p.string(params.locale, 'locale'),
  };
  const session = objects.portalSession(input, store.now(), store.baseUrl, store.portalConfiguration);
  store.portalSessions.set(session.id, session);
  return session;
}

// What Stripe's asynchronous processing would report for an accepted
// event (the codes of a meter's error reports), or null when it counts.
function meterEventProblem(store, ev) {
  const customer = ev.payload.stripe_customer_id;
  if (customer === undefined) return 'meter_event_no_customer_defined';
  if (!store.customers.has(customer)) return 'meter_event_customer_not_found';
  if (typeof ev.payload.value !== 'string' || !/^-?\d+$/.test(ev.payload.value)) return 'meter_event_invalid_value';
  const now = store.now();
  if (ev.timestamp > now + 5 * 60) return 'timestamp_in_future';
  if (ev.timestamp < now - 35 * 24 * 3600) return 'timestamp_too_far_in_past';
  return null;
}

function createMeterEvent(store, params) {
  p.onlyKnown(params, METER_EVENT_CREATE);
  const eventName = p.string(params.event_name, 'event_name', 100);
  if (!eventName) throw missing('event_name');
  if (params.payload === undefined) throw missing('payload');
  const payload = p.hash(params.payload, 'payload') ?? {};
  for (const [key, value] of Object.entries(payload)) p.string(value, `payload[${key}]`);
  const identifier = p.string(params.identifier, 'identifier', 100) || randomUUID();
  const timestamp = p.integer(params.timestamp, 'timestamp') ?? store.now();
  if (store.meterIdentifiers.has(identifier)) {
    // Stripe refuses a reused identifier outright and marks it not worth retrying.
    throw invalid(`An event already exists with identifier ${identifier}.`, {
      headers: { 'Stripe-Should-Retry': 'false' },
    });
  }
  const ev = objects.meterEvent({ event_name: eventName, identifier, payload, timestamp }, store.now());
  store.meterIdentifiers.add(identifier);
  store.meterEvents.push({ ...structuredClone(ev), error_code: meterEventProblem(store, ev) });
  return ev;
}

function listActiveEntitlements(store, params) {
  p.onlyKnown(params, ENTITLEMENT_LIST);
  const customerId = p.string(params.customer, 'customer');
  if (!customerId) throw missing('customer');
  if (!store.customers.has(customerId)) throw noSuch('customer', customerId, 'customer');
  const held = [...(store.entitlements.get(customerId)?.values() ?? [])];
  return objects.list(held, '/v1/entitlements/active_entitlements');
}

function retrieve(kind, lookup) {
  return (store, params, id) => {
    p.onlyKnown(params, ['expand']);
    const found = lookup(store, id);
    if (!found) throw noSuch(kind, id);
    return found;
  };
}

// [method, path pattern, handler]; `:id` captures one path segment.
const ROUTES = [
  ['POST', '/v1/customers', createCustomer],
  ['GET', '/v1/customers/:id', retrieve('customer', (s, id) => s.customers.get(id))],
  ['GET', '/v1/prices', listPrices],
  ['POST', '/v1/checkout/sessions', createCheckoutSession],
  ['GET', '/v1/checkout/sessions/:id', retrieve('checkout.session', (s, id) => s.checkouts.get(id)?.session)],
  ['POST', '/v1/billing_portal/sessions', createPortalSession],
  ['GET', '/v1/subscriptions/:id', retrieve('subscription', (s, id) => s.subscriptions.get(id))],
  ['GET', '/v1/subscriptions', listSubscriptions],
  ['POST', '/v1/subscriptions/:id', updateSubscription],
  ['POST', '/v1/checkout/sessions/:id/expire', expireCheckoutSession],
  ['GET', '/v1/invoices/:id', retrieve('invoice', (s, id) => s.invoices.get(id))],
  ['POST', '/v1/billing/meter_events', createMeterEvent],
  ['GET', '/v1/entitlements/active_entitlements', listActiveEntitlements],
];

function match(pattern, path) {
  const want = pattern.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return null;
  let id = null;
  for (let i = 0; i < want.length; i += 1) {
    if (want[i] === ':id') {
      if (!got[i]) return null;
      id = decodeURIComponent(got[i]);
    } else if (want[i] !== got[i]) {
      return null;
    }
  }
  return { id };
}

/** Answers one authenticated `/v1` request: the object, or a thrown StripeError. */
export function handle(store, method, path, params) {
  for (const [m, pattern, handler] of ROUTES) {
    const found = match(pattern, path);
    if (!found || m !== method) continue;
    const object = handler(store, params, found.id);
    return object.object === 'list' ? object : expander(store)(object, params.expand);
  }
  throw new StripeError(404, 'invalid_request_error', `Unrecognized request URL (${method}: ${path}).`);
}
