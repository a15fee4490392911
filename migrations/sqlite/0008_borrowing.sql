-- Mobile (borrowed) licences. A borrowed seat keeps its lease until `borrowed_until` (the lease
-- reclaimer returns it then), is bound to the machine `borrow_fp`, and keeps the newest token
-- issued for it (a return code must show its digest; a request answered again gets it again)
-- and the nonce of the borrow request code it answers (a request takes one seat).
ALTER TABLE seats ADD COLUMN borrowed_at INTEGER;
ALTER TABLE seats ADD COLUMN borrowed_until INTEGER;
ALTER TABLE seats ADD COLUMN borrow_fp TEXT;
ALTER TABLE seats ADD COLUMN borrow_token TEXT;
ALTER TABLE seats ADD COLUMN borrow_nonce TEXT;
CREATE UNIQUE INDEX seats_borrow_nonce ON seats (pool_id, borrow_nonce) WHERE borrow_nonce IS NOT NULL;

-- The pool owner's switch ("Allow the mobile licence conversion"), and an administrator's
-- longest borrowing for the pool (NULL: its serial's product decides; a client's pool then
-- lends nothing until an administrator sets it).
ALTER TABLE pools ADD COLUMN mobile_allowed INTEGER NOT NULL DEFAULT 1 CHECK (mobile_allowed IN (0, 1));
ALTER TABLE pools ADD COLUMN max_borrow_days INTEGER CHECK (max_borrow_days BETWEEN 0 AND 3650);
