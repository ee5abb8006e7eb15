import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitSqlStatements } from './sql-split.js';

test('splits on semicolons and drops empty and comment-only statements', () => {
  assert.deepEqual(splitSqlStatements('SELECT 1;\n\n SELECT 2 ;;\n-- trailing comment;\n'), ['SELECT 1', 'SELECT 2']);
});

test('keeps semicolons inside string literals, with doubled and backslash-escaped quotes', () => {
  const sql = "CREATE TABLE t (a String COMMENT 'x; it''s; \\'y;') COMMENT 'a;b'; SELECT 2";
  assert.deepEqual(splitSqlStatements(sql), [
    "CREATE TABLE t (a String COMMENT 'x; it''s; \\'y;') COMMENT 'a;b'",
    'SELECT 2',
  ]);
});

test('keeps semicolons inside quoted identifiers and comments', () => {
  const sql = 'SELECT "a;b", `c;d` -- e; f\nFROM t /* g; h */ WHERE 1 # i; j\n; SELECT 3';
  const parts = splitSqlStatements(sql);
  assert.equal(parts.length, 2);
  assert.ok(parts[0].startsWith('SELECT "a;b", `c;d`'));
  assert.ok(parts[0].includes('/* g; h */'));
  assert.equal(parts[1], 'SELECT 3');
});

test('a statement without a final semicolon is kept', () => {
  assert.deepEqual(splitSqlStatements('SELECT 1; SELECT 2'), ['SELECT 1', 'SELECT 2']);
});

test('unterminated strings and comments are refused rather than split wrongly', () => {
  assert.throws(() => splitSqlStatements("SELECT 'abc; SELECT 2"), /unterminated ' quote/);
  assert.throws(() => splitSqlStatements('SELECT 1 /* abc; SELECT 2'), /unterminated \/\* comment/);
});
