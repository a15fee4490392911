-- The sign-in counts written before 0010 (which name no account, so a password reset could not
-- clear them) start over. (SQLite's INTEGER is 64-bit already; PostgreSQL widens two columns
-- here.)
DELETE FROM login_throttle;
