// Opens the Kafka bus with the configured client, importing only that client's adapter (and
// package): a process on @platformatic/kafka never loads kafkajs (144 files), nor one on kafkajs
// @platformatic/kafka (whose import compiles its option schemas). Module loading comes before
// `attune all` can listen, so what it does not load shortens every restart (cli/lazy-load.test.ts).
import type { KafkaBus, KafkaBusOptions } from './kafka.js';

export async function createKafkaBus(opts: KafkaBusOptions): Promise<KafkaBus> {
  if ((opts.client ?? 'platformatic') === 'platformatic') {
    const { createPlatformaticKafkaBus } = await import('./kafka-platformatic.js');
    return createPlatformaticKafkaBus(opts);
  }
  const { createKafkajsBus } = await import('./kafka.js');
  return createKafkajsBus(opts);
}
