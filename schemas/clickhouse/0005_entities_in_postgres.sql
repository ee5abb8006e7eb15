-- 0005_entities_in_postgres: ClickHouse holds facts, and one dimension (issue 8).
--
-- Devices, sessions, speech sessions and uploads are entities: they change (a session ends,
-- an upload progresses), and two processes changing one of them must not lose a change. They
-- now live in PostgreSQL (schemas/postgres/0001_entities.sql: constraints, optimistic
-- versions, one open audio stream per speech session).
--
-- `sessions` stays, as the dimension analysts join facts with: it is no longer written by the
-- API but built from the compacted topic attune.session.changes.v1 (each session's state after
-- every change, published from PostgreSQL's outbox) by the session dimension sink
-- (pipelines/session-dimension-sink.ts). Same columns as before, plus `version`.
--
-- `devices`, `speech_sessions` and `speech_uploads` are dropped rather than left to go stale:
-- nothing writes them any more. Facts keep org_id, user_id, session_id and device_id; their
-- attributes are read from PostgreSQL (ClickHouse's postgresql() table function or a
-- dictionary). The README says so.
--
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.sessions
    ADD COLUMN IF NOT EXISTS version UInt32 DEFAULT 0 COMMENT 'PostgreSQL''s version of the session: bumped by every change (0 in rows written before migration 0005).' AFTER metadata_json;

ALTER TABLE {{database}}.sessions
    MODIFY COMMENT 'Sessions, the dimension to join facts with: one row per version, built from the compacted topic attune.session.changes.v1 (each session''s state after every change in PostgreSQL, where sessions live). Query with FINAL (or argMax(col, updated_at)) for the current state; updated_at strictly increases per session.';

DROP TABLE IF EXISTS {{database}}.devices;

DROP TABLE IF EXISTS {{database}}.speech_sessions;

DROP TABLE IF EXISTS {{database}}.speech_uploads;
