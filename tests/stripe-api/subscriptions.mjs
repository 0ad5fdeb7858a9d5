// Stripe's endpoints for what happens after a checkout: listing a
// customer's subscriptions, changing one's items (plan and seats) as an
// API client does, and expiring an open checkout session.

import * as objects from './objects.mjs';
import * as p from './params.mjs';
import { invalid, missing, noSuch } from './state.mjs';

const STATUSES = ['active', 'all', 'canceled', 'ended', 'incomplete', 'incomplete_expired', 'past_due', 'paused', 'trialing', 'unpaid'];
const SUBSCRIPTION_LIST = ['automatic_tax', 'collection_method', 'created', 'current_period_end', 'current_period_start',
  'customer', 'customer_account', 'ending_before', 'expand', 'limit', 'price', 'starting_after', 'status', 'test_clock'];
const SUBSCRIPTION_UPDATE = ['add_invoice_items', 'application_fee_percent', 'automatic_tax', 'billing_cycle_anchor',
  'cancel_at', 'cancel_at_period_end', 'cancellation_details', 'collection_method', 'default_payment_method',
  'description', 'discounts', 'expand', 'items', 'metadata', 'off_session', 'pause_collection', 'payment_behavior',
  'proration_behavior', 'proration_date', 'trial_end'];
const ITEM_UPDATE = ['clear_usage', 'deleted', 'discounts', 'id', 'metadata', 'price', 'price_data', 'quantity', 'tax_rates'];
const PRORATION = ['always_invoice', 'create_prorations', 'none'];

/** `GET /v1/subscriptions`: a customer's, by status (default: not canceled). */
export function listSubscriptions(store, params) {
  p.onlyKnown(params, SUBSCRIPTION_LIST);
  const customer = p.string(params.customer, 'customer');
  const status = p.string(params.status, 'status') ?? 'active_default';
  if (status !== 'active_default' && !STATUSES.includes(status)) {
    throw invalid(`Invalid status: must be one of ${STATUSES.join(', ')}`, { param: 'status' });
  }
  const limit = p.integer(params.limit, 'limit', { min: 1 }) ?? 10;
  const wanted = (s) =>
    status === 'all' ||
    (status === 'active_default' && !['canceled', 'incomplete_expired'].includes(s.status)) ||
    (status === 'ended' && ['canceled', 'incomplete_expired'].includes(s.status)) ||
    s.status === status;
  const matching = [...store.subscriptions.values()]
    .filter((s) => (!customer || s.customer === customer) && wanted(s))
    .sort((a, b) => b.created - a.created);
  const page = objects.list(matching.slice(0, limit), '/v1/subscriptions');
  page.has_more = matching.length > limit;
  return page;
}

/** `POST /v1/subscriptions/:id`: items changed, added or removed. */
export function updateSubscription(store, params, id) {
  p.onlyKnown(params, SUBSCRIPTION_UPDATE);
  const sub = store.subscriptions.get(id);
  if (!sub) throw noSuch('subscription', id);
  if (sub.status === 'canceled') {
    throw invalid('A canceled subscription can only update its cancellation_details and metadata.');
  }
  const proration = p.string(params.proration_behavior, 'proration_behavior');
  if (proration !== undefined && !PRORATION.includes(proration)) {
    throw invalid(`Invalid proration_behavior: must be one of ${PRORATION.join(', ')}`, { param: 'proration_behavior' });
  }
  const before = structuredClone(sub);
  const next = structuredClone(sub);
  const items = p.array(params.items, 'items') ?? [];
  items.forEach((raw, i) => applyItem(store, next, p.hash(raw, `items[${i}]`), `items[${i}]`));
  if (next.items.data.length === 0) throw invalid('A subscription must have at least one active plan.', { param: 'items' });
  const cancel = p.boolean(params.cancel_at_period_end, 'cancel_at_period_end');
  if (cancel !== undefined) {
    const periodEnd = Math.min(...next.items.data.map((item) => item.current_period_end));
    Object.assign(next, { cancel_at_period_end: cancel, cancel_at: cancel ? periodEnd : null, canceled_at: cancel ? store.now() : null });
  }
  if (params.metadata !== undefined) next.metadata = { ...next.metadata, ...p.metadata(params.metadata) };
  Object.assign(sub, next);
  const previous = {};
  for (const key of Object.keys(sub)) {
    if (JSON.stringify(before[key]) !== JSON.stringify(sub[key])) previous[key] = before[key];
  }
  if (Object.keys(previous).length > 0) store.emit('customer.subscription.updated', sub, previous);
  return sub;
}

function applyItem(store, sub, item, at) {
  if (!item) throw missing(at);
  p.onlyKnown(item, ITEM_UPDATE, at);
  const priceId = p.string(item.price, `${at}[price]`);
  const price = priceId === undefined ? undefined : store.prices.get(priceId);
  if (priceId !== undefined && !price) throw noSuch('price', priceId, `${at}[price]`);
  const quantity = p.integer(item.quantity, `${at}[quantity]`, { min: 0 });
  const itemId = p.string(item.id, `${at}[id]`);
  if (itemId === undefined) {
    if (!price) throw missing(`${at}[price]`);
    const period = { start: sub.items.data[0].current_period_start, end: sub.items.data[0].current_period_end };
    sub.items.data.push(objects.subscriptionItem(sub.id, price, quantity, period, store.now()));
    sub.items.total_count = sub.items.data.length;
    return;
  }
  const index = sub.items.data.findIndex((existing) => existing.id === itemId);
  if (index < 0) throw invalid(`Invalid subscription_item id: ${itemId}`, { param: `${at}[id]` });
  if (p.boolean(item.deleted, `${at}[deleted]`)) {
    sub.items.data.splice(index, 1);
    sub.items.total_count = sub.items.data.length;
    return;
  }
  const existing = sub.items.data[index];
  if (price) objects.setItemPrice(existing, price);
  if (quantity !== undefined) {
    if (existing.price.recurring.usage_type === 'metered') {
      throw invalid('Quantity is not allowed for a metered price.', { param: `${at}[quantity]` });
    }
    existing.quantity = quantity;
  }
}

/** `POST /v1/checkout/sessions/:id/expire`: an open session can no longer be paid. */
export function expireCheckoutSession(store, params, id) {
  p.onlyKnown(params, ['expand']);
  const checkout = store.checkouts.get(id);
  if (!checkout) throw noSuch('checkout.session', id);
  const { session } = checkout;
  if (session.status !== 'open') {
    throw invalid(`Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${session.status}".`);
  }
  Object.assign(session, { status: 'expired', url: null });
  store.emit('checkout.session.expired', session);
  return session;
}
