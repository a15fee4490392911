-- How a pool ends a seat whose application went silent: 'lease' (when its lease runs out, the
-- reclaimer gives it back) or 'held' (it stays in use until the application comes back,
-- releases it, or an owner frees it — Powerproject's "retained until a connection is
-- re-established").
ALTER TABLE pools ADD COLUMN silent_seats TEXT NOT NULL DEFAULT 'lease'
    CHECK (silent_seats IN ('lease', 'held'));
