-- 0002_session_changes: the outbox of session changes (issue 8: "a sessions dimension for
-- data scientists' joins, fed from entity changes published on the bus").
--
-- Every insert or update of a session adds a row here in the same transaction (a trigger,
-- so no code path can forget it and no change is lost if the process dies after its
-- commit). The worker role's relay (pipelines/session-changes.ts) takes rows with
-- FOR UPDATE SKIP LOCKED, publishes each session's current state to the compacted topic
-- attune.session.changes.v1 and deletes the rows in the same transaction: a crash before the
-- commit publishes them again (the ClickHouse dimension keeps the highest version, so twice is
-- the same as once), and several relays share the work without taking the same rows.

CREATE TABLE session_changes
(
    change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    version integer NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE session_changes IS 'Outbox: sessions changed and not yet published to attune.session.changes.v1. Rows are deleted once published; a row that stays is a change still to be sent.';

CREATE FUNCTION session_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_changes (session_id, version) VALUES (NEW.session_id, NEW.version);
    RETURN NEW;
END;
$$;

CREATE TRIGGER sessions_outbox
    AFTER INSERT OR UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION session_changed();
