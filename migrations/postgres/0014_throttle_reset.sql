-- Times and counts are 64-bit like every other column (0010 and 0012 added 32-bit ones), and the
-- sign-in counts written before 0010 (which name no account, so a password reset could not
-- clear them) start over.
ALTER TABLE login_throttle ALTER COLUMN strikes TYPE BIGINT;
ALTER TABLE api_tokens ALTER COLUMN expires_at TYPE BIGINT;
DELETE FROM login_throttle;
