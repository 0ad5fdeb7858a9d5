//! Billing that several components share: the deployment's plans
//! ([`plans`], the `billing_plans` variable), a Stripe subscription read
//! into what Gatehouse keeps of it ([`subscription`]), what an org's
//! billing state entitles it to ([`standing`]), and, on Spin, that state
//! read from `org_billing` and a seat taken atomically by the
//! transaction that adds a member (`store`), and calls to Stripe's API
//! (`stripe`); and usage on metered prices reported to Stripe by
//! background jobs ([`usage_report`]).
//!
//! The `billing` component keeps `org_billing` in step with Stripe; the
//! components that add members (`orgs` for invitations, `identity` for
//! single sign-on) take a seat through [`take_seat`].

#![deny(missing_docs)]

pub mod delivery;
pub mod plans;
pub mod standing;
pub mod subscription;
pub mod usage_report;

#[cfg(target_arch = "wasm32")]
pub mod plan_quotas;
#[cfg(target_arch = "wasm32")]
mod store;
#[cfg(target_arch = "wasm32")]
pub mod stripe;

#[cfg(target_arch = "wasm32")]
pub use store::{
    DEFAULT_GRACE_DAYS, STATE_COLUMNS, Settings, granted, load, seats_full, settings, state_of,
    take_seat,
};
