-- Tool runs: an org's members send a conversation to the org's LLM
-- provider (OpenAI's chat-completions format), which may call the org's
-- tools; each run, its steps and every completion are kept for the
-- record, for debugging and, with their tokens, for spend. Times are unix
-- seconds.

-- Where an org's runs go. The API key is not here: `api_key_secret`
-- names an org secret (`org/NAME`), read when a run starts.
CREATE TABLE IF NOT EXISTS tool_settings (
    org_id         TEXT    NOT NULL PRIMARY KEY REFERENCES orgs (org_id) ON DELETE CASCADE,
    base_url       TEXT    NOT NULL,                 -- https://api.openai.com/v1; /chat/completions is appended
    model          TEXT    NOT NULL,
    api_key_secret TEXT    NOT NULL,                 -- org/NAME
    max_steps      INTEGER NOT NULL DEFAULT 8 CHECK (max_steps BETWEEN 1 AND 32),
    timeout_ms     INTEGER NOT NULL DEFAULT 60000 CHECK (timeout_ms BETWEEN 1 AND 120000),
    updated_at     INTEGER NOT NULL,
    updated_by     TEXT    NOT NULL
);

CREATE TABLE IF NOT EXISTS tool_runs (
    org_id            TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    run_id            TEXT    NOT NULL PRIMARY KEY,   -- run_<time-sorted hex>
    user_id           TEXT    NOT NULL,               -- who ran it (a key's owner, or the key)
    stage             TEXT    NOT NULL CHECK (stage IN ('raw', 'call', 'static')),
    status            TEXT    NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'stopped')),
    stop_reason       TEXT,                            -- NULL while running
    model             TEXT    NOT NULL,
    messages          TEXT    NOT NULL,                -- JSON: the conversation as given
    output            TEXT,                            -- JSON: the final answer; NULL when there is none
    steps             INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    finished_at       INTEGER                          -- NULL while running
);
CREATE INDEX IF NOT EXISTS tool_runs_by_org ON tool_runs (org_id, run_id);
CREATE INDEX IF NOT EXISTS tool_runs_by_user ON tool_runs (org_id, user_id, run_id);

CREATE TABLE IF NOT EXISTS tool_run_steps (
    org_id            TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    run_id            TEXT    NOT NULL,
    seq               INTEGER NOT NULL,               -- 1, 2, … in the order they happened
    kind              TEXT    NOT NULL CHECK (kind IN ('completion', 'tool_call')),
    tool              TEXT,                            -- a tool_call's tool, as the model named it
    arguments         TEXT,                            -- JSON; a string when the model's text did not parse
    result            TEXT,                            -- JSON: the tool's result, or why it failed
    is_error          INTEGER NOT NULL DEFAULT 0 CHECK (is_error IN (0, 1)),
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    completion_id     TEXT,                            -- a completion step's record in completions
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS tool_run_steps_by_org ON tool_run_steps (org_id, run_id, seq);

-- Every exchange with the provider, kept apart from the runs (they are
-- large) and linked to them by id. The API key is never in `request`:
-- it travels in a header only.
CREATE TABLE IF NOT EXISTS completions (
    org_id            TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    completion_id     TEXT    NOT NULL PRIMARY KEY,   -- cmpl_<time-sorted hex>
    run_id            TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    request           TEXT    NOT NULL,               -- JSON: the body sent
    response          TEXT,                            -- JSON: the body answered; NULL when none came
    status            INTEGER,                         -- the provider's HTTP status; NULL when none came
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS completions_by_org ON completions (org_id, completion_id);
