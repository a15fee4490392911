-- Checkouts counted per pool and per caller address in one-minute windows: a flood (or a
-- search for pool keys) is answered 429 before it reaches the key selection.
CREATE TABLE checkout_rate (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
);
