-- Site licence servers: a product sold for customers' own licence servers refreshes their
-- entitlements within so many days (NULL: its licences activate on machines); each of its
-- licences links at most one site server at a time. A site's row keeps the number of the
-- last entitlement issued to it (each issue raises it, so a site never takes back an older
-- one), when it must refresh by, and how the link ended: unlinked with the site's word, or
-- freed by the vendor (at once, or when the entitlement it holds lapses).
ALTER TABLE products ADD COLUMN site_refresh_days INTEGER
    CHECK (site_refresh_days IS NULL OR site_refresh_days BETWEEN 1 AND 365);

CREATE TABLE sites (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    licence_id      INTEGER NOT NULL REFERENCES licences (id) ON DELETE CASCADE,
    fingerprint     TEXT    NOT NULL,
    hostname        TEXT    NOT NULL,
    -- 'online' (the site asked itself) or 'code' (its request pasted in the portal).
    channel         TEXT    NOT NULL CHECK (channel IN ('online', 'code')),
    linked_at       INTEGER NOT NULL,
    seq             INTEGER NOT NULL CHECK (seq > 0),
    issued_at       INTEGER NOT NULL,
    refresh_by      INTEGER NOT NULL,
    last_contact_at INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT    NOT NULL DEFAULT '',
    unlinked_at     INTEGER,
    -- Unlinked without the site's word: its entitlement may grant until then.
    frees_at        INTEGER
);
CREATE UNIQUE INDEX sites_one_live_per_licence ON sites (licence_id) WHERE unlinked_at IS NULL;
CREATE INDEX sites_by_licence ON sites (licence_id, linked_at);
