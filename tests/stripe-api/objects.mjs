// Stripe's objects as the pinned API version renders them (field names and
// nesting from stripe-node's typings of that version), with the values a
// test-mode account without tax, discounts or Connect would show.

import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `prefix_` and `length` random alphanumerics, the shape of Stripe's ids. */
export function newId(prefix, length = 24) {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return `${prefix}_${out}`;
}

/** A list object as Stripe's list endpoints and embedded lists render it. */
export function list(data, url, totalCount = false) {
  const out = { object: 'list', data, has_more: false };
  if (totalCount) out.total_count = data.length;
  out.url = url;
  return out;
}

/** `start` moved on by one billing `interval` (calendar months and years, in UTC). */
export function addInterval(start, interval, count = 1) {
  const d = new Date(start * 1000);
  switch (interval) {
    case 'day':
      d.setUTCDate(d.getUTCDate() + count);
      break;
    case 'week':
      d.setUTCDate(d.getUTCDate() + 7 * count);
      break;
    case 'year':
      d.setUTCFullYear(d.getUTCFullYear() + count);
      break;
    default:
      d.setUTCMonth(d.getUTCMonth() + count);
  }
  return Math.floor(d.getTime() / 1000);
}

export function customer(params, now) {
  return {
    id: newId('cus', 14),
    object: 'customer',
    address: null,
    balance: 0,
    created: now,
    currency: null,
    default_source: null,
    delinquent: false,
    description: params.description ?? null,
    discount: null,
    email: params.email ?? null,
    invoice_prefix: newId('x', 8).slice(2).toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: params.metadata ?? {},
    name: params.name ?? null,
    next_invoice_sequence: 1,
    phone: params.phone ?? null,
    preferred_locales: params.preferred_locales ?? [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
  };
}

/** A preloaded price: the test's fields over a recurring per-unit price. */
export function price(input, now) {
  const recurring = input.recurring ?? { interval: 'month' };
  return {
    id: input.id ?? newId('price'),
    object: 'price',
    active: input.active ?? true,
    billing_scheme: 'per_unit',
    created: input.created ?? now,
    currency: input.currency ?? 'usd',
    custom_unit_amount: null,
    livemode: false,
    lookup_key: input.lookup_key ?? null,
    metadata: input.metadata ?? {},
    nickname: input.nickname ?? null,
    product: input.product ?? newId('prod', 14),
    recurring: {
      interval: recurring.interval ?? 'month',
      interval_count: recurring.interval_count ?? 1,
      meter: recurring.meter ?? null,
      trial_period_days: recurring.trial_period_days ?? null,
      usage_type: recurring.usage_type ?? 'licensed',
    },
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: 'recurring',
    unit_amount: input.unit_amount ?? 0,
    unit_amount_decimal: String(input.unit_amount ?? 0),
  };
}

/** The legacy `plan` Stripe still renders beside each subscription item's `price`. */
function plan(p) {
  return {
    id: p.id,
    object: 'plan',
    active: p.active,
    amount: p.unit_amount,
    amount_decimal: p.unit_amount_decimal,
    billing_scheme: p.billing_scheme,
    created: p.created,
    currency: p.currency,
    interval: p.recurring.interval,
    interval_count: p.recurring.interval_count,
    livemode: false,
    metadata: p.metadata,
    meter: p.recurring.meter,
    nickname: p.nickname,
    product: p.product,
    tiers_mode: null,
    transform_usage: null,
    trial_period_days: p.recurring.trial_period_days,
    usage_type: p.recurring.usage_type,
  };
}

const metered = (p) => p.recurring?.usage_type === 'metered';

/** What a line of `quantity` of `p` costs (metered lines bill later, from usage). */
export const lineAmount = (p, quantity) => (metered(p) ? 0 : p.unit_amount * (quantity ?? 1));

export function checkoutSession(params, lines, now, baseUrl) {
  const id = newId('cs_test', 58);
  const currency = lines[0]?.price.currency ?? null;
  const subtotal = lines.reduce((sum, l) => sum + lineAmount(l.price, l.quantity), 0);
  return {
    id,
    object: 'checkout.session',
    adaptive_pricing: null,
    after_expiration: null,
    allow_promotion_codes: params.allow_promotion_codes ?? null,
    amount_subtotal: subtotal,
    amount_total: subtotal,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
    billing_address_collection: params.billing_address_collection ?? null,
    cancel_url: params.cancel_url ?? null,
    client_reference_id: params.client_reference_id ?? null,
    client_secret: null,
    collected_information: null,
    consent: null,
    consent_collection: null,
    created: now,
    currency,
    currency_conversion: null,
    custom_fields: [],
    custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
    customer: params.customer ?? null,
    customer_account: null,
    customer_creation: params.customer ? null : 'always',
    customer_details: null,
    customer_email: params.customer_email ?? null,
    discounts: [],
    expires_at: params.expires_at ?? now + 24 * 3600,
    integration_identifier: null,
    invoice: null,
    invoice_creation: null,
    livemode: false,
    locale: params.locale ?? null,
    metadata: params.metadata ?? {},
    mode: params.mode,
    origin_context: null,
    payment_intent: null,
    payment_link: null,
    payment_method_collection: params.payment_method_collection ?? 'always',
    payment_method_configuration_details: null,
    payment_method_options: {},
    payment_method_types: ['card'],
    payment_status: 'unpaid',
    permissions: null,
    phone_number_collection: { enabled: false },
    recovered_from: null,
    saved_payment_method_options: null,
    setup_intent: null,
    shipping_address_collection: null,
    shipping_cost: null,
    shipping_options: [],
    status: 'open',
    submit_type: null,
    subscription: null,
    success_url: params.success_url ?? null,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted',
    url: `${baseUrl}/pay/${id}`,
    wallet_options: null,
  };
}

/** The session's `line_items` as `expand[]=line_items` renders them. */
export function checkoutLineItems(session, lines) {
  const data = lines.map((l) => {
    const amount = lineAmount(l.price, l.quantity);
    return {
      id: newId('li'),
      object: 'item',
      amount_discount: 0,
      amount_subtotal: amount,
      amount_tax: 0,
      amount_total: amount,
      currency: l.price.currency,
      description: null,
      metadata: {},
      price: l.price,
      quantity: metered(l.price) ? null : l.quantity,
    };
  });
  return list(data, `/v1/checkout/sessions/${session.id}/line_items`);
}

export function portalSession(params, now, baseUrl, configuration) {
  const id = newId('bps');
  return {
    id,
    object: 'billing_portal.session',
    configuration,
    created: now,
    customer: params.customer,
    customer_account: null,
    flow: null,
    livemode: false,
    locale: params.locale ?? null,
    on_behalf_of: null,
    return_url: params.return_url ?? null,
    url: `${baseUrl}/portal/${id}`,
  };
}

export function subscriptionItem(subscriptionId, p, quantity, period, now) {
  const item = {
    id: newId('si', 14),
    object: 'subscription_item',
    billing_thresholds: null,
    created: now,
    current_period_end: period.end,
    current_period_start: period.start,
    discounts: [],
    metadata: {},
    plan: plan(p),
    price: p,
  };
  // Stripe renders no quantity on a metered item: usage bills it.
  if (!metered(p)) item.quantity = quantity ?? 1;
  return Object.assign(item, { subscription: subscriptionId, tax_rates: [] });
}

/** Keeps an item's legacy `plan` in step after its price changes. */
export function setItemPrice(item, p) {
  item.price = p;
  item.plan = plan(p);
  if (metered(p)) delete item.quantity;
  else item.quantity ??= 1;
}

export function subscription({ id, customerId, items, metadata, status, now, trialEnd, currency }) {
  return {
    id,
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: trialEnd ?? now,
    billing_cycle_anchor_config: null,
    billing_mode: { flexible: null, type: 'classic' },
    billing_thresholds: null,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: 'charge_automatically',
    created: now,
    currency,
    customer: customerId,
    customer_account: null,
    days_until_due: null,
    default_payment_method: newId('pm'),
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    ended_at: null,
    invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
    items: list(items, `/v1/subscription_items?subscription=${id}`, true),
    latest_invoice: null,
    livemode: false,
    metadata,
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: now,
    status,
    test_clock: null,
    transfer_data: null,
    trial_end: trialEnd ?? null,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
    trial_start: trialEnd ? now : null,
  };
}

function invoiceLine(invoiceId, sub, item, trialing) {
  const amount = trialing ? 0 : lineAmount(item.price, item.quantity);
  const quantity = item.quantity ?? 0;
  return {
    id: newId('il'),
    object: 'line_item',
    amount,
    currency: item.price.currency,
    description: `${quantity} × ${item.price.product}`,
    discount_amounts: [],
    discountable: true,
    discounts: [],
    invoice: invoiceId,
    livemode: false,
    metadata: {},
    parent: {
      invoice_item_details: null,
      subscription_item_details: {
        invoice_item: null,
        proration: false,
        proration_details: { credited_items: null },
        subscription: sub.id,
        subscription_item: item.id,
      },
      type: 'subscription_item_details',
    },
    period: { end: item.current_period_end, start: item.current_period_start },
    pretax_credit_amounts: [],
    pricing: {
      price_details: { price: item.price.id, product: item.price.product },
      type: 'price_details',
      unit_amount_decimal: item.price.unit_amount_decimal,
    },
    quantity,
    subscription: sub.id,
    subtotal: amount,
    taxes: [],
  };
}

/**
 * An invoice of `sub` as it stands: `paid` (collected at `now`) or `open`
 * (finalized, collection failed `attempts` times so far).
 */
export function invoice({ sub, customer: cus, reason, paid, attempts, now, baseUrl }) {
  const id = newId('in');
  const trialing = sub.status === 'trialing' && reason === 'subscription_create';
  const lines = sub.items.data.map((item) => invoiceLine(id, sub, item, trialing));
  const total = lines.reduce((sum, l) => sum + l.amount, 0);
  const periods = sub.items.data.map((i) => i.current_period_start);
  const periodStart = reason === 'subscription_create' ? now : Math.min(...periods);
  return {
    id,
    object: 'invoice',
    account_country: 'US',
    account_name: 'Gatehouse test account',
    account_tax_ids: null,
    amount_due: total,
    amount_overpaid: 0,
    amount_paid: paid ? total : 0,
    amount_remaining: paid ? 0 : total,
    amount_shipping: 0,
    application: null,
    attempt_count: attempts,
    attempted: attempts > 0,
    auto_advance: !paid,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: reason,
    collection_method: 'charge_automatically',
    created: now,
    currency: sub.currency,
    custom_fields: null,
    customer: sub.customer,
    customer_account: null,
    customer_address: null,
    customer_email: cus?.email ?? null,
    customer_name: cus?.name ?? null,
    customer_phone: null,
    customer_shipping: null,
    customer_tax_exempt: 'none',
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: now,
    ending_balance: 0,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: `${baseUrl}/invoice/${id}`,
    invoice_pdf: `${baseUrl}/invoice/${id}/pdf`,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    lines: list(lines, `/v1/invoices/${id}/lines`, true),
    livemode: false,
    metadata: {},
    next_payment_attempt: paid ? null : now + 3 * 24 * 3600,
    number: `${newId('x', 8).slice(2).toUpperCase()}-0001`,
    on_behalf_of: null,
    parent: {
      quote_details: null,
      subscription_details: { metadata: structuredClone(sub.metadata), subscription: sub.id },
      type: 'subscription_details',
    },
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: reason === 'subscription_create' ? now : Math.max(...sub.items.data.map((i) => i.current_period_end)),
    period_start: periodStart,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: paid ? 'paid' : 'open',
    status_transitions: { finalized_at: now, marked_uncollectible_at: null, paid_at: paid ? now : null, voided_at: null },
    subtotal: total,
    subtotal_excluding_tax: total,
    test_clock: null,
    total,
    total_discount_amounts: [],
    total_excluding_tax: total,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: now,
  };
}

/** Marks an open invoice paid at `now`, after one more collection attempt. */
export function payInvoice(inv, now) {
  inv.attempt_count += 1;
  inv.attempted = true;
  inv.amount_paid = inv.amount_due;
  inv.amount_remaining = 0;
  inv.auto_advance = false;
  inv.next_payment_attempt = null;
  inv.status = 'paid';
  inv.status_transitions.paid_at = now;
}

export function entitlementSummary(customerId, entitlements) {
  return {
    object: 'entitlements.active_entitlement_summary',
    customer: customerId,
    entitlements: list(entitlements, `/v1/customer/${customerId}/entitlements`),
    livemode: false,
  };
}

export function activeEntitlement(id, feature, lookupKey) {
  return { id, object: 'entitlements.active_entitlement', feature, livemode: false, lookup_key: lookupKey };
}

export function meterEvent(params, now) {
  return {
    object: 'billing.meter_event',
    created: now,
    event_name: params.event_name,
    identifier: params.identifier,
    livemode: false,
    payload: params.payload,
    timestamp: params.timestamp,
  };
}

/** An event of `type` carrying a snapshot of `object` as it is now. */
export function event({ type, object, previous, request, now, apiVersion }) {
  const data = { object: structuredClone(object) };
  if (previous) data.previous_attributes = structuredClone(previous);
  return {
    id: newId('evt'),
    object: 'event',
    api_version: apiVersion,
    created: now,
    data,
    livemode: false,
    pending_webhooks: 1,
    request: request ?? { id: null, idempotency_key: null },
    type,
  };
}
