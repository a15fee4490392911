-- A pool's access rules (DSLS authorization rules; FlexNet's INCLUDE, EXCLUDE, RESERVE, GROUP and
-- HOST_GROUP): who may take seats of which feature, and seats kept for someone. Judged by
-- protocol::access at every checkout and heartbeat.

-- Named groups of users or of hosts that rules name. `name_key` is the name as rules compare it
-- (trimmed, lower case), so two groups cannot differ by case alone.
CREATE TABLE pool_access_groups (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id    BIGINT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    name       TEXT   NOT NULL,
    name_key   TEXT   NOT NULL,
    kind       TEXT   NOT NULL CHECK (kind IN ('user', 'host')),
    -- One name per line (names have no control characters).
    members    TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (pool_id, name_key)
);

-- One rule: about one feature (or every feature, NULL), naming one user, host or group.
CREATE TABLE pool_access_rules (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id      BIGINT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    feature      TEXT,
    effect       TEXT   NOT NULL CHECK (effect IN ('allow', 'deny', 'reserve')),
    subject_kind TEXT   NOT NULL CHECK (subject_kind IN ('user', 'host', 'group')),
    subject      TEXT   NOT NULL,
    seats        BIGINT CHECK ((effect = 'reserve') = (seats IS NOT NULL AND seats > 0)),
    note         TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL
);
CREATE INDEX pool_access_rules_pool ON pool_access_rules (pool_id);
