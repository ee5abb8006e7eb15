// GET /v1/reports/sessions over HTTP against chDB and the entity database, with analysed
// sessions seeded in bulk: the CSV parses back (an independent RFC 4180 parser below) to the
// rows the seed wrote and to the JSON report's sessions, across ClickHouse pages (more than
// PAGE_ROWS sessions, many sharing one start time); the period filter, tenants, admin:org, the
// document's summary, and pdf answered 406.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SPEECH_READ, startSpeechTestServer, type SpeechTestServer } from './speech-api.test-util.js';
import { seedAnalysedSessions, type SeededSession } from './speech-reports.test-util.js';
import { PAGE_ROWS, REPORT_COLUMNS } from './speech-reports.js';

let srv: SpeechTestServer;
const ORG = 'o-rep';
const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);
const DAY = 86_400_000;
let mine: SeededSession[];
let token: string;

/** RFC 4180: fields separated by commas, records by CRLF, quoted fields with doubled quotes. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let rec: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), (i += 2);
      else if (c === '"') (quoted = false), i++;
      else (field += c), i++;
    } else if (c === '"' && field === '') (quoted = true), i++;
    else if (c === ',') rec.push(field), (field = ''), i++;
    else if (c === '\r' && text[i + 1] === '\n') rec.push(field), records.push(rec), (rec = []), (field = ''), (i += 2);
    else (field += c), i++;
  }
  assert.equal(field, '', 'the last record ends with CRLF');
  assert.equal(rec.length, 0);
  return records;
}

const TRICKY = ['Plain', 'Comma, inside', 'Quote "here"', 'Line\nbreak', '=SUM(A1)', '  spaced  ', 'Ünïcødé — 話'];

before(async () => {
  srv = await startSpeechTestServer();
  token = srv.token('u-rep', ORG, SPEECH_READ);
  // PAGE_ROWS + 50 sessions over 10 days, ten at a time sharing one start (ties across a page boundary).
  const n = PAGE_ROWS + 50;
  mine = await seedAnalysedSessions(srv, {
    orgId: ORG, userId: 'u-rep', n, startAt: T0, stepMs: 0, startOf: (i) => T0 + Math.floor(i / 10) * Math.floor((10 * DAY) / (n / 10)), title: (i) => `${TRICKY[i % TRICKY.length]} #${i}`, scored: (i) => i % 11 !== 0,
  });
  // Some analysed with fluency analysis off: their stored zeros are no count (the report's null).
  const fluencyOff = mine.filter((_, i) => i % 17 === 5);
  await srv.entities.client.query(`UPDATE speech_sessions SET settings = '{"enableFluencyAnalysis": false}'::jsonb WHERE session_id = ANY($1::uuid[])`, [fluencyOff.map((s) => s.id)]);
  for (const s of fluencyOff) s.fillers = null;
  // Another user of the org, and another org with the same user id: never in u-rep's report.
  await seedAnalysedSessions(srv, { orgId: ORG, userId: 'u-other', n: 30, startAt: T0, stepMs: 3_600_000 });
  await seedAnalysedSessions(srv, { orgId: 'o-elsewhere', userId: 'u-rep', n: 30, startAt: T0, stepMs: 3_600_000 });
});
after(async () => {
  await srv?.close();
});

async function get(path: string, tok = token): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(srv.baseUrl + path, { headers: { authorization: `Bearer ${tok}` } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

const byStart = (a: SeededSession, b: SeededSession) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const range = `startDate=2026-03-01&endDate=2026-03-31`;

test('CSV: a header row, then every session of the period in start order; it parses back to the seeded values (titles with commas, quotes, newlines)', async () => {
  const res = await get(`/v1/reports/sessions?${range}&format=csv`);
  assert.equal(res.status, 200, res.text.slice(0, 300));
  assert.match(res.type ?? '', /^text\/csv/);
  const [header, ...rows] = parseCsv(res.text);
  assert.deepEqual(header, [...REPORT_COLUMNS]);
  const want = [...mine].sort(byStart);
  assert.equal(rows.length, want.length, 'one row per session of u-rep (none of u-other or o-elsewhere)');
  const col = (name: (typeof REPORT_COLUMNS)[number]) => REPORT_COLUMNS.indexOf(name);
  rows.forEach((r, i) => {
    const s = want[i];
    assert.equal(r[col('id')], s.id, `row ${i}`);
    assert.equal(r[col('title')], s.title);
    assert.equal(r[col('userId')], 'u-rep');
    assert.equal(r[col('startedAt')], new Date(s.startedAt).toISOString());
    assert.equal(Number(r[col('duration')]), s.durationMs / 1000);
    assert.equal(Number(r[col('wordCount')]), s.wordCount);
    assert.equal(Number(r[col('wpm')]), s.wpm);
    assert.equal(Number(r[col('totalPauses')]), s.pauses);
    assert.equal(r[col('fillerWords')], s.fillers === null ? '' : String(s.fillers), `row ${i}: fillers`);
    assert.equal(r[col('score')], s.overall === null ? '' : String(s.overall), 'an unscored session has an empty score');
    assert.equal(r[col('clarity')], s.overall === null ? '' : String(s.overall + 1));
  });
});

test('JSON: the document\'s report (summary, trends, downloadUrl) and the same sessions as the CSV', async () => {
  const [json, csv] = await Promise.all([get(`/v1/reports/sessions?${range}`), get(`/v1/reports/sessions?${range}&format=csv`)]);
  assert.equal(json.status, 200, json.text.slice(0, 300));
  const body = JSON.parse(json.text);
  assert.equal(body.success, true);
  assert.equal(typeof body.meta.requestId, 'string');
  const report = body.data.report;
  assert.equal(report.type, 'sessions');
  // Inclusive, as the document's November report ends 2023-11-30T23:59:59Z: March ends on March 31.
  assert.deepEqual(report.period, { start: '2026-03-01T00:00:00.000Z', end: '2026-03-31T23:59:59.999Z' });
  const scored = mine.filter((s) => s.overall !== null);
  assert.equal(report.summary.totalSessions, mine.length);
  assert.equal(report.summary.totalDuration, mine.reduce((a, s) => a + s.durationMs, 0) / 1000);
  assert.equal(report.summary.averageScore, Number((scored.reduce((a, s) => a + s.overall!, 0) / scored.length).toFixed(1)));
  // Every session is in the first half of March, so there is no later half to compare.
  assert.equal(report.summary.improvement, null);
  const days = new Set(mine.map((s) => new Date(s.startedAt).toISOString().slice(0, 10)));
  assert.deepEqual(report.trends.duration.map((d: { date: string }) => d.date), [...days].sort());
  assert.ok(report.trends.scores.every((d: { averageScore: number }) => d.averageScore >= 50 && d.averageScore <= 99));
  const dl = new URL(report.downloadUrl);
  assert.equal(dl.searchParams.get('format'), 'csv');
  // The download covers the same period: the same report id and period as JSON, and its file is named by the period's days.
  dl.searchParams.set('format', 'json');
  const again = JSON.parse((await get(`${dl.pathname}${dl.search}`)).text).data.report;
  assert.deepEqual([again.id, again.period], [report.id, report.period]);
  assert.match(String((await fetch(report.downloadUrl, { headers: { authorization: `Bearer ${token}` } })).headers.get('content-disposition')), /filename="sessions-2026-03-01-2026-03-31\.csv"/);
  const [, ...rows] = parseCsv(csv.text);
  assert.equal(report.sessions.length, rows.length);
  report.sessions.forEach((s: Record<string, unknown>, i: number) => {
    assert.deepEqual(REPORT_COLUMNS.map((c) => (s[c] === null ? '' : String(s[c]))), rows[i], `session ${i}`);
  });
});

test('the period: only sessions whose audio began in [startDate, endDate); a later window is empty', async () => {
  const day3 = new Date(T0 + 3 * DAY).toISOString().slice(0, 10);
  const res = await get(`/v1/reports/sessions?startDate=2026-03-01&endDate=${day3}&format=csv`);
  const rows = parseCsv(res.text).slice(1);
  const end = Date.parse(`${day3}T00:00:00Z`) + DAY;
  assert.equal(rows.length, mine.filter((s) => s.startedAt < end).length);
  assert.ok(rows.length > 0 && rows.length < mine.length);
  const empty = await get('/v1/reports/sessions?startDate=2026-05-01&endDate=2026-05-31&format=csv');
  assert.deepEqual(parseCsv(empty.text), [[...REPORT_COLUMNS]]);
  const emptyJson = JSON.parse((await get('/v1/reports/sessions?startDate=2026-05-01&endDate=2026-05-31')).text);
  assert.deepEqual(emptyJson.data.report.sessions, []);
  assert.equal(emptyJson.data.report.summary.totalSessions, 0);
  assert.equal(emptyJson.data.report.summary.averageScore, null);
});

test('tenants: an org admin gets the whole org or one user; another user needs admin:org; another org sees none of these', async () => {
  const admin = srv.token('boss', ORG, ['read:speech', 'admin:org']);
  const all = parseCsv((await get(`/v1/reports/sessions?${range}&format=csv`, admin)).text).slice(1);
  assert.equal(all.length, mine.length + 30);
  const other = parseCsv((await get(`/v1/reports/sessions?${range}&format=csv&user_id=u-other`, admin)).text).slice(1);
  assert.equal(other.length, 30);
  assert.ok(other.every((r) => r[1] === 'u-other'));
  const refused = await get(`/v1/reports/sessions?${range}&user_id=u-other`);
  assert.equal(refused.status, 403);
  const elsewhere = parseCsv((await get(`/v1/reports/sessions?${range}&format=csv`, srv.token('u-rep', 'o-elsewhere', SPEECH_READ))).text).slice(1);
  assert.equal(elsewhere.length, 30);
  const ids = new Set(mine.map((s) => s.id));
  assert.ok(elsewhere.every((r) => !ids.has(r[0])));
});

test('pdf is 406 not_acceptable naming the field; a reversed or over-long period is 400; no token is 401', async () => {
  const pdf = await get(`/v1/reports/sessions?${range}&format=pdf`);
  assert.equal(pdf.status, 406);
  const err = JSON.parse(pdf.text).error;
  assert.equal(err.code, 'not_acceptable');
  assert.equal(err.details[0].field, '?format');
  assert.equal(err.details[0].reason, 'unsupported_report_format');
  assert.equal((await get('/v1/reports/sessions?startDate=2026-03-10&endDate=2026-03-01')).status, 400);
  assert.equal((await get('/v1/reports/sessions?startDate=2025-01-01&endDate=2026-03-01')).status, 400);
  assert.equal((await fetch(`${srv.baseUrl}/v1/reports/sessions`)).status, 401);
});
