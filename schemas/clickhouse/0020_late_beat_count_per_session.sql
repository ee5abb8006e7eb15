-- 0020_late_beat_count_per_session: coherence_windows.late_beat_count counts the session's late
-- beats from its first reading on, whichever worker computed the window. Before, it counted
-- from when the worker took the session, so a restart or rebalance started it again and it was
-- the one stored figure a replay could change; since this version the coherence worker keeps
-- the count in its restart checkpoints with each guard anchor (pipelines/coherence/checkpoints.ts),
-- and a replay continues it. Rows written before keep the old reading. The data is unchanged;
-- only the comment in system.columns is. Same conventions as 0001_heart.sql; the statement is
-- idempotent.

ALTER TABLE {{database}}.coherence_windows
    COMMENT COLUMN late_beat_count 'Beats of this session that arrived after their window had closed, from the first reading of the session to the close of this window, in the order the readings topic holds them (since 0020 a restart or rebalance continues the count; before, it started again). A re-sent copy of a beat the worker still holds (the open windows and their 60 s context) is not counted; a copy of an older beat cannot be told from a late one and is.';
