// GET /v1/search/sessions: the speech-coaching document's transcript search. The query is
// normalised as transcripts are stored (lower case, letters, digits and apostrophes; other
// characters are spaces) into up to MAX_WORDS words. A session matches when every word of the
// query occurs, as a whole word, in its final transcript segments. ClickHouse finds them in one
// grouped read of speech_segments (org, then user: the ORDER BY prefix; then the n-gram bloom
// filter skip index of 0009 through multiSearchAny), ranks and pages them (count() OVER () for
// the total), and a second read of the page's matching segments and their words gives the
// highlights with times. Titles, types and dates come from PostgreSQL, for the page only.
//
// Relevance (0..1, documented in the README): 0.5 when the words occur together as the
// phrase in one segment, plus 0.5 x min(1, occurrences of the query's words / (2 x words)).
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { Scopes } from '../lib/principal.js';
import { toNumber } from '../store/clickhouse.js';
import { SpeechTables } from '../store/rows.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import { docEnvelopeSchema, openObject, withDocEnvelope } from '../http/doc-envelope.js';
import { dateBound, roundTo, speechRepo } from './speech-sessions.js';

export const MAX_WORDS = 10;
/** Highlights per result, and words of context either side of a match. */
export const MAX_HIGHLIGHTS = 3;
export const CONTEXT_WORDS = 3;
export const SEARCH_SORTS = ['relevance', 'date', 'score'] as const;

/** The query's words, normalised as transcripts are stored. */
export function searchWords(q: string): string[] {
  return q
    .toLowerCase()
    .replace(/[^\p{L}\p{N}']+/gu, ' ')
    .trim()
    .split(' ')
    .filter((w) => w !== '');
}

interface SearchQuery {
  q: string;
  sort?: (typeof SEARCH_SORTS)[number];
  page?: number;
  limit?: number;
  filters?: string;
  user_id?: string;
}

interface MatchRow {
  session_id: string;
  user_id: string;
  started_ms: number | string;
  relevance: number;
  overall: number | null;
  total: number | string;
}

interface SegmentRow {
  session_id: string;
  segment_index: number | string;
  start_ms: number | string;
  end_ms: number | string;
  text: string;
}

interface WordRow {
  session_id: string;
  segment_index: number | string;
  text: string;
  start_ms: number | string;
  end_ms: number | string;
}

export interface Highlight {
  text: string;
  start: number | null;
  end: number | null;
}

/**
 * Up to MAX_HIGHLIGHTS highlights from a session's matching segments (in time order): the first
 * occurrence of the phrase in a segment, else of its first query word present, with
 * CONTEXT_WORDS words either side; times from the words' timings (seconds), or the segment's
 * when it has no words stored.
 */
export function highlightsOf(words: string[], segments: SegmentRow[], wordsOf: (seg: SegmentRow) => WordRow[]): Highlight[] {
  const out: Highlight[] = [];
  for (const seg of segments) {
    if (out.length >= MAX_HIGHLIGHTS) break;
    const timed = wordsOf(seg);
    const tokens = timed.length > 0 ? timed.map((w) => w.text) : seg.text.split(' ').filter((t) => t !== '');
    let at = -1;
    let len = words.length;
    for (let i = 0; i + words.length <= tokens.length && at < 0; i++) if (words.every((w, k) => tokens[i + k] === w)) at = i;
    if (at < 0) {
      len = 1;
      at = tokens.findIndex((t) => words.includes(t));
    }
    if (at < 0) continue; // matched as a substring only (multiSearchAny), not as a word
    const a = Math.max(0, at - CONTEXT_WORDS);
    const b = Math.min(tokens.length, at + len + CONTEXT_WORDS);
    const sec = (v: number | string) => roundTo(toNumber(v) / 1000, 3);
    out.push(
      timed.length > 0
        ? { text: tokens.slice(a, b).join(' '), start: sec(timed[a].start_ms), end: sec(timed[b - 1].end_ms) }
        : { text: tokens.slice(a, b).join(' '), start: sec(seg.start_ms), end: sec(seg.end_ms) },
    );
  }
  return out;
}

export async function registerSpeechSearchRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Querystring: SearchQuery }>(
    '/v1/search/sessions',
    {
      config: { auth: { scope: Scopes.readSpeech } },
      schema: {
        tags: ['speech'],
        summary: "Search the caller's speech sessions by transcript (an org admin: the org's, or one user's with user_id).",
        description:
          `A session matches when every word of q (at most ${MAX_WORDS}; case and punctuation ignored) occurs as a whole word in its final transcript. ` +
          'sort: relevance (default; phrase 0.5 + occurrences up to 0.5), date (newest audio first) or score (latest overall score, unscored last). ' +
          "The document's `data.results[]` (with highlights {text, start, end} in seconds) and `data.pagination` {page, limit, total, pages}. " +
          'filters: a JSON object with startDate and/or endDate (when the audio began).',
        security: [{ bearerAuth: [] }],
        querystring: {
          type: 'object',
          properties: {
            q: { type: 'string', minLength: 1, maxLength: 200, description: 'Words to find.' },
            sort: { type: 'string', enum: [...SEARCH_SORTS], default: 'relevance' },
            page: { type: 'integer', minimum: 1, maximum: 10_000, default: 1 },
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            filters: { type: 'string', maxLength: 500, description: 'JSON object: {"startDate": "...", "endDate": "..."} (YYYY-MM-DD or ISO-8601).' },
            user_id: { type: 'string', maxLength: 128, description: 'Another user of the org (needs admin:org).' },
          },
          required: ['q'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: docEnvelopeSchema({
              type: 'object',
              properties: {
                results: { type: 'array', items: openObject },
                pagination: { type: 'object', properties: { page: { type: 'integer' }, limit: { type: 'integer' }, total: { type: 'integer' }, pages: { type: 'integer' } } },
              },
            }),
          },
          '4xx': errorBodySchema,
        },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const q = req.query;
      const words = searchWords(q.q);
      if (words.length === 0) throw new AttuneError('validation_error', 'q has no words to search for', [{ field: '?q', reason: 'invalid_value' }]);
      if (words.length > MAX_WORDS) throw new AttuneError('validation_error', `q has more than ${MAX_WORDS} words`, [{ field: '?q', reason: 'invalid_length' }]);
      const isAdmin = p.scopes.has(Scopes.adminOrg);
      if (q.user_id && !isAdmin && q.user_id !== p.userId) {
        throw new AttuneError('forbidden', "searching another user's sessions needs admin:org", [{ field: '?user_id', reason: 'missing_scope' }]);
      }
      const { from, to } = parseFilters(q.filters);
      const user = q.user_id ?? (isAdmin ? null : p.userId);
      const page = q.page ?? 1;
      const limit = q.limit ?? 20;
      const sort = q.sort ?? 'relevance';
      const segments = `${ctx.database}.${SpeechTables.speechSegments}`;
      const where =
        'org_id = {org:String}' +
        (user === null ? '' : ' AND user_id = {user:String}') +
        (from === null ? '' : ' AND audio_started_at >= fromUnixTimestamp64Milli({from:Int64})') +
        (to === null ? '' : ' AND audio_started_at < fromUnixTimestamp64Milli({to:Int64})') +
        ' AND is_final AND multiSearchAny(text, {words:Array(String)})';
      // Candidates first, without FINAL (which must merge the versions of every key range it
      // reads): sessions whose segments, all versions counted, hold every word, a superset of
      // those that match under FINAL; the FINAL read then covers only these sessions (session_id
      // follows org and user in the ORDER BY). Both reads use the skip index.
      const candidates = `SELECT session_id FROM ${segments} WHERE ${where} GROUP BY session_id
        HAVING arrayAll(c -> c > 0, sumForEach(arrayMap(w -> countSubstrings(concat(' ', text, ' '), w), {padded:Array(String)})))`;
      const order =
        sort === 'date' ? 'm.started_ms DESC, m.session_id'
        : sort === 'score' ? 'sc.n > 0 DESC, sc.overall DESC, m.started_ms DESC, m.session_id'
        : 'm.relevance DESC, m.started_ms DESC, m.session_id';
      const params = {
        org: p.orgId, user: user ?? '', from: from ?? 0, to: to ?? 0, words, limit, offset: (page - 1) * limit,
        padded: words.map((w) => ` ${w} `), phrase: ` ${words.join(' ')} `,
      };
      const ch = clickhouseOf(ctx);
      const rs = await ch.query({
        query: `SELECT m.session_id AS session_id, m.user_id AS user_id, m.started_ms AS started_ms, m.relevance AS relevance,
                       if(sc.n > 0, sc.overall, NULL) AS overall, count() OVER () AS total
                FROM (
                  SELECT session_id, any(user_id) AS user_id, toUnixTimestamp64Milli(any(audio_started_at)) AS started_ms,
                         sumForEach(arrayMap(w -> countSubstrings(t, w), {padded:Array(String)})) AS per_word,
                         countIf(position(t, {phrase:String}) > 0) AS phrase_segments,
                         round(0.5 * (phrase_segments > 0) + 0.5 * least(1, arraySum(per_word) / (2 * length(per_word))), 3) AS relevance
                  FROM (SELECT session_id, user_id, audio_started_at, concat(' ', text, ' ') AS t FROM ${segments} FINAL
                        WHERE ${where} AND session_id IN (${candidates}))
                  GROUP BY session_id
                  HAVING arrayAll(c -> c > 0, per_word)
                ) AS m
                LEFT JOIN (
                  SELECT session_id, argMax(overall, computed_at) AS overall, count() AS n
                  FROM ${ctx.database}.${SpeechTables.speechScores} FINAL
                  WHERE org_id = {org:String}${user === null ? '' : ' AND user_id = {user:String}'} AND session_id IN (${candidates})
                  GROUP BY session_id
                ) AS sc ON m.session_id = sc.session_id
                ORDER BY ${order}
                LIMIT {limit:UInt32} OFFSET {offset:UInt32}`,
        query_params: params,
        format: 'JSONEachRow',
      });
      const matches = await rs.json<MatchRow>();
      let total = matches.length > 0 ? toNumber(matches[0].total) : 0;
      if (matches.length === 0 && page > 1) {
        // Past the last page: the total from a count of the same matches.
        const c = await ch.query({
          query: `SELECT count() AS n FROM (SELECT session_id FROM (SELECT session_id, concat(' ', text, ' ') AS t FROM ${segments} FINAL WHERE ${where})
                  GROUP BY session_id HAVING arrayAll(c -> c > 0, sumForEach(arrayMap(w -> countSubstrings(t, w), {padded:Array(String)}))))`,
          query_params: params,
          format: 'JSONEachRow',
        });
        total = toNumber((await c.json<{ n: number | string }>())[0]?.n ?? 0);
      }

      const ids = matches.map((m) => m.session_id);
      const [segs, timed, described] = ids.length === 0 ? [[], [], new Map()] as const : await Promise.all([
        ch
          .query({
            query: `SELECT session_id, segment_index, start_ms, end_ms, text FROM ${segments} FINAL
                    WHERE org_id = {org:String} AND session_id IN {ids:Array(String)} AND is_final AND multiSearchAny(text, {words:Array(String)})
                    ORDER BY session_id, segment_index`,
            query_params: { org: p.orgId, ids, words },
            format: 'JSONEachRow',
          })
          .then((r) => r.json<SegmentRow>()),
        ch
          .query({
            query: `SELECT session_id, segment_index, text, start_ms, end_ms FROM ${ctx.database}.${SpeechTables.speechWords} FINAL
                    WHERE org_id = {org:String} AND session_id IN {ids:Array(String)}
                      AND (session_id, segment_index) IN (SELECT session_id, segment_index FROM ${segments} FINAL
                        WHERE org_id = {org:String} AND session_id IN {ids:Array(String)} AND is_final AND multiSearchAny(text, {words:Array(String)}))
                    ORDER BY session_id, segment_index, word_index`,
            query_params: { org: p.orgId, ids, words },
            format: 'JSONEachRow',
          })
          .then((r) => r.json<WordRow>()),
        speechRepo(ctx).describeMany(p.orgId, ids),
      ]);
      const segsOf = new Map<string, SegmentRow[]>();
      for (const s of segs) segsOf.set(s.session_id, [...(segsOf.get(s.session_id) ?? []), s]);
      const wordsOf = new Map<string, WordRow[]>();
      for (const w of timed) {
        const k = `${w.session_id}/${toNumber(w.segment_index)}`;
        const list = wordsOf.get(k);
        if (list) list.push(w);
        else wordsOf.set(k, [w]);
      }
      const results = [];
      for (const m of matches) {
        const s = described.get(m.session_id);
        if (!s) continue; // deleted from PostgreSQL; its ClickHouse rows are going
        results.push({
          id: m.session_id,
          title: s.title,
          type: s.type,
          score: m.overall === null ? null : roundTo(m.overall, 1),
          duration: roundTo(s.audioDurationS, 3),
          createdAt: new Date(s.createdAt).toISOString(),
          highlights: highlightsOf(words, segsOf.get(m.session_id) ?? [], (seg) => wordsOf.get(`${seg.session_id}/${toNumber(seg.segment_index)}`) ?? []),
          relevance: m.relevance,
          // Attune's additions.
          userId: m.user_id,
          startedAt: new Date(toNumber(m.started_ms)).toISOString(),
        });
      }
      return withDocEnvelope({}, { results, pagination: { page, limit, total, pages: Math.ceil(total / limit) } }, req, ctx.clock());
    },
  );
}

function parseFilters(raw: string | undefined): { from: number | null; to: number | null } {
  if (raw === undefined) return { from: null, to: null };
  let f: unknown;
  try {
    f = JSON.parse(raw);
  } catch {
    throw new AttuneError('validation_error', 'filters must be a JSON object', [{ field: '?filters', reason: 'invalid_json' }]);
  }
  if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new AttuneError('validation_error', 'filters must be a JSON object', [{ field: '?filters', reason: 'invalid_type' }]);
  const obj = f as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (k !== 'startDate' && k !== 'endDate') {
      throw new AttuneError('validation_error', `filters.${k} is not supported (startDate, endDate are)`, [{ field: `?filters.${k}`, reason: 'unknown_field' }]);
    }
    if (typeof obj[k] !== 'string') throw new AttuneError('validation_error', `filters.${k} must be a string`, [{ field: `?filters.${k}`, reason: 'invalid_type' }]);
  }
  const from = obj.startDate !== undefined ? dateBound(obj.startDate as string, 'startDate') : null;
  const to = obj.endDate !== undefined ? dateBound(obj.endDate as string, 'endDate') : null;
  if (from !== null && to !== null && from >= to) throw new AttuneError('validation_error', 'filters.startDate must be before filters.endDate', [{ field: '?filters.startDate', reason: 'invalid_range' }]);
  return { from, to };
}
