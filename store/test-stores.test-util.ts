// The store implementations a test file can run its contract suite against: chDB always
// (in a temporary data directory of this process — chDB allows one per process), and a
// ClickHouse server when one is configured (test/services.ts's clickhouseUrl when that
// module exists, else CLICKHOUSE_URL). Every open() gets a fresh database, so tests do not
// see each other's rows; dispose() drops the server databases and deletes the chDB folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../lib/log.js';
import { createStoreClient, type StoreClient } from './clickhouse.js';

export interface StoreImplementation {
  kind: StoreClient['kind'];
  /** A new store client on a fresh, empty database. */
  open(): Promise<StoreClient>;
  /** Closes what open() opened and removes its databases / files. */
  dispose(): Promise<void>;
}

interface ConfiguredServer {
  url: string;
  /** Stops what the service chooser started for this process (containers), if anything. */
  stop(): Promise<void>;
}

async function configuredClickHouse(): Promise<ConfiguredServer | null> {
  // test/services.ts belongs to another module and may be absent in a checkout of this one;
  // a computed specifier keeps tsc from requiring it.
  const servicesModule = new URL('../test/services.js', import.meta.url).href;
  try {
    const mod = (await import(servicesModule)) as { getTestServices?: () => unknown };
    if (typeof mod.getTestServices === 'function') {
      const services = (await mod.getTestServices()) as { clickhouseUrl?: string | null; stop?: () => Promise<void> };
      const stop = async () => {
        await services.stop?.();
      };
      if (services.clickhouseUrl) return { url: services.clickhouseUrl, stop };
      await stop();
      return null;
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
  const url = process.env.CLICKHOUSE_URL;
  return url ? { url, stop: async () => {} } : null;
}

const freshDatabaseName = () => `attune_test_${process.pid}_${randomBytes(4).toString('hex')}`;

function chdbImplementation(): StoreImplementation {
  let dataDir: string | null = null;
  const opened: StoreClient[] = [];
  return {
    kind: 'chdb',
    async open() {
      dataDir ??= mkdtempSync(join(tmpdir(), 'attune-store-test-'));
      const store = await createStoreClient({ dataDir, database: freshDatabaseName(), log: silentLogger });
      opened.push(store);
      return store;
    },
    async dispose() {
      for (const store of opened.splice(0)) await store.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      dataDir = null;
    },
  };
}

function serverImplementation({ url, stop }: ConfiguredServer): StoreImplementation {
  const opened: StoreClient[] = [];
  return {
    kind: 'server',
    async open() {
      const store = await createStoreClient({ url, database: freshDatabaseName(), log: silentLogger });
      opened.push(store);
      return store;
    },
    async dispose() {
      for (const store of opened.splice(0)) {
        await store.client.command({ query: `DROP DATABASE IF EXISTS ${store.database}` }).catch(() => {});
        await store.close();
      }
      await stop();
    },
  };
}

export async function storeImplementations(): Promise<StoreImplementation[]> {
  const server = await configuredClickHouse();
  return server ? [chdbImplementation(), serverImplementation(server)] : [chdbImplementation()];
}

/** Rejects when `promise` has not settled within `ms`: tests wait on events, with a deadline. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
