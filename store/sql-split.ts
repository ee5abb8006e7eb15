// Splits a SQL script into statements. ClickHouse's HTTP interface runs one statement per
// request, so migration files are cut on `;` — but only on a `;` that is outside string
// literals ('…' with '' or \' escapes), quoted identifiers ("…", `…`) and comments
// (-- to end of line, # to end of line, /* … */), because COMMENTs and example queries in
// comments contain semicolons.

/** Returns the statements of `sql` without their trailing `;`, trimmed; statements made only of comments are dropped. */
export function splitSqlStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let hasCode = false; // whether the current statement has anything besides comments and blanks
  let i = 0;
  const n = sql.length;

  const push = (end: number) => {
    const text = sql.slice(start, end).trim();
    if (hasCode && text.length > 0) statements.push(text);
    hasCode = false;
  };

  while (i < n) {
    const c = sql[i];
    const next = i + 1 < n ? sql[i + 1] : '';
    if (c === '-' && next === '-') {
      i = skipToLineEnd(sql, i);
    } else if (c === '#') {
      i = skipToLineEnd(sql, i);
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`unterminated /* comment starting at offset ${i}`);
      i = end + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      hasCode = true;
      i = skipQuoted(sql, i, c);
    } else if (c === ';') {
      push(i);
      i += 1;
      start = i;
    } else {
      if (!/\s/.test(c)) hasCode = true;
      i += 1;
    }
  }
  push(n);
  return statements;
}

function skipToLineEnd(sql: string, i: number): number {
  const end = sql.indexOf('\n', i);
  return end < 0 ? sql.length : end + 1;
}

/** Index just past the closing quote of the quoted run that opens at `i`. */
function skipQuoted(sql: string, i: number, quote: string): number {
  let j = i + 1;
  while (j < sql.length) {
    const c = sql[j];
    if (c === '\\') {
      j += 2;
    } else if (c === quote) {
      if (sql[j + 1] === quote) j += 2; // doubled quote: an escaped quote, not the end
      else return j + 1;
    } else {
      j += 1;
    }
  }
  throw new Error(`unterminated ${quote} quote starting at offset ${i}`);
}
