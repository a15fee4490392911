-- Floating licences: a pool (of a client, or of a serial) holds licence keys; applications check
-- out seats with a lease and keep them by heartbeats. `in_use` is the key's taken quantity,
-- changed only by conditional updates, and the CHECK makes "in use never exceeds count" a rule
-- of the database itself. Days are day numbers; times are Unix seconds.

CREATE TABLE pools (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id  BIGINT UNIQUE REFERENCES clients (id) ON DELETE CASCADE,
    serial_id  BIGINT UNIQUE REFERENCES serials (id) ON DELETE CASCADE,
    -- What applications of a client's pool present to check out ("pool key").
    access_key TEXT    NOT NULL UNIQUE,
    lease_secs BIGINT NOT NULL DEFAULT 300 CHECK (lease_secs BETWEEN 30 AND 86400),
    created_at BIGINT NOT NULL,
    CHECK ((client_id IS NULL) <> (serial_id IS NULL))
);

CREATE TABLE pool_keys (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id            BIGINT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    editor             TEXT    NOT NULL,
    feature            TEXT    NOT NULL,
    model              TEXT    NOT NULL CHECK (model IN ('ConcurrentUser', 'NamedUser', 'Token', 'Credit')),
    quantity           BIGINT NOT NULL CHECK (quantity >= 0),
    in_use             BIGINT NOT NULL DEFAULT 0 CHECK (in_use >= 0 AND in_use <= quantity),
    start_day          BIGINT ,
    end_day            BIGINT ,
    group_index        BIGINT NOT NULL DEFAULT 0,
    max_release_number BIGINT NOT NULL DEFAULT 0,
    max_release_day    BIGINT ,
    commercial_type    TEXT    NOT NULL DEFAULT 'STD' CHECK (commercial_type IN ('STD', 'EDU', 'DEMO')),
    customer_id        TEXT    NOT NULL DEFAULT '',
    pricing_structure  TEXT    NOT NULL DEFAULT '',
    additional_info    TEXT    NOT NULL DEFAULT '',
    file_index         BIGINT NOT NULL DEFAULT 0,
    generation_day     BIGINT NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX pool_keys_pool_feature ON pool_keys (pool_id, feature);

-- Checking out `feature` also takes `also_feature` (of the same pool).
CREATE TABLE pool_bundles (
    pool_id      BIGINT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    feature      TEXT    NOT NULL,
    also_feature TEXT    NOT NULL,
    PRIMARY KEY (pool_id, feature, also_feature)
);

CREATE TABLE seats (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id               BIGINT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    key_id                BIGINT NOT NULL REFERENCES pool_keys (id) ON DELETE CASCADE,
    bundle_of             BIGINT REFERENCES seats (id) ON DELETE CASCADE,
    editor                TEXT    NOT NULL,
    feature               TEXT    NOT NULL,
    user_name             TEXT    NOT NULL,
    host                  TEXT    NOT NULL,
    process               TEXT    NOT NULL,
    session               TEXT    NOT NULL,
    client_release_number BIGINT NOT NULL DEFAULT 0,
    client_release_day    BIGINT ,
    -- What the checkout asked for, so a seat moved at a heartbeat goes only where it may.
    ask_model             TEXT,
    ask_commercial_type   TEXT,
    ask_customer_id       TEXT,
    ask_pricing_structure TEXT,
    -- Seats or tokens taken (0: a named user's further session on a key it already holds).
    amount                BIGINT NOT NULL CHECK (amount >= 0),
    lease_token_hash      TEXT    NOT NULL UNIQUE,
    granted_at            BIGINT NOT NULL,
    last_heartbeat_at     BIGINT NOT NULL,
    lease_expires_at      BIGINT NOT NULL,
    released_at           BIGINT ,
    released_by           TEXT
);
-- A seat per user per machine session per feature.
CREATE UNIQUE INDEX seats_one_live_per_session ON seats (pool_id, feature, user_name, host, session)
    WHERE released_at IS NULL AND bundle_of IS NULL;
CREATE INDEX seats_live_lease ON seats (lease_expires_at) WHERE released_at IS NULL;
CREATE INDEX seats_key ON seats (key_id);

-- Refusals and peak use per feature per hour (hour = Unix seconds / 3600), for charts.
CREATE TABLE usage_hourly (
    pool_id     BIGINT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    editor      TEXT    NOT NULL,
    feature     TEXT    NOT NULL,
    hour        BIGINT NOT NULL,
    refusals    BIGINT NOT NULL DEFAULT 0,
    peak_in_use BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, editor, feature, hour)
);
