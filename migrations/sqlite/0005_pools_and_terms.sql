-- A client may have several floating pools (per site or department), each with a name, and a
-- licence may be made open-ended although its product is limited. SQLite cannot drop the UNIQUE
-- of pools.client_id, and sqlx runs this file in a transaction (where foreign keys cannot be
-- switched off), so the floating tables are copied into new ones, the old ones dropped children
-- first (so nothing cascades) and the new ones renamed into place, with their id counters.
CREATE TABLE pools_v5 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id  INTEGER REFERENCES clients (id) ON DELETE CASCADE,
    serial_id  INTEGER UNIQUE REFERENCES serials (id) ON DELETE CASCADE,
    -- What people call it: a client may have several pools_v5 (per site or department).
    name       TEXT    NOT NULL DEFAULT '',
    -- What applications of a client's pool present to check out ("pool key").
    access_key TEXT    NOT NULL UNIQUE,
    lease_secs INTEGER NOT NULL DEFAULT 300 CHECK (lease_secs BETWEEN 30 AND 86400),
    created_at INTEGER NOT NULL,
    CHECK ((client_id IS NULL) <> (serial_id IS NULL))
);
CREATE TABLE pool_keys_v5 (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id            INTEGER NOT NULL REFERENCES pools_v5 (id) ON DELETE CASCADE,
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
-- Checking out `feature` also takes `also_feature` (of the same pool).
CREATE TABLE pool_bundles_v5 (
    pool_id      INTEGER NOT NULL REFERENCES pools_v5 (id) ON DELETE CASCADE,
    feature      TEXT    NOT NULL,
    also_feature TEXT    NOT NULL,
    PRIMARY KEY (pool_id, feature, also_feature)
);
CREATE TABLE seats_v5 (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id               INTEGER NOT NULL REFERENCES pools_v5 (id) ON DELETE CASCADE,
    key_id                INTEGER NOT NULL REFERENCES pool_keys_v5 (id) ON DELETE CASCADE,
    bundle_of             INTEGER REFERENCES seats_v5 (id) ON DELETE CASCADE,
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
-- Refusals and peak use per feature per hour (hour = Unix seconds / 3600), for charts.
CREATE TABLE usage_hourly_v5 (
    pool_id     INTEGER NOT NULL REFERENCES pools_v5 (id) ON DELETE CASCADE,
    editor      TEXT    NOT NULL,
    feature     TEXT    NOT NULL,
    hour        INTEGER NOT NULL,
    refusals    INTEGER NOT NULL DEFAULT 0,
    peak_in_use INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, editor, feature, hour)
);
INSERT INTO pools_v5 (id, client_id, serial_id, access_key, lease_secs, created_at)
    SELECT id, client_id, serial_id, access_key, lease_secs, created_at FROM pools ORDER BY id;
INSERT INTO pool_keys_v5 (id, pool_id, editor, feature, model, quantity, in_use, start_day, end_day, group_index, max_release_number, max_release_day, commercial_type, customer_id, pricing_structure, additional_info, file_index, generation_day, created_at)
    SELECT id, pool_id, editor, feature, model, quantity, in_use, start_day, end_day, group_index, max_release_number, max_release_day, commercial_type, customer_id, pricing_structure, additional_info, file_index, generation_day, created_at FROM pool_keys ORDER BY id;
INSERT INTO pool_bundles_v5 (pool_id, feature, also_feature)
    SELECT pool_id, feature, also_feature FROM pool_bundles;
INSERT INTO seats_v5 (id, pool_id, key_id, bundle_of, editor, feature, user_name, host, process, session, client_release_number, client_release_day, ask_model, ask_commercial_type, ask_customer_id, ask_pricing_structure, amount, lease_token_hash, granted_at, last_heartbeat_at, lease_expires_at, released_at, released_by)
    SELECT id, pool_id, key_id, bundle_of, editor, feature, user_name, host, process, session, client_release_number, client_release_day, ask_model, ask_commercial_type, ask_customer_id, ask_pricing_structure, amount, lease_token_hash, granted_at, last_heartbeat_at, lease_expires_at, released_at, released_by FROM seats ORDER BY id;
INSERT INTO usage_hourly_v5 (pool_id, editor, feature, hour, refusals, peak_in_use)
    SELECT pool_id, editor, feature, hour, refusals, peak_in_use FROM usage_hourly;

DELETE FROM sqlite_sequence WHERE name IN ('pools_v5', 'pool_keys_v5', 'seats_v5');
INSERT INTO sqlite_sequence (name, seq) SELECT 'pools_v5', seq FROM sqlite_sequence WHERE name = 'pools';
INSERT INTO sqlite_sequence (name, seq) SELECT 'pool_keys_v5', seq FROM sqlite_sequence WHERE name = 'pool_keys';
INSERT INTO sqlite_sequence (name, seq) SELECT 'seats_v5', seq FROM sqlite_sequence WHERE name = 'seats';

DROP TABLE usage_hourly;
DROP TABLE seats;
DROP TABLE pool_bundles;
DROP TABLE pool_keys;
DROP TABLE pools;
ALTER TABLE pools_v5 RENAME TO pools;
ALTER TABLE pool_keys_v5 RENAME TO pool_keys;
ALTER TABLE pool_bundles_v5 RENAME TO pool_bundles;
ALTER TABLE seats_v5 RENAME TO seats;
ALTER TABLE usage_hourly_v5 RENAME TO usage_hourly;

CREATE INDEX pool_keys_pool_feature ON pool_keys (pool_id, feature);
-- A seat per user per machine session per feature.
CREATE UNIQUE INDEX seats_one_live_per_session ON seats (pool_id, feature, user_name, host, session)
    WHERE released_at IS NULL AND bundle_of IS NULL;
CREATE INDEX seats_live_lease ON seats (lease_expires_at) WHERE released_at IS NULL;
CREATE INDEX seats_key ON seats (key_id);
CREATE INDEX pools_client_id ON pools (client_id);

-- "No end date" given by an administrator to a licence of a limited product: its first
-- activation then fixes no end.
ALTER TABLE licences ADD COLUMN open_ended INTEGER NOT NULL DEFAULT 0 CHECK (open_ended IN (0, 1));

-- A limited licence's users never remove it; products saved with both boxes ticked (the form
-- allowed it) say so now, as the rule has always applied.
UPDATE products SET end_user_removal = 0 WHERE limited = 1;
