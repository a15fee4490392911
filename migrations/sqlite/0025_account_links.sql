-- One-time links that set an account's password: an invitation (the account was made without a
-- password) or a password reset. Only the token's digest is kept.
CREATE TABLE account_links (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL CHECK (purpose IN ('invitation', 'reset')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX account_links_user ON account_links (user_id);

-- Every password reset asked for from the sign-in page, whether or not the address has an
-- account, kept for an hour: how many one address and one account may ask for is counted here.
CREATE TABLE password_reset_requests (
    address_group TEXT    NOT NULL,
    account       TEXT    NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX password_reset_requests_address ON password_reset_requests (address_group, at);
CREATE INDEX password_reset_requests_account ON password_reset_requests (account, at);
