-- Mail delivery: what the sender (components/mail) needs to hand queued
-- mail to an email API, retry it with backoff, and record the outcome.
-- A pending mail is sent once next_attempt_at has passed; claiming it for
-- an attempt moves next_attempt_at forward in the same statement, so two
-- requests never send the same mail. Times are unix seconds.

ALTER TABLE email_outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;  -- 0: mail queued before this migration is due at once
ALTER TABLE email_outbox ADD COLUMN last_attempt_at INTEGER;                     -- NULL until the first attempt
ALTER TABLE email_outbox ADD COLUMN last_error TEXT;                             -- NULL unless the latest attempt failed; never holds a credential
ALTER TABLE email_outbox ADD COLUMN provider TEXT;                               -- NULL until sent; then postmark or resend
ALTER TABLE email_outbox ADD COLUMN provider_message_id TEXT;                    -- NULL until sent, or when the provider gave no id

CREATE INDEX IF NOT EXISTS email_outbox_due ON email_outbox (status, next_attempt_at);
