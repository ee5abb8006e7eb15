-- 0007_org_daily_sessions: a per-organisation daily rollup of sessions for organisation
-- analytics (GET /v1/organizations/{org_id}/analytics, issue 12), so that a period reads at
-- most days x protocols rows instead of every session of the organisation (the pass over the
-- sessions took 220 ms of a loaded machine at 90d on 41,667 sessions; bench/api.bench.ts).
--
-- Same conventions as 0001_entities.sql.
--
-- org_daily_sessions holds, per organisation, UTC day of started_at and protocol
-- (session_practice.protocol; '' for a session without one):
--   started          sessions started that day (any status)
--   ended            of those, the ones that have ended (ended_at set)
--   duration_sum_s   sum of ended_at - started_at of the ended ones, seconds (numeric: exact,
--                    so sum / ended is the same mean as avg() over the sessions)
--
-- Why here, kept by triggers, and why a ledger (org_daily_sessions_counted):
--  * Sessions and their protocols live in PostgreSQL; the rollup is changed by triggers on
--    sessions and session_practice in the same transaction as the change, so a crash, a
--    restart or a rolled-back request leaves both or neither (the lesson of ClickHouse
--    migration 0006: a rollup that a retried or interrupted write can leave wrong is wrong).
--    No code path can forget it: the repositories, the bench's bulk inserts and a manual fix
--    in psql all go through the triggers.
--  * The rollup is never incremented blindly. org_daily_sessions_counted records, per session,
--    what the rollup currently counts for it (organisation, day, protocol, ended, duration).
--    org_daily_sessions_recount(session) compares that with the session's current rows and
--    moves the difference: a replayed create or end (an idempotent UPDATE that changes
--    nothing, a practice row written again, an end of an ended session) changes nothing, a
--    changed start, end or protocol moves the session between buckets, a deleted session
--    leaves them. Running it any number of times for a session gives the same rollup, so the
--    rollup always equals the direct computation over sessions (api/org-analytics.test.ts).
--  * Concurrency: recount first locks the session's row (FOR NO KEY UPDATE; a transaction
--    that changed the session holds it already), so the recounts of one session are
--    serialised, and its later statements (READ COMMITTED) see the other's committed change.
--    Two sessions of the same organisation and day update the same rollup row, which
--    serialises their commits on that row (short: one upsert).
--  * Backfill: the triggers are created before the existing sessions are counted; creating
--    them takes a lock that waits for writers in flight, and the backfill statements then see
--    every committed session, so none is missed or counted twice.

CREATE TABLE org_daily_sessions
(
    org_id text NOT NULL,
    day date NOT NULL,
    protocol text NOT NULL,
    started integer NOT NULL DEFAULT 0 CHECK (started >= 0),
    ended integer NOT NULL DEFAULT 0 CHECK (ended >= 0 AND ended <= started),
    duration_sum_s numeric NOT NULL DEFAULT 0 CHECK (duration_sum_s >= 0),
    CONSTRAINT org_daily_sessions_pkey PRIMARY KEY (org_id, day, protocol)
);
COMMENT ON TABLE org_daily_sessions IS 'Per organisation, UTC day of started_at and protocol ('''' when none): sessions started, ended, and the sum of their durations in seconds. Kept by triggers on sessions and session_practice through org_daily_sessions_counted (0007); read by organisation analytics.';

CREATE TABLE org_daily_sessions_counted
(
    session_id uuid NOT NULL,
    org_id text NOT NULL,
    day date NOT NULL,
    protocol text NOT NULL,
    ended boolean NOT NULL,
    duration_s numeric NOT NULL,
    CONSTRAINT org_daily_sessions_counted_pkey PRIMARY KEY (session_id)
);
COMMENT ON TABLE org_daily_sessions_counted IS 'What org_daily_sessions counts for each session (0007): recount moves a session between buckets by the difference to its current rows, so a replayed write changes nothing. No foreign key: a deleted session''s row is removed by its recount.';

CREATE FUNCTION org_daily_sessions_recount(sid uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cur_org text;
    cur_day date;
    cur_protocol text;
    cur_ended boolean;
    cur_duration numeric;
    has_cur boolean;
    old org_daily_sessions_counted%ROWTYPE;
    has_old boolean;
BEGIN
    -- Serialise the recounts of this session (see the header); a no-op when this transaction
    -- holds the lock or the session is gone.
    PERFORM 1 FROM sessions WHERE session_id = sid FOR NO KEY UPDATE;
    SELECT s.org_id, (s.started_at AT TIME ZONE 'UTC')::date, COALESCE(p.protocol, ''), s.ended_at IS NOT NULL,
           COALESCE(EXTRACT(EPOCH FROM (s.ended_at - s.started_at)), 0)
      INTO cur_org, cur_day, cur_protocol, cur_ended, cur_duration
      FROM sessions s LEFT JOIN session_practice p ON p.session_id = s.session_id
     WHERE s.session_id = sid;
    has_cur := FOUND;
    SELECT * INTO old FROM org_daily_sessions_counted WHERE session_id = sid;
    has_old := FOUND;
    IF has_cur AND has_old AND old.org_id = cur_org AND old.day = cur_day AND old.protocol = cur_protocol
       AND old.ended = cur_ended AND old.duration_s = cur_duration THEN
        RETURN;
    END IF;
    IF has_old THEN
        UPDATE org_daily_sessions
           SET started = started - 1, ended = ended - old.ended::int, duration_sum_s = duration_sum_s - old.duration_s
         WHERE org_id = old.org_id AND day = old.day AND protocol = old.protocol;
        DELETE FROM org_daily_sessions_counted WHERE session_id = sid;
    END IF;
    IF has_cur THEN
        INSERT INTO org_daily_sessions AS r (org_id, day, protocol, started, ended, duration_sum_s)
        VALUES (cur_org, cur_day, cur_protocol, 1, cur_ended::int, cur_duration)
        ON CONFLICT (org_id, day, protocol) DO UPDATE
           SET started = r.started + 1, ended = r.ended + EXCLUDED.ended, duration_sum_s = r.duration_sum_s + EXCLUDED.duration_sum_s;
        INSERT INTO org_daily_sessions_counted (session_id, org_id, day, protocol, ended, duration_s)
        VALUES (sid, cur_org, cur_day, cur_protocol, cur_ended, cur_duration);
    END IF;
END;
$$;

CREATE FUNCTION org_daily_sessions_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM org_daily_sessions_recount(OLD.session_id);
    ELSE
        PERFORM org_daily_sessions_recount(NEW.session_id);
        IF TG_OP = 'UPDATE' AND OLD.session_id <> NEW.session_id THEN
            PERFORM org_daily_sessions_recount(OLD.session_id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- Only the columns the rollup reads: other updates of a session (title, metadata, version)
-- do not fire it. session_practice's notes and rating (written at the end) do not either.
CREATE TRIGGER sessions_org_daily
    AFTER INSERT OR DELETE OR UPDATE OF session_id, org_id, started_at, ended_at ON sessions
    FOR EACH ROW EXECUTE FUNCTION org_daily_sessions_changed();
CREATE TRIGGER session_practice_org_daily
    AFTER INSERT OR DELETE OR UPDATE OF session_id, protocol ON session_practice
    FOR EACH ROW EXECUTE FUNCTION org_daily_sessions_changed();

INSERT INTO org_daily_sessions_counted (session_id, org_id, day, protocol, ended, duration_s)
SELECT s.session_id, s.org_id, (s.started_at AT TIME ZONE 'UTC')::date, COALESCE(p.protocol, ''), s.ended_at IS NOT NULL,
       COALESCE(EXTRACT(EPOCH FROM (s.ended_at - s.started_at)), 0)
  FROM sessions s LEFT JOIN session_practice p ON p.session_id = s.session_id;

INSERT INTO org_daily_sessions (org_id, day, protocol, started, ended, duration_sum_s)
SELECT org_id, day, protocol, count(*), count(*) FILTER (WHERE ended), sum(duration_s)
  FROM org_daily_sessions_counted
 GROUP BY org_id, day, protocol;
