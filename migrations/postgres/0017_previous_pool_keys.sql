-- Every replaced pool key is kept (its digest), each with its own grace: replacing a key again
-- while the one before is still in its grace no longer cuts that one off at once, and any old
-- key is answered "replaced" rather than "unknown". (pools.previous_* of 0013 move here.)
CREATE TABLE pool_previous_keys (
    key_hash    TEXT    PRIMARY KEY,
    pool_id     BIGINT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    code_digest TEXT    NOT NULL,
    replaced_at BIGINT NOT NULL,
    works_until BIGINT NOT NULL
);
CREATE INDEX pool_previous_keys_pool ON pool_previous_keys (pool_id);
INSERT INTO pool_previous_keys (key_hash, pool_id, code_digest, replaced_at, works_until)
    SELECT previous_key_hash, id, COALESCE(previous_code_digest, ''), COALESCE(key_rotated_at, 0),
           COALESCE(previous_key_until, 0)
    FROM pools WHERE previous_key_hash IS NOT NULL;
