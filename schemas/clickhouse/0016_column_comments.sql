-- 0016_column_comments: comments that had drifted from what the columns hold (found by reading
-- them as a data scientist would, beside the API's answers for the same sessions). The data is
-- unchanged; only the comments in system.columns are.
--  * heart_readings.reading_id: the hash covers the organisation too (schemas/records.ts
--    readingId), and is cut to 32 hex characters;
--  * sessions.kind: the API's `type` (solo, group, …), not only coherence;
--  * sessions.status: the API answers `completed` for an ended session started with one of
--    the document's protocols (api/sessions.ts), `ended` for the others;
--  * session_events.type: coherence_threshold_reached is the only type written; a session's
--    start and end are in `sessions`, not here.
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.heart_readings
    COMMENT COLUMN reading_id 'Stable id of the source reading: the first 32 hex characters of sha-256 over org_id, device_id and recorded_at (schemas/records.ts readingId); duplicate uploads and replays carry the same id.';

ALTER TABLE {{database}}.sessions
    COMMENT COLUMN kind 'What the session is: the API''s type, one of solo, group, coherence, meditation, breathing, other.';

ALTER TABLE {{database}}.sessions
    COMMENT COLUMN status 'active (running) or ended. The API answers completed for an ended session started with a protocol (the coherence platform document''s form), ended for the others.';

ALTER TABLE {{database}}.session_events
    COMMENT COLUMN type 'What happened: coherence_threshold_reached (the score held at or above the session''s coherence_threshold for threshold_duration_s; payload_json has the figures), the only type written so far. A session''s start and end are in sessions.';
