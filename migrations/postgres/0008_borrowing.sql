-- Mobile (borrowed) licences. A borrowed seat keeps its lease until `borrowed_until` (the lease
-- reclaimer returns it then), is bound to the machine `borrow_fp`, keeps the newest token issued
-- for it (a request answered again gets it again), the nonce of the borrow request code it
-- answers (a request takes one seat) and the hash of the secret an early return must show.
ALTER TABLE seats ADD COLUMN borrowed_at BIGINT;
ALTER TABLE seats ADD COLUMN borrowed_until BIGINT;
ALTER TABLE seats ADD COLUMN borrow_fp TEXT;
ALTER TABLE seats ADD COLUMN borrow_token TEXT;
ALTER TABLE seats ADD COLUMN borrow_nonce TEXT;
ALTER TABLE seats ADD COLUMN borrow_return_hash TEXT;
CREATE UNIQUE INDEX seats_borrow_nonce ON seats (pool_id, borrow_nonce) WHERE borrow_nonce IS NOT NULL;
-- A borrowed seat leaves its session: the session may check out again (a seat of its own), and
-- no one naming the same user, host and session is handed the borrowed one.
DROP INDEX seats_one_live_per_session;
CREATE UNIQUE INDEX seats_one_live_per_session ON seats (pool_id, feature, user_name, host, session)
    WHERE released_at IS NULL AND bundle_of IS NULL AND borrowed_until IS NULL;

-- The pool owner's switch ("Allow the mobile licence conversion"), and an administrator's
-- longest borrowing for the pool (NULL: its serial's product decides; a client's pool then
-- lends nothing until an administrator sets it).
ALTER TABLE pools ADD COLUMN mobile_allowed BIGINT NOT NULL DEFAULT 1 CHECK (mobile_allowed IN (0, 1));
ALTER TABLE pools ADD COLUMN max_borrow_days BIGINT CHECK (max_borrow_days BETWEEN 0 AND 3650);
