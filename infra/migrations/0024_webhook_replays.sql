-- Incoming webhooks, continued: replayed bodies and replay rounds.

-- GitHub's and Jira's delivery ids are headers their signature does not
-- cover and they sign no time: a captured body stays valid for ever and
-- could be sent again under a new id. Their events also keep the hex
-- SHA-256 of their body, once per source (NULL for other providers, for
-- a source that turned it off, and for events stored before this
-- migration). Teams and Azure DevOps are deduplicated by the body's own
-- id already.
ALTER TABLE webhook_events ADD COLUMN body_sha256 TEXT;
CREATE UNIQUE INDEX webhook_events_by_body ON webhook_events (source_id, body_sha256)
    WHERE body_sha256 IS NOT NULL;

-- A copy of the sealed setting, so reads need not open the seal: 0 when a
-- GitHub or Jira source keeps bodies that repeat (some carry nothing
-- unique), 1 or NULL (the default) when it deduplicates them; NULL for
-- other providers.
ALTER TABLE webhook_sources ADD COLUMN deduplicate_bodies INTEGER CHECK (deduplicate_bodies IN (0, 1));

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

-- A replay's jobs queued before replays had ids of their own name no
-- webhook_id and would be sent under the event's id, which a handler that
-- deduplicates drops: they take their replay's id (the middle of their
-- key), as the jobs a replay queues now do.
UPDATE jobs SET payload = json_set(payload, '$.webhook_id',
        substr(idempotency_key, length(json_extract(payload, '$.event_id')) + 2,
               instr(substr(idempotency_key, length(json_extract(payload, '$.event_id')) + 2), ' ') - 1))
WHERE kind = 'webhook.dispatch'
  AND json_valid(payload)
  AND json_type(payload, '$.webhook_id') IS NULL
  AND json_type(payload, '$.event_id') = 'text'
  AND idempotency_key >= json_extract(payload, '$.event_id') || ' replay_'
  AND idempotency_key < json_extract(payload, '$.event_id') || ' replay`';
