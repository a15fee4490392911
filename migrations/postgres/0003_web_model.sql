-- The web licensing model (serial numbers whose licences need no client or order), API tokens
-- for the management API. A licence now belongs to an order or to a serial.

CREATE TABLE serial_batches (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id          BIGINT NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    features            TEXT,
    licences_per_serial BIGINT NOT NULL CHECK (licences_per_serial BETWEEN 1 AND 100),
    note                TEXT   NOT NULL DEFAULT '',
    created_by          BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX serial_batches_product_id ON serial_batches (product_id);

CREATE TABLE serials (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    BIGINT NOT NULL REFERENCES serial_batches (id) ON DELETE CASCADE,
    product_id  BIGINT NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    serial      TEXT   NOT NULL UNIQUE,
    features    TEXT,
    replaces    BIGINT REFERENCES serials (id) ON DELETE SET NULL,
    revoked_at  BIGINT,
    revoke_note TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX serials_batch_id ON serials (batch_id);
CREATE UNIQUE INDEX serials_replaces ON serials (replaces);

ALTER TABLE licences ALTER COLUMN order_id DROP NOT NULL;
ALTER TABLE licences ADD COLUMN serial_id BIGINT REFERENCES serials (id) ON DELETE CASCADE;
ALTER TABLE licences ADD CONSTRAINT licences_one_owner CHECK ((order_id IS NULL) <> (serial_id IS NULL));
CREATE INDEX licences_serial_id ON licences (serial_id);

-- The serial an activation of a web licence was made with: after a revoke-and-reissue, the
-- application is told at its next validation to activate again with the replacement.
ALTER TABLE activations ADD COLUMN serial_id BIGINT REFERENCES serials (id) ON DELETE SET NULL;
CREATE INDEX activations_activated_at ON activations (licence_id, activated_at);

CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    token_hash   TEXT   NOT NULL UNIQUE,
    prefix       TEXT   NOT NULL,
    can_write    BIGINT NOT NULL CHECK (can_write IN (0, 1)),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
