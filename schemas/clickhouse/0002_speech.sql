-- 0002_speech: the speech slice (speech sessions, uploads, transcript segments and words,
-- per-second voice frames, pauses, scores). See issue 3, sections 7 and 8.
--
-- Same rules as 0001_heart.sql: `{{database}}` is replaced by store/migrate.ts, every statement
-- is idempotent (IF NOT EXISTS), and this file must never change once released (add 0003_*).
--
-- Conventions particular to speech:
--  * Times WITHIN a session are integer milliseconds from the start of the session's audio
--    (`start_ms`, `end_ms`: sample position x 1000 / sample rate, rounded to a whole ms). That
--    origin is the first sample of the uploaded file, or the first sample of a live stream.
--  * Every per-session detail table repeats `audio_started_at`, the absolute time (UTC) of that
--    first sample, so absolute times are `audio_started_at + toIntervalMillisecond(start_ms)`
--    (frames also have it as the ALIAS column `frame_time`). It is also the partition key: the
--    pipeline takes it from the session record, so a replay lands in the same monthly
--    partition and ReplacingMergeTree collapses it.
--  * Every table is a ReplacingMergeTree on its natural key with a version column
--    (`updated_at` for records that change, `computed_at` for derived results): read with
--    FINAL (or argMax over the version column). A re-run of the pipeline over the same audio
--    writes the same keys with a newer computed_at and so replaces the earlier results; a
--    re-run that yields FEWER words/segments/pauses than before must delete the session's
--    old rows first (ALTER TABLE ... DELETE WHERE session_id = ...), or the extra rows stay.
--  * ORDER BY starts with (org_id, user_id, session_id): the API always filters by org, then
--    by user and/or session. A bloom-filter index on session_id serves look-ups by session alone.
--
-- Example: words per minute of each session of a user, from the frames:
--
--   SELECT session_id, sum(word_count) / (max(second_index) + 1) * 60 AS speaking_rate_wpm
--   FROM attune.speech_frames FINAL
--   WHERE org_id = {org:String} AND user_id = {user:String}
--   GROUP BY session_id;

CREATE TABLE IF NOT EXISTS {{database}}.speech_sessions
(
    session_id String COMMENT 'Speech session id (the API''s id).',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) the user belongs to.',
    user_id String COMMENT 'User who speaks in the session.',
    title String COMMENT 'Title given by the user (API field title); may be empty.',
    description String COMMENT 'Description given by the user (API field description); may be empty.',
    kind LowCardinality(String) COMMENT 'What the user is practising (API field type): presentation, interview, conversation or speech.',
    expected_duration_s Nullable(UInt32) COMMENT 'How long the user expects to speak (API field duration), seconds; NULL when not given.',
    settings_json String DEFAULT '{}' COMMENT 'Session settings as given to the API (API field settings), a JSON object, e.g. pause thresholds or the recognition model.',
    status LowCardinality(String) COMMENT 'Life cycle: created (no audio yet), recording (live audio is streaming), processing (audio received, analysis running), completed (results stored) or failed (see speech_uploads for the error of an upload).',
    source LowCardinality(String) COMMENT 'Where the audio comes from: upload (a WAV file), live (a WebSocket stream), or empty string while no audio has arrived.',
    started_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When the session''s audio began (UTC): the first sample of a live stream, or when the upload started for a file. The origin of every _ms column of the session, and the audio_started_at of its detail rows. NULL while no audio has arrived.',
    ended_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When the audio ended (UTC): the live stream stopped or the upload was fully received. NULL until then.',
    audio_duration_s Nullable(Float64) COMMENT 'Length of the session''s audio, seconds; NULL until known (end of stream or parsed WAV header).',
    sample_rate_hz Nullable(UInt32) COMMENT 'Sample rate of the audio as received, hertz (16000, 44100, 48000, ...; analysis resamples to 16000). NULL while no audio has arrived.',
    created_at DateTime64(3, 'UTC') COMMENT 'When the session was created through the API (UTC).',
    updated_at DateTime64(3, 'UTC') COMMENT 'When this version of the session record was written (UTC); the ReplacingMergeTree version: the latest version wins.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (org_id, user_id, session_id)
COMMENT 'Speech sessions, one row per version: every change (audio start, status, end) inserts the full record with a newer updated_at. Query with FINAL (or argMax(col, updated_at)) to get the current state. Natural key session_id.';

CREATE TABLE IF NOT EXISTS {{database}}.speech_uploads
(
    upload_id String COMMENT 'Upload id (the API''s upload_id); the natural key.',
    session_id String COMMENT 'Speech session the file was uploaded to.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User who uploaded the file.',
    status LowCardinality(String) COMMENT 'queued (accepted, not started), processing, completed or failed.',
    stage LowCardinality(String) COMMENT 'Processing step in progress or last reached, as in processing:status events, e.g. receiving, decoding, voice_activity, features, transcription, alignment, scoring, storing, done.',
    progress Float32 COMMENT 'Share of the whole job done, 0..1 (1 when completed).',
    eta_s Nullable(Float32) COMMENT 'Estimated time left until completion, seconds, as last reported; NULL when not estimated (or when finished).',
    file_name String COMMENT 'File name sent in the multipart part; may be empty.',
    size_bytes UInt64 COMMENT 'Bytes of the file received so far; the file size once fully received.',
    encoding LowCardinality(String) COMMENT 'Sample encoding read from the WAV header: pcm16 or float32; empty string before the header was read.',
    channel_count UInt8 COMMENT 'Channels in the file (1 mono, 2 stereo; stereo is mixed down); 0 before the header was read.',
    sample_rate_hz UInt32 COMMENT 'Sample rate of the file, hertz; 0 before the header was read.',
    audio_duration_s Nullable(Float64) COMMENT 'Length of the audio in the file, seconds; NULL before the header was read.',
    metadata_json String DEFAULT '{}' COMMENT 'The optional metadata multipart field, a JSON object.',
    error_code LowCardinality(String) COMMENT 'Coded error (lib/errors.ts code) of a failed upload, e.g. invalid_argument or payload_too_large; empty string unless status is failed.',
    error_message String COMMENT 'Human-readable error of a failed upload; empty string unless status is failed.',
    created_at DateTime64(3, 'UTC') COMMENT 'When the upload request was accepted (UTC).',
    updated_at DateTime64(3, 'UTC') COMMENT 'When this version of the upload record was written (UTC); the ReplacingMergeTree version: the latest version wins.',
    completed_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When processing finished, completed or failed (UTC); NULL while in progress.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (org_id, user_id, session_id, upload_id)
COMMENT 'Uploaded audio files and the progress of their processing jobs, one row per version (every progress report inserts the full record with a newer updated_at). Query with FINAL for the current state. Natural key upload_id.';

CREATE TABLE IF NOT EXISTS {{database}}.speech_segments
(
    session_id String COMMENT 'Speech session the segment belongs to.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    audio_started_at DateTime64(3, 'UTC') COMMENT 'When the session''s audio began (UTC): the origin of start_ms and end_ms. The partition key.',
    segment_index UInt32 COMMENT 'Position of the voice-activity segment in the session, 0..n-1 in time order. With session_id, the natural key.',
    start_ms UInt32 COMMENT 'Start of the segment (voice activity, with its padding), milliseconds from the start of the session''s audio.',
    end_ms UInt32 COMMENT 'End of the segment, milliseconds from the start of the session''s audio (at most 30 000 ms after start_ms).',
    text String COMMENT 'Recognised text of the segment, as decoded (no punctuation or casing added); may be empty when nothing was recognised.',
    word_count UInt32 COMMENT 'Words of the segment in speech_words (fillers included).',
    is_final Bool COMMENT 'False for a partial result written while a live segment was still open; the final result replaces it under FINAL (same key, later computed_at).',
    model LowCardinality(String) COMMENT 'Recognition model, e.g. moonshine-tiny or moonshine-base.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the recogniser produced this result (UTC). The ReplacingMergeTree version: the latest wins.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(audio_started_at)
ORDER BY (org_id, user_id, session_id, segment_index)
COMMENT 'Transcript segments: one row per voice-activity segment (at most 30 s) of a session, with its recognised text. Natural key (session_id, segment_index); query with FINAL. The transcript of a session is its final segments'' text in segment_index order.';

CREATE TABLE IF NOT EXISTS {{database}}.speech_words
(
    session_id String COMMENT 'Speech session the word belongs to.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    audio_started_at DateTime64(3, 'UTC') COMMENT 'When the session''s audio began (UTC): the origin of start_ms and end_ms. The partition key.',
    segment_index UInt32 COMMENT 'Segment (speech_segments.segment_index) the word was recognised in.',
    word_index UInt32 COMMENT 'Position of the word within its segment, 0..n-1. With session_id and segment_index, the natural key.',
    text String COMMENT 'The word as recognised (lower case, no punctuation), e.g. um or hello.',
    start_ms UInt32 COMMENT 'When the word starts, milliseconds from the start of the session''s audio.',
    end_ms UInt32 COMMENT 'When the word ends, milliseconds from the start of the session''s audio (>= start_ms).',
    confidence Nullable(Float32) COMMENT 'Recogniser''s confidence in the word, 0..1 (mean token probability of greedy decoding); NULL when the recogniser gave none.',
    is_filler Bool COMMENT 'True when the word is (part of) a filler such as um, uh or a filler use of like; context rules decide, so that like in "I like tea" is false.',
    filler LowCardinality(String) COMMENT 'Which filler, in canonical form: um, uh, er, ah, hmm, like, you know, I mean, so, basically, actually, literally. Both words of a two-word filler carry it. Empty string when is_filler is false.',
    is_repetition Bool DEFAULT false COMMENT 'True when the word repeats the word (or phrase) right before it, as in "the the"; the repeated copy is marked, the first is not.',
    timing_method LowCardinality(String) COMMENT 'How start_ms and end_ms were found: forced_alignment (aligned to the audio) or syllable_estimate (the fallback: the segment''s time spread over its words by syllable count).',
    model LowCardinality(String) COMMENT 'Recognition model that produced the word, e.g. moonshine-tiny.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the word was produced (UTC). The ReplacingMergeTree version: the latest wins.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(audio_started_at)
ORDER BY (org_id, user_id, session_id, segment_index, word_index)
COMMENT 'Transcript words with their times, one row per word of the final transcript. Natural key (session_id, segment_index, word_index); query with FINAL. Words counted for words per minute are all rows; fillers are the rows with is_filler.';

CREATE TABLE IF NOT EXISTS {{database}}.speech_frames
(
    session_id String COMMENT 'Speech session the second belongs to.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    audio_started_at DateTime64(3, 'UTC') COMMENT 'When the session''s audio began (UTC). The partition key.',
    second_index UInt32 COMMENT 'Which second of the audio: the row covers [second_index x 1000, (second_index + 1) x 1000) ms from the start of the session''s audio. With session_id, the natural key.',
    frame_time DateTime64(3, 'UTC') ALIAS audio_started_at + toIntervalMillisecond(second_index * 1000) COMMENT 'Absolute start of the second (UTC), computed from audio_started_at and second_index (an ALIAS: not stored, not in SELECT *).',
    pitch_mean_hz Nullable(Float32) COMMENT 'Mean fundamental frequency (YIN, 60..500 Hz) over the voiced 10 ms frames of the second, hertz; NULL when no frame was voiced.',
    pitch_sd_hz Nullable(Float32) COMMENT 'Standard deviation of the fundamental frequency over the voiced frames of the second, hertz; NULL when fewer than two frames were voiced.',
    volume_dbfs Float32 COMMENT 'Loudness of the second: RMS of its samples in dB relative to full scale (0 = full scale, negative below); -120 (the floor) for digital silence.',
    voiced_ratio Float32 COMMENT 'Share of the second''s 10 ms frames that the pitch tracker judged voiced, 0..1.',
    speech_ratio Float32 COMMENT 'Share of the second that voice activity detection (Silero VAD) marked as speech, 0..1.',
    word_count UInt32 COMMENT 'Words (speech_words rows) that start within this second, fillers included; sum over seconds for the word count of any span.',
    filler_count UInt32 COMMENT 'Filler words (is_filler) that start within this second.',
    rolling_wpm Float32 COMMENT 'Words per minute over the 30 s that end with this second (over the seconds so far during the first 30 s), pauses included: the live speaking rate.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the row was computed (UTC). The ReplacingMergeTree version: the latest wins.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(audio_started_at)
ORDER BY (org_id, user_id, session_id, second_index)
COMMENT 'Voice features per second of a session''s audio (the metrics endpoint aggregates them to 5 s, 10 s or minutes). Natural key (session_id, second_index); query with FINAL.';

CREATE TABLE IF NOT EXISTS {{database}}.speech_pauses
(
    session_id String COMMENT 'Speech session the pause belongs to.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    audio_started_at DateTime64(3, 'UTC') COMMENT 'When the session''s audio began (UTC): the origin of start_ms and end_ms. The partition key.',
    start_ms UInt32 COMMENT 'When the pause starts (end of the speech before it), milliseconds from the start of the session''s audio. With session_id, the natural key.',
    end_ms UInt32 COMMENT 'When the pause ends (start of the speech after it), milliseconds from the start of the session''s audio.',
    duration_ms UInt32 COMMENT 'Length of the pause, milliseconds (end_ms - start_ms); at least the session''s minimum pause (250 ms by default).',
    kind LowCardinality(String) COMMENT 'natural (shorter than the long-pause threshold, 1000 ms by default) or long.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the pause was found (UTC). The ReplacingMergeTree version: the latest wins.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(audio_started_at)
ORDER BY (org_id, user_id, session_id, start_ms)
COMMENT 'Pauses: non-speech gaps between voice-activity segments of a session (silence before the first and after the last segment is not a pause). Natural key (session_id, start_ms); query with FINAL.';

CREATE TABLE IF NOT EXISTS {{database}}.speech_scores
(
    session_id String COMMENT 'Speech session scored.',
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    model LowCardinality(String) COMMENT 'Scoring model, e.g. rubric-v1 (the documented rubric compiled to ONNX) or a trained model''s name. With session_id, the natural key: each model''s scores are kept, the API reads the latest computed_at.',
    overall Float32 COMMENT 'Overall score, 0..100 (higher is better).',
    clarity Float32 COMMENT 'Clarity score, 0..100 (higher is better).',
    pace Float32 COMMENT 'Pace score, 0..100 (higher is better).',
    engagement Float32 COMMENT 'Engagement score, 0..100 (higher is better).',
    confidence Float32 COMMENT 'Confidence (assurance of delivery) score, 0..100 (higher is better); not a statistical confidence.',
    features_json String DEFAULT '{}' COMMENT 'The feature vector the model scored, a JSON object by feature name (rates in words per minute, pause ratio, long pauses, filler rate, pitch and volume variability, ...).',
    weights_json String DEFAULT '{}' COMMENT 'Weights of the model behind each score, a JSON object by score then feature, as returned by the API.',
    factors_json String DEFAULT '{}' COMMENT 'Contribution of each feature to each score for this session, a JSON object by score then feature, as returned by the API.',
    computed_at DateTime64(3, 'UTC') COMMENT 'When the scores were computed (UTC). The ReplacingMergeTree version: the latest wins.',
    INDEX session_id_bloom session_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (org_id, user_id, session_id, model)
COMMENT 'Delivery scores of a speech session, one row per session and scoring model. Natural key (session_id, model); query with FINAL.';
