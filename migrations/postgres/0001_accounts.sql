-- Accounts: client organisations, portal users, server-side sessions, sign-in throttling and the
-- one-time link that creates the first administrator. Times are Unix seconds (UTC).

CREATE TABLE clients (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT   NOT NULL,
    name_key      TEXT   NOT NULL UNIQUE,
    contact_email TEXT   NOT NULL DEFAULT '',
    notes         TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);

CREATE TABLE users (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email               TEXT   NOT NULL UNIQUE,
    name                TEXT   NOT NULL,
    role                TEXT   NOT NULL CHECK (role IN ('admin', 'client')),
    client_id           BIGINT REFERENCES clients (id) ON DELETE CASCADE,
    password_hash       TEXT   NOT NULL,
    created_at          BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    last_sign_in_at     BIGINT,
    CHECK ((role = 'admin' AND client_id IS NULL) OR (role = 'client' AND client_id IS NOT NULL))
);
CREATE INDEX users_client_id ON users (client_id);

CREATE TABLE sessions (
    token_hash   TEXT   PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    address      TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE login_throttle (
    key          TEXT   PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

CREATE TABLE setup_tokens (
    token_hash TEXT   PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
