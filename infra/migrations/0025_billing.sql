-- Each org's billing state, kept in step with Stripe by the billing
-- component: the Stripe customer made for the org (on its first checkout
-- or portal session), and the subscription as its newest event (or a
-- fetch from Stripe's API) left it. What the org is entitled to is
-- computed from this row and the deployment's plans (billing_plans), so
-- a grace period runs out without anything writing here.
CREATE TABLE org_billing (
    org_id                 TEXT    NOT NULL PRIMARY KEY REFERENCES orgs (org_id) ON DELETE CASCADE,
    stripe_customer_id     TEXT    UNIQUE,             -- cus_…; NULL until made
    subscription_id        TEXT,                       -- sub_…; NULL: never subscribed
    plan_key               TEXT,                       -- the plan its price buys; NULL: none, or a price not sold
    price                  TEXT,                       -- the plan item's price lookup key, as Stripe sent it
    status                 TEXT,                       -- Stripe's subscription status; NULL: no subscription
    seats_bought           INTEGER NOT NULL DEFAULT 0 CHECK (seats_bought >= 0),
    period_start           INTEGER,
    period_end             INTEGER,
    cancel_at_period_end   INTEGER NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
    past_due_since         INTEGER,                    -- when the status became past_due; NULL otherwise
    subscription_synced_at INTEGER,                    -- the Stripe event time the subscription was last taken at
    stripe_features        TEXT    NOT NULL DEFAULT '[]', -- JSON array: Stripe's active entitlements' lookup keys
    features_synced_at     INTEGER,                    -- the Stripe event time they were taken at
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
