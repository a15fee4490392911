-- Sign-in throttling per (account, address) with growing locks: `account` names the account a
-- row counts for (so an administrator's password reset clears its locks), `strikes` how many
-- locks in a row it has set (each lasts twice the one before).
ALTER TABLE login_throttle ADD COLUMN account TEXT NOT NULL DEFAULT '';
ALTER TABLE login_throttle ADD COLUMN strikes INTEGER NOT NULL DEFAULT 0;
CREATE INDEX login_throttle_account ON login_throttle (account);
