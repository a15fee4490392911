-- Usage over time: casual keys (DSLS), every ended seat kept for the history, the casual
-- over-use log and the monthly casual usage reports.

-- A casual key: a NamedUser key whose users may use it this many minutes per calendar month
-- (UTC). Over-use is reported, not refused. NULL: not casual.
ALTER TABLE pool_keys ADD COLUMN casual_max_minutes BIGINT
    CHECK (casual_max_minutes IS NULL OR casual_max_minutes BETWEEN 1 AND 44640);

-- Since when a live seat is on its present key (NULL: since it was granted); a seat moved to
-- another key at a heartbeat ends its stretch on the old key in the history.
ALTER TABLE seats ADD COLUMN key_since BIGINT;

-- Every stretch a seat spent on a key, written when it ended (released, lease expired,
-- disconnected, lost, returned, borrow ended, moved). No reference to the key: the history
-- outlives a removed key. Purged after the retention period by a job.
CREATE TABLE seat_history (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id        BIGINT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    seat_id        BIGINT NOT NULL,
    key_id         BIGINT NOT NULL,
    bundle_of      BIGINT,
    editor         TEXT    NOT NULL,
    feature        TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    user_name      TEXT    NOT NULL,
    host           TEXT    NOT NULL,
    process        TEXT    NOT NULL,
    session        TEXT    NOT NULL,
    amount         BIGINT NOT NULL,
    granted_at     BIGINT NOT NULL,
    ended_at       BIGINT NOT NULL,
    ended_by       TEXT    NOT NULL,
    borrowed_until BIGINT,
    -- Until when it was in use, as casual metering counts it: its end, or the end of its last
    -- lease when the application went silent before the seat was reclaimed.
    used_until     BIGINT NOT NULL
);
CREATE INDEX seat_history_pool_ended ON seat_history (pool_id, ended_at);
CREATE INDEX seat_history_pool_id ON seat_history (pool_id, id);
CREATE INDEX seat_history_key_ended ON seat_history (key_id, ended_at);
CREATE INDEX seat_history_seat ON seat_history (seat_id);
CREATE INDEX seat_history_ended ON seat_history (ended_at);

-- The seats that ended before this change, so the history starts with what is known.
INSERT INTO seat_history (pool_id, seat_id, key_id, bundle_of, editor, feature, model, user_name,
        host, process, session, amount, granted_at, ended_at, ended_by, borrowed_until, used_until)
    SELECT s.pool_id, s.id, s.key_id, s.bundle_of, s.editor, s.feature, k.model, s.user_name,
        s.host, s.process, s.session, s.amount, s.granted_at, s.released_at,
        COALESCE(s.released_by, 'application'), s.borrowed_until, s.released_at
    FROM seats s JOIN pool_keys k ON k.id = s.key_id
    WHERE s.released_at IS NOT NULL ORDER BY s.id;

-- A seat's bundled seats are found (released with it, deleted with it) by an index.
CREATE INDEX seats_bundle_of ON seats (bundle_of) WHERE bundle_of IS NOT NULL;
-- Today's refusals and the charts read the hourly figures by hour.
CREATE INDEX usage_hourly_hour ON usage_hourly (hour);

-- A user's over-use of a casual key, logged once per month ('YYYY-MM').
CREATE TABLE casual_overuse (
    key_id    BIGINT NOT NULL REFERENCES pool_keys (id) ON DELETE CASCADE,
    user_name TEXT    NOT NULL,
    month     TEXT    NOT NULL,
    minutes   BIGINT NOT NULL,
    logged_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, user_name, month)
);

-- The monthly casual usage report, one per month whichever replica made it (JSON, as served).
CREATE TABLE casual_reports (
    month       TEXT    PRIMARY KEY,
    produced_at BIGINT NOT NULL,
    body        TEXT    NOT NULL
);
