-- Floating licences: a pool (of a client, or of a serial) holds licence keys; applications check
-- out seats with a lease and keep them by heartbeats. `in_use` is the key's taken quantity,
-- changed only by conditional updates, and the CHECK makes "in use never exceeds count" a rule
-- of the database itself. Days are day numbers; times are Unix seconds.

CREATE TABLE pools (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id  INTEGER UNIQUE REFERENCES clients (id) ON DELETE CASCADE,
    serial_id  INTEGER UNIQUE REFERENCES serials (id) ON DELETE CASCADE,
    -- What applications of a client's pool present to check out ("pool key").
    access_key TEXT    NOT NULL UNIQUE,
    lease_secs INTEGER NOT NULL DEFAULT 300 CHECK (lease_secs BETWEEN 30 AND 86400),
    created_at INTEGER NOT NULL,
    CHECK ((client_id IS NULL) <> (serial_id IS NULL))
);

CREATE TABLE pool_keys (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id            INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    editor             TEXT    NOT NULL,
    feature            TEXT    NOT NULL,
    model              TEXT    NOT NULL CHECK (model IN ('ConcurrentUser', 'NamedUser', 'Token', 'Credit')),
    quantity           INTEGER NOT NULL CHECK (quantity >= 0),
    in_use             INTEGER NOT NULL DEFAULT 0 CHECK (in_use >= 0 AND in_use <= quantity),
    start_day          INTEGER,
    end_day            INTEGER,
    group_index        INTEGER NOT NULL DEFAULT 0,
    max_release_number INTEGER NOT NULL DEFAULT 0,
    max_release_day    INTEGER,
    commercial_type    TEXT    NOT NULL DEFAULT 'STD' CHECK (commercial_type IN ('STD', 'EDU', 'DEMO')),
    customer_id        TEXT    NOT NULL DEFAULT '',
    pricing_structure  TEXT    NOT NULL DEFAULT '',
    additional_info    TEXT    NOT NULL DEFAULT '',
    file_index         INTEGER NOT NULL DEFAULT 0,
    generation_day     INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX pool_keys_pool_feature ON pool_keys (pool_id, feature);

-- Checking out `feature` also takes `also_feature` (of the same pool).
CREATE TABLE pool_bundles (
    pool_id      INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    feature      TEXT    NOT NULL,
    also_feature TEXT    NOT NULL,
    PRIMARY KEY (pool_id, feature, also_feature)
);

CREATE TABLE seats (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id               INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    key_id                INTEGER NOT NULL REFERENCES pool_keys (id) ON DELETE CASCADE,
    bundle_of             INTEGER REFERENCES seats (id) ON DELETE CASCADE,
    editor                TEXT    NOT NULL,
    feature               TEXT    NOT NULL,
    user_name             TEXT    NOT NULL,
    host                  TEXT    NOT NULL,
    process               TEXT    NOT NULL,
    session               TEXT    NOT NULL,
    client_release_number INTEGER NOT NULL DEFAULT 0,
    client_release_day    INTEGER,
    -- What the checkout asked for, so a seat moved at a heartbeat goes only where it may.
    ask_model             TEXT,
    ask_commercial_type   TEXT,
    ask_customer_id       TEXT,
    ask_pricing_structure TEXT,
    -- Seats or tokens taken (0: a named user's further session on a key it already holds).
    amount                INTEGER NOT NULL CHECK (amount >= 0),
    lease_token_hash      TEXT    NOT NULL UNIQUE,
    granted_at            INTEGER NOT NULL,
    last_heartbeat_at     INTEGER NOT NULL,
    lease_expires_at      INTEGER NOT NULL,
    released_at           INTEGER,
    released_by           TEXT
);
-- A seat per user per machine session per feature.
CREATE UNIQUE INDEX seats_one_live_per_session ON seats (pool_id, feature, user_name, host, session)
    WHERE released_at IS NULL AND bundle_of IS NULL;
CREATE INDEX seats_live_lease ON seats (lease_expires_at) WHERE released_at IS NULL;
CREATE INDEX seats_key ON seats (key_id);

-- Refusals and peak use per feature per hour (hour = Unix seconds / 3600), for charts.
CREATE TABLE usage_hourly (
    pool_id     INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    editor      TEXT    NOT NULL,
    feature     TEXT    NOT NULL,
    hour        INTEGER NOT NULL,
    refusals    INTEGER NOT NULL DEFAULT 0,
    peak_in_use INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, editor, feature, hour)
);
