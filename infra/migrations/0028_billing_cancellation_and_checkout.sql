-- When a subscription is set to end: Stripe's cancel_at, which a
-- cancellation at the period's end sets in every billing mode (in the
-- flexible mode without cancel_at_period_end).
ALTER TABLE org_billing ADD COLUMN cancel_at INTEGER;

-- The org's newest Checkout Session: a new checkout expires it first, so
-- an admin who opens two cannot pay for two subscriptions.
ALTER TABLE org_billing ADD COLUMN checkout_session_id TEXT;
