-- 0014_coherence_irregular_rhythm: a window in a rhythm the artifact cleaning cannot read is not
-- valid (comments only; no data changes).
--
-- The cleaning (Lipponen & Tarvainen 2019) corrects ectopic beats only where normal beats
-- outnumber them. From about one premature beat in 5, in bigeminy and in atrial fibrillation its
-- thresholds, computed from the spread of the beat-to-beat changes, widen until nothing is an
-- outlier: nothing is corrected, the window passed every rule of 0004, and it was stored valid
-- with an RMSSD 10-21 times the sinus rhythm's (pipelines/hrv/window-metrics.test.ts). Since this
-- version the worker also calls a window invalid, invalid_reason irregular_rhythm, when its
-- beats the cleaning corrected or removed and its clean intervals that still differ by 20 % or
-- more from the mean of the two intervals beside them (Karlsson, Hörnsten, Rydberg & Wiklund
-- 2012's outlier criterion; over intervals whose neighbours are successive) are together more
-- than 25 % of it, or when two intervals in a row fail that criterion (an ectopic beat the
-- cleaning left). Sinus rhythm departs from that mean by at most about 15 % of RR with
-- respiratory sinus arrhythmia up to 150 ms at breathing up to a quarter of the heart rate, and
-- no window of the shared real records is flagged. Not caught: premature beats without a
-- compensatory pause at one in 4 or fewer (README, Known limitations). user_daily_coherence_mv (WHERE valid) and the API's averages
-- need no change. Rows written before this version keep the verdict of their time.
--
-- Same conventions as 0001_heart.sql; every statement is idempotent.

ALTER TABLE {{database}}.coherence_windows
    COMMENT COLUMN valid 'True when the window can be trusted and is counted in every average (user_daily_coherence, the API''s session metrics): its data reaches within 4 s of both edges, at least 30 clean beats cover at least 90 % of it, at most 25 % of its beats were artifacts, its corrected beats and its clean intervals that differ by 20 % or more from the mean of the two beside them are together at most 25 % of it and no two in a row differ so (since migration 0014), and no gap inside it is longer than a quarter breath at its peak frequency (nor 5 s). When false, invalid_reason says why and the metrics are NULL. (Rows written before migration 0004 were judged by the older rules: 70 % coverage, no edge or gap rule.)',
    COMMENT COLUMN invalid_reason 'Why the window is not valid, the first rule it fails: partial (its data does not reach within 4 s of both edges), too_few_beats (under 30 clean beats), low_coverage (clean RR intervals cover under 90 % of it), too_many_artifacts (over 25 % of its beats removed or corrected), irregular_rhythm (since migration 0014: its corrected beats and its clean intervals that differ by 20 % or more from the mean of the two beside them are together over 25 % of it, or two in a row differ so, as in frequent ectopy, bigeminy or atrial fibrillation, which the cleaning cannot correct) or long_gap (a gap inside it longer than a quarter breath at its peak frequency, or than 5 s). NULL when valid, and in rows written before migration 0004.';
