-- 0010_org_daily_users_projection: organisation analytics' ClickHouse rollup one level
-- coarser than 0008's org_daily_coherence (per org, day, user and valid flag), which it
-- replaces: per organisation, UTC day (toDate(window_end)) and valid flag, with the day's
-- active users as an aggregate state instead of one row per user.
--
-- Why: a 90-day analytics request (both periods: 180 days) read up to users x days rows of
-- 0008's projection (45,000 on bench:api's 500 users) and re-aggregated them; this one holds
-- one row per day, and the distinct users of a period are the merge of its days' exact sets
-- (uniqExactIf: exact, not an estimate). Measured with both projections on bench:api's 10 M
-- windows at load ~25: 90d median 34 ms against 102-132 ms, 7d 24 against 17-23 ms.
--
-- Same correctness as 0008 (see its header): a projection is written inside each part of
-- coherence_windows in the same atomic step, so a crash or a retried insert cannot leave it
-- out of step with the windows as a materialized view's table could (0006); with
-- deduplicate_merge_projection_mode = 'rebuild' (0008) a merge that drops a duplicated window
-- rebuilds it. A window stored twice counts twice in the window counts until its copies
-- merge (read without FINAL); it never changes the active users, a set.
--
--   uniqExactIf(user_id, coherence IS NOT NULL)  users with a scored window that day
--   count(coherence)                             windows with a score
--   sum(coherence)                               sum of the scores, unitless 0..1 each
--   countIf(coherence >= 0.5)                    high-coherence windows (5 s each)
--
-- Same conventions as 0001_heart.sql; every statement is idempotent. Parts written before this
-- migration get the projection from the MATERIALIZE mutation in the background; until then
-- they are read row by row (same answer, slower). org_daily_coherence is dropped: nothing
-- reads it any more, and each projection costs every insert.

ALTER TABLE {{database}}.coherence_windows
    ADD PROJECTION IF NOT EXISTS org_daily_users
    (
        SELECT org_id, toDate(window_end), valid, uniqExactIf(user_id, coherence IS NOT NULL), count(coherence), sum(coherence), countIf(coherence >= 0.5)
        GROUP BY org_id, toDate(window_end), valid
    );

ALTER TABLE {{database}}.coherence_windows
    MATERIALIZE PROJECTION org_daily_users;

ALTER TABLE {{database}}.coherence_windows
    DROP PROJECTION IF EXISTS org_daily_coherence;

ALTER TABLE {{database}}.coherence_windows
    MODIFY COMMENT 'HRV coherence of a session over a sliding 64 s window, one row every 5 s of event time (fields of the CoherenceWindow Avro record). Natural key (session_id, window_end); query with FINAL. user_daily_coherence (0006) is a view over it; the projection org_daily_users (0010: per org_id, toDate(window_end) UTC, valid: uniqExactIf(user_id, coherence IS NOT NULL), count(coherence), sum(coherence), countIf(coherence >= 0.5)) serves organisation analytics, read without FINAL.';
