-- 0004_coherence_window_trust: why a coherence window is or is not trusted (issue 7, item 4).
--
-- Windows with gaps used to be valid: a window missing up to 30 % of its span, the windows
-- next to a 20 s dropout (coherence ratio 45-87 % off), and the first windows of every
-- session, which hold only part of 64 s of data. Since this version the worker calls a window
-- valid only when its data reaches within 4 s of both edges, at least 30 clean beats cover at
-- least 90 % of it, at most 25 % of its beats were artifacts, and no gap inside it is longer
-- than a quarter breath at its peak frequency (nor 5 s); see pipelines/hrv/window-metrics.ts.
-- `valid` therefore means "trusted": user_daily_coherence_mv (WHERE valid) and the API's
-- session averages count exactly those windows, and the view needs no change. Rows written
-- before this version keep the verdict of the rules of their time (partial = false, the
-- other new columns NULL).
--
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.coherence_windows
    ADD COLUMN IF NOT EXISTS invalid_reason LowCardinality(Nullable(String)) COMMENT 'Why the window is not valid, the first rule it fails: partial (its data does not reach within 4 s of both edges), too_few_beats (under 30 clean beats), low_coverage (clean RR intervals cover under 90 % of it), too_many_artifacts (over 25 % of its beats removed or corrected) or long_gap (a gap inside it longer than a quarter breath at its peak frequency, or than 5 s). NULL when valid, and in rows written before migration 0004.' AFTER valid,
    ADD COLUMN IF NOT EXISTS partial Bool DEFAULT false COMMENT 'True when the window''s data does not reach one of its edges (more than 4 s at its start or end without beats): the first windows of a session, the last ones of a session that ended, the edges of a dropout. A partial window is never valid. False in rows written before migration 0004.' AFTER invalid_reason,
    ADD COLUMN IF NOT EXISTS coverage Nullable(Float64) COMMENT 'Share of the window, 0..1, covered by clean RR intervals (each covers [beat time - RR, beat time]). Reported for invalid windows too. NULL in rows written before migration 0004.' AFTER partial,
    ADD COLUMN IF NOT EXISTS longest_gap_ms Nullable(Float64) COMMENT 'Longest stretch of the window covered by no clean RR interval, milliseconds, the stretches at its start and end included. Reported for invalid windows too. NULL in rows written before migration 0004.' AFTER coverage;

ALTER TABLE {{database}}.coherence_windows
    COMMENT COLUMN valid 'True when the window can be trusted and is counted in every average (user_daily_coherence, the API''s session metrics): its data reaches within 4 s of both edges, at least 30 clean beats cover at least 90 % of it, at most 25 % of its beats were artifacts, and no gap inside it is longer than a quarter breath at its peak frequency (nor 5 s). When false, invalid_reason says why and the metrics are NULL. (Rows written before migration 0004 were judged by the older rules: 70 % coverage, no edge or gap rule.)';

ALTER TABLE {{database}}.user_daily_coherence
    MODIFY COMMENT 'Per-user daily coherence rollup of the valid (trusted) coherence_windows, filled by user_daily_coherence_mv: partial windows, windows with long gaps or low coverage are not counted (see schemas/clickhouse/0004_coherence_window_trust.sql). Read with -Merge functions and GROUP BY org_id, user_id, day (see the comment in schemas/clickhouse/0001_heart.sql). Every window inserted into coherence_windows is counted, so it relies on the stream worker never inserting a window twice.';
