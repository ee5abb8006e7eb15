// A ClickHouse HTTP endpoint over this process's chDB, for the scale-out scenario
// (test/faults-scale.kafka.test.ts): chDB opens one data dir per process and no ClickHouse
// server can be run here, so the worker processes reach the API process's chDB through this,
// as they would reach a ClickHouse server (CLICKHOUSE_URL). Only what @clickhouse/client
// sends is understood: GET /ping; POST with the SQL in the body, or an INSERT statement in
// the `query` parameter with the rows in the body; `param_*` query parameters. Settings in
// the URL are ignored (Attune names every table with its database).
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';

export interface ChdbHttp {
  url: string;
  requests: number;
  close(): Promise<void>;
}

export async function serveChdbOverHttp(client: ClickHouseClient): Promise<ChdbHttp> {
  const state = { requests: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        state.requests++;
        const url = new URL(req.url ?? '/', 'http://x');
        if (url.pathname === '/ping') {
          res.end('Ok.\n');
          return;
        }
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const stmt = url.searchParams.get('query');
        const sql = stmt ? `${stmt}\n${body.toString('utf8')}` : body.toString('utf8');
        const query_params: Record<string, string> = {};
        for (const [k, v] of url.searchParams) if (k.startsWith('param_')) query_params[k.slice(6)] = v;
        try {
          if (stmt && /^\s*INSERT\b/i.test(stmt) && body.toString('utf8').trim() === '') {
            res.end();
            return;
          }
          const result = await client.exec({ query: sql, query_params });
          const out: Buffer[] = [];
          for await (const c of result.stream) out.push(Buffer.from(c as Buffer));
          res.setHeader('x-clickhouse-query-id', result.query_id);
          res.setHeader('x-clickhouse-summary', JSON.stringify(result.summary ?? {}));
          res.end(Buffer.concat(out));
        } catch (err) {
          const e = err as Error & { code?: string };
          res.statusCode = 500;
          res.setHeader('x-clickhouse-exception-code', String(e.code ?? '1000'));
          res.end(`Code: ${e.code ?? 1000}. DB::Exception: ${e.message}`);
        }
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
