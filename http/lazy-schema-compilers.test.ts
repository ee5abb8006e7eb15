import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { createLazySchemaCompilers } from './lazy-schema-compilers.js';

const AJV = { customOptions: { allErrors: false, coerceTypes: 'array' as const, removeAdditional: false } };

function server() {
  const schemas = createLazySchemaCompilers();
  const app = Fastify({ schemaController: schemas.schemaController, ajv: AJV });
  app.post(
    '/things/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: '^[a-z]+$' } } },
        querystring: { type: 'object', properties: { n: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } } },
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1 } } },
        response: { 200: { type: 'object', properties: { id: { type: 'string' }, n: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } } } },
      },
    },
    async (req) => ({ ...(req.params as object), ...(req.query as object), secret: 'not in the schema' }),
  );
  app.get('/other', { schema: { querystring: { type: 'object', properties: { q: { type: 'integer' } } }, response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }));
  return { app, schemas };
}

test('nothing is compiled before the first request; a request compiles its own route only', async () => {
  const { app, schemas } = server();
  await app.ready();
  // params, querystring, body and the 200 response of /things; querystring and response of
  // GET /other and of the HEAD route Fastify adds beside it.
  assert.equal(schemas.pending, 8);
  const res = await app.inject({ method: 'POST', url: '/things/abc?n=5&tags=x', payload: { name: 'a' } });
  assert.equal(res.statusCode, 200);
  assert.equal(schemas.pending, 4, 'the route used is compiled, the others are not');
  await app.close();
});

test('validation and serialisation are those of the eager compilers: coercion, errors, response filtering', async () => {
  const { app } = server();
  const ok = await app.inject({ method: 'POST', url: '/things/abc?n=5&tags=x', payload: { name: 'a' } });
  // The querystring coerced (a string to an integer, a single value to an array, which needs
  // ajv's parent data: the lazy function must pass it on), the response without the field
  // its schema does not name.
  assert.deepEqual(ok.json(), { id: 'abc', n: 5, tags: ['x'] });
  const badBody = await app.inject({ method: 'POST', url: '/things/abc', payload: { name: '' } });
  assert.equal(badBody.statusCode, 400);
  assert.match(badBody.json().message, /body\/name must NOT have fewer than 1 characters/);
  const extra = await app.inject({ method: 'POST', url: '/things/abc', payload: { name: 'a', other: 1 } });
  assert.equal(extra.statusCode, 400);
  assert.match(extra.json().message, /must NOT have additional properties/);
  const badParam = await app.inject({ method: 'POST', url: '/things/ABC', payload: { name: 'a' } });
  assert.equal(badParam.statusCode, 400);
  assert.match(badParam.json().message, /params\/id must match pattern/);
  const badQuery = await app.inject({ method: 'POST', url: '/things/abc?n=x', payload: { name: 'a' } });
  assert.equal(badQuery.statusCode, 400);
  assert.match(badQuery.json().message, /querystring\/n must be integer/);
  // The same answers twice: the compiled function is reused, its errors not left over.
  const again = await app.inject({ method: 'POST', url: '/things/abc?n=6', payload: { name: 'b' } });
  assert.deepEqual(again.json(), { id: 'abc', n: 6 });
  await app.close();
});

test('warmUp compiles every schema left, and reports one that does not compile; its requests answer 500', async () => {
  const { app, schemas } = server();
  app.get('/broken', { schema: { querystring: { type: 'object', properties: { q: { type: 'no-such-type' } } } } }, async () => ({}));
  await app.ready(); // an eager compile would have failed here
  assert.equal(schemas.pending, 10); // with GET and HEAD /broken's querystrings
  const failures: string[] = [];
  await schemas.warmUp((err, what) => failures.push(`${what}: ${(err as Error).message.slice(0, 40)}`));
  assert.equal(schemas.pending, 0);
  assert.deepEqual(failures.map((f) => f.split(':')[0]).sort(), ['GET /broken querystring', 'HEAD /broken querystring']);
  // Compiled by the warm-up: served without compiling again, and the broken one fails alone.
  assert.equal((await app.inject({ method: 'GET', url: '/other?q=1' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/broken' })).statusCode, 500);
  assert.equal((await app.inject({ method: 'GET', url: '/broken?q=2' })).statusCode, 500, 'and again (its compile error kept)');
  await app.close();
});

test('warmUp stops when told to', async () => {
  const { app, schemas } = server();
  await app.ready();
  let calls = 0;
  await schemas.warmUp(() => undefined, () => ++calls > 2);
  assert.equal(schemas.pending, 6, 'two compiled, then stopped');
  await app.close();
});

test('a query or path number too large for a double (Infinity once coerced) is refused, not passed on', async () => {
  // ajv coerces "1e400" (or 400 nines) to Infinity and checks maximum/minimum on finite
  // numbers only: `?limit=1e400` passed `maximum: 200` and reached PostgreSQL as a 500.
  const schemas = createLazySchemaCompilers();
  const app = Fastify({ schemaController: schemas.schemaController, ajv: AJV });
  app.get(
    '/list',
    { schema: { querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 200 }, ids: { type: 'array', items: { type: 'number' } } } } } },
    async (req) => ({ limit: String((req.query as { limit?: number }).limit) }),
  );
  app.post('/n/:n', { schema: { params: { type: 'object', properties: { n: { type: 'number' } } }, body: { type: 'object', properties: { x: { type: 'number' } } } } }, async () => ({ ok: true }));
  for (const url of ['/list?limit=1e400', `/list?limit=${'9'.repeat(400)}`, '/list?limit=-1e400', '/list?ids=1&ids=1e999']) {
    const res = await app.inject(url);
    assert.equal(res.statusCode, 400, url);
    assert.match(res.json().message, /querystring\/(limit|ids) must be a finite number/, url);
  }
  const param = await app.inject({ method: 'POST', url: '/n/1e400', payload: {} });
  assert.equal(param.statusCode, 400);
  assert.match(param.json().message, /params\/n must be a finite number/);
  // Ordinary values are unchanged, and a body's number is the schema's alone to judge.
  assert.deepEqual((await app.inject('/list?limit=200')).json(), { limit: '200' });
  assert.equal((await app.inject('/list?limit=201')).statusCode, 400);
  assert.equal((await app.inject({ method: 'POST', url: '/n/1.5', payload: { x: 2 } })).statusCode, 200);
  await app.close();
});

test('a JSON body is validated as sent, never coerced (a number for a string is a 400); query and path values are coerced as text', async () => {
  const { app } = server();
  const coerced = await app.inject({ method: 'POST', url: '/things/abc?n=5&tags=x', payload: { name: 'a' } });
  assert.deepEqual([coerced.statusCode, coerced.json().n, coerced.json().tags], [200, 5, ['x']]);
  for (const name of [123, true, ['a']]) {
    const res = await app.inject({ method: 'POST', url: '/things/abc', payload: { name } });
    assert.equal(res.statusCode, 400, `name ${JSON.stringify(name)}: ${res.body}`);
    assert.match(res.json().message, /name/);
  }
  await app.close();
});
