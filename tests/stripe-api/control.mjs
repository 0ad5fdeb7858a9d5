// The test's levers (not Stripe's API): what a customer or Stripe's billing
// engine would do between API calls (pay at checkout, renew, fail a
// payment, cancel, change entitlements), each emitting the events Stripe
// sends for it, in Stripe's order.

import * as objects from './objects.mjs';

/** A refused control request: answered as `{"error": {"message"}}`. */
export class ControlError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const TRIAL_DAYS = 14;
const STATUSES = ['active', 'canceled', 'incomplete', 'incomplete_expired', 'past_due', 'paused', 'trialing', 'unpaid'];

function subscriptionOf(store, id) {
  const sub = store.subscriptions.get(id);
  if (!sub) throw new ControlError(404, `No such subscription: '${id}'`);
  return sub;
}

function newInvoice(store, sub, reason, paid) {
  const inv = objects.invoice({
    sub,
    customer: store.customers.get(sub.customer),
    reason,
    paid,
    attempts: paid ? 1 : 0,
    now: store.now(),
    baseUrl: store.baseUrl,
  });
  store.invoices.set(inv.id, inv);
  sub.latest_invoice = inv.id;
  return inv;
}

// Top-level fields whose value changed, with the value before: Stripe's
// `data.previous_attributes`.
function previousAttributes(before, after) {
  const previous = {};
  for (const key of Object.keys(after)) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) previous[key] = before[key];
  }
  return previous;
}

function emitUpdated(store, sub, before) {
  const previous = previousAttributes(before, sub);
  if (Object.keys(previous).length > 0) store.emit('customer.subscription.updated', sub, previous);
}

/** The customer pays at checkout: subscription, paid invoice, completed session. */
export function completeCheckout(store, sessionId, { status = 'active' } = {}) {
  const checkout = store.checkouts.get(sessionId);
  if (!checkout) throw new ControlError(404, `No such checkout.session: '${sessionId}'`);
  const { session, lines, subscriptionData } = checkout;
  if (session.status !== 'open') throw new ControlError(400, `The session is ${session.status}, not open`);
  if (status !== 'active' && status !== 'trialing') throw new ControlError(400, 'status is active or trialing');
  const now = store.now();
  if (!session.customer) {
    const c = objects.customer({ email: session.customer_email }, now);
    store.customers.set(c.id, c);
    session.customer = c.id;
  }
  const interval = lines[0].price.recurring;
  const trialDays = subscriptionData.trialPeriodDays ?? interval.trial_period_days ?? TRIAL_DAYS;
  const trialEnd = status === 'trialing' ? now + trialDays * 24 * 3600 : undefined;
  const period = { start: now, end: trialEnd ?? objects.addInterval(now, interval.interval, interval.interval_count) };
  const id = objects.newId('sub');
  const items = lines.map((l) => objects.subscriptionItem(id, l.price, l.quantity, period, now));
  const sub = objects.subscription({
    id,
    customerId: session.customer,
    items,
    metadata: structuredClone(subscriptionData.metadata),
    status,
    now,
    trialEnd,
    currency: lines[0].price.currency,
  });
  store.subscriptions.set(id, sub);
  const inv = newInvoice(store, sub, 'subscription_create', true);
  const cus = store.customers.get(session.customer);
  Object.assign(session, {
    status: 'complete',
    // A trial collects nothing now.
    payment_status: status === 'trialing' ? 'no_payment_required' : 'paid',
    subscription: id,
    invoice: inv.id,
    url: null,
    customer_details: {
      address: null,
      business_name: null,
      email: cus.email,
      individual_name: null,
      name: cus.name,
      phone: null,
      tax_exempt: 'none',
      tax_ids: [],
    },
  });
  store.emit('customer.subscription.created', sub);
  store.emit('checkout.session.completed', session);
  store.emit('invoice.paid', inv);
  return { subscription: id };
}

function itemByLookupKey(sub, lookupKey) {
  const item = sub.items.data.find((i) => i.price.lookup_key === lookupKey);
  if (!item) throw new ControlError(400, `The subscription has no item with price lookup key ${lookupKey}`);
  return item;
}

function applyChanges(store, sub, change) {
  const now = store.now();
  for (const [lookupKey, quantity] of Object.entries(change.quantity ?? {})) {
    const item = itemByLookupKey(sub, lookupKey);
    if (item.price.recurring.usage_type === 'metered') throw new ControlError(400, 'A metered item has no quantity');
    if (!Number.isInteger(quantity) || quantity < 0) throw new ControlError(400, 'quantity is a whole number');
    item.quantity = quantity;
  }
  if (change.price) {
    const item = itemByLookupKey(sub, change.price.from);
    const to = store.priceByLookupKey(change.price.to);
    if (!to) throw new ControlError(400, `No preloaded price has lookup key ${change.price.to}`);
    objects.setItemPrice(item, to);
  }
  if (change.period) {
    const { start, end } = change.period;
    if (!Number.isInteger(start) || !Number.isInteger(end)) throw new ControlError(400, 'period is {start, end}');
    for (const item of sub.items.data) Object.assign(item, { current_period_start: start, current_period_end: end });
  }
  if (change.cancel_at_period_end !== undefined) {
    const cancel = Boolean(change.cancel_at_period_end);
    const periodEnd = Math.min(...sub.items.data.map((i) => i.current_period_end));
    Object.assign(sub, {
      cancel_at_period_end: cancel,
      cancel_at: cancel ? periodEnd : null,
      canceled_at: cancel ? now : null,
      cancellation_details: { comment: null, feedback: null, reason: cancel ? 'cancellation_requested' : null },
    });
  }
  if (change.status !== undefined) {
    if (!STATUSES.includes(change.status)) throw new ControlError(400, `status is one of ${STATUSES.join(', ')}`);
    sub.status = change.status;
    if (change.status === 'canceled') {
      Object.assign(sub, {
        cancel_at_period_end: false,
        canceled_at: sub.canceled_at ?? now,
        ended_at: now,
        cancellation_details: { comment: null, feedback: null, reason: sub.cancellation_details.reason ?? 'cancellation_requested' },
      });
    }
  }
}

/** Changes a subscription as the portal or the billing engine would. */
export function updateSubscription(store, id, change) {
  const sub = subscriptionOf(store, id);
  if (sub.status === 'canceled') throw new ControlError(400, 'A canceled subscription cannot be changed');
  const known = ['status', 'quantity', 'price', 'cancel_at_period_end', 'period'];
  const unknown = Object.keys(change).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new ControlError(400, `Unknown change: ${unknown.join(', ')}`);
  const before = structuredClone(sub);
  // Checked in full before anything changes, so a refused change leaves the subscription as it was.
  applyChanges(store, structuredClone(sub), change);
  applyChanges(store, sub, change);
  if (sub.status === 'canceled') store.emit('customer.subscription.deleted', sub);
  else emitUpdated(store, sub, before);
  return { subscription: sub };
}

/** A renewal whose charge fails: an open invoice, the subscription past due. */
export function paymentFailed(store, id) {
  const sub = subscriptionOf(store, id);
  const before = structuredClone(sub);
  let inv = store.invoices.get(sub.latest_invoice);
  if (inv?.status === 'open') {
    inv.attempt_count += 1;
    inv.attempted = true;
    inv.next_payment_attempt = store.now() + 3 * 24 * 3600;
  } else {
    inv = newInvoice(store, sub, 'subscription_cycle', false);
    inv.attempt_count = 1;
    inv.attempted = true;
  }
  sub.status = 'past_due';
  store.emit('invoice.payment_failed', inv);
  emitUpdated(store, sub, before);
  return { invoice: inv.id };
}

/** A charge that goes through: the open invoice (or a renewal's) paid, the subscription active. */
export function paymentSucceeded(store, id) {
  const sub = subscriptionOf(store, id);
  const before = structuredClone(sub);
  let inv = store.invoices.get(sub.latest_invoice);
  if (inv?.status === 'open') objects.payInvoice(inv, store.now());
  else inv = newInvoice(store, sub, 'subscription_cycle', true);
  sub.status = 'active';
  store.emit('invoice.paid', inv);
  emitUpdated(store, sub, before);
  return { invoice: inv.id };
}

/** The customer's active entitlements become exactly `features` (lookup keys). */
export function setEntitlements(store, customerId, features) {
  if (!store.customers.has(customerId)) throw new ControlError(404, `No such customer: '${customerId}'`);
  if (!Array.isArray(features) || features.some((f) => typeof f !== 'string')) {
    throw new ControlError(400, 'features is an array of lookup keys');
  }
  const previous = store.entitlements.get(customerId);
  const held = new Map();
  for (const lookupKey of features) {
    if (!store.features.has(lookupKey)) store.features.set(lookupKey, objects.newId('feat_test', 24));
    const existing = previous?.get(lookupKey);
    held.set(
      lookupKey,
      existing ?? objects.activeEntitlement(objects.newId('ent_test', 24), store.features.get(lookupKey), lookupKey),
    );
  }
  store.entitlements.set(customerId, held);
  const summary = objects.entitlementSummary(customerId, [...held.values()]);
  const before = previous
    ? { entitlements: objects.entitlementSummary(customerId, [...previous.values()]).entitlements }
    : undefined;
  store.emit('entitlements.active_entitlement_summary.updated', summary, before);
  return { summary };
}
