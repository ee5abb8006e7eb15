// The setup the fault scenario files built on test/faults-poison-harness.ts share
// (test/faults-poison, faults-sink, faults-scale and prefixes .kafka.test.ts): the Kafka broker
// of test/services.ts and a PostgreSQL server, found in a before hook (in CI both are required:
// a missing one fails the file instead of skipping it), and the deployments a test starts,
// disposed in an after hook. Kept apart from the harness, which also runs as a script.
import { after, before } from 'node:test';
import { getTestServices } from './services.js';
import { serverDatabaseUrl } from '../store/postgres/test-databases.test-util.js';
import { isCi, type Deployment } from './faults-poison-harness.js';

export interface FaultSuite {
  /** Set by the before hook; null when there is no broker (outside CI). */
  brokers: string[] | null;
  /** Set by the before hook; null when there is no PostgreSQL server (outside CI). */
  pgUrl: string | null;
  /** What a test pushes here is disposed after the file (by `dispose`, when given). */
  deployments: Deployment[];
  /**
   * The common deployment options (name, brokers, pgUrl, secret), or null after `t.skip`
   * when Kafka or PostgreSQL is missing.
   */
  options(t: { skip(message: string): void }, secret: string): ((name: string) => { name: string; brokers: string[]; pgUrl: string; secret: string }) | null;
}

/**
 * Registers the before and after hooks of a fault scenario file; call at the top level.
 * `dispose` replaces the default after hook (every deployment disposed at once).
 */
export function faultSuite(dispose?: (deployments: Deployment[]) => Promise<void>): FaultSuite {
  const suite: FaultSuite = {
    brokers: null,
    pgUrl: null,
    deployments: [],
    options(t, secret) {
      const { brokers, pgUrl } = suite;
      if (!brokers || !pgUrl) {
        t.skip('needs Kafka and a PostgreSQL server');
        return null;
      }
      return (name: string) => ({ name, brokers, pgUrl, secret });
    },
  };
  before(async () => {
    const services = await getTestServices({ needKafka: true }).catch((err: Error) => {
      if (isCi) throw err;
      return null;
    });
    suite.brokers = services?.kafkaBrokers ?? null;
    suite.pgUrl = await serverDatabaseUrl().catch(() => null);
    if (isCi && !(suite.brokers && suite.pgUrl)) throw new Error('CI needs Kafka and a PostgreSQL server');
  });
  after(async () => {
    if (dispose) await dispose(suite.deployments);
    else await Promise.all(suite.deployments.map((d) => d.dispose()));
  });
  return suite;
}
