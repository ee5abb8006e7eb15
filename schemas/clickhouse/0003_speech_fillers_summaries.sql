-- 0003_speech_fillers_summaries: the fillers found in a speech session (from the transcript,
-- from the audio, or both) and one summary row of delivery metrics per session. See issue 3,
-- sections 5 and 8 (fluency). Same conventions as 0002_speech.sql: times within a session are
-- integer milliseconds from the first sample of the session's audio, audio_started_at is the
-- partition key, ReplacingMergeTree with computed_at as the version (query with FINAL).
--
-- Why a table of its own for fillers: recognisers drop short filled pauses ("um" said fast),
-- so some fillers are found only in the audio (voiced, flat pitch, steady spectrum, 150-1000
-- ms) and have no word in speech_words. speech_fillers holds every filler once, whatever found
-- it; speech_words.is_filler marks the transcript's own filler words.
--
-- Example: filler rate per minute of each session of an org:
--
--   SELECT f.session_id, count() / any(s.duration_ms) * 60000 AS fillers_per_min
--   FROM attune.speech_fillers AS f FINAL
--   JOIN attune.speech_summaries AS s FINAL USING (session_id)
--   WHERE f.org_id = {org:String}
--   GROUP BY f.session_id;

CREATE TABLE IF NOT EXISTS {{database}}.speech_fillers
(
    session_id String COMMENT 'Speech session the filler belongs to.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    audio_started_at DateTime64(3, 'UTC') COMMENT 'When the session''s audio began (UTC): the origin of start_ms and end_ms. The partition key.',
    start_ms UInt32 COMMENT 'When the filler starts, milliseconds from the start of the session''s audio. With session_id, the natural key.',
    end_ms UInt32 COMMENT 'When the filler ends, milliseconds from the start of the session''s audio.',
    filler LowCardinality(String) COMMENT 'Which filler: um, uh, er, ah, hmm, like, you know, I mean, so, basically, actually, literally (from the transcript), or filled_pause (found only in the audio, so its vowel is not named).',
    source LowCardinality(String) COMMENT 'What found it: transcript (a filler word by the context rules), acoustic (a filled pause in the audio with no transcript word), or both (a transcript filled pause the audio detector also found).',
    segment_index Nullable(UInt32) COMMENT 'Transcript segment of the filler word (speech_words.segment_index); NULL for acoustic-only fillers.',
    word_index Nullable(UInt32) COMMENT 'First word of the filler in its segment (speech_words.word_index); NULL for acoustic-only fillers.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the filler was found (UTC). The ReplacingMergeTree version: the latest wins.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(audio_started_at)
ORDER BY (org_id, user_id, session_id, start_ms)
COMMENT 'Filler words and filled pauses of a speech session, one row each, from the transcript rules and the acoustic detector merged. Natural key (session_id, start_ms); query with FINAL.';

CREATE TABLE IF NOT EXISTS {{database}}.speech_summaries
(
    session_id String COMMENT 'Speech session summarised. The natural key.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    audio_started_at DateTime64(3, 'UTC') COMMENT 'When the session''s audio began (UTC). The partition key.',
    duration_ms UInt32 COMMENT 'Length of the session''s audio, milliseconds.',
    speech_ms UInt32 COMMENT 'Phonation time, milliseconds: time within voice activity whose level is within 25 dB of the session''s loudest frame, silences of 250 ms or more removed (as de Jong & Wempe''s Praat method). The articulation rate divides by it.',
    word_count UInt32 COMMENT 'Words of the transcript, fillers included.',
    speaking_rate_wpm Float32 COMMENT 'Words per minute from the start of the first speech to the end of the last, pauses included (silence before and after the speech is not counted).',
    articulation_rate_wpm Float32 COMMENT 'Words per minute over phonation time only: word_count / speech_ms.',
    pause_count UInt32 COMMENT 'Pauses (speech_pauses rows): non-speech gaps of at least the minimum pause (250 ms by default).',
    long_pause_count UInt32 COMMENT 'Pauses of kind long (at least 1000 ms by default).',
    pause_ratio Float32 COMMENT 'Share of the time between the first and the last speech that is pauses, 0..1.',
    mean_pause_ms Nullable(UInt32) COMMENT 'Mean pause length, milliseconds (rounded); NULL without pauses.',
    filler_count UInt32 COMMENT 'Fillers (speech_fillers rows), from the transcript and the audio.',
    filler_rate_per_min Float32 COMMENT 'Fillers per minute of audio.',
    repetition_count UInt32 COMMENT 'Repeated words or phrases (speech_words.is_repetition).',
    pitch_mean_hz Nullable(Float32) COMMENT 'Mean fundamental frequency over all voiced 10 ms frames, hertz; NULL when nothing was voiced.',
    pitch_sd_hz Nullable(Float32) COMMENT 'Standard deviation of the fundamental frequency, hertz.',
    pitch_min_hz Nullable(Float32) COMMENT 'Lowest fundamental frequency (5th percentile of voiced frames, robust to octave errors), hertz.',
    pitch_max_hz Nullable(Float32) COMMENT 'Highest fundamental frequency (95th percentile of voiced frames), hertz.',
    pitch_variability_st Nullable(Float32) COMMENT 'Standard deviation of the fundamental frequency in semitones (relative to its mean): intonation, comparable across voices.',
    monotone Nullable(Bool) COMMENT 'True when pitch_variability_st is below the monotone threshold (pipelines/speech/pitch-stats.ts); NULL when nothing was voiced.',
    volume_mean_dbfs Nullable(Float32) COMMENT 'Mean loudness of the seconds with speech, dBFS; NULL without speech.',
    volume_sd_db Nullable(Float32) COMMENT 'Standard deviation of the per-second loudness over seconds with speech, dB: vocal dynamics.',
    model LowCardinality(String) COMMENT 'Recognition model of the transcript, e.g. moonshine-tiny.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the summary was computed (UTC). The ReplacingMergeTree version: the latest wins.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(audio_started_at)
ORDER BY (org_id, user_id, session_id)
COMMENT 'Delivery metrics of a speech session, one row per session, written when its audio has been analysed. Natural key session_id; query with FINAL.';
