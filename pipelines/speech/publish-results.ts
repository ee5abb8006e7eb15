// How a speech stream's result records go onto the bus (the speech worker's only output to
// storage; pipelines/sinks/speech-results-sink.ts stores them).
import type { Bus } from '../../bus/types.js';
import type { Codec } from '../../schemas/registry/codec.js';
import type { SpeechResult } from '../../schemas/registry/schemas.js';
import { Topics, type TopicNames } from '../../schemas/topics.js';

export interface PublishResultsOptions {
  bus: Bus;
  topics: TopicNames;
  codec: Codec;
  /** Called before each retry; resolves when the next try may start (a back-off), or rejects to give up. */
  retry: (err: unknown, attempt: number) => Promise<void>;
}

/**
 * Publishes `records` in order, one record per publish: the records of one publish can travel
 * as one Kafka record batch, which the broker refuses over message.max.bytes (1 MB by
 * default), and a 4-hour upload's results are ~3 MB (each record stays under ~200 KB,
 * result-records.ts). A refused publish is tried again after `retry` resolves.
 */
export async function publishSpeechResults(records: SpeechResult[], o: PublishResultsOptions): Promise<void> {
  for (const record of records) {
    const value = await o.codec.encode(Topics.speechResults, record);
    for (let attempt = 1; ; attempt++) {
      try {
        await o.bus.publish(o.topics.speechResults, [{ key: record.session_id, value, timestamp: record.computed_at }]);
        break;
      } catch (err) {
        await o.retry(err, attempt);
      }
    }
  }
}
