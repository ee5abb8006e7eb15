-- 0001_heart: the heart slice (readings, coherence windows, sessions, devices, session
-- events, the per-user daily coherence rollup).
--
-- Applied by store/migrate.ts: `{{database}}` is replaced by the store's database name, the
-- file is split into statements on `;` outside strings and comments, and every statement is
-- idempotent (IF NOT EXISTS) so that a half-applied run can simply be run again.
-- Never edit this file once released: migrate.ts refuses to start when an applied file's
-- checksum changes. Add 0002_*.sql instead.
--
-- Conventions (the schema is a product: data scientists query it directly):
--  * column names carry their unit (`_ms`, `_bpm`, `_pct`, `_hz`, `_s`); unitless scores say
--    their range in the COMMENT;
--  * timestamps are DateTime64(3, 'UTC');
--  * every table is written at least once and possibly more (the stream workers replay after a
--    crash), so every table is a ReplacingMergeTree on its natural key: read with FINAL (or
--    argMax over the version column) to see each fact once;
--  * ORDER BY starts with (org_id, user_id, session_id, time): the API always filters by org,
--    then by user and/or session and a time range.

CREATE TABLE IF NOT EXISTS {{database}}.heart_readings
(
    event_time DateTime64(3, 'UTC') COMMENT 'When the beat ended (UTC): the reading''s recorded_at minus the RR intervals that follow this beat in the reading. For a reading with only a heart rate, the reading''s recorded_at.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) the user belongs to.',
    user_id String COMMENT 'User who wore the sensor.',
    device_id String COMMENT 'Sensor that measured the beat.',
    session_id String COMMENT 'Session the reading belongs to; empty string when the reading was taken outside any session (ClickHouse keys cannot be NULL).',
    reading_id String COMMENT 'Stable id of the source reading (sha-256 over device_id and recorded_at, hex); duplicate uploads and replays carry the same id.',
    beat_index UInt16 COMMENT 'Position of the beat within its reading, 0..n-1 (oldest first); 0 for a reading with only a heart rate.',
    rr_ms Nullable(Float32) COMMENT 'RR interval ending at this beat, milliseconds; NULL for a reading with only a heart rate.',
    hr_bpm Nullable(Float32) COMMENT 'Heart rate reported by the device with the reading, beats per minute (repeated on every beat of the reading); NULL when the device sent none.',
    device_hrv_ms Nullable(Float32) COMMENT 'HRV computed by the device (RMSSD), milliseconds, as sent with the reading; NULL when the device sent none.',
    device_coherence Nullable(Float32) COMMENT 'Coherence computed by the device, in the device''s own scale, as sent with the reading; NULL when the device sent none.',
    battery_level_pct Nullable(Float32) COMMENT 'Device battery level when the reading was sent, percent 0..100; NULL when unknown.',
    source LowCardinality(String) COMMENT 'How the reading arrived: sync (batch upload), live (streamed) or simulator.',
    received_at DateTime64(3, 'UTC') COMMENT 'When the ingest gateway accepted the reading (UTC). Also the ReplacingMergeTree version: of duplicate uploads the latest is kept.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (org_id, user_id, session_id, event_time, reading_id, beat_index)
COMMENT 'Heartbeats: one row per beat (RR interval) of every accepted heart reading, or one row per reading when it carried only a heart rate. Natural key (reading_id, beat_index); replays are collapsed by ReplacingMergeTree, so query with FINAL.';

CREATE TABLE IF NOT EXISTS {{database}}.coherence_windows
(
    session_id String COMMENT 'Session the window belongs to.',
    user_id String COMMENT 'User of the session.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    device_id String COMMENT 'Sensor whose beats were analysed.',
    window_start DateTime64(3, 'UTC') COMMENT 'Start of the 64 s analysis window (UTC, inclusive).',
    window_end DateTime64(3, 'UTC') COMMENT 'End of the analysis window (UTC, exclusive); a multiple of the 5 s step. With session_id, the natural key.',
    valid Bool COMMENT 'False when too little clean data was left after artifact cleaning; the metrics are then NULL.',
    coherence Nullable(Float64) COMMENT 'Coherence score 0..1 = coherence_ratio / (1 + coherence_ratio): the share of total HRV power in the peak band. NULL when not valid.',
    coherence_ratio Nullable(Float64) COMMENT 'McCraty coherence ratio, unitless >= 0: peak-band power / (total power - peak-band power). NULL when not valid.',
    peak_frequency_hz Nullable(Float64) COMMENT 'Frequency of the highest HRV spectral peak in 0.04..0.26 Hz, hertz. NULL when not valid.',
    breathing_rate_bpm Nullable(Float64) COMMENT 'Breathing rate estimated from the peak, breaths per minute (peak_frequency_hz x 60). NULL when not valid.',
    mean_hr_bpm Nullable(Float64) COMMENT 'Mean heart rate over the window, beats per minute. NULL when not valid.',
    rmssd_ms Nullable(Float64) COMMENT 'Root mean square of successive RR differences, milliseconds. NULL when not valid.',
    sdnn_ms Nullable(Float64) COMMENT 'Standard deviation of the NN intervals, milliseconds. NULL when not valid.',
    pnn50_pct Nullable(Float64) COMMENT 'Share of successive NN differences above 50 ms, percent 0..100. NULL when not valid.',
    beat_count UInt32 COMMENT 'Beats in the window before artifact cleaning.',
    artifact_ratio Float64 COMMENT 'Share of the window''s beats that were removed or corrected, 0..1.',
    late_beat_count UInt32 COMMENT 'Beats of this session that arrived after their window had closed, cumulative since the worker took the session.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the worker computed the window (UTC). Also the ReplacingMergeTree version.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_end)
ORDER BY (org_id, user_id, session_id, window_end)
COMMENT 'HRV coherence of a session over a sliding 64 s window, one row every 5 s of event time (fields of the CoherenceWindow Avro record). Natural key (session_id, window_end); query with FINAL. Feeds user_daily_coherence through user_daily_coherence_mv, which counts every inserted row: the stream worker never inserts a window twice (it keeps the last window_end per session in its state), so do not re-insert windows by hand.';

CREATE TABLE IF NOT EXISTS {{database}}.sessions
(
    session_id String COMMENT 'Session id.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User who runs the session.',
    device_id String COMMENT 'Sensor used in the session; empty string when not yet known.',
    kind LowCardinality(String) COMMENT 'What the session is, e.g. coherence (a breathing / HRV coherence practice).',
    title String COMMENT 'Title given by the user; may be empty.',
    status LowCardinality(String) COMMENT 'active (running) or ended.',
    started_at DateTime64(3, 'UTC') COMMENT 'When the session started (UTC).',
    ended_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When the session ended (UTC); NULL while active.',
    coherence_threshold Float32 DEFAULT 0.5 COMMENT 'Coherence score 0..1 the user aims to hold; a coherence_threshold_reached event fires when it is held for threshold_duration_s.',
    threshold_duration_s UInt32 DEFAULT 30 COMMENT 'How long the coherence score must stay at or above coherence_threshold, seconds.',
    created_at DateTime64(3, 'UTC') COMMENT 'When the session record was created (UTC).',
    updated_at DateTime64(3, 'UTC') COMMENT 'When this version of the session record was written (UTC); the ReplacingMergeTree version: the latest version wins.',
    metadata_json String DEFAULT '{}' COMMENT 'Free-form client metadata, a JSON object.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (org_id, user_id, session_id)
COMMENT 'Sessions, one row per version: every change (start, end, settings) inserts the full record with a newer updated_at. Query with FINAL (or argMax(col, updated_at)) to get the current state.';

CREATE TABLE IF NOT EXISTS {{database}}.devices
(
    device_id String COMMENT 'Sensor id as registered.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) that owns the device.',
    user_id String COMMENT 'User the device is currently assigned to; empty string when unassigned.',
    name String COMMENT 'Name given by the user; may be empty.',
    model String COMMENT 'Device model as reported, e.g. Polar H10; may be empty.',
    firmware String COMMENT 'Firmware version as reported; may be empty.',
    registered_at DateTime64(3, 'UTC') COMMENT 'When the device was first registered (UTC).',
    updated_at DateTime64(3, 'UTC') COMMENT 'When this version of the device record was written (UTC); the ReplacingMergeTree version: the latest version wins.',
    last_seen_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When a reading from the device was last accepted (UTC); NULL when never.',
    battery_level_pct Nullable(Float32) COMMENT 'Battery level last reported, percent 0..100; NULL when unknown.'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (org_id, device_id)
COMMENT 'Registered heart sensors, one row per version (every change inserts the full record with a newer updated_at). Query with FINAL (or argMax(col, updated_at)) to get the current state.';

CREATE TABLE IF NOT EXISTS {{database}}.session_events
(
    event_id String COMMENT 'Deterministic event id, so that a replayed event is recognised as the same; the natural key.',
    session_id String COMMENT 'Session the event happened in.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    type LowCardinality(String) COMMENT 'What happened, e.g. coherence_threshold_reached, session_started, session_ended.',
    occurred_at DateTime64(3, 'UTC') COMMENT 'When it happened, in event time (UTC).',
    payload_json String DEFAULT '{}' COMMENT 'Event-specific fields, a JSON object.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (org_id, user_id, session_id, occurred_at, event_id)
COMMENT 'Things that happened in sessions (SessionEvent Avro records). Natural key event_id; replays are collapsed, so query with FINAL.';

-- Daily rollup. The threshold for "high coherence" is the score 0.5 (the sessions'
-- default coherence_threshold), and each window stands for the 5 s step that produced it,
-- so high_coherence_s = 5 x (valid windows with coherence >= 0.5). Days are UTC days of
-- window_end. Example (one row per user and day):
--
--   SELECT org_id, user_id, day,
--          avgMerge(avg_coherence_state)        AS avg_coherence,
--          maxMerge(max_coherence_state)        AS max_coherence,
--          countMerge(window_count_state)       AS window_count,
--          sumMerge(high_coherence_s_state)     AS high_coherence_s,
--          avgMerge(avg_coherence_ratio_state)  AS avg_coherence_ratio,
--          avgMerge(avg_mean_hr_bpm_state)      AS avg_mean_hr_bpm,
--          avgMerge(avg_rmssd_ms_state)         AS avg_rmssd_ms
--   FROM attune.user_daily_coherence
--   WHERE org_id = {org:String} AND user_id = {user:String} AND day BETWEEN {from:Date} AND {to:Date}
--   GROUP BY org_id, user_id, day
--   ORDER BY day;
--
-- (finalizeAggregation(state) reads one row's state without merging, which is only right
-- after OPTIMIZE ... FINAL; prefer -Merge with GROUP BY.)
CREATE TABLE IF NOT EXISTS {{database}}.user_daily_coherence
(
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User.',
    day Date COMMENT 'UTC day of the windows'' window_end.',
    avg_coherence_state AggregateFunction(avg, Float64) COMMENT 'State of the mean coherence score (0..1) over the day''s valid windows; read with avgMerge.',
    max_coherence_state AggregateFunction(max, Float64) COMMENT 'State of the highest coherence score (0..1) of the day; read with maxMerge.',
    window_count_state AggregateFunction(count) COMMENT 'State of the number of valid 5 s windows of the day; read with countMerge.',
    high_coherence_s_state AggregateFunction(sum, UInt32) COMMENT 'State of the seconds spent in high coherence: 5 s per valid window with coherence >= 0.5; read with sumMerge.',
    avg_coherence_ratio_state AggregateFunction(avg, Float64) COMMENT 'State of the mean coherence ratio (unitless) over the day''s valid windows; read with avgMerge.',
    avg_mean_hr_bpm_state AggregateFunction(avg, Nullable(Float64)) COMMENT 'State of the mean of the windows'' mean heart rate, beats per minute; read with avgMerge.',
    avg_rmssd_ms_state AggregateFunction(avg, Nullable(Float64)) COMMENT 'State of the mean of the windows'' RMSSD, milliseconds; read with avgMerge.'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (org_id, user_id, day)
COMMENT 'Per-user daily coherence rollup of valid coherence_windows, filled by user_daily_coherence_mv. Read with -Merge functions and GROUP BY org_id, user_id, day (see the comment in schemas/clickhouse/0001_heart.sql). Every window inserted into coherence_windows is counted, so it relies on the stream worker never inserting a window twice.';

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.user_daily_coherence_mv
TO {{database}}.user_daily_coherence
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
FROM {{database}}.coherence_windows
WHERE valid AND coherence IS NOT NULL AND coherence_ratio IS NOT NULL
GROUP BY org_id, user_id, day
COMMENT 'Feeds user_daily_coherence from every block inserted into coherence_windows (valid windows only; high coherence = score >= 0.5, 5 s per window).';
