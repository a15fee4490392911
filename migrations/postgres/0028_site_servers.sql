-- Site licence servers: a product sold for customers' own licence servers refreshes their
-- entitlements within so many days (NULL: its licences activate on machines); each of its
-- licences links at most one site server at a time. A site's row keeps the number of the
-- last entitlement issued to it (each issue raises it, so a site never takes back an older
-- one), when it must refresh by, and how the link ended: unlinked with the site's word, or
-- freed by the vendor (at once, or when the entitlement it holds lapses).
ALTER TABLE products ADD COLUMN site_refresh_days BIGINT
    CHECK (site_refresh_days IS NULL OR site_refresh_days BETWEEN 1 AND 365);

CREATE TABLE sites (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    licence_id      BIGINT  NOT NULL REFERENCES licences (id) ON DELETE CASCADE,
    fingerprint     TEXT    NOT NULL,
    hostname        TEXT    NOT NULL,
    -- 'online' (the site asked itself) or 'code' (its request pasted in the portal).
    channel         TEXT    NOT NULL CHECK (channel IN ('online', 'code')),
    linked_at       BIGINT  NOT NULL,
    seq             BIGINT  NOT NULL CHECK (seq > 0),
    issued_at       BIGINT  NOT NULL,
    refresh_by      BIGINT  NOT NULL,
    last_contact_at BIGINT  NOT NULL,
    revoked_at      BIGINT,
    revoked_reason  TEXT    NOT NULL DEFAULT '',
    unlinked_at     BIGINT,
    -- Unlinked without the site's word: its entitlement may grant until then.
    frees_at        BIGINT
);
CREATE UNIQUE INDEX sites_one_live_per_licence ON sites (licence_id) WHERE unlinked_at IS NULL;
CREATE INDEX sites_by_licence ON sites (licence_id, linked_at);
