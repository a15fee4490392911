-- The web licensing model (serial numbers whose licences need no client or order), API tokens
-- for the management API. A licence now belongs to an order or to a serial. SQLite cannot drop
-- a NOT NULL constraint, and sqlx runs this file in a transaction (where foreign keys cannot be
-- switched off), so `licences` and `activations` are copied into new tables, the old ones dropped
-- (activations first, so nothing cascades) and the new ones renamed into place.

CREATE TABLE serial_batches (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id          INTEGER NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    features            TEXT,
    licences_per_serial INTEGER NOT NULL CHECK (licences_per_serial BETWEEN 1 AND 100),
    note                TEXT    NOT NULL DEFAULT '',
    created_by          INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at          INTEGER NOT NULL
);
CREATE INDEX serial_batches_product_id ON serial_batches (product_id);

CREATE TABLE serials (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id    INTEGER NOT NULL REFERENCES serial_batches (id) ON DELETE CASCADE,
    product_id  INTEGER NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    serial      TEXT    NOT NULL UNIQUE,
    features    TEXT,
    replaces    INTEGER REFERENCES serials (id) ON DELETE SET NULL,
    revoked_at  INTEGER,
    revoke_note TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX serials_batch_id ON serials (batch_id);
CREATE UNIQUE INDEX serials_replaces ON serials (replaces);

CREATE TABLE licences_v3 (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id         INTEGER REFERENCES orders (id) ON DELETE CASCADE,
    serial_id        INTEGER REFERENCES serials (id) ON DELETE CASCADE,
    licence_key      TEXT    NOT NULL UNIQUE,
    features         TEXT,
    counters         TEXT,
    expires_on       INTEGER,
    activation_count INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    CHECK ((order_id IS NULL) <> (serial_id IS NULL))
);
INSERT INTO licences_v3 (id, order_id, serial_id, licence_key, features, counters, expires_on,
                         activation_count, created_at)
    SELECT id, order_id, NULL, licence_key, features, counters, expires_on, activation_count,
           created_at FROM licences;

CREATE TABLE activations_v3 (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    licence_id        INTEGER NOT NULL REFERENCES licences_v3 (id) ON DELETE CASCADE,
    fingerprint       TEXT    NOT NULL,
    hostname          TEXT    NOT NULL,
    mode              TEXT    NOT NULL CHECK (mode IN ('online', 'offline')),
    request_nonce     TEXT,
    activated_at      INTEGER NOT NULL,
    last_validated_at INTEGER,
    removed_at        INTEGER,
    removed_by        TEXT,
    -- The serial a web licence was activated with: after a revoke-and-reissue, the application
    -- is told at its next validation to activate again with the replacement.
    serial_id         INTEGER REFERENCES serials (id) ON DELETE SET NULL
);
INSERT INTO activations_v3 (id, licence_id, fingerprint, hostname, mode, request_nonce,
                            activated_at, last_validated_at, removed_at, removed_by)
    SELECT id, licence_id, fingerprint, hostname, mode, request_nonce, activated_at,
           last_validated_at, removed_at, removed_by FROM activations;

-- Ids are never handed out twice: the new tables continue the old ones' AUTOINCREMENT counters
-- (which remember ids of rows deleted since), not just the highest id copied.
DELETE FROM sqlite_sequence WHERE name IN ('licences_v3', 'activations_v3');
INSERT INTO sqlite_sequence (name, seq) SELECT 'licences_v3', seq FROM sqlite_sequence WHERE name = 'licences';
INSERT INTO sqlite_sequence (name, seq) SELECT 'activations_v3', seq FROM sqlite_sequence WHERE name = 'activations';

DROP TABLE activations;
DROP TABLE licences;
ALTER TABLE licences_v3 RENAME TO licences;
ALTER TABLE activations_v3 RENAME TO activations;
CREATE INDEX licences_order_id ON licences (order_id);
CREATE INDEX licences_serial_id ON licences (serial_id);
CREATE UNIQUE INDEX activations_one_live_per_licence ON activations (licence_id) WHERE removed_at IS NULL;
CREATE INDEX activations_fingerprint ON activations (fingerprint);
CREATE INDEX activations_activated_at ON activations (licence_id, activated_at);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    can_write    INTEGER NOT NULL CHECK (can_write IN (0, 1)),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
