-- An early return of a mobile licence must show the secret whose hash the borrow named; and a
-- borrowed seat leaves its session: the session may check out again (a seat of its own), and
-- no one naming the same user, host and session is handed the borrowed one.
ALTER TABLE seats ADD COLUMN borrow_return_hash TEXT;
DROP INDEX seats_one_live_per_session;
CREATE UNIQUE INDEX seats_one_live_per_session ON seats (pool_id, feature, user_name, host, session)
    WHERE released_at IS NULL AND bundle_of IS NULL AND borrowed_until IS NULL;
