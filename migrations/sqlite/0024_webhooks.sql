-- Webhooks: URLs an administrator registers for events, and each event's delivery to each of
-- them (written in the transaction of the change that caused it, sent and retried by a job).
CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    url           TEXT    NOT NULL,
    -- Event codes, comma-separated (activation.created,seat.refused).
    events        TEXT    NOT NULL,
    -- The HMAC key of the signatures, sealed with the master key.
    secret_sealed TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    created_by    INTEGER REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- No reference: an event written while its webhook is being removed must not fail the
    -- change it tells of (removal deletes the deliveries; a straggler is dropped unsent).
    webhook_id      INTEGER NOT NULL,
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    last_status     INTEGER,
    last_answer     TEXT,
    delivered_at    INTEGER,
    failed_at       INTEGER,
    -- When it is tried next; NULL once delivered or given up. While an attempt is under way,
    -- the end of its claim.
    next_attempt_at INTEGER,
    -- Who is making the attempt: only that sender records its outcome.
    claim           TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
