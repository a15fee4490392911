-- A licence removed without its machine frees only once the machine's code can no longer pass
-- offline: `offline_until` is when the latest code issued for the activation stops passing
-- (its `next` validation time plus the client's grace), `frees_at` when a removal made without
-- the machine lets another machine take the licence (NULL: at once).
ALTER TABLE activations ADD COLUMN offline_until BIGINT;
ALTER TABLE activations ADD COLUMN frees_at BIGINT;
CREATE INDEX activations_frees_at ON activations (licence_id, frees_at) WHERE frees_at IS NOT NULL;
