-- 0005_entities_in_postgres: ClickHouse holds facts only (issue 8).
--
-- Devices, sessions, speech sessions and uploads are entities: they change (a session ends,
-- an upload progresses), and two processes changing one of them must not lose a change. They
-- now live in PostgreSQL (schemas/postgres/0001_entities.sql: constraints, optimistic
-- versions, one open audio stream per speech session), and Attune no longer writes these
-- ReplacingMergeTree copies, so they are dropped rather than left to go stale.
--
-- For analysts: every fact table keeps the ids it always had (org_id, user_id, session_id,
-- device_id), so facts still group by session, user and device. Session and device
-- attributes (title, type, thresholds, names) are read from PostgreSQL, e.g. with
-- ClickHouse's postgresql() table function or a PostgreSQL dictionary.
--
-- Same conventions as 0001_heart.sql; every statement is idempotent.

DROP TABLE IF EXISTS {{database}}.sessions;

DROP TABLE IF EXISTS {{database}}.devices;

DROP TABLE IF EXISTS {{database}}.speech_sessions;

DROP TABLE IF EXISTS {{database}}.speech_uploads;
