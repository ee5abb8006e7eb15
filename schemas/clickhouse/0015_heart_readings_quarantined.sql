-- 0015_heart_readings_quarantined: the readings the clock guard kept out of heart_readings.
--
-- The readings sink and the coherence worker apply the same clock guard
-- (pipelines/coherence/clock-guard.ts): a reading that starts more than the allowed lateness
-- past its session's newest beat is held, and quarantined when the session's next readings do
-- not confirm the jump (or the session ends first). The worker dead-letters it (future_beat);
-- the sink stores its raw beats nowhere. Since this version the sink writes one row per
-- quarantined reading here, before any beat that came after it in its partition is stored, so:
--  * a data scientist can see which readings a session lost and why, with the record they came
--    from;
--  * a sink restarted from an older commit (after a crash, a rebalance, or while another session
--    of its partition held a reading) quarantines again exactly the records listed here, and
--    judges the others from the session's newest stored beat. Before this version it judged
--    every replayed reading from that beat, up to a commit's worth of readings ahead of where
--    the replay starts, and a reading the first run had quarantined could be stored (README,
--    Known limitations until 2026-12-05; pipelines/readings-sink.ts says what is checked).
--
-- Keyed by session and source record, not by user and time as the other heart tables: the sink
-- looks a session's rows up by record after a restart, and a session has few rows here.
--
-- Same conventions as 0001_heart.sql; every statement is idempotent.

CREATE TABLE IF NOT EXISTS {{database}}.heart_readings_quarantined
(
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) the user belongs to.',
    user_id String COMMENT 'User who wore the sensor.',
    device_id String COMMENT 'Sensor that sent the reading.',
    session_id String COMMENT 'Session the reading claimed to belong to.',
    reading_id String COMMENT 'Stable id of the reading (as heart_readings.reading_id).',
    recorded_at DateTime64(3, 'UTC') COMMENT 'The reading''s recorded_at as the device dated it: when its last beat ended (UTC).',
    received_at DateTime64(3, 'UTC') COMMENT 'When the ingest gateway accepted the reading (UTC).',
    rr_intervals_ms Array(Float32) COMMENT 'The reading''s RR intervals, milliseconds, oldest first: the beats not stored in heart_readings.',
    hr_bpm Nullable(Float32) COMMENT 'Heart rate the device sent with the reading, beats per minute; NULL when none.',
    source LowCardinality(String) COMMENT 'How the reading arrived: sync, live or simulator.',
    reason LowCardinality(String) COMMENT 'Why it was kept out: future_beat (it started more than the allowed lateness past the session''s newest beat, and the readings after it did not confirm the jump, or the session ended first). The coherence worker dead-letters the same reading with the same code.',
    session_clock_at Nullable(DateTime64(3, 'UTC')) COMMENT 'The session''s newest beat let through when the reading was quarantined (the clock guard''s clock, UTC); NULL when the session had none.',
    source_topic LowCardinality(String) COMMENT 'Kafka topic the reading was read from.',
    source_partition UInt32 COMMENT 'Partition of source_topic.',
    source_offset UInt64 COMMENT 'Offset of the record holding the reading.',
    source_index UInt32 COMMENT 'Position of the reading in its record: its index in a HeartReadingBatch record, 0 for a record holding one reading.'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (org_id, session_id, source_topic, source_partition, source_offset, source_index)
COMMENT 'Heart readings the clock guard quarantined (future_beat), one row per reading; their beats are not in heart_readings. Natural key (source_topic, source_partition, source_offset, source_index); a replay writes the same rows again, so query with FINAL.';
