-- One-time links that set an account's password: an invitation (the account was made without a
-- password) or a password reset. Only the token's digest is kept.
CREATE TABLE account_links (
    token_hash     TEXT    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose        TEXT    NOT NULL CHECK (purpose IN ('invitation', 'reset')),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    -- The address group that asked for a reset ('' when an administrator made the link): how
    -- many one address asks for is limited.
    requested_from TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX account_links_user ON account_links (user_id);
CREATE INDEX account_links_requested ON account_links (requested_from, created_at);
