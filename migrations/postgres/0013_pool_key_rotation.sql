-- Pool keys are kept as digests: `access_key` holds the SHA-256 of the key (the server turns the
-- keys stored before into digests at start, the rows whose `key_head` is still empty), and
-- `key_head` its first characters, to recognise it. A replaced key keeps working until
-- `previous_key_until`, then is refused with a problem that says so.
ALTER TABLE pools ADD COLUMN key_head TEXT NOT NULL DEFAULT '';
ALTER TABLE pools ADD COLUMN key_code_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE pools ADD COLUMN key_rotated_at BIGINT;
ALTER TABLE pools ADD COLUMN previous_key_hash TEXT;
ALTER TABLE pools ADD COLUMN previous_code_digest TEXT;
ALTER TABLE pools ADD COLUMN previous_key_until BIGINT;
CREATE INDEX pools_previous_key_hash ON pools (previous_key_hash);
