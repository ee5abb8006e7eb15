// GET /v1/search/sessions over HTTP against chDB and the entity database: a phrase said in one
// transcript among many is found, with its highlight and word times; the same phrase in
// another user's and another org's sessions is not (admin:org sees the org's); all words are
// needed, as whole words; sort by date and score; the document's pagination. The inverted
// index of migration 0011 answers as a scan of the final transcripts would (matches, totals and
// relevance recomputed here from the segments' text); a segment stored twice counts once; its
// backfill indexes segments written before it. Transcripts are stored as the recogniser writes
// them (capitals, punctuation): the index and the highlights find their words as the query's are
// normalised (migration 0017).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SPEECH_READ, startSpeechTestServer, type SpeechTestServer } from './speech-api.test-util.js';
import { seedAnalysedSessions, seedTranscripts, type SeededSession } from './speech-reports.test-util.js';
import { highlightsOf, searchWords } from './speech-search.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultMigrationsDir } from '../store/migrate.js';
import { splitSqlStatements } from '../store/sql-split.js';

let srv: SpeechTestServer;
const ORG = 'o-search';
const T0 = Date.UTC(2026, 4, 1, 9, 0, 0);
const PHRASE = 'purple elephants dance quietly';
let mine: SeededSession[];
let target: SeededSession;
let token: string;

before(async () => {
  srv = await startSpeechTestServer();
  token = srv.token('u-s', ORG, SPEECH_READ);
  mine = await seedAnalysedSessions(srv, { orgId: ORG, userId: 'u-s', n: 400, startAt: T0, stepMs: 3_600_000, scored: (i) => i % 5 !== 0 });
  target = mine[123];
  const other = await seedAnalysedSessions(srv, { orgId: ORG, userId: 'u-other', n: 20, startAt: T0, stepMs: 3_600_000 });
  const elsewhere = await seedAnalysedSessions(srv, { orgId: 'o-elsewhere', userId: 'u-s', n: 20, startAt: T0, stepMs: 3_600_000 });
  // The phrase, mid-sentence, in one of u-s's sessions, one of u-other's and one of another org's.
  const said = 'So, today I think Purple Elephants dance quietly in the morning.';
  await seedTranscripts(srv, mine, { perSession: 8, texts: new Map([[target.id, said]]), written: true });
  await seedTranscripts(srv, other, { perSession: 3, texts: new Map([[other[5].id, said]]) });
  await seedTranscripts(srv, elsewhere, { perSession: 3, texts: new Map([[elsewhere[7].id, said]]) });
});
after(async () => {
  await srv?.close();
});

async function search(query: string, tok = token) {
  const res = await srv.request('GET', `/v1/search/sessions?${query}`, { token: tok });
  return res;
}

test('query words are normalised as transcripts are stored', () => {
  assert.deepEqual(searchWords('  Purple, ELEPHANTS!  dance—quietly? '), ['purple', 'elephants', 'dance', 'quietly']);
  assert.deepEqual(searchWords("don't  stop"), ["don't", 'stop']);
  // Apostrophes: inside a word only; a typographic one is an apostrophe.
  assert.deepEqual(searchWords("The students' books, don’t — 'cause O'Brien's"), ['the', 'students', 'books', "don't", 'cause', "o'brien's"]);
});

test('highlights show the text as written, with the times of the stored words (each the normalised form of one written token)', () => {
  const seg = { session_id: 's', segment_index: 0, start_ms: 0, end_ms: 9000, text: 'And so, my fellow Americans: ask not — what your country' };
  // As the speech worker stores them: normalised, no word for the dash (lib/words.ts splitWords).
  const norms = ['and', 'so', 'my', 'fellow', 'americans', 'ask', 'not', 'what', 'your', 'country'];
  const timed = norms.map((text, k) => ({ session_id: 's', segment_index: 0, text, start_ms: 1000 + 500 * k, end_ms: 1400 + 500 * k }));
  // "americans": tokens 1..7 of the text (3 either side, the dash one of them); times from "so" to "not".
  assert.deepEqual(highlightsOf(['americans'], [seg], () => timed), [{ text: 'so, my fellow Americans: ask not —', start: 1.5, end: 4.4 }]);
  assert.deepEqual(highlightsOf(['not', 'what'], [seg], () => timed), [{ text: 'fellow Americans: ask not — what your country', start: 2.5, end: 5.9 }], 'a phrase across the dash');
  // Stored words that are not this text's (another split): the segment's times.
  assert.deepEqual(highlightsOf(['country'], [seg], () => timed.slice(1)), [{ text: '— what your country', start: 0, end: 9 }]);
});

test('a phrase from one transcript among 400 is found, only that session, with the highlight and its word times in seconds', async () => {
  const res = await search(`q=${encodeURIComponent('Purple Elephants, dance')}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.success, true);
  const { results, pagination } = res.body.data;
  assert.deepEqual(pagination, { page: 1, limit: 20, total: 1, pages: 1 });
  assert.equal(results.length, 1);
  const r = results[0];
  assert.equal(r.id, target.id);
  assert.equal(r.title, target.title);
  assert.equal(r.type, 'presentation');
  assert.equal(r.duration, target.durationMs / 1000);
  assert.equal(r.score, target.overall);
  assert.equal(r.createdAt, new Date(target.startedAt).toISOString());
  assert.equal(r.relevance, 0.5 + 0.5 * Math.min(1, 3 / 6));
  // "So, today I think Purple Elephants dance quietly in the morning.", word k at k x 0.4 s for
  // 0.3 s: words 4..6 matched, 3 of context either side, so words 1..9 (0.4 s to 9 x 0.4 + 0.3 s),
  // as written.
  assert.deepEqual(r.highlights, [{ text: 'today I think Purple Elephants dance quietly in the', start: 0.4, end: 3.9 }]);
});

test('tenants: another user of the org and another org have the phrase too; each sees only its own, an org admin sees both of the org', async () => {
  const own = (await search(`q=${encodeURIComponent(PHRASE)}`)).body.data.results.map((r: { id: string }) => r.id);
  assert.deepEqual(own, [target.id]);
  const otherUser = (await search(`q=${encodeURIComponent(PHRASE)}`, srv.token('u-other', ORG, SPEECH_READ))).body.data.results;
  assert.equal(otherUser.length, 1);
  assert.notEqual(otherUser[0].id, target.id);
  const elsewhere = (await search(`q=${encodeURIComponent(PHRASE)}`, srv.token('u-s', 'o-elsewhere', SPEECH_READ))).body.data.results;
  assert.equal(elsewhere.length, 1);
  assert.ok(![target.id, otherUser[0].id].includes(elsewhere[0].id));
  const admin = (await search(`q=${encodeURIComponent(PHRASE)}`, srv.token('boss', ORG, ['read:speech', 'admin:org']))).body.data.results;
  assert.deepEqual(admin.map((r: { id: string }) => r.id).sort(), [target.id, otherUser[0].id].sort());
  assert.equal((await search(`q=purple&user_id=u-other`)).status, 403);
});

test('every word is needed, as a whole word: a missing word or a word fragment finds nothing', async () => {
  assert.equal((await search('q=purple+zebras')).body.data.pagination.total, 0);
  assert.equal((await search('q=elephant')).body.data.pagination.total, 0, '"elephant" is only part of "elephants"');
  assert.equal((await search('q=quietly+purple')).body.data.results[0].id, target.id, 'words in any order');
});

test('common words: the documented pagination, and sort by date and by score', async () => {
  // "customers" is in some generated segments (as written: "Customers" first, "customers," in
  // places): count the sessions that have it.
  const rs = await srv.store.client.query({
    query: `SELECT uniqExact(session_id) AS n FROM ${srv.store.table('speech_segments')} WHERE org_id = '${ORG}' AND user_id = 'u-s' AND hasTokenCaseInsensitive(text, 'customers')`,
    format: 'JSONEachRow',
  });
  const n = Number(((await rs.json()) as Array<{ n: number }>)[0].n);
  assert.ok(n > 40, `${n} sessions say customers`);
  const p1 = (await search('q=customers&sort=date&limit=15')).body.data;
  assert.deepEqual(p1.pagination, { page: 1, limit: 15, total: n, pages: Math.ceil(n / 15) });
  const seen: string[] = [];
  for (let page = 1; page <= p1.pagination.pages; page++) {
    const d = (await search(`q=customers&sort=date&limit=15&page=${page}`)).body.data;
    seen.push(...d.results.map((r: { id: string }) => r.id));
  }
  assert.equal(new Set(seen).size, n, 'pages neither repeat nor skip a session');
  const start = new Map(mine.map((s) => [s.id, s.startedAt]));
  for (let i = 1; i < seen.length; i++) assert.ok(start.get(seen[i - 1])! >= start.get(seen[i])!, 'newest first');
  const past = (await search(`q=customers&limit=15&page=${p1.pagination.pages + 1}`)).body.data;
  assert.deepEqual(past.results, []);
  assert.equal(past.pagination.total, n);

  const byScore = (await search('q=customers&sort=score&limit=100')).body.data.results as Array<{ score: number | null }>;
  const scores = byScore.map((r) => r.score);
  const firstNull = scores.indexOf(null);
  const scored = firstNull < 0 ? scores : scores.slice(0, firstNull);
  assert.ok(scored.length > 0);
  for (let i = 1; i < scored.length; i++) assert.ok(scored[i - 1]! >= scored[i]!, 'highest score first');
  if (firstNull >= 0) assert.ok(scores.slice(firstNull).every((s) => s === null), 'unscored last');
});

test('filters by date; bad queries are 400 naming the field', async () => {
  const inRange = (await search(`q=${encodeURIComponent(PHRASE)}&filters=${encodeURIComponent(JSON.stringify({ startDate: new Date(target.startedAt).toISOString() }))}`)).body.data;
  assert.equal(inRange.pagination.total, 1);
  const before = (await search(`q=${encodeURIComponent(PHRASE)}&filters=${encodeURIComponent(JSON.stringify({ endDate: new Date(target.startedAt).toISOString() }))}`)).body.data;
  assert.equal(before.pagination.total, 0);
  for (const [query, field] of [
    ['q=%21%21%21', '?q'],
    ['q=a&filters=nope', '?filters'],
    [`q=a&filters=${encodeURIComponent('{"type":"speech"}')}`, '?filters.type'],
  ]) {
    const res = await search(query);
    assert.equal(res.status, 400, query);
    assert.equal(res.body.error.details[0].field, field, query);
  }
});

test('migration 0011 dropped the n-gram skip index of 0009 (the inverted index replaces it) and indexes words through one view (0017\'s)', async () => {
  const rs = await srv.store.client.query({
    query: `SELECT name FROM system.data_skipping_indices WHERE database = '${srv.store.database}' AND table = 'speech_segments' AND name = 'text_ngram'`,
    format: 'JSONEachRow',
  });
  assert.deepEqual(await rs.json(), []);
  const views = await srv.store.client.query({
    query: `SELECT name FROM system.tables WHERE database = '${srv.store.database}' AND name LIKE 'speech_terms%mv' AND engine = 'MaterializedView'`,
    format: 'JSONEachRow',
  });
  assert.deepEqual(await views.json(), [{ name: 'speech_terms_words_mv' }], 'one view writes the index: 0011\'s and 0012\'s are dropped');
});

/** The final segments of u-s's sessions as FINAL reads them, split into words as a query is: what the index must reproduce. */
async function transcripts(): Promise<Map<string, string[][]>> {
  const rs = await srv.store.client.query({
    query: `SELECT session_id, text FROM ${srv.store.table('speech_segments')} FINAL
            WHERE org_id = {org:String} AND user_id = 'u-s' AND is_final ORDER BY session_id, segment_index`,
    query_params: { org: ORG },
    format: 'JSONEachRow',
  });
  const out = new Map<string, string[][]>();
  for (const r of (await rs.json()) as Array<{ session_id: string; text: string }>) {
    out.set(r.session_id, [...(out.get(r.session_id) ?? []), searchWords(r.text)]);
  }
  return out;
}

/** The README's relevance computed from the words of a session's segments; null: not a match. */
function relevanceOf(words: string[], segments: string[][]): number | null {
  const per = words.map((w) => segments.reduce((n, seg) => n + seg.filter((t) => t === w).length, 0));
  if (per.some((n) => n === 0)) return null;
  const phrase = segments.some((seg) => seg.some((_, i) => words.every((w, k) => seg[i + k] === w)));
  return 0.5 * (phrase ? 1 : 0) + 0.5 * Math.min(1, per.reduce((a, b) => a + b, 0) / (2 * words.length));
}

test('the index answers as a scan of the transcripts: the same sessions, totals and relevance for common and rare queries', async () => {
  const all = await transcripts();
  // From the generated vocabulary: one word, words in and out of order, phrases, a word twice, and the test's phrase.
  for (const q of ['customers', 'focus on', 'on focus', 'the next quarter', 'quality thank you', 'the plan the', 'elephants purple', PHRASE]) {
    const words = searchWords(q);
    const expected = new Map<string, number>();
    for (const [id, segs] of all) {
      const r = relevanceOf(words, segs);
      if (r !== null) expected.set(id, r);
    }
    const got = new Map<string, number>();
    let total = -1;
    for (let page = 1; ; page++) {
      const d = (await search(`q=${encodeURIComponent(q)}&sort=date&limit=100&page=${page}`)).body.data;
      total = d.pagination.total;
      for (const r of d.results as Array<{ id: string; relevance: number }>) got.set(r.id, r.relevance);
      if (page >= d.pagination.pages) break;
    }
    assert.ok(expected.size > 0, `"${q}" matches something`);
    assert.equal(total, expected.size, `"${q}" total`);
    assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort(), `"${q}" sessions`);
    // Rounded to 3 decimals by ClickHouse: within half a thousandth.
    for (const [id, r] of expected) assert.ok(Math.abs(got.get(id)! - r) <= 0.0005 + 1e-9, `"${q}" ${id}: ${got.get(id)} vs ${r}`);
  }
});

test('a segment stored twice (the worker writes each final segment again with its word count) counts once; repeated words each count', async () => {
  const [s] = await seedAnalysedSessions(srv, { orgId: ORG, userId: 'u-dup', n: 1, startAt: T0, stepMs: 0 });
  const row = (segment_index: number, text: string, computed_at: number) => ({
    session_id: s.id, org_id: ORG, user_id: 'u-dup', audio_started_at: s.startedAt, segment_index, start_ms: segment_index * 5000,
    end_ms: segment_index * 5000 + 4000, text, word_count: text.split(' ').length, is_final: true, model: 'moonshine-tiny', computed_at,
  });
  await srv.insertRows('speech_segments', [row(0, 'the the plan the end', s.startedAt + 1), row(1, 'zanzibar', s.startedAt + 1)]);
  await srv.insertRows('speech_segments', [row(0, 'the the plan the end', s.startedAt + 9), row(1, 'zanzibar', s.startedAt + 9)]);
  const tok = srv.token('u-dup', ORG, SPEECH_READ);
  const found = async (q: string) => (await search(`q=${encodeURIComponent(q)}`, tok)).body.data;
  // the x 3, plan, end: 5 occurrences of 3 words, no phrase. Counted twice it would be 0.5.
  const loose = await found('the plan end');
  assert.equal(loose.pagination.total, 1);
  assert.equal(loose.results[0].relevance, Math.round(0.5 * (5 / 6) * 1000) / 1000);
  // No phrase: the first query word of each matching segment, 3 words either side.
  assert.deepEqual(loose.results[0].highlights.map((h: { text: string }) => h.text), ['the the plan the']);
  // The phrase, in segment 0.
  assert.equal((await found('plan the end')).results[0].relevance, Math.round((0.5 + 0.5 * (5 / 6)) * 1000) / 1000);
  // Words of two segments match, but not as a phrase across them.
  const across = (await found('end zanzibar')).results[0];
  assert.equal(across.relevance, 0.5 * (2 / 4));
  assert.deepEqual(across.highlights.map((h: { text: string }) => h.text), ['the plan the end', 'zanzibar']);
});

test('written transcripts (capitals, punctuation) are found by their words: every occurrence counts, phrases across punctuation, highlights as written', async () => {
  const [s] = await seedAnalysedSessions(srv, { orgId: ORG, userId: 'u-jfk', n: 1, startAt: T0, stepMs: 0 });
  // As the recogniser wrote the shared JFK clip, and a second segment with accents and an apostrophe.
  const texts = ['And so, my fellow Americans: ask not what your country can do for you. Ask what you can do for your country.', "Élan vital — don’t stop, students'."];
  await seedTranscripts(srv, [s], { perSession: 1, texts: new Map([[s.id, texts[0]]]) });
  await srv.insertRows('speech_segments', [
    { session_id: s.id, org_id: ORG, user_id: 'u-jfk', audio_started_at: s.startedAt, segment_index: 1, start_ms: 20_000, end_ms: 22_000, text: texts[1], word_count: 5, is_final: true, model: 'moonshine-tiny', computed_at: s.startedAt + 1 },
  ]);
  const tok = srv.token('u-jfk', ORG, SPEECH_READ);
  const found = async (q: string) => (await search(`q=${encodeURIComponent(q)}`, tok)).body.data;
  // Capitalised, and before a colon: found (before 0017 the index held "Americans:").
  const americans = await found('americans');
  assert.equal(americans.pagination.total, 1);
  assert.equal(americans.results[0].relevance, 0.75, 'the phrase (one word), once: 0.5 + 0.5 x min(1, 1 / 2)');
  assert.deepEqual(americans.results[0].highlights.map((h: { text: string }) => h.text), ['so, my fellow Americans: ask not what']);
  // "country" twice, the second before a full stop: both count, 0.5 + 0.5 x min(1, 2 / 2) (was 0.75).
  assert.equal((await found('country')).results[0].relevance, 1);
  // A phrase across punctuation, and the segment with no timed words (its text, its times).
  // americans 1, ask 2, not 1: 0.5 + 0.5 x 4 / 6.
  assert.equal((await found('Americans, ask not')).results[0].relevance, 0.833);
  const elan = (await found('élan vital')).results[0];
  assert.equal(elan.relevance, 0.75);
  assert.deepEqual(elan.highlights, [{ text: 'Élan vital — don’t stop,', start: 20, end: 22 }]);
  // A typographic apostrophe in the text, a plain one in the query; an apostrophe at a word's edge is not part of it.
  assert.equal((await found("DON'T")).pagination.total, 1);
  assert.equal((await found('students')).pagination.total, 1);
  // Still whole words only.
  assert.equal((await found('countr')).pagination.total, 0);
});

test("0017's rebuild indexes segments written before it as words", async () => {
  const [s] = await seedAnalysedSessions(srv, { orgId: ORG, userId: 'u-old', n: 1, startAt: T0, stepMs: 0 });
  await srv.insertRows('speech_segments', [
    { session_id: s.id, org_id: ORG, user_id: 'u-old', audio_started_at: s.startedAt, segment_index: 0, start_ms: 0, end_ms: 2000, text: 'Quokka marmalade, please.', word_count: 3, is_final: true, model: 'moonshine-tiny', computed_at: s.startedAt + 1 },
  ]);
  const tok = srv.token('u-old', ORG, SPEECH_READ);
  const total = async () => (await search('q=quokka+marmalade+please', tok)).body.data.pagination.total;
  assert.equal(await total(), 1, 'the view indexed it');
  // As if indexed before 0017: its rows as 0011's split on spaces wrote them.
  await srv.store.client.command({ query: `DELETE FROM ${srv.store.table('speech_terms')} WHERE session_id = {s:String} AND term != ''`, query_params: { s: s.id } });
  await srv.insertRows('speech_terms', ['Quokka', 'marmalade,', 'please.'].map((term, word_index) => ({
    org_id: ORG, user_id: 'u-old', term, session_id: s.id, segment_index: 0, word_index, audio_started_at: s.startedAt, start_ms: 0, end_ms: 0, text: '', computed_at: s.startedAt + 1,
  })));
  assert.equal(await total(), 0);
  // The whole migration, as a second process migrating at once would run it again.
  const sql = readFileSync(join(defaultMigrationsDir(), '0017_speech_terms_words.sql'), 'utf8').replaceAll('{{database}}', srv.store.database);
  for (const statement of splitSqlStatements(sql)) await srv.store.client.command({ query: statement });
  assert.equal(await total(), 1, 'the rebuild indexed it as words');
  const left = await srv.store.client.query({
    query: `SELECT count() AS n FROM ${srv.store.table('speech_terms')} WHERE session_id = {s:String} AND term IN ('Quokka', 'marmalade,', 'please.')`,
    query_params: { s: s.id },
    format: 'JSONEachRow',
  });
  assert.equal(Number(((await left.json()) as Array<{ n: number | string }>)[0].n), 0, "the old split's rows are gone");
});
