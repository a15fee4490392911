-- What has been told about a licence's end: the end date (a day number) whose passing was
-- sent as a `licence.expired` webhook event, and the end date the client's contact was reminded
-- of by e-mail. Each is told once per end date: an extension makes a new one.
ALTER TABLE licences ADD COLUMN expiry_noticed INTEGER;
ALTER TABLE licences ADD COLUMN reminded_for INTEGER;
-- Licences that ended before this version are not news: no event for them.
UPDATE licences SET expiry_noticed = expires_on
 WHERE expires_on IS NOT NULL AND expires_on < CAST(strftime('%s', 'now') AS INTEGER) / 86400;
