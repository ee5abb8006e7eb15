// Transcript search's ClickHouse reads (GET /v1/search/sessions, issue 13), kept here so the
// route holds no SQL. Matching and ranking read only the inverted index speech_terms (migration
// 0011): the rows of the query's words are a primary-key range (org, user, term), so a rare
// phrase reads a few rows and a common word its own rows, never the segments' text; positions
// give the phrase and occurrence counts. The page's scores, segments (from the index's segment
// rows) and timed words follow in one more query. What the index trusts about writers (a final segment's text is not replaced
// by another without deleting the session's rows) is in 0011's header.
//
// Measured before this (0009's n-gram skip index: candidates, then FINAL over their segments'
// text; bench/speech-search.bench.ts, 10,000 transcripts, load average 2-7): a phrase p99
// 306-556 ms, a word in 9,832 transcripts p99 463-800 ms. The README's "Transcript search" has
// the figures with this index.
import type { ClickHouseClient } from './clickhouse.js';
import { toNumber } from './clickhouse.js';
import { SpeechTables } from './rows.js';

export type SearchSort = 'relevance' | 'date' | 'score';

export interface TranscriptSearch {
  orgId: string;
  /** One user's sessions; null: the whole org's (an org admin). */
  userId: string | null;
  /** Query words, split as the index splits transcripts (0017; duplicates and order kept). */
  words: string[];
  /** Audio start bounds, epoch ms (from inclusive, to exclusive); null: unbounded. */
  from: number | null;
  to: number | null;
  sort: SearchSort;
  limit: number;
  offset: number;
}

export interface SearchMatch {
  sessionId: string;
  userId: string;
  startedMs: number;
  /** 0..1: 0.5 for the phrase in one segment, plus 0.5 x min(1, occurrences / (2 x words)). */
  relevance: number;
  /** Segments with a current match, in time order (for the highlights). */
  segments: number[];
}

export interface HighlightSegment {
  session_id: string;
  segment_index: number | string;
  start_ms: number | string;
  end_ms: number | string;
  text: string;
}

export interface HighlightWord {
  session_id: string;
  segment_index: number | string;
  text: string;
  start_ms: number | string;
  end_ms: number | string;
}

interface MatchRow {
  session_id: string;
  user_id: string;
  started_ms: number | string;
  relevance: number;
  segments: Array<number | string>;
  total: number | string;
}

/**
 * The ranked page of matching sessions and the number of matches in all. The scores of the
 * page come with its highlight rows (pageDetails); sorted by score, the ranking joins them.
 */
export async function searchTranscripts(ch: ClickHouseClient, database: string, s: TranscriptSearch): Promise<{ matches: SearchMatch[]; total: number }> {
  const q = matchQueries(database, s);
  const query =
    s.sort === 'score'
      ? `SELECT m.session_id AS session_id, m.uid AS user_id, m.started_ms AS started_ms, m.relevance AS relevance,
                m.segments AS segments, count() OVER () AS total
         FROM (${q.ranked}) AS m
         LEFT JOIN (${latestScores(database, q.scope, `SELECT session_id FROM (${q.hits})`)}) AS sc ON m.session_id = sc.session_id
         ORDER BY sc.n > 0 DESC, sc.overall DESC, m.started_ms DESC, m.session_id
         LIMIT {limit:UInt32} OFFSET {offset:UInt32}`
      : `SELECT session_id, uid AS user_id, started_ms, relevance, segments, count() OVER () AS total
         FROM (${q.ranked})
         ORDER BY ${s.sort === 'date' ? 'started_ms DESC, session_id' : 'relevance DESC, started_ms DESC, session_id'}
         LIMIT {limit:UInt32} OFFSET {offset:UInt32}`;
  const rs = await ch.query({ query, query_params: { ...q.params, limit: s.limit, offset: s.offset }, format: 'JSONEachRow' });
  const rows = await rs.json<MatchRow>();
  let total = rows.length > 0 ? toNumber(rows[0].total) : 0;
  if (rows.length === 0 && s.offset > 0) {
    // Past the last page: the total from a count of the same matches.
    const c = await ch.query({ query: `SELECT count() AS n FROM (${q.ranked})`, query_params: q.params, format: 'JSONEachRow' });
    total = toNumber((await c.json<{ n: number | string }>())[0]?.n ?? 0);
  }
  return {
    total,
    matches: rows.map((r) => ({
      sessionId: r.session_id,
      userId: r.user_id,
      startedMs: toNumber(r.started_ms),
      relevance: r.relevance,
      segments: r.segments.map(toNumber),
    })),
  };
}

/**
 * Each session's latest overall score and its number of score rows (0: unscored). argMax over
 * every stored version is what FINAL then argMax gives, without FINAL's merge of the key ranges
 * read (sorted by score, those of thousands of sessions).
 */
function latestScores(database: string, scope: string, ids: string): string {
  return `SELECT session_id, argMax(overall, computed_at) AS overall, count() AS n FROM ${database}.${SpeechTables.speechScores}
          WHERE ${scope} AND session_id IN (${ids}) GROUP BY session_id`;
}

/**
 * The SQL of matching and ranking. Parameters: org, user, from, to, words (the query's, in
 * order, duplicates kept), distinct (its distinct words).
 */
export function matchQueries(database: string, s: Pick<TranscriptSearch, 'orgId' | 'userId' | 'words' | 'from' | 'to'>) {
  const distinct = [...new Set(s.words)];
  const scope = 'org_id = {org:String}' + (s.userId === null ? '' : ' AND user_id = {user:String}');
  const dates =
    (s.from === null ? '' : ' AND audio_started_at >= fromUnixTimestamp64Milli({from:Int64})') +
    (s.to === null ? '' : ' AND audio_started_at < fromUnixTimestamp64Milli({to:Int64})');
  // The query's words' rows of the index: a primary-key range per word (org, user, term),
  // grouped by session. groupUniqArray keeps one copy of a word stored by several versions of
  // its segment (the worker writes each final segment twice, as recognised and with its word
  // count) until their merge; see 0011 for why no version check against speech_segments.
  const hits = `SELECT session_id, user_id, audio_started_at, segment_index, word_index, term
                FROM ${database}.${SpeechTables.speechTerms} WHERE ${scope} AND term IN {distinct:Array(String)}${dates}`;
  // Per session: every query word must occur; occurrences of each; the phrase is the first
  // word at (segment, p) and word j at (segment, p + j) for every j.
  const ranked = `SELECT session_id, any(user_id) AS uid, toUnixTimestamp64Milli(any(audio_started_at)) AS started_ms,
                         groupUniqArray((segment_index, word_index, term)) AS occ,
                         arrayMap(w -> arrayCount(x -> x.3 = w, occ), {words:Array(String)}) AS per_word,
                         arrayExists(x -> x.3 = {words:Array(String)}[1]
                           AND arrayAll(j -> has(occ, (x.1, toUInt32(x.2 + j), {words:Array(String)}[j + 1])), range(1, length({words:Array(String)}))), occ) AS phrase,
                         round(0.5 * phrase + 0.5 * least(1, arraySum(per_word) / (2 * length(per_word))), 3) AS relevance,
                         arraySort(arrayDistinct(arrayMap(x -> x.1, occ))) AS segments
                  FROM (${hits})
                  GROUP BY session_id
                  HAVING arrayAll(c -> c > 0, per_word)`;
  const params = { org: s.orgId, user: s.userId ?? '', from: s.from ?? 0, to: s.to ?? 0, words: s.words, distinct };
  return { scope, hits, ranked, params };
}

/**
 * What a page shows besides the ranking: its sessions' latest overall scores, their matching
 * segments (text and times: the segments' own rows in the index, 0011) and those segments'
 * timed words (speech_words). Every matching segment is read,
 * not only the first few: a highlight comes from the first of them whose words hold a query
 * word, and the timed words could in principle split differently from the text.
 *
 * One query, the three reads as branches of a UNION ALL: chDB runs one query at a time per
 * process, so three queries sent in parallel cost the sum of their fixed costs (measured:
 * 29 ms for three in parallel, 32 sequential, 23 as one query, for one session's segment).
 */
export async function pageDetails(
  ch: ClickHouseClient,
  database: string,
  orgId: string,
  matches: ReadonlyArray<Pick<SearchMatch, 'sessionId' | 'userId' | 'segments'>>,
): Promise<{ overall: Map<string, number>; segments: HighlightSegment[]; words: HighlightWord[] }> {
  const overall = new Map<string, number>();
  const segments: HighlightSegment[] = [];
  const words: HighlightWord[] = [];
  if (matches.length === 0) return { overall, segments, words };
  // org, user and session: the tables' ORDER BY prefix, so each read is a few key ranges, and
  // FINAL over the few segments of one page is cheap.
  const scope = 'org_id = {org:String} AND user_id IN {users:Array(String)}';
  const where = `${scope} AND session_id IN {ids:Array(String)} AND has({keys:Array(String)}, concat(session_id, '/', toString(segment_index)))`;
  const rs = await ch.query({
    query: `SELECT 'segment' AS kind, session_id, segment_index, start_ms, end_ms, text, 0 AS word_index, 0. AS overall
            FROM ${database}.${SpeechTables.speechTerms} FINAL WHERE ${where} AND term = ''
            UNION ALL
            SELECT 'word', session_id, segment_index, start_ms, end_ms, text, word_index, 0.
            FROM ${database}.${SpeechTables.speechWords} FINAL WHERE ${where}
            UNION ALL
            SELECT 'score', session_id, 0, 0, 0, '', 0, overall FROM (${latestScores(database, scope, '{ids:Array(String)}')})`,
    query_params: {
      org: orgId,
      users: [...new Set(matches.map((m) => m.userId))],
      ids: matches.map((m) => m.sessionId),
      keys: matches.flatMap((m) => m.segments.map((i) => `${m.sessionId}/${i}`)),
    },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<HighlightSegment & { kind: 'segment' | 'word' | 'score'; word_index: number | string; overall: number }>();
  const order = (a: { session_id: string; segment_index: number | string; word_index: number | string }, b: typeof a) =>
    a.session_id < b.session_id ? -1 : a.session_id > b.session_id ? 1 : toNumber(a.segment_index) - toNumber(b.segment_index) || toNumber(a.word_index) - toNumber(b.word_index);
  rows.sort(order);
  for (const r of rows) {
    const { session_id, segment_index, start_ms, end_ms, text } = r;
    if (r.kind === 'score') overall.set(session_id, r.overall);
    else if (r.kind === 'segment') segments.push({ session_id, segment_index, start_ms, end_ms, text });
    else words.push({ session_id, segment_index, start_ms, end_ms, text });
  }
  return { overall, segments, words };
}
