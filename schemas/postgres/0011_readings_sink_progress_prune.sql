-- readings_sink_progress (0010) is pruned below a commit the broker acknowledged, not to the
-- newest 100 rows per partition: more than 100 commits lost after the broker's one (a process
-- that kept inserting while its commits failed) pruned the row its partition's next owner reads.
COMMENT ON TABLE readings_sink_progress IS 'Per readings-sink commit: the partition''s event time (newest beat let through) before the record at commit_offset. Pipeline state, not an entity; rows below a commit the broker acknowledged are pruned (no replay starts before it).';
