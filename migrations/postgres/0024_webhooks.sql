-- Webhooks: URLs an administrator registers for events, and each event's delivery to each of
-- them (written in the transaction of the change that caused it, sent and retried by a job).
CREATE TABLE webhooks (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url           TEXT    NOT NULL,
    -- Event codes, comma-separated (activation.created,seat.refused).
    events        TEXT    NOT NULL,
    -- The HMAC key of the signatures, sealed with the master key.
    secret_sealed TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    created_by    BIGINT REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No reference: an event written while its webhook is being removed must not fail the
    -- change it tells of (removal deletes the deliveries; a straggler is dropped unsent).
    webhook_id      BIGINT NOT NULL,
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_attempt_at BIGINT,
    last_status     BIGINT,
    last_answer     TEXT,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    -- When it is tried next; NULL once delivered or given up. While an attempt is under way,
    -- the end of its claim.
    next_attempt_at BIGINT,
    -- Who is making the attempt: only that sender records its outcome.
    claim           TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
