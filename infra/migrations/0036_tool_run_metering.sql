-- Tool runs meet the org's quotas: before each completion and each tool
-- call a run holds quota on the meters its settings name, and settles it
-- with what was used (metering's reservations); a refused hold stops the
-- run. Each step keeps what it cost when its meter has a price.

-- A sum meter counting a completion's tokens (prompt + completion; item
-- type `model`), and a count meter counting tool calls (item type
-- `tool`). Either may be unset: that part of a run is not metered.
ALTER TABLE tool_settings ADD COLUMN token_meter TEXT;
ALTER TABLE tool_settings ADD COLUMN tool_meter TEXT;
-- Tokens held for a completion before it runs; its actual total is
-- counted after, whatever it is.
ALTER TABLE tool_settings ADD COLUMN reserve_tokens INTEGER NOT NULL DEFAULT 4096
    CHECK (reserve_tokens BETWEEN 1 AND 1000000);

-- The step's cost as an exact decimal, and its currency.
ALTER TABLE tool_run_steps ADD COLUMN cost TEXT;
ALTER TABLE tool_run_steps ADD COLUMN currency TEXT;

-- JSON: what a refused hold was for and the quota that refused it.
ALTER TABLE tool_runs ADD COLUMN quota_refusal TEXT;
