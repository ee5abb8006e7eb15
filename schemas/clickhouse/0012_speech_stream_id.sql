-- 0012_speech_stream_id: which stream (one upload, or one live connection) wrote each speech
-- row, so that a retry leaves only its own results.
--
-- A speech session that failed (its analysis failed, its ingest process died, an upload cut
-- short) may be tried again with new audio (store/postgres/speech-sessions-repo.ts: startAudio
-- from 'failed'). The failed run may have written rows already: segments, words, pauses,
-- fillers and frames of the audio it got through. The retry's rows replace those with the same
-- key, but its keys are those of different audio (a pause at another start_ms, fewer segments),
-- so the earlier run's other rows stayed, and a completed session showed pauses, fillers and
-- words of audio that is not its own (0002 asked for a delete first; nothing did it).
--
-- Now every speech row names its stream, and the speech results sink, when a stream completes
-- and once its rows are stored, deletes the session's rows of every other stream (lightweight
-- DELETE, pipelines/sinks/speech-results-sink.ts) before it marks the session completed. The
-- final state is a function of the input: a replay of the results topic inserts the failed
-- run's rows again and then the completion deletes them again, in the same order (one session's
-- records are on one partition). Rows written before this migration have stream_id '' and are
-- never deleted this way (the stream that wrote them is unknown: it may be the one completing).
--
-- speech_terms is written by a materialized view from speech_segments: a new view carries the
-- stream id, created before the old one is dropped so that no insert in between goes unindexed
-- (one that both wrote has the same key twice; either copy is the same words).

ALTER TABLE {{database}}.speech_segments
    ADD COLUMN IF NOT EXISTS stream_id String DEFAULT '' COMMENT 'The stream whose analysis wrote the row: the upload id of an upload, or the live stream''s id (SpeechResult.stream_id). When a stream of the session completes, the rows of its other streams are deleted (a failed run, then a retry: 0012). Empty on rows written before 0012.' AFTER session_id;

ALTER TABLE {{database}}.speech_words
    ADD COLUMN IF NOT EXISTS stream_id String DEFAULT '' COMMENT 'The stream whose analysis wrote the row: the upload id of an upload, or the live stream''s id (SpeechResult.stream_id). When a stream of the session completes, the rows of its other streams are deleted (a failed run, then a retry: 0012). Empty on rows written before 0012.' AFTER session_id;

ALTER TABLE {{database}}.speech_frames
    ADD COLUMN IF NOT EXISTS stream_id String DEFAULT '' COMMENT 'The stream whose analysis wrote the row: the upload id of an upload, or the live stream''s id (SpeechResult.stream_id). When a stream of the session completes, the rows of its other streams are deleted (a failed run, then a retry: 0012). Empty on rows written before 0012.' AFTER session_id;

ALTER TABLE {{database}}.speech_pauses
    ADD COLUMN IF NOT EXISTS stream_id String DEFAULT '' COMMENT 'The stream whose analysis wrote the row: the upload id of an upload, or the live stream''s id (SpeechResult.stream_id). When a stream of the session completes, the rows of its other streams are deleted (a failed run, then a retry: 0012). Empty on rows written before 0012.' AFTER session_id;

ALTER TABLE {{database}}.speech_scores
    ADD COLUMN IF NOT EXISTS stream_id String DEFAULT '' COMMENT 'The stream whose analysis wrote the row: the upload id of an upload, or the live stream''s id (SpeechResult.stream_id). When a stream of the session completes, the rows of its other streams are deleted (a failed run, then a retry: 0012). Empty on rows written before 0012.' AFTER session_id;

ALTER TABLE {{database}}.speech_fillers
    ADD COLUMN IF NOT EXISTS stream_id String DEFAULT '' COMMENT 'The stream whose analysis wrote the row: the upload id of an upload, or the live stream''s id (SpeechResult.stream_id). When a stream of the session completes, the rows of its other streams are deleted (a failed run, then a retry: 0012). Empty on rows written before 0012.' AFTER session_id;

ALTER TABLE {{database}}.speech_summaries
    ADD COLUMN IF NOT EXISTS stream_id String DEFAULT '' COMMENT 'The stream whose analysis wrote the row: the upload id of an upload, or the live stream''s id (SpeechResult.stream_id). When a stream of the session completes, the rows of its other streams are deleted (a failed run, then a retry: 0012). Empty on rows written before 0012.' AFTER session_id;

ALTER TABLE {{database}}.speech_terms
    ADD COLUMN IF NOT EXISTS stream_id String DEFAULT '' COMMENT 'The stream whose analysis wrote the row: the upload id of an upload, or the live stream''s id (SpeechResult.stream_id). When a stream of the session completes, the rows of its other streams are deleted (a failed run, then a retry: 0012). Empty on rows written before 0012.' AFTER session_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.speech_terms_stream_mv TO {{database}}.speech_terms
AS SELECT org_id, user_id, w.1 AS term, session_id, stream_id, segment_index, w.2 AS word_index, audio_started_at,
    if(w.1 = '', seg_start_ms, 0) AS start_ms, if(w.1 = '', seg_end_ms, 0) AS end_ms, if(w.1 = '', seg_text, '') AS text, computed_at
FROM
(
    -- Renamed so that the output columns start_ms, end_ms and text do not shadow them.
    SELECT org_id, user_id, session_id, stream_id, segment_index, audio_started_at, computed_at, is_final,
        start_ms AS seg_start_ms, end_ms AS seg_end_ms, text AS seg_text
    FROM {{database}}.speech_segments
)
ARRAY JOIN arrayConcat(
    [('', toUInt32(0))],
    arrayFilter(x -> x.1 != '', arrayZip(splitByChar(' ', seg_text), arrayMap(i -> toUInt32(i - 1), arrayEnumerate(splitByChar(' ', seg_text)))))
) AS w
WHERE is_final
COMMENT 'Writes speech_terms from every insert into speech_segments: for each final segment, its row (term empty) and one row per word, with the segment''s stream_id (0012; 0011''s speech_terms_mv without it is dropped). Columns: those of speech_terms.';

DROP VIEW IF EXISTS {{database}}.speech_terms_mv;
