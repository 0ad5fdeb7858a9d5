-- Incoming webhooks, continued: replayed bodies and replay rounds.

-- GitHub's and Jira's delivery ids are headers their signature does not
-- cover, and Teams and Azure DevOps sign no time: a captured body stays
-- valid for ever and could be sent again under a new id. For those
-- providers an event also keeps the hex SHA-256 of its body, once per
-- source (NULL for providers whose signature covers a timestamp, and for
-- events stored before this migration).
ALTER TABLE webhook_events ADD COLUMN body_sha256 TEXT;
CREATE UNIQUE INDEX webhook_events_by_body ON webhook_events (source_id, body_sha256)
    WHERE body_sha256 IS NOT NULL;

-- The round of handler jobs the event's status follows: '0' for the jobs
-- queued with it, a replay's id (the middle of its jobs' idempotency keys,
-- `{event} {round} {url}`) once an admin replays it.
ALTER TABLE webhook_events ADD COLUMN dispatch_round TEXT NOT NULL DEFAULT '0';

-- Events replayed before this migration follow their newest replay.
UPDATE webhook_events SET dispatch_round = (
    SELECT substr(j.idempotency_key, length(webhook_events.event_id) + 2,
                  instr(substr(j.idempotency_key, length(webhook_events.event_id) + 2), ' ') - 1)
    FROM jobs j
    WHERE j.kind = 'webhook.dispatch'
      AND j.idempotency_key >= webhook_events.event_id || ' replay_'
      AND j.idempotency_key < webhook_events.event_id || ' replay`'
    ORDER BY j.created_at DESC, j.rowid DESC LIMIT 1)
WHERE EXISTS (
    SELECT 1 FROM jobs j
    WHERE j.kind = 'webhook.dispatch'
      AND j.idempotency_key >= webhook_events.event_id || ' replay_'
      AND j.idempotency_key < webhook_events.event_id || ' replay`');
