-- 0013_speech_silent_pauses: speech_pauses holds silent pauses (comments only; no data changes).
--
-- A pause used to be any gap of at least min_pause_ms between voice-activity segments. Silero
-- often scores a filled pause ("hmm ... um") as non-speech, so a hesitation was stored as one
-- long pause and as fillers too. Since this version the speech worker cuts the session's fillers
-- that the audio placed (speech_fillers rows of source acoustic, transcript or both fillers
-- whose word was force-aligned, and of a both filler whose word was not, the span the acoustic
-- rules heard) out of those gaps, and keeps the parts of at least
-- min_pause_ms as pauses (pipelines/speech/vad/segments.ts: silentPauses; README, How speech is
-- analysed, item 2). speech_summaries' pause figures and the scores use the same pauses. Rows
-- written before this version are the uncut gaps; a session analysed again gets the new ones.
--
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.speech_pauses
    COMMENT COLUMN start_ms 'When the pause starts (end of the speech or of the filler before it), milliseconds from the start of the session''s audio. With session_id, the natural key.',
    COMMENT COLUMN end_ms 'When the pause ends (start of the speech or of the filler after it), milliseconds from the start of the session''s audio.';

ALTER TABLE {{database}}.speech_pauses
    MODIFY COMMENT 'Silent pauses: gaps between voice-activity segments of a session with the fillers the audio placed cut out (speech_fillers of source acoustic, transcript or both fillers whose word was force-aligned, and what the acoustic rules heard of other both fillers), the parts of at least the minimum pause kept (silence before the first and after the last segment is not a pause). Rows written before migration 0013 are the uncut gaps. Natural key (session_id, start_ms); query with FINAL.';

ALTER TABLE {{database}}.speech_summaries
    COMMENT COLUMN pause_count 'Pauses (speech_pauses rows): silent gaps of at least the minimum pause (250 ms by default), fillers cut out (see speech_pauses; before migration 0013, uncut voice-activity gaps).';
