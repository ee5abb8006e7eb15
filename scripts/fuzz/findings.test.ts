// What schemathesis found (scripts/fuzz/schemathesis.sh), each reproduced against a real
// Attune: every one of these was a 500 before, and is a coded 400 now.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_SCOPES, startTestAttune, type TestAttune } from '../../test/attune.js';
import { jsonBytesHaveNul, unstorableJsonText } from '../../lib/text-limits.js';

let app: TestAttune;
let token: string;

before(async () => {
  app = await startTestAttune();
  token = app.token('u-fuzz', 'o-fuzz', [...ALL_SCOPES, 'admin:org']);
});
after(async () => {
  await app?.cleanup();
});

function assertInvalidText(res: { status: number; body: any }, field: string, what: RegExp = /NUL/) {
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.equal(res.body.error.code, 'validation_error');
  assert.equal(res.body.error.details[0].reason, 'invalid_text');
  assert.equal(res.body.error.details[0].field, field);
  assert.match(res.body.error.message, what);
}

test('a NUL (\\u0000) in any string of a JSON body is a 400 invalid_text naming its field (PostgreSQL stored none: 500)', async () => {
  // Named by the field's pointer (until 12-06 every one was '/', the whole body).
  assertInvalidText(await app.request('POST', '/v1/sessions', { token, body: { title: 'a\u0000b' } }), '/title');
  assertInvalidText(await app.request('POST', '/v1/speech-sessions', { token, body: { type: 'presentation', description: '\u0000' } }), '/description');
  assertInvalidText(await app.request('POST', '/v1/devices', { token, body: { device_id: 'd-nul', name: 'x\u0000' } }), '/name');
  assertInvalidText(await app.request('POST', '/v1/sessions', { token, body: { metadata: { 'a/b\u0000': 1 } } }), '/metadata/a~1b\\u0000');
  const s = await app.request('POST', '/v1/sessions', { token, body: {} });
  assert.equal(s.status, 201);
  assertInvalidText(await app.request('PATCH', `/v1/sessions/${s.body.id}`, { token, body: { metadata: { k: ['\u0000'] } } }), '/metadata/k/0');
  // An escaped backslash before "u0000" is text, not a NUL.
  const literal = await app.request('POST', '/v1/sessions', { token, body: { title: '\\u0000' } });
  assert.equal(literal.status, 201);
  assert.equal(literal.body.title, '\\u0000');
});

test('a lone UTF-16 surrogate in stored JSON (metadata, settings) is a 400 invalid_text naming the field (jsonb refused it: 500)', async () => {
  const s = await app.request('POST', '/v1/sessions', { token, body: {} });
  assertInvalidText(await app.request('PATCH', `/v1/sessions/${s.body.id}`, { token, body: { metadata: { k: '\ud848' } } }), '/metadata', /surrogate/);
  assertInvalidText(await app.request('POST', '/v1/sessions', { token, body: { metadata: { ['\udc00']: 1 } } }), '/metadata', /surrogate/);
  assertInvalidText(await app.request('POST', '/v1/speech-sessions', { token, body: { type: 'presentation', settings: { language: 'en', note: '\ud800x' } } }), '/settings', /surrogate/);
  // A real pair (an emoji) is stored as it is.
  const ok = await app.request('PATCH', `/v1/sessions/${s.body.id}`, { token, body: { metadata: { k: '\ud83d\ude00' } } });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.metadata.k, '😀');
});

test('a %00 in a path parameter or query value is a 400 invalid_text before any route', async () => {
  // A query value is named as its parameter (until 12-06 a bare '?').
  assertInvalidText(await app.request('GET', '/v1/sessions?limit=5&user_id=a%00b', { token }), '?user_id');
  assertInvalidText(await app.request('GET', '/v1/sessions?st%00atus=x', { token }), '?st\\u0000atus');
  assertInvalidText(await app.request('GET', '/v1/speech-sessions/x%00/transcript', { token }), ':');
});

test('a query number too long for a double (Infinity once coerced) is a 400 naming it, not a 500 from PostgreSQL', async () => {
  for (const url of ['/v1/sessions?limit=1e400', `/v1/speech-sessions?page=${'9'.repeat(400)}`, '/v1/mesh/sessions?page=-1e400']) {
    const res = await app.request('GET', url, { token });
    assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.details[0].reason, 'out_of_range');
    assert.match(res.body.error.details[0].field, /^\?(limit|page)$/);
  }
});

test('PATCH version beyond a 32-bit integer is a 400 (it reached PostgreSQL as a 500)', async () => {
  const s = await app.request('POST', '/v1/sessions', { token, body: {} });
  const res = await app.request('PATCH', `/v1/sessions/${s.body.id}`, { token, body: { title: 't', version: 737990752064675300 } });
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.equal(res.body.error.details[0].reason, 'out_of_range');
  const top = await app.request('PATCH', `/v1/sessions/${s.body.id}`, { token, body: { title: 't', version: 2 ** 31 - 1 } });
  assert.equal(top.status, 409, JSON.stringify(top.body));
});

test('the text checks: escapes only, not escaped backslashes; lone surrogates only', () => {
  assert.equal(jsonBytesHaveNul(Buffer.from('{"a":"x"}')), false);
  assert.equal(jsonBytesHaveNul(Buffer.from('{"a":"\\u0000"}')), true);
  assert.equal(jsonBytesHaveNul(Buffer.from('{"a":"\\\\u0000"}')), false);
  assert.equal(jsonBytesHaveNul(Buffer.from('{"a":"\\\\\\u0000"}')), true);
  assert.equal(unstorableJsonText(JSON.stringify({ a: '\u0000' })), 'nul');
  assert.equal(unstorableJsonText(JSON.stringify({ a: '\udfff' })), 'surrogate');
  assert.equal(unstorableJsonText(JSON.stringify({ a: '\ud83d\ude00', b: '\\ud800' })), null);
});
