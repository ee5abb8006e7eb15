-- 0017_speech_terms_words: transcript search indexes the words of the text, not its pieces
-- between spaces.
--
-- 0011 (and 0012's view after it) split speech_segments.text on single spaces, on the belief
-- that the text is stored lower case without punctuation. It is not: it is the recogniser's
-- text as the transcript shows it ("And so, my fellow Americans: ask not"). The index held
-- 'Americans' and 'not.' where the query, normalised by api/speech-search.ts searchWords
-- (lower case; runs of letters, digits and apostrophes), asks for 'americans' and 'not', so
-- any capitalised word, and any word before punctuation, was never found, and occurrences
-- next to punctuation were not counted in the relevance. Found by a walkthrough on the
-- shared JFK clip: `q=americans` found nothing; `q=country` scored 0.75 where both of the
-- clip's two "country" count (1.0).
--
-- Now a segment's terms are its words: runs of letters and digits, joined by single inner
-- apostrophes ("don't", "o'brien's"; a typographic ’ counts as '), lower case; the apostrophes
-- at a word's edges are not part of it ("students'" is "students"). The same words
-- searchWords makes of a query (api/speech-search.test.ts checks the two agree on text with
-- capitals, punctuation, apostrophes and accents). word_index is the word's place in that list, so consecutive words of a phrase
-- have consecutive positions whatever punctuation is between them. The segment's own row
-- (term empty) keeps the text as written, for the highlights.
--
-- The index is rebuilt: the new view is created before the old one is dropped (an insert in
-- between is written by both; the rebuild below replaces what the old one wrote), then the
-- table is emptied and every final segment indexed again from speech_segments. An insert
-- while this runs is indexed by the new view, by the rebuild, or both (the same keys, which
-- collapse; search counts each (segment, position, term) once). Search finds less than it
-- should between the TRUNCATE and the end of the INSERT; this runs once, at migration time,
-- through the store's long-running client (no 30 s request timeout: a rebuild over many
-- transcripts takes longer, and a timed-out migration is not recorded, so every start would
-- begin it again). A session deleted while the INSERT reads speech_segments may get its index
-- rows back; search leaves it out of its results (its PostgreSQL row is gone) but counts it in
-- `total` until the next delete of its rows. Every statement is idempotent: run again (two
-- processes migrating at once), it empties and rebuilds the same rows.
--
-- Same conventions as 0001_heart.sql.

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.speech_terms_words_mv TO {{database}}.speech_terms
AS SELECT org_id, user_id, w.1 AS term, session_id, stream_id, segment_index, w.2 AS word_index, audio_started_at,
    if(w.1 = '', seg_start_ms, 0) AS start_ms, if(w.1 = '', seg_end_ms, 0) AS end_ms, if(w.1 = '', seg_text, '') AS text, computed_at
FROM
(
    -- Renamed so that the output columns start_ms, end_ms and text do not shadow them.
    SELECT org_id, user_id, session_id, stream_id, segment_index, audio_started_at, computed_at, is_final,
        start_ms AS seg_start_ms, end_ms AS seg_end_ms, text AS seg_text,
        extractAll(replaceAll(lowerUTF8(text), '’', ''''), '[\\p{L}\\p{N}]+(?:''[\\p{L}\\p{N}]+)*') AS seg_words
    FROM {{database}}.speech_segments
)
ARRAY JOIN arrayConcat(
    [('', toUInt32(0))],
    arrayZip(seg_words, arrayMap(i -> toUInt32(i - 1), arrayEnumerate(seg_words)))
) AS w
WHERE is_final
COMMENT 'Writes speech_terms from every insert into speech_segments: for each final segment, its row (term empty, the text as written) and one row per word, the words being the text''s runs of letters, digits and apostrophes in lower case (0017; 0012''s speech_terms_stream_mv, which split on spaces, is dropped). Columns: those of speech_terms.';

DROP VIEW IF EXISTS {{database}}.speech_terms_stream_mv;

ALTER TABLE {{database}}.speech_terms
    COMMENT COLUMN term 'A word of a final segment''s text, in lower case: a run of letters and digits, with single inner apostrophes (don''t; a typographic one counts as an apostrophe) (0017), as GET /v1/search/sessions splits its query. The empty string for the segment''s own row (text and times).';

ALTER TABLE {{database}}.speech_terms
    COMMENT COLUMN word_index 'Position of the word among the segment''s words as term defines them, 0..n-1 (0017: punctuation between two words does not separate their positions); 0 on the segment''s row. Not speech_words.word_index, which counts the recogniser''s tokens.';

TRUNCATE TABLE IF EXISTS {{database}}.speech_terms;

INSERT INTO {{database}}.speech_terms (org_id, user_id, term, session_id, stream_id, segment_index, word_index, audio_started_at, start_ms, end_ms, text, computed_at)
SELECT org_id, user_id, w.1, session_id, stream_id, segment_index, w.2, audio_started_at,
    if(w.1 = '', start_ms, 0), if(w.1 = '', end_ms, 0), if(w.1 = '', text, ''), computed_at
FROM
(
    SELECT org_id, user_id, session_id, stream_id, segment_index, audio_started_at, computed_at, is_final, start_ms, end_ms, text,
        extractAll(replaceAll(lowerUTF8(text), '’', ''''), '[\\p{L}\\p{N}]+(?:''[\\p{L}\\p{N}]+)*') AS seg_words
    FROM {{database}}.speech_segments
)
ARRAY JOIN arrayConcat(
    [('', toUInt32(0))],
    arrayZip(seg_words, arrayMap(i -> toUInt32(i - 1), arrayEnumerate(seg_words)))
) AS w
WHERE is_final;
