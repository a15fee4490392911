-- What has been told about a licence's end: the end date (a day number) whose passing was
-- sent as a `licence.expired` webhook event, and the end date the client's contact was reminded
-- of by e-mail. Each is told once per end date: an extension makes a new one. A reminder being
-- sent holds a claim (which letter, since when); one that failed is tried again an hour later,
-- a few times at most.
ALTER TABLE licences ADD COLUMN expiry_noticed BIGINT;
ALTER TABLE licences ADD COLUMN reminded_for BIGINT;
ALTER TABLE licences ADD COLUMN reminder_claim TEXT;
ALTER TABLE licences ADD COLUMN reminder_tried_at BIGINT;
ALTER TABLE licences ADD COLUMN reminder_attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX licences_by_end ON licences (expires_on) WHERE expires_on IS NOT NULL;
CREATE INDEX licences_by_reminder_claim ON licences (reminder_claim) WHERE reminder_claim IS NOT NULL;
-- Licences that ended before this version are not news: no event for them.
UPDATE licences SET expiry_noticed = expires_on
 WHERE expires_on IS NOT NULL AND expires_on < CAST(FLOOR(EXTRACT(EPOCH FROM now()) / 86400) AS BIGINT);
