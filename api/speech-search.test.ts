// GET /v1/search/sessions over HTTP against chDB and the entity database: a phrase said in one
// transcript among many is found, with its highlight and word times; the same phrase in
// another user's and another org's sessions is not (admin:org sees the org's); all words are
// needed, as whole words; sort by date and score; the document's pagination; the skip index
// of migration 0009 is on the table.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SPEECH_READ, startSpeechTestServer, type SpeechTestServer } from './speech-api.test-util.js';
import { seedAnalysedSessions, seedTranscripts, type SeededSession } from './speech-reports.test-util.js';
import { searchWords } from './speech-search.js';

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
  const said = `so today i think ${PHRASE} in the morning`;
  await seedTranscripts(srv, mine, { perSession: 8, texts: new Map([[target.id, said]]) });
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
  // "so today i think purple elephants dance quietly in the morning", word k at k x 0.4 s for
  // 0.3 s: words 4..6 matched, 3 of context either side, so words 1..9 (0.4 s to 9 x 0.4 + 0.3 s).
  assert.deepEqual(r.highlights, [{ text: 'today i think purple elephants dance quietly in the', start: 0.4, end: 3.9 }]);
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
  // "customers" is in some generated segments: count the sessions that have it.
  const rs = await srv.store.client.query({
    query: `SELECT uniqExact(session_id) AS n FROM ${srv.store.table('speech_segments')} WHERE org_id = '${ORG}' AND user_id = 'u-s' AND hasToken(text, 'customers')`,
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

test('migration 0009 put the n-gram bloom filter skip index on speech_segments.text', async () => {
  const rs = await srv.store.client.query({
    query: `SELECT name, type_full, expr FROM system.data_skipping_indices WHERE database = '${srv.store.database}' AND table = 'speech_segments' AND name = 'text_ngram'`,
    format: 'JSONEachRow',
  });
  const rows = (await rs.json()) as Array<{ type_full: string; expr: string }>;
  assert.equal(rows.length, 1);
  assert.match(rows[0].type_full, /^ngrambf_v1\(3, ?16384, ?3, ?0\)$/);
  assert.equal(rows[0].expr, 'text');
});
