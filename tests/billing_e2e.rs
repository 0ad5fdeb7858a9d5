//! Billing end to end: plans, Stripe Checkout and the portal against a
//! local server that speaks Stripe's API (`tests/stripe-api`), Stripe's
//! events signed by stripe-node posted to a Stripe source and handed to
//! the billing component by the handler jobs, entitlements, and seats
//! taken atomically.

#[path = "billing_e2e/boundaries.rs"]
mod boundaries;
#[path = "billing_e2e/changes.rs"]
mod changes;
#[path = "billing_e2e/lifecycle.rs"]
mod lifecycle;
#[path = "billing_e2e/ordering.rs"]
mod ordering;
#[path = "billing_e2e/plan_quotas.rs"]
mod plan_quotas;
#[path = "billing_e2e/seats.rs"]
mod seats;
#[path = "billing_e2e/support.rs"]
mod support;
#[path = "billing_e2e/usage_reports.rs"]
mod usage_reports;
