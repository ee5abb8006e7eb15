-- The readings sink's partition event time at each offset it commits (pipelines/readings-sink.ts).
-- The sink lets a session go (and quarantines what its clock guard holds) when the newest beat of
-- its partition is sessionIdleEndMs ahead of the session's clock. That newest beat is state a
-- restarted sink cannot rebuild from the records it reads again: the records that set it may lie
-- before the commit. So before each commit the sink writes here the partition's event time the
-- replay from that offset must start with, and a new owner of the partition reads it back (the
-- newest row at or before the offset it is given). Several rows per partition are kept, because
-- the commit the broker holds may be older than the newest row (a commit lost in a crash).
CREATE TABLE readings_sink_progress (
  group_id text NOT NULL,
  topic text NOT NULL,
  partition integer NOT NULL,
  commit_offset bigint NOT NULL,
  -- ms since the epoch; NULL: no beat let through in the partition yet
  partition_time_ms double precision,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic, partition, commit_offset)
);
COMMENT ON TABLE readings_sink_progress IS 'Per readings-sink commit: the partition''s event time (newest beat let through) before the record at commit_offset. Pipeline state, not an entity; the newest 100 rows per partition are kept.';
