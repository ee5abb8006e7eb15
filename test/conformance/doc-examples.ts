// Reads the request and response examples out of a product document (markdown with ```http
// and ```json code blocks), so the conformance suites replay them as written instead of
// retyped copies that could drift from the document.
export interface DocBlock {
  lang: string;
  text: string;
  /** The `## ` and `### ` headings the block sits under. */
  section: string;
  subsection: string;
  /** A `**Response:**` line came after the previous block and before this one. */
  isResponse: boolean;
}

export interface DocRequest {
  section: string;
  subsection: string;
  method: string;
  /** Path with its query, placeholders ({session_id}, ...) as written. */
  target: string;
  headers: Record<string, string>;
  /** The body exactly as written ('' when none). */
  body: string;
  /** The documented response body, when the document gives one right after the request. */
  response: unknown | undefined;
}

export function docBlocks(markdown: string): DocBlock[] {
  const blocks: DocBlock[] = [];
  let section = '';
  let subsection = '';
  let responseMarker = false;
  const lines = markdown.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^```(\S*)\s*$/.exec(line);
    if (fence) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !/^```\s*$/.test(lines[i])) body.push(lines[i++]);
      blocks.push({ lang: fence[1], text: body.join('\n'), section, subsection, isResponse: responseMarker });
      responseMarker = false;
      continue;
    }
    if (line.startsWith('## ')) {
      section = line.slice(3).trim();
      subsection = '';
    } else if (line.startsWith('### ')) subsection = line.slice(4).trim();
    else if (/^\*\*Response:?\*\*/.test(line.trim())) responseMarker = true;
  }
  return blocks;
}

const REQUEST_LINE = /^(GET|POST|PUT|PATCH|DELETE)\s+(\S+)/;

/** Every ```http block that starts with a request line, with the ```json response that follows it, if any. */
export function docRequests(markdown: string): DocRequest[] {
  const blocks = docBlocks(markdown);
  const out: DocRequest[] = [];
  for (let b = 0; b < blocks.length; b++) {
    const block = blocks[b];
    if (block.lang !== 'http') continue;
    const lines = block.text.split('\n');
    const m = REQUEST_LINE.exec(lines[0] ?? '');
    if (!m) continue;
    let target = m[2];
    let i = 1;
    // Query parameters continued on indented lines: "  ?start_date=...", "  &end_date=...".
    while (i < lines.length && /^\s+[?&]/.test(lines[i])) target += lines[i++].trim();
    const headers: Record<string, string> = {};
    for (; i < lines.length && lines[i].trim() !== ''; i++) {
      const h = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(lines[i]);
      if (h) headers[h[1].toLowerCase()] = h[2];
    }
    const body = lines.slice(i + 1).join('\n').trim();
    const next = blocks[b + 1];
    const response = next && next.lang === 'json' && next.isResponse && next.subsection === block.subsection ? JSON.parse(next.text) : undefined;
    out.push({ section: block.section, subsection: block.subsection, method: m[1], target, headers, body, response });
  }
  return out;
}

/** The rows of the markdown table that follows heading `### title` (cells trimmed, backticks removed). */
export function docTable(markdown: string, title: string): Record<string, string>[] {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((l) => l.trim() === `### ${title}`);
  if (start < 0) return [];
  const rows: string[][] = [];
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i].trim();
    if (l.startsWith('#')) break;
    if (!l.startsWith('|')) {
      if (rows.length > 0) break;
      continue;
    }
    if (/^\|[\s|:-]+\|$/.test(l)) continue;
    rows.push(l.slice(1, -1).split('|').map((c) => c.trim().replace(/`/g, '')));
  }
  const [head, ...body] = rows;
  return body.map((r) => Object.fromEntries(head.map((h, k) => [h, r[k]])));
}

export interface FieldCheck {
  path: string;
  ok: boolean;
  problem?: string;
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Checks `actual` against the documented example `doc`: every documented field present, with
 * the documented JSON type (a documented date-time or date string must be one too); arrays'
 * items against the documented first item, and a documented non-empty array must not be empty.
 * `nullable` lists the paths (a.b[].c) allowed to be null, each with the reason.
 */
export function checkShape(doc: unknown, actual: unknown, path = '', nullable: Record<string, string> = {}, out: FieldCheck[] = []): FieldCheck[] {
  const fail = (problem: string) => out.push({ path: path || '/', ok: false, problem });
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc)) {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      if (path) fail(`expected an object, got ${JSON.stringify(actual)}`);
      else fail('expected an object body');
      return out;
    }
    for (const [k, v] of Object.entries(doc)) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in (actual as Record<string, unknown>))) {
        out.push({ path: p, ok: false, problem: 'missing' });
        continue;
      }
      const a = (actual as Record<string, unknown>)[k];
      if (a === null && v !== null) {
        if (p in nullable) out.push({ path: p, ok: true });
        else out.push({ path: p, ok: false, problem: `null (documented ${JSON.stringify(v)})` });
        continue;
      }
      if (v !== null && typeof v === 'object') {
        out.push({ path: p, ok: true });
        checkShape(v, a, p, nullable, out);
      } else checkLeaf(v, a, p, out);
    }
    return out;
  }
  if (Array.isArray(doc)) {
    if (!Array.isArray(actual)) return fail(`expected an array, got ${JSON.stringify(actual)}`), out;
    if (doc.length === 0) return out;
    if (actual.length === 0) return fail('empty array: its items cannot be checked'), out;
    // Every actual item is checked; each documented item field is counted once.
    const perItem = actual.map((item) => checkShape(doc[0], item, `${path}[]`, nullable, []));
    const first = perItem[0];
    for (let f = 0; f < first.length; f++) {
      const bad = perItem.find((checks) => checks[f] && !checks[f].ok);
      out.push(bad ? bad[f] : first[f]);
    }
    return out;
  }
  checkLeaf(doc, actual, path, out);
  return out;
}

function checkLeaf(doc: unknown, actual: unknown, path: string, out: FieldCheck[]): void {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(doc) !== kind(actual)) {
    out.push({ path, ok: false, problem: `expected ${kind(doc)}, got ${JSON.stringify(actual)}` });
    return;
  }
  if (typeof doc === 'string' && ISO_DATE_TIME.test(doc) && !(typeof actual === 'string' && ISO_DATE_TIME.test(actual))) {
    out.push({ path, ok: false, problem: `expected an ISO-8601 date-time, got ${JSON.stringify(actual)}` });
    return;
  }
  if (typeof doc === 'string' && ISO_DATE.test(doc) && !(typeof actual === 'string' && ISO_DATE.test(actual))) {
    out.push({ path, ok: false, problem: `expected a date YYYY-MM-DD, got ${JSON.stringify(actual)}` });
    return;
  }
  out.push({ path, ok: true });
}
