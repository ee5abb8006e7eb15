// GET /v1/search/sessions: the speech-coaching document's transcript search. The query is
// split as the index (migration 0017) splits transcripts (lower case; letters and digits with
// single inner apostrophes; anything else separates words) into up to MAX_WORDS words. A session matches when every word of the
// query occurs, as a whole word, in its final transcript segments. The ClickHouse reads are in
// store/speech-search.ts: matching and ranking from the inverted index speech_terms (migration
// 0011: a primary-key range per word, positions for the phrase), paged there (count() OVER ()
// for the total); then the page's matching segments and their words give the highlights with
// times, while PostgreSQL gives titles, types and dates, in parallel.
//
// Relevance (0..1, documented in the README): 0.5 when the words occur together as the
// phrase in one segment, plus 0.5 x min(1, occurrences of the query's words / (2 x words)).
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { splitWords } from '../lib/words.js';
import { Scopes } from '../lib/principal.js';
import { toNumber } from '../store/clickhouse.js';
import { pageDetails, searchTranscripts, type HighlightSegment as SegmentRow, type HighlightWord as WordRow } from '../store/speech-search.js';
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

/** The query's words, as the index (migration 0017) splits a segment's text: letters and digits with single inner apostrophes, lower case. */
export function searchWords(q: string): string[] {
  return q.toLowerCase().replace(/’/g, "'").match(SEARCH_WORD) ?? [];
}

/** A word: letters and digits, with single inner apostrophes (migration 0017's regular expression). */
const SEARCH_WORD = /[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*/gu;

interface SearchQuery {
  q: string;
  sort?: (typeof SEARCH_SORTS)[number];
  page?: number;
  limit?: number;
  filters?: string;
  user_id?: string;
}

export interface Highlight {
  text: string;
  start: number | null;
  end: number | null;
}

/**
 * Up to MAX_HIGHLIGHTS highlights from a session's matching segments (in time order): the first
 * occurrence of the phrase in a segment, else of its first query word present, with
 * CONTEXT_WORDS words either side, as the segment's text writes them ("Americans:"); times from
 * the words' timings (seconds) when the stored words are that text's (lib/words.ts splitWords:
 * speech_words holds each word's normalised form, one per word of the text), else the segment's.
 */
export function highlightsOf(words: string[], segments: SegmentRow[], wordsOf: (seg: SegmentRow) => WordRow[]): Highlight[] {
  const out: Highlight[] = [];
  for (const seg of segments) {
    if (out.length >= MAX_HIGHLIGHTS) break;
    const timed = wordsOf(seg);
    // Tokens as written ("Americans:", "—"), shown as they are; each stored word is the
    // normalised form of one of them (lib/words.ts: the tokens splitWords keeps), which gives
    // the tokens their times when the stored words are that text's.
    const written = seg.text.split(/\s+/).filter((t) => t !== '');
    const tokens = written.length > 0 ? written : timed.map((w) => w.text);
    // Per token, the index of its stored word; null for a token no word stands for ("—").
    const timedAt: Array<number | null> = [];
    let n = 0;
    let timesFit = timed.length > 0;
    for (const t of tokens) {
      const norms = written.length === 0 ? [t] : splitWords(t).map((w) => w.norm);
      if (norms.length === 0) {
        timedAt.push(null);
        continue;
      }
      if (norms.length !== 1 || timed[n]?.text !== norms[0]) timesFit = false;
      timedAt.push(n++);
    }
    if (n !== timed.length) timesFit = false;
    // Matched by their words as the query's are normalised (a token may hold several, "well-known").
    const said: Array<{ word: string; token: number }> = [];
    tokens.forEach((t, token) => {
      for (const word of searchWords(t)) said.push({ word, token });
    });
    let at = -1;
    let len = words.length;
    for (let i = 0; i + words.length <= said.length && at < 0; i++) if (words.every((w, k) => said[i + k].word === w)) at = i;
    if (at < 0) {
      len = 1;
      at = said.findIndex((s) => words.includes(s.word));
    }
    if (at < 0) continue;
    const first = said[at].token;
    const last = said[at + len - 1].token;
    const a = Math.max(0, first - CONTEXT_WORDS);
    const b = Math.min(tokens.length, last + 1 + CONTEXT_WORDS);
    const sec = (v: number | string) => roundTo(toNumber(v) / 1000, 3);
    const inRange = timedAt.slice(a, b).filter((i): i is number => i !== null);
    out.push(
      timesFit && inRange.length > 0
        ? { text: tokens.slice(a, b).join(' '), start: sec(timed[inRange[0]].start_ms), end: sec(timed[inRange[inRange.length - 1]].end_ms) }
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
      // Matching and ranking from the inverted index of 0011 (store/speech-search.ts); then the
      // page's scores and highlight rows and its PostgreSQL titles, independent reads, in parallel.
      const { matches, total } = await searchTranscripts(clickhouseOf(ctx), ctx.database, {
        orgId: p.orgId, userId: user, words, from, to, sort, limit, offset: (page - 1) * limit,
      });
      const ids = matches.map((m) => m.sessionId);
      const [{ overall, segments: segs, words: timed }, described] = ids.length === 0
        ? [{ overall: new Map<string, number>(), segments: [], words: [] }, new Map()] as const
        : await Promise.all([pageDetails(clickhouseOf(ctx), ctx.database, p.orgId, matches), speechRepo(ctx).describeMany(p.orgId, ids)]);
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
        const s = described.get(m.sessionId);
        if (!s) continue; // deleted from PostgreSQL; its ClickHouse rows are going
        results.push({
          id: m.sessionId,
          title: s.title,
          type: s.type,
          score: overall.has(m.sessionId) ? roundTo(overall.get(m.sessionId)!, 1) : null,
          duration: roundTo(s.audioDurationS, 3),
          createdAt: new Date(s.createdAt).toISOString(),
          highlights: highlightsOf(words, segsOf.get(m.sessionId) ?? [], (seg) => wordsOf.get(`${seg.session_id}/${toNumber(seg.segment_index)}`) ?? []),
          relevance: m.relevance,
          // Attune's additions.
          userId: m.userId,
          startedAt: new Date(m.startedMs).toISOString(),
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
