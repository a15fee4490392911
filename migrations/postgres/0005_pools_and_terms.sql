-- A client may have several floating pools (per site or department), each with a name, and a
-- licence may be made open-ended although its product is limited.
ALTER TABLE pools DROP CONSTRAINT pools_client_id_key;
ALTER TABLE pools ADD COLUMN name TEXT NOT NULL DEFAULT '';
CREATE INDEX pools_client_id ON pools (client_id);

-- "No end date" given by an administrator to a licence of a limited product: its first
-- activation then fixes no end.
ALTER TABLE licences ADD COLUMN open_ended BIGINT NOT NULL DEFAULT 0 CHECK (open_ended IN (0, 1));

-- A limited licence's users never remove it; products saved with both boxes ticked (the form
-- allowed it) say so now, as the rule has always applied.
UPDATE products SET end_user_removal = 0 WHERE limited = 1;
