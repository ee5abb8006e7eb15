-- 0007_group_windows: group (mesh) session facts (issue 11): one row per group and 5 s window
-- of event time, one row per participant and window, and a daily rollup per group.
--
-- The group worker (pipelines/group/) writes them; the API reads them (GET /v1/mesh/sessions
-- and /{id}: average_coherence, the state and the timeline). group_id is the mesh session id
-- of PostgreSQL's mesh_sessions (schemas/postgres/0003_mesh.sql), participant_id the id of
-- its mesh_participants row.
--
-- Both tables are ReplacingMergeTree on computed_at like coherence_windows: a window written
-- again (a replayed input, a worker restarted after a crash) replaces the earlier copy under
-- FINAL, so replaying a group's input gives the same stored windows. The daily rollup is, like
-- user_daily_coherence since 0006, a view over group_windows FINAL rather than a materialized
-- view fed by inserts: a materialized view counts every inserted block, so a replay or a
-- kill -9 between the two tables' parts (0006 saw it happen) would leave it wrong for good.
--
-- Same conventions as 0001_heart.sql: every statement idempotent (IF NOT EXISTS), timestamps
-- DateTime64(3, 'UTC'), org ids LowCardinality, every column commented with its unit.

CREATE TABLE IF NOT EXISTS {{database}}.group_windows
(
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the group session.',
    group_id String COMMENT 'Mesh session id (PostgreSQL mesh_sessions.mesh_id).',
    window_start DateTime64(3, 'UTC') COMMENT 'Start of the window the group values are computed over (UTC, inclusive).',
    window_end DateTime64(3, 'UTC') COMMENT 'End of the window (UTC, exclusive); a multiple of the 5 s step. With group_id, the natural key.',
    participant_count UInt32 COMMENT 'Participants counted in this window: present, active (data within the last 15 s of event time) and with a valid coherence window.',
    present_count UInt32 COMMENT 'Participants present in the session at window_end, counted or not.',
    coherence Nullable(Float64) COMMENT 'Group coherence, score 0..1: the mean of the counted participants'' coherence scores weighted by signal quality (their contribution_weight). NULL when nobody is counted.',
    sync_r Nullable(Float64) COMMENT 'Kuramoto order parameter R, 0..1, of the participants'' instantaneous HRV phases (0.04-0.26 Hz band), averaged over the window. NULL with fewer than 2 participants.',
    plv Nullable(Float64) COMMENT 'Mean pairwise phase-locking value, 0..1, over the window. NULL with fewer than 2 participants.',
    sync_z Nullable(Float64) COMMENT 'R against its surrogate distribution (circular time shifts of each participant''s series), z-score (unitless). NULL with fewer than 2 participants.',
    sync_p Nullable(Float64) COMMENT 'One-sided p-value, 0..1, of R against the surrogates ((1 + surrogates with R >= observed) / (1 + surrogate_count)). NULL with fewer than 2 participants.',
    surrogate_count UInt32 COMMENT 'Surrogates R was compared with (at least 100 when sync_p is not NULL).',
    breathing_sync Nullable(Float64) COMMENT 'Group breathing synchrony with the pacer, score 0..1 (the coherence platform''s breathing_sync_score, mean over counted participants). NULL when no breathing rate is known.',
    xcorr_max Nullable(Float64) COMMENT 'Mean over participant pairs of the peak windowed cross-correlation of HR, -1..1 (groups of at most 50 or on request). NULL when not computed.',
    xcorr_lag_s Nullable(Float64) COMMENT 'Mean absolute lag of that peak, seconds. NULL when not computed.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the worker computed the window (UTC). Also the ReplacingMergeTree version.'
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY (org_id, group_id, window_end)
COMMENT 'Group coherence and physiological synchrony of a mesh session, one row per 5 s window of event time. Natural key (group_id, window_end); query with FINAL. Feeds group_daily_coherence (a view over FINAL).';

CREATE TABLE IF NOT EXISTS {{database}}.group_participant_windows
(
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the group session.',
    group_id String COMMENT 'Mesh session id (PostgreSQL mesh_sessions.mesh_id).',
    participant_id String COMMENT 'Participant id (PostgreSQL mesh_participants.participant_id).',
    user_id String COMMENT 'User of the participant.',
    window_end DateTime64(3, 'UTC') COMMENT 'End of the group window (UTC, exclusive). With group_id and participant_id, the natural key.',
    counted Bool COMMENT 'Whether the participant entered the group values of this window (active and with a valid coherence window).',
    coherence Nullable(Float64) COMMENT 'The participant''s coherence score 0..1 in this window. NULL when they have no valid window.',
    contribution_weight Float64 COMMENT 'Weight of the participant in the group coherence, 0..1 (the weights of one window sum to 1; 0 when not counted). The API''s your_contribution_weight.',
    phase_locking Nullable(Float64) COMMENT 'Phase-locking value of the participant''s HRV phase to the group''s mean phase over the window, 0..1. NULL when not counted or alone.',
    breathing_rate_bpm Nullable(Float64) COMMENT 'The participant''s breathing rate, breaths per minute. NULL when not estimated.',
    breathing_sync Nullable(Float64) COMMENT 'Synchrony of the participant''s breathing with the pacer, score 0..1. NULL when not estimated.',
    artifact_ratio Nullable(Float64) COMMENT 'Share of the participant''s beats removed or corrected in the window, 0..1 (a weight input). NULL without data.',
    coverage Nullable(Float64) COMMENT 'Share of the window covered by clean beats, 0..1 (a weight input). NULL without data.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the worker computed the window (UTC). Also the ReplacingMergeTree version.'
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY (org_id, group_id, window_end, participant_id)
COMMENT 'Each participant''s part in a group window of a mesh session: contribution weight and phase-locking to the group. Natural key (group_id, window_end, participant_id); query with FINAL.';

CREATE VIEW IF NOT EXISTS {{database}}.group_daily_coherence
AS SELECT
    org_id,
    group_id,
    toDate(window_end, 'UTC') AS day,
    count() AS window_count,
    avg(assumeNotNull(coherence)) AS avg_coherence,
    max(assumeNotNull(coherence)) AS max_coherence,
    toUInt32(countIf(assumeNotNull(coherence) >= 0.5) * 5) AS high_coherence_s,
    avgIf(assumeNotNull(sync_r), sync_r IS NOT NULL) AS avg_sync_r,
    max(participant_count) AS max_participant_count
FROM {{database}}.group_windows FINAL
WHERE coherence IS NOT NULL
GROUP BY org_id, group_id, day
COMMENT 'Per-group daily rollup of group_windows windows with a group coherence, computed from group_windows FINAL when read (0007), so a window written twice counts once. Columns: org_id, group_id, day (UTC day of window_end), window_count (5 s windows), avg_coherence and max_coherence (score 0..1), high_coherence_s (seconds, 5 per window with coherence >= 0.5), avg_sync_r (Kuramoto R 0..1, NaN when no window had one), max_participant_count (participants).';
