-- A live seat is resumed (a restarted application taking its own seat back) only with proof:
-- the digest of the secret its installation sent when it took the seat. Naming the same user,
-- host and session is no longer enough.
ALTER TABLE seats ADD COLUMN installation_hash TEXT;
