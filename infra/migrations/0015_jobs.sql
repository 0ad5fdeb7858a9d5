-- Background jobs: work done after a response (mail, and later webhook
-- deliveries, reports), durable in SQL. A job is claimed with a lease by
-- one conditional UPDATE, so two runners never hold one job; a runner that
-- dies leaves its lease to expire and the job is taken again. A failed
-- attempt waits by backoff; after max_attempts the job is dead and stays
-- for an operator to read and retry (components/lib/jobs).
-- Times are unix seconds.

CREATE TABLE IF NOT EXISTS jobs (
    id              TEXT    PRIMARY KEY,              -- job_<32 hex>
    kind            TEXT    NOT NULL,                 -- mail.send, ...
    payload         TEXT    NOT NULL DEFAULT '{}',    -- JSON: ids only, never a secret
    idempotency_key TEXT    NOT NULL,                 -- one job per kind and key: enqueueing it again is a no-op
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead')),
    run_at          INTEGER NOT NULL,                 -- a pending job is due from then
    attempts        INTEGER NOT NULL DEFAULT 0,       -- claims so far, the running one included
    max_attempts    INTEGER NOT NULL,                 -- a failure at this many attempts makes the job dead
    lease_owner     TEXT,                             -- NULL unless running: the run that holds it
    lease_until     INTEGER,                          -- NULL unless running: after this, another run may take the job
    last_error      TEXT,                             -- NULL until an attempt fails; short, never a credential
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER,                          -- NULL until done or dead
    UNIQUE (kind, idempotency_key)
);

-- What a runner claims: pending jobs by due time, running ones whose lease
-- has expired.
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, run_at);
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (state, lease_until);
-- The operator's listing, newest first, per state.
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs (state, created_at, id);

-- Mail queued before this migration and still pending gets its job, so
-- the job runner delivers it too: due when the mail was, its attempts so
-- far counted, 8 in all (the default job_max_attempts).
INSERT OR IGNORE INTO jobs (id, kind, payload, idempotency_key, state, run_at, attempts, max_attempts, created_at, updated_at)
    SELECT 'job_' || lower(hex(randomblob(16))), 'mail.send', '{"mail_id":"' || id || '"}', id, 'pending',
           next_attempt_at, attempts, 8, created_at, CAST(strftime('%s', 'now') AS INTEGER)
    FROM email_outbox WHERE status = 'pending';
