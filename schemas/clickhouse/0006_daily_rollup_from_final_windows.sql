-- 0006_daily_rollup_from_final_windows: the per-user daily rollup is read from the windows
-- table under FINAL instead of being filled by a materialized view (issue 10, fault tests).
--
-- user_daily_coherence_mv added every block inserted into coherence_windows to an
-- AggregatingMergeTree, so the rollup was right only if every window was inserted exactly
-- once AND both tables took each insert. A `kill -9` of Attune during an insert breaks the
-- second: ClickHouse commits the block to coherence_windows and to the view's target table as
-- two parts, not atomically, and the fault suite (test/faults.kafka.test.ts) saw a restart
-- after a kill leave 11 windows of a user in coherence_windows but not in the rollup (97
-- instead of 108 windows that day). The restarted worker rightly does not insert them again,
-- so nothing repaired it. ReplacingMergeTree keeps coherence_windows exact whatever was
-- inserted twice or cut short; the rollup now derives from it, with the same columns (states
-- read with -Merge and GROUP BY org_id, user_id, day), so readers do not change.
--
-- Cost: a history query aggregates the user's windows of the asked days (17,280 a day at most,
-- a few hundred for a practice session) instead of one row a day; the ORDER BY of
-- coherence_windows (org_id, user_id, session_id, window_end) serves the org and user filter.
--
-- Same conventions as 0001_heart.sql. Every statement is idempotent: a run that died half-way
-- drops and recreates the view again. The dropped table held only what the windows hold.

DROP VIEW IF EXISTS {{database}}.user_daily_coherence_mv;

DROP TABLE IF EXISTS {{database}}.user_daily_coherence;

CREATE VIEW IF NOT EXISTS {{database}}.user_daily_coherence
AS SELECT
    org_id,
    user_id,
    toDate(window_end, 'UTC') AS day,
    avgState(assumeNotNull(coherence)) AS avg_coherence_state,
    maxState(assumeNotNull(coherence)) AS max_coherence_state,
    countState() AS window_count_state,
    sumState(toUInt32(if(assumeNotNull(coherence) >= 0.5, 5, 0))) AS high_coherence_s_state,
    avgState(assumeNotNull(coherence_ratio)) AS avg_coherence_ratio_state,
    avgState(mean_hr_bpm) AS avg_mean_hr_bpm_state,
    avgState(rmssd_ms) AS avg_rmssd_ms_state
FROM {{database}}.coherence_windows FINAL
WHERE valid AND coherence IS NOT NULL AND coherence_ratio IS NOT NULL
GROUP BY org_id, user_id, day
COMMENT 'Per-user daily coherence rollup of the valid (trusted) coherence_windows, computed from coherence_windows FINAL when read, so a window inserted twice or an insert cut short by a crash changes nothing (0006). Columns: org_id, user_id, day (UTC day of window_end), and aggregate states read with -Merge and GROUP BY org_id, user_id, day: avg_coherence_state (avgMerge: mean score 0..1), max_coherence_state (maxMerge), window_count_state (countMerge: valid 5 s windows), high_coherence_s_state (sumMerge: 5 s per window with score >= 0.5), avg_coherence_ratio_state, avg_mean_hr_bpm_state (bpm), avg_rmssd_ms_state (ms), each avgMerge.';
