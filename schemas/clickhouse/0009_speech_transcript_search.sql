-- 0009_speech_transcript_search: a skip index for transcript search (GET /v1/search/sessions,
-- issue 13) on speech_segments.text.
--
-- An n-gram bloom filter, ngrambf_v1(3, 16384, 3, 0): every 3-character substring of the
-- segments' text in a granule goes into a 16 KB bloom filter with 3 hash functions (seed 0).
-- ClickHouse consults it for text LIKE '%…%', position()/multiSearchAny() over literal needles
-- and skips the granules whose filter cannot hold every 3-gram of a needle. An n-gram filter
-- (not tokenbf_v1) because a query may end in a partial word and phrases cross word bounds.
-- Transcript text is stored in lower case without punctuation, so the API lower-cases and
-- strips the query the same way and searches case-sensitively (ILIKE would not use the index).
--
-- What it buys: the search first narrows by the ORDER BY prefix (org_id, user_id); the index
-- then pays off where one user or an org admin's org has many granules of segments (8192 rows
-- each), and rare words skip most of them. GRANULARITY 1: one filter per granule.
-- Parts written before this migration get the index from the MATERIALIZE mutation (runs in the
-- background; until then those parts are read in full: same answer, slower).
--
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.speech_segments
    ADD INDEX IF NOT EXISTS text_ngram text TYPE ngrambf_v1(3, 16384, 3, 0) GRANULARITY 1;

ALTER TABLE {{database}}.speech_segments
    MATERIALIZE INDEX text_ngram;
