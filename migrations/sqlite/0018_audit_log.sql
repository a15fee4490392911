-- The audit log: every change made through the portal, the API or the admin CLI, sign-ins and
-- their failures, lockouts, API tokens made and secrets revealed. Append-only: the triggers
-- refuse to change or delete an entry, whoever asks. Entries name people as they were (no
-- foreign keys), so deleting a user or a client leaves their history readable.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor_id   INTEGER,
    actor      TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    address    TEXT,
    action     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    -- Whose entry it is: the client whose users may read it (none: administrators only).
    client_id  INTEGER,
    detail     TEXT    NOT NULL DEFAULT '',
    -- JSON list of {field, before, after}.
    changes    TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX audit_log_client ON audit_log (client_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- INSERT OR REPLACE of an existing id deletes without firing the trigger above.
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
