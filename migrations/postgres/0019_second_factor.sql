-- A second factor (RFC 6238 one-time passwords from an authenticator app) for any account, with
-- recovery codes that work once, and the step between a right password and the code.
-- The secrets are sealed with the master key, bound to their user: a copy of the database alone
-- does not make codes.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
-- A setup begun but not yet confirmed with a code from the app.
ALTER TABLE users ADD COLUMN totp_pending TEXT;
-- The last 30-second step whose code was used: a code works once.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

CREATE TABLE recovery_codes (
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- HMAC-SHA-256 of the code, keyed from the master key (about 49 random bits each).
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- A right password waiting for its code: the browser holds the ticket, this its digest.
CREATE TABLE sign_in_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    failures   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sign_in_challenges_expiry ON sign_in_challenges (expires_at);
