-- 0014_session_initial_settings: the threshold settings a session was created with.
-- PATCH /v1/sessions/{id} may change coherence_threshold and threshold_duration_s while the
-- session streams; the change reaches the coherence worker as a settings marker in the
-- session's readings partition, and the windows closed after it are judged by it. A worker that
-- first sees the session (no checkpoint of it) must start from the settings the session had
-- before any marker, not from the row's current ones: otherwise a worker behind a PATCH judged
-- the windows before the marker by the new settings and one that kept up by the old (the stored
-- events depended on consumer lag). NULL for sessions created before this migration and for
-- mesh participations: the current settings are read then, as before.
ALTER TABLE sessions ADD COLUMN initial_coherence_threshold double precision CHECK (initial_coherence_threshold BETWEEN 0 AND 1);
ALTER TABLE sessions ADD COLUMN initial_threshold_duration_s integer CHECK (initial_threshold_duration_s > 0);
COMMENT ON COLUMN sessions.initial_coherence_threshold IS 'coherence_threshold as the session was created (version 1); NULL before migration 0014 and for mesh participations.';
COMMENT ON COLUMN sessions.initial_threshold_duration_s IS 'threshold_duration_s as the session was created (version 1); NULL before migration 0014 and for mesh participations.';
