-- 0022_group_events: what happened in group (mesh) sessions, queryable beside their windows.
-- The mesh events topic (attune.mesh.events.v1, MeshEvent.avsc) carried them to the live
-- streams and the webhooks only, so a data scientist could count the group windows but not
-- when the collective threshold was reached (manifestation_event), nor who joined and left
-- when (a data-scientist walkthrough, 2026-12-06). The group events sink
-- (pipelines/sinks/result-sinks.ts, GroupEventsSink) writes every mesh event but the
-- group_coherence ones, whose figures group_windows holds already (and whose provisional copies
-- are never stored).
--
-- ReplacingMergeTree on event_id like session_events: an event read again (a replay, a
-- restart) is the same row under FINAL. Same conventions as 0001_heart.sql: every statement
-- idempotent, timestamps DateTime64(3, 'UTC'), org ids LowCardinality, every column commented.
-- Events published before this version are not in the table (the topic keeps what Kafka's
-- retention keeps; the sink's new group starts from the topic's beginning).

CREATE TABLE IF NOT EXISTS {{database}}.group_events
(
    event_id String COMMENT 'Deterministic event id (session, type and what it is about), so a replayed event is the same row; the natural key.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the group session.',
    group_id String COMMENT 'Mesh session id (PostgreSQL mesh_sessions.mesh_id), as group_windows.group_id.',
    type LowCardinality(String) COMMENT 'participant_joined, participant_left, session_ended or manifestation_event (the collective threshold: group coherence at or above the session''s coherence_threshold for threshold_duration_s).',
    occurred_at DateTime64(3, 'UTC') COMMENT 'When it happened (UTC): a join, leave or end when the API took it; a manifestation_event at the end of the group window that completed the streak (event time).',
    payload_json String DEFAULT '{}' COMMENT 'The event''s fields, a JSON object, as the live stream sends them: participant_joined / participant_left {participant_id, position, user_id, display_name, anonymous, participant_count} (user_id and display_name null when anonymous); session_ended {ended_at, participant_count}; manifestation_event {level, strength, duration, threshold, threshold_duration_s, streak_start}.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the sink wrote the row (UTC).'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (org_id, group_id, occurred_at, event_id)
COMMENT 'Group (mesh) session events from attune.mesh.events.v1 but group_coherence (see group_windows): joins, leaves, ends and manifestation events. Natural key event_id; replays are collapsed, so query with FINAL.';
