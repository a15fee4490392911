-- The activations list (newest first, live ones) is paged by (activated_at, id): an index in
-- that order lets a page start at its cursor instead of sorting every live activation.
CREATE INDEX activations_live_newest ON activations (activated_at, id) WHERE removed_at IS NULL;
