-- 0021_comments_after_ds_queries: table and column comments that said something other than
-- what the tables hold, found by loading real recordings through the API (re-sent readings, a
-- restart mid-session, a PATCH of a session's threshold, a group session, speech uploads) and
-- querying the tables with only the README and these comments, beside the API's answers. The
-- data is unchanged; only the comments in system.tables and system.columns are.
--  * sessions: not one row per version. The relay publishes a session's state when it changes,
--    so changes close together are one row (a PATCH just after the create left no row with the
--    create's settings), and merges keep the latest only. A changed threshold judges only the
--    windows closed after it reaches the worker, so the settings a past window or event was
--    judged by are not here; session_events.payload_json has them for each event;
--  * session_events.payload_json: its fields were not named anywhere a query could see;
--  * heart_readings: the version key is the ORDER BY, which holds event_time, so a reading sent
--    again under the same timestamp with other RR intervals (same reading_id) keeps the beats
--    of both uploads under FINAL (seen: 9 rows for a reading of 5 beats re-sent with 4);
--  * coherence_windows, group_windows, group_participant_windows.computed_at: the sink's clock
--    when it wrote the batch, not the worker's when it computed the window; and the windows
--    sink skips a session's window at or before the newest one stored, so a recomputed window
--    (after a restart) does not replace the stored one;
--  * speech results of a session whose settings turned fluency analysis off
--    (enableFluencyAnalysis false, PostgreSQL speech_sessions.settings): filler_count,
--    filler_rate_per_min and repetition_count are 0, no word is_filler, speech_fillers has no row,
--    and the pauses are the uncut gaps (seen on the shared MFA clip with 6 fillers: 0 fillers,
--    1 pause of 2,080 ms against 2), with nothing in ClickHouse that says fillers were not looked
--    for; with enableProsodyAnalysis false the pitch and volume figures are NULL, which the
--    comments gave only for audio with nothing voiced;
--  * heart_readings_quarantined.session_clock_at and reason: the guard's clock starts at the
--    session's start, so a reading held before any beat (seen: a session's only reading, 30 s
--    after its start, then the end) has session_clock_at = sessions.started_at, not NULL;
--  * speech_segments.is_final: no stored row is partial (partial text is only sent live);
--  * speech_words.text: apostrophes inside a word are kept (i'm, there's);
--  * speech_fillers.filler: a filler found only in the audio is named um, uh or hmm when forced
--    alignment names it, filled_pause only otherwise;
--  * speech_summaries.repetition_count: repetitions, not repeated words: "words words words
--    words" is one repetition and three is_repetition words.
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.sessions
    MODIFY COMMENT 'Sessions, the dimension to join facts with: the state of a session after a change in PostgreSQL (where sessions live), built from the compacted topic attune.session.changes.v1. Query with FINAL (or argMax(col, updated_at)) for the current state; updated_at strictly increases per session. Not a history: changes close together are published as one row (a PATCH just after the create leaves no row with the create''s settings) and merges keep only the latest, so the coherence_threshold and threshold_duration_s a past window was judged by may not be here (a change applies to the windows closed after it reaches the worker); each coherence_threshold_reached row of session_events has its own in payload_json.';

ALTER TABLE {{database}}.sessions
    COMMENT COLUMN coherence_threshold 'Coherence score 0..1 the user aims to hold, as of this row: a coherence_threshold_reached event fires when it is held for threshold_duration_s. A change (PATCH /v1/sessions/{id}) applies to the windows closed after it reaches the worker; the settings an event was judged by are in its session_events.payload_json (threshold, hold_s). The API''s time_in_high_coherence counts windows scoring at least 0.5 whatever this is.',
    COMMENT COLUMN threshold_duration_s 'How long the coherence score must stay at or above coherence_threshold, seconds, as of this row (see coherence_threshold: a change applies from the windows closed after it reaches the worker).';

ALTER TABLE {{database}}.session_events
    COMMENT COLUMN payload_json 'Event-specific fields, a JSON object. coherence_threshold_reached: threshold (the score 0..1 it was judged by), hold_s (the seconds it had to be held), coherence (the score of the window that completed the hold), streak_start (ISO-8601 UTC start of the streak''s span); threshold and hold_s are the session''s settings in force when the window closed, which sessions does not keep.';

ALTER TABLE {{database}}.heart_readings
    MODIFY COMMENT 'Heartbeats: one row per beat (RR interval) of every accepted heart reading, or one row per reading when it carried only a heart rate. Replays and duplicate uploads of the same reading are collapsed by ReplacingMergeTree on the ORDER BY (org_id, user_id, session_id, event_time, reading_id, beat_index), so query with FINAL. The same reading sent under another session (or under none, then under a session created after it) is another row: to count each beat once across sessions, add LIMIT 1 BY reading_id, beat_index (ordered by received_at DESC for the latest). A reading sent again under the same timestamp with other RR intervals (same reading_id) has other event_times, so FINAL keeps the beats of both uploads (received_at tells them apart): keep one upload per reading with (session_id, reading_id, received_at) IN (SELECT session_id, reading_id, max(received_at) ... GROUP BY session_id, reading_id).';

ALTER TABLE {{database}}.speech_segments
    COMMENT COLUMN is_final 'True on every stored row: partial text of a live segment still open is only sent to live sockets, never stored (the column was meant for stored partial results, which a final one would replace under FINAL).';

ALTER TABLE {{database}}.speech_words
    COMMENT COLUMN text 'The word as recognised, lower case, punctuation removed except apostrophes inside the word (e.g. um, hello, i''m, there''s).';

ALTER TABLE {{database}}.speech_fillers
    COMMENT COLUMN filler 'Which filler: um, uh, er, ah, hmm, like, you know, I mean, so, basically, actually, literally (from the transcript); for one found only in the audio (source acoustic), um, uh or hmm when forced alignment named it, else filled_pause (its vowel not named).';

ALTER TABLE {{database}}.speech_summaries
    COMMENT COLUMN repetition_count 'Repetitions: a word or a 2-3-word phrase said again right away, each run once however many copies ("words words words words" is one, "we should we should" one). speech_words.is_repetition marks every word of each copy after the first (three and two words there), so sum(is_repetition) is not this count. 0, not looked for, when the session''s settings had enableFluencyAnalysis false (PostgreSQL speech_sessions.settings).',
    COMMENT COLUMN filler_count 'Fillers (speech_fillers rows), from the transcript and the audio. 0, not looked for, when the session''s settings had enableFluencyAnalysis false (PostgreSQL speech_sessions.settings; the API then answers /fluency with 404): leave those sessions out of filler statistics.',
    COMMENT COLUMN filler_rate_per_min 'Fillers per minute from the start of the first speech to the end of the last, as speaking_rate_wpm (since 0019; rows written before are per minute of the whole recording: filler_count / (word_count / speaking_rate_wpm) gives the current reading for every row with words). 0, not looked for, when the session''s settings had enableFluencyAnalysis false (see filler_count).',
    COMMENT COLUMN pause_count 'Pauses (speech_pauses rows): silent gaps of at least the minimum pause (250 ms by default), fillers cut out (see speech_pauses; before migration 0013, uncut voice-activity gaps; also uncut when the session''s settings had enableFluencyAnalysis false, since no fillers were looked for).',
    COMMENT COLUMN pitch_mean_hz 'Mean fundamental frequency over all voiced 10 ms frames, hertz; NULL when nothing was voiced, or when the session''s settings had enableProsodyAnalysis false (as every pitch and volume column here).',
    COMMENT COLUMN pitch_sd_hz 'Standard deviation of the fundamental frequency, hertz; NULL when nothing was voiced or enableProsodyAnalysis was false.',
    COMMENT COLUMN pitch_min_hz 'Lowest fundamental frequency (5th percentile of voiced frames, robust to octave errors), hertz; NULL when nothing was voiced or enableProsodyAnalysis was false.',
    COMMENT COLUMN pitch_max_hz 'Highest fundamental frequency (95th percentile of voiced frames), hertz; NULL when nothing was voiced or enableProsodyAnalysis was false.',
    COMMENT COLUMN pitch_variability_st 'Standard deviation of the fundamental frequency in semitones (relative to its mean): intonation, comparable across voices; NULL when nothing was voiced or enableProsodyAnalysis was false.',
    COMMENT COLUMN monotone 'True when pitch_variability_st is below the monotone threshold (pipelines/speech/pitch-stats.ts); NULL when nothing was voiced or enableProsodyAnalysis was false.',
    COMMENT COLUMN volume_mean_dbfs 'Mean loudness of the seconds with speech, dBFS; NULL without speech or when enableProsodyAnalysis was false.',
    COMMENT COLUMN volume_sd_db 'Standard deviation of the per-second loudness over seconds with speech, dB: vocal dynamics; NULL with fewer than two such seconds or when enableProsodyAnalysis was false.';

ALTER TABLE {{database}}.speech_fillers
    MODIFY COMMENT 'Filler words and filled pauses of a speech session, one row each, from the transcript rules and the acoustic detector merged. Natural key (session_id, start_ms); query with FINAL. A session whose settings had enableFluencyAnalysis false (PostgreSQL speech_sessions.settings) has no row here because fillers were not looked for, not because it had none.';

ALTER TABLE {{database}}.speech_words
    COMMENT COLUMN is_filler 'True when the word is (part of) a filler such as um, uh or a filler use of like; context rules decide, so that like in "I like tea" is false. False on every word of a session whose settings had enableFluencyAnalysis false (not looked for).',
    COMMENT COLUMN is_repetition 'True when the word is part of a copy, after the first, of a word or phrase said again right away ("the the": the second the); false on every word of a session whose settings had enableFluencyAnalysis false (not looked for).';

ALTER TABLE {{database}}.speech_frames
    COMMENT COLUMN pitch_mean_hz 'Mean fundamental frequency (YIN, 60..500 Hz) over the voiced 10 ms frames of the second, hertz; NULL when no frame was voiced, or when the session''s settings had enableProsodyAnalysis false.',
    COMMENT COLUMN pitch_sd_hz 'Standard deviation of the fundamental frequency over the voiced frames of the second, hertz; NULL when fewer than two frames were voiced, or when the session''s settings had enableProsodyAnalysis false.';

ALTER TABLE {{database}}.coherence_windows
    COMMENT COLUMN computed_at 'When the windows sink wrote the window (UTC): the sink''s clock as it wrote the batch, not when the worker computed it, so computed_at - window_end is how long the window took to reach this table. Also the ReplacingMergeTree version; the sink skips a window of a session at or before the newest one stored for it, so a window the worker computes again (a restart, a replay) does not replace the stored one.';

ALTER TABLE {{database}}.group_windows
    COMMENT COLUMN computed_at 'When the group windows sink wrote the window (UTC): the sink''s clock as it wrote the batch, not when the group worker computed it. Also the ReplacingMergeTree version.';

ALTER TABLE {{database}}.group_participant_windows
    COMMENT COLUMN computed_at 'When the group windows sink wrote the row (UTC): the sink''s clock as it wrote the batch, not when the group worker computed it. Also the ReplacingMergeTree version.';

ALTER TABLE {{database}}.heart_readings_quarantined
    COMMENT COLUMN session_clock_at 'The clock guard''s clock when the reading was quarantined (UTC): the session''s newest beat let through, or, before any, the session''s start (started_at; the guard starts its clock there, or at the newest stored beat when later); NULL when neither was known.',
    COMMENT COLUMN reason 'Why it was kept out: future_beat (it started more than the allowed lateness past the guard''s clock, session_clock_at: the session''s newest beat, or its start before any beat, and the readings after it did not confirm the jump, or the session ended first). The coherence worker dead-letters the same reading with the same code.';
