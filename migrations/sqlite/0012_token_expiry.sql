-- API tokens end: each has an expiry, chosen at creation up to a year. Tokens made before get a
-- year from their creation.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
UPDATE api_tokens SET expires_at = created_at + 31536000;
