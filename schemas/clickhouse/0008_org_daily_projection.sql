-- 0008_org_daily_projection: a per-organisation daily rollup of coherence_windows for
-- organisation analytics (GET /v1/organizations/{org_id}/analytics, issue 12), as an aggregate
-- PROJECTION of coherence_windows rather than a materialized view.
--
-- Why not a materialized view: a materialized view adds each inserted block to its own table
-- as a separate part, so (0006) a kill -9 during an insert can leave windows in
-- coherence_windows and not in the rollup, and an insert retried after it had in fact been
-- stored counts twice; neither is ever repaired (the worker rightly does not insert those
-- windows again). A projection's part is written inside each part of coherence_windows, in
-- the same atomic step, so a crash leaves both or neither; and with
-- deduplicate_merge_projection_mode = 'rebuild' a merge that drops a duplicated window
-- (ReplacingMergeTree) rebuilds the projection from the surviving rows. The one exposure
-- left: a window stored twice counts twice until the parts holding the two copies merge.
--
-- The projection holds, per organisation, UTC day (toDate(window_end)), user and valid flag:
--   count()                    windows (5 s steps of event time; 12 a minute)
--   count(coherence)           windows with a coherence score (valid windows have one)
--   sum(coherence)             sum of the coherence scores, unitless 0..1 each (mean = sum/count)
--   countIf(coherence >= 0.5)  high-coherence windows (5 s each)
-- ClickHouse reads it instead of the windows for a query that filters and groups by these
-- columns and asks these aggregates without FINAL (api/org-analytics.ts); EXPLAIN names it
-- (ReadFromMergeTree (org_daily_coherence)). Parts written before this migration get it from
-- the MATERIALIZE mutation, which runs in the background; until then they are read row by row
-- (same answer, slower).
--
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.coherence_windows
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE {{database}}.coherence_windows
    ADD PROJECTION IF NOT EXISTS org_daily_coherence
    (
        SELECT org_id, toDate(window_end), user_id, valid, count(), count(coherence), sum(coherence), countIf(coherence >= 0.5)
        GROUP BY org_id, toDate(window_end), user_id, valid
    );

ALTER TABLE {{database}}.coherence_windows
    MATERIALIZE PROJECTION org_daily_coherence;

ALTER TABLE {{database}}.coherence_windows
    MODIFY COMMENT 'HRV coherence of a session over a sliding 64 s window, one row every 5 s of event time (fields of the CoherenceWindow Avro record). Natural key (session_id, window_end); query with FINAL. user_daily_coherence (0006) is a view over it; the projection org_daily_coherence (0008: per org_id, toDate(window_end) UTC, user_id, valid: count(), count(coherence), sum(coherence), countIf(coherence >= 0.5)) serves organisation analytics, read without FINAL.';
