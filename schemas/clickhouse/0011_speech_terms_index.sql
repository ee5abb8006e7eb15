-- 0011_speech_terms_index: an inverted index of the final transcript segments for transcript
-- search (GET /v1/search/sessions, issue 13): one row per word of a final segment, ordered by
-- (org, user, term), so finding the sessions that say a word is a primary-key range read of
-- that word's rows instead of a scan of every segment of the user (0009's n-gram skip index
-- only skips granules, and a common word is in every granule). Positions give the phrase check
-- and the occurrence counts of the ranking without reading the text.
--
-- Each final segment also has one row with term '' carrying its text and times (text, start_ms
-- and end_ms are empty on word rows): the highlights of a result page read those, a few small
-- granules of one key range (org, user, '', session), instead of speech_segments, whose monthly
-- partitions and 8,192-row granules made that read twice as slow (measured 16-20 ms against
-- 10 ms for a page at load average 3-4). The text is thus stored twice; transcripts are small
-- next to the words and frames.
--
-- Written by a materialized view on speech_segments, so every path that writes segments (the
-- speech worker's sink, replays, tests and benches) writes the index in the same INSERT.
-- 0006 dropped a materialized view because it COUNTED inserted blocks; this one only copies
-- words into a ReplacingMergeTree keyed by the word's place (term, session, segment, position),
-- so a retried or replayed insert writes the same keys again and changes no answer (search
-- counts each (segment, position, term) once, merged or not).
--
-- What the index trusts: a segment's final text, once written, is only ever written again
-- with the same text (the speech worker writes each final segment as recognised and again,
-- the same, with its word count; it writes no partial rows). A re-run that changes a segment's
-- text must delete the session's rows first, as 0002 already requires for a re-run that yields
-- fewer rows; the delete covers this table (the DELETE route and deleteSpeechResults go through
-- every table of SpeechTables in store/rows.ts). Without that, the words of the older text
-- would stay searchable. Checking each word's version against its segment's latest version in
-- speech_segments at query time answered the same but cost 2-4 times the whole ranking
-- (measured on 10,000 transcripts at load average 4-5: a phrase 24-40 ms against 10-15 ms, a
-- word in 9,832 transcripts 61-89 ms against 16-24 ms), so it is not done.
--
-- Only final segments are indexed (is_final); words are the segment text split on single
-- spaces (text is stored lower case without punctuation), empty pieces left out, and
-- word_index counts the pieces of that split, so consecutive positions are exactly what
-- position(' ' || text || ' ', ' w1 w2 ') finds as a phrase.
--
-- Not partitioned: search reads a word's rows across the whole history, which monthly
-- partitions would cut into one range per month. index_granularity 1024 (not 8192): a rare
-- word's few rows are read as one granule of 1,024 rows; 1.1 M word rows are 1,100 marks.
--
-- 0009's n-gram bloom filter skip index on speech_segments.text is dropped: nothing reads it
-- any more, and every insert of segments paid for it.
--
-- Same conventions as 0001_heart.sql; every statement is idempotent (the backfill inserts the
-- same keys again, which collapse).

CREATE TABLE IF NOT EXISTS {{database}}.speech_terms
(
    org_id LowCardinality(String) COMMENT 'Organisation (tenant) of the user.',
    user_id String COMMENT 'User of the session.',
    term String COMMENT 'A word of a final segment''s text, as stored in speech_segments.text (lower case): the text split on single spaces, empty pieces left out. The empty string for the segment''s own row (text and times).',
    session_id String COMMENT 'Speech session the segment belongs to.',
    segment_index UInt32 COMMENT 'Segment (speech_segments.segment_index) the word is in.',
    word_index UInt32 COMMENT 'Position of the word in the segment text split on single spaces, 0..n-1 (the same as speech_words.word_index when the text has single spaces); 0 on the segment''s row.',
    audio_started_at DateTime64(3, 'UTC') COMMENT 'When the session''s audio began (UTC), as in speech_segments; the date filter of search.',
    start_ms UInt32 COMMENT 'On the segment''s row (term empty): start of the segment, milliseconds from the start of the session''s audio, as speech_segments.start_ms. 0 on word rows.',
    end_ms UInt32 COMMENT 'On the segment''s row: end of the segment, milliseconds from the start of the session''s audio. 0 on word rows.',
    text String COMMENT 'On the segment''s row: the segment''s text, as speech_segments.text. Empty on word rows.',
    computed_at DateTime64(3, 'UTC') COMMENT 'computed_at of the speech_segments row the word comes from: the ReplacingMergeTree version.'
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (org_id, user_id, term, session_id, segment_index, word_index)
SETTINGS index_granularity = 1024
COMMENT 'Inverted index of final transcript segments for search (0011): one row per word occurrence, and one per segment (term empty) with its text and times, written by speech_terms_mv from speech_segments. Natural key (session_id, segment_index, word_index, term).';

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.speech_terms_mv TO {{database}}.speech_terms
AS SELECT org_id, user_id, w.1 AS term, session_id, segment_index, w.2 AS word_index, audio_started_at,
    if(w.1 = '', seg_start_ms, 0) AS start_ms, if(w.1 = '', seg_end_ms, 0) AS end_ms, if(w.1 = '', seg_text, '') AS text, computed_at
FROM
(
    -- Renamed so that the output columns start_ms, end_ms and text do not shadow them.
    SELECT org_id, user_id, session_id, segment_index, audio_started_at, computed_at, is_final,
        start_ms AS seg_start_ms, end_ms AS seg_end_ms, text AS seg_text
    FROM {{database}}.speech_segments
)
ARRAY JOIN arrayConcat(
    [('', toUInt32(0))],
    arrayFilter(x -> x.1 != '', arrayZip(splitByChar(' ', seg_text), arrayMap(i -> toUInt32(i - 1), arrayEnumerate(splitByChar(' ', seg_text)))))
) AS w
WHERE is_final
COMMENT 'Writes speech_terms from every insert into speech_segments: for each final segment, its row (term empty) and one row per word (0011). Columns: those of speech_terms.';

-- Backfill: the segments written before this migration (the view sees only new inserts).
INSERT INTO {{database}}.speech_terms (org_id, user_id, term, session_id, segment_index, word_index, audio_started_at, start_ms, end_ms, text, computed_at)
SELECT org_id, user_id, w.1, session_id, segment_index, w.2, audio_started_at,
    if(w.1 = '', start_ms, 0), if(w.1 = '', end_ms, 0), if(w.1 = '', text, ''), computed_at
FROM {{database}}.speech_segments
ARRAY JOIN arrayConcat(
    [('', toUInt32(0))],
    arrayFilter(x -> x.1 != '', arrayZip(splitByChar(' ', text), arrayMap(i -> toUInt32(i - 1), arrayEnumerate(splitByChar(' ', text)))))
) AS w
WHERE is_final;

-- 0009's n-gram skip index is no longer read (see above).
ALTER TABLE {{database}}.speech_segments
    DROP INDEX IF EXISTS text_ngram;
