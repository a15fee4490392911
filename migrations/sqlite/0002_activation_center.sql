-- The Activation Center's standard model: products, orders of a client for a product, the licences
-- of an order and their activations on machines; and the keys that sign activation codes.
-- Days are day counts since 1970-01-01 (UTC); flags are 0/1; feature lists and counters are JSON.

CREATE TABLE products (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    code                TEXT    NOT NULL UNIQUE,
    name                TEXT    NOT NULL,
    editor              TEXT    NOT NULL DEFAULT '',
    release_number      INTEGER NOT NULL DEFAULT 0,
    release_date        INTEGER,
    features            TEXT    NOT NULL DEFAULT '[]',
    default_features    TEXT    NOT NULL DEFAULT '[]',
    default_counters    TEXT    NOT NULL DEFAULT '{}',
    limited             INTEGER NOT NULL DEFAULT 0 CHECK (limited IN (0, 1)),
    validity_days       INTEGER,
    fixed_start         INTEGER,
    fixed_end           INTEGER,
    expire_day_of_month INTEGER CHECK (expire_day_of_month BETWEEN 1 AND 31),
    end_user_removal    INTEGER NOT NULL DEFAULT 1 CHECK (end_user_removal IN (0, 1)),
    max_activations     INTEGER NOT NULL DEFAULT 3 CHECK (max_activations >= 1),
    validate_every_days INTEGER NOT NULL DEFAULT 7 CHECK (validate_every_days >= 1),
    licences_per_serial INTEGER NOT NULL DEFAULT 1 CHECK (licences_per_serial BETWEEN 1 AND 100),
    heartbeat_secs      INTEGER NOT NULL DEFAULT 120 CHECK (heartbeat_secs >= 10),
    borrowing_allowed   INTEGER NOT NULL DEFAULT 0 CHECK (borrowing_allowed IN (0, 1)),
    max_borrow_days     INTEGER NOT NULL DEFAULT 30 CHECK (max_borrow_days >= 1),
    created_at          INTEGER NOT NULL
);

CREATE TABLE orders (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id  INTEGER NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    product_id INTEGER NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    reference  TEXT    NOT NULL DEFAULT '',
    features   TEXT    NOT NULL,
    counters   TEXT    NOT NULL,
    notes      TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX orders_client_id ON orders (client_id);
CREATE INDEX orders_product_id ON orders (product_id);

CREATE TABLE licences (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id         INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    licence_key      TEXT    NOT NULL UNIQUE,
    features         TEXT,
    counters         TEXT,
    expires_on       INTEGER,
    activation_count INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);
CREATE INDEX licences_order_id ON licences (order_id);

CREATE TABLE activations (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    licence_id        INTEGER NOT NULL REFERENCES licences (id) ON DELETE CASCADE,
    fingerprint       TEXT    NOT NULL,
    hostname          TEXT    NOT NULL,
    mode              TEXT    NOT NULL CHECK (mode IN ('online', 'offline')),
    request_nonce     TEXT,
    activated_at      INTEGER NOT NULL,
    last_validated_at INTEGER,
    removed_at        INTEGER,
    removed_by        TEXT
);
CREATE UNIQUE INDEX activations_one_live_per_licence ON activations (licence_id) WHERE removed_at IS NULL;
CREATE INDEX activations_fingerprint ON activations (fingerprint);

CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,
    public_key  TEXT    NOT NULL,
    private_key TEXT    NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active = 1;
