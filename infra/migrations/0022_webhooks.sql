-- Incoming webhooks: each org's sources (a provider and what verifies
-- its deliveries) and the durable inbox of what they delivered. Times
-- are unix seconds.

-- A source's secrets and credentials are one sealed JSON document
-- (`config`, sealed with a key derived from the master key, the source id
-- as associated data): never stored or answered in the clear.
CREATE TABLE webhook_sources (
    org_id           TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    source_id        TEXT    NOT NULL PRIMARY KEY,    -- whs_<32 hex>, the ingest URL's last segment
    provider         TEXT    NOT NULL CHECK (provider IN ('stripe', 'github', 'standard', 'jira', 'teams', 'azure_devops', 'slack')),
    description      TEXT,
    config           TEXT    NOT NULL,                -- sealed verification config
    tolerance_seconds INTEGER CHECK (tolerance_seconds BETWEEN 1 AND 3600),
    secret_count     INTEGER NOT NULL DEFAULT 0,
    has_basic        INTEGER NOT NULL DEFAULT 0,
    has_header       INTEGER NOT NULL DEFAULT 0,
    created_by       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER                          -- a deleted source verifies nothing more
);
CREATE INDEX webhook_sources_by_org ON webhook_sources (org_id, created_at, source_id);

-- Deliveries refused, counted per source and reason; their payloads are
-- never kept.
CREATE TABLE webhook_rejections (
    org_id      TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    source_id   TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    count       INTEGER NOT NULL DEFAULT 0,
    last_at     INTEGER NOT NULL,
    PRIMARY KEY (source_id, reason)
) WITHOUT ROWID;

-- Every accepted delivery, written before its answer. A redelivery (the
-- same provider id on the same source) is the same row.
CREATE TABLE webhook_events (
    org_id       TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    event_id     TEXT    NOT NULL PRIMARY KEY,        -- whe_<32 hex>
    source_id    TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    delivery_id  TEXT    NOT NULL,                    -- the provider's id, or sha256:<hex> of the body
    event_type   TEXT,
    -- received: no handler takes it; pending: handed to handlers by jobs;
    -- dispatched: every handler took it; failed: a handler refused it and
    -- its job will try again; dead: a handler's job ran out of attempts.
    status       TEXT    NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'pending', 'dispatched', 'failed', 'dead')),
    handlers_pending INTEGER NOT NULL DEFAULT 0,          -- handler jobs not yet done
    last_error   TEXT,                                    -- the last handler failure, short
    payload      BLOB    NOT NULL,                    -- the body as received
    content_type TEXT,
    signed_at    INTEGER,
    received_at  INTEGER NOT NULL,
    UNIQUE (source_id, delivery_id)
);
CREATE INDEX webhook_events_by_org ON webhook_events (org_id, received_at, event_id);
CREATE INDEX webhook_events_by_source ON webhook_events (org_id, source_id, received_at, event_id);
