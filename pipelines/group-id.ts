// Consumer group names carry the deployment's topic prefix (issue 10, item 4). Two
// deployments sharing a Kafka cluster with different ATTUNE_TOPIC_PREFIX values, or two test
// suites with their own prefixes on one broker, would otherwise join one group: the group's
// assignor spreads the union of the members' topics over all members, so each takes
// partitions of the other's topics, and records go unprocessed or are replayed out of turn.
import { Topics, type TopicNames } from '../schemas/topics.js';

/** The prefix `topics` were made with (prefixedTopics), '' for the plain names. */
export function topicPrefixOf(topics: TopicNames): string {
  const name = topics.heartReadings;
  const plain = Topics.heartReadings;
  return name.endsWith(plain) ? name.slice(0, name.length - plain.length) : '';
}

/** `base` with the topic prefix in front: unchanged for the plain topic names. */
export function groupIdFor(base: string, topics: TopicNames = Topics): string {
  return `${topicPrefixOf(topics)}${base}`;
}
