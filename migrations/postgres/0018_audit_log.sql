-- The audit log: every change made through the portal, the API or the admin CLI, sign-ins and
-- their failures, lockouts, API tokens made and secrets revealed. Append-only: the triggers
-- refuse to change or delete an entry, whoever asks (TRUNCATE included). Entries name people as
-- they were (no foreign keys), so deleting a user or a client leaves their history readable.
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor_id   BIGINT,
    actor      TEXT   NOT NULL,
    channel    TEXT   NOT NULL,
    address    TEXT,
    action     TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    -- Whose entry it is: the client whose users may read it (none: administrators only).
    client_id  BIGINT,
    detail     TEXT   NOT NULL DEFAULT '',
    -- JSON list of {field, before, after}.
    changes    TEXT   NOT NULL DEFAULT '[]'
);
CREATE INDEX audit_log_client ON audit_log (client_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
