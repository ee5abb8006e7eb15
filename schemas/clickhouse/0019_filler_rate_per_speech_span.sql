-- 0019_filler_rate_per_speech_span: speech_summaries.filler_rate_per_min is per minute of the
-- span from the first to the last speech, as speaking_rate_wpm, from this version of the
-- pipeline on (pipelines/speech/stream/results.ts). Before, it was per minute of the whole
-- recording while the scores' filler rate used the span, so a recorder left running before or
-- after the speaker lowered the one and not the other (a walkthrough: 7.5 against 56.5 a
-- minute for the same clip padded with 40 s of silence). Rows written before keep the old
-- reading; the API recomputes every row's rate as filler_count / (word_count /
-- speaking_rate_wpm), which is the new reading, and a query can do the same.
-- The data is unchanged; only the comment in system.columns is. Same conventions as
-- 0001_heart.sql; the statement is idempotent.

ALTER TABLE {{database}}.speech_summaries
    COMMENT COLUMN filler_rate_per_min 'Fillers per minute from the start of the first speech to the end of the last, as speaking_rate_wpm (since 0019; rows written before are per minute of the whole recording: filler_count / (word_count / speaking_rate_wpm) gives the current reading for every row with words).';
