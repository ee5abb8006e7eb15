-- 0018_comments_after_walkthrough: table and column comments that said something other than
-- what the tables hold, found by a walkthrough that queried the tables as a data scientist
-- would, beside the API's answers for the same sessions. The data is unchanged; only the
-- comments in system.tables and system.columns are.
--  * heart_readings: its natural key includes session_id (the ORDER BY does), so the same
--    reading sent under another session, or under none and then under a session created after
--    it, is a second row that FINAL keeps; the comment said (reading_id, beat_index);
--  * speech_segments.text: the recogniser's text as it writes it, with casing and punctuation
--    ("Americans:"); 0017 said so in its header but left the comment;
--  * speech_terms: written by speech_terms_words_mv (0017), not the dropped speech_terms_mv;
--  * speech_frames.rolling_wpm: a word counts by the share of its duration inside the 30 s, so
--    it is not the sum of word_count over those seconds;
--  * coherence_windows.late_beat_count: a re-sent copy of a beat the session still holds is not
--    counted (since this version of the worker), one older than that is.
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.heart_readings
    MODIFY COMMENT 'Heartbeats: one row per beat (RR interval) of every accepted heart reading, or one row per reading when it carried only a heart rate. Natural key (session_id, reading_id, beat_index): replays and duplicate uploads are collapsed by ReplacingMergeTree, so query with FINAL. The same reading sent under another session (or under none, then under a session created after it) is another row: to count each beat once across sessions, add LIMIT 1 BY reading_id, beat_index (ordered by received_at DESC for the latest).';

ALTER TABLE {{database}}.speech_segments
    COMMENT COLUMN text 'Recognised text of the segment as the recogniser writes it, with its casing and punctuation (e.g. And so, my fellow Americans: ask not); may be empty when nothing was recognised. speech_words.text holds each word in lower case without punctuation.';

ALTER TABLE {{database}}.speech_terms
    MODIFY COMMENT 'Inverted index of final transcript segments for search (0011, 0017): one row per word occurrence, and one per segment (term empty) with its text and times, written by speech_terms_words_mv from speech_segments. Natural key (session_id, segment_index, word_index, term).';

ALTER TABLE {{database}}.speech_frames
    COMMENT COLUMN rolling_wpm 'Words per minute over the 30 s that end with this second (over the seconds so far during the first 30 s), pauses included: the live speaking rate. Each word counts by the share of its duration inside those 30 s, so the rate moves smoothly; it is not the sum of word_count over the seconds.';

ALTER TABLE {{database}}.coherence_windows
    COMMENT COLUMN late_beat_count 'Beats of this session that arrived after their window had closed, cumulative since the worker took the session (a restart or rebalance starts it again). A re-sent copy of a beat the worker still holds (the open windows and their 60 s context) is not counted; a copy of an older beat cannot be told from a late one and is.';
