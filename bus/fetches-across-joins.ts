// Fetches of @platformatic/kafka's message stream, fenced by the group's joins.
//
// The stream (MessagesStream, 1.35) keeps one fetch per broker in flight and carries no group
// generation with it. Two cases around a join (a rebalance) go wrong without this fence:
//  - A fetch sent before a join and answered after it. The stream sets each partition's
//    position past the records in the answer and hands them over. For a partition taken away
//    at one join and given back at a later one within that fetch, the answer's position is where
//    this member last fetched the partition, not its commit: the records from the commit to
//    there (dropped from the queues when it was taken away) were never delivered
//    (bus/kafka-platformatic.test.ts holds such a fetch across both joins). Such an answer is
//    emptied: nothing is handed over and no position moves, so the join's refresh of the
//    positions (the commits; the earliest record where there is none) decides where the next
//    fetch starts. Emptying an answer is always safe: its records are fetched again. It costs
//    one answer per broker per rebalance.
//  - A fetch built after a join but before the join's refresh has filled in the positions: the
//    stream checks for a refresh in flight before it asks for metadata and builds the request in
//    the answer, which, when the cached metadata has expired, comes after a network round trip.
//    A partition assigned anew then has no position (the adapter deletes it at the join), the
//    request cannot be written (a BigInt TypeError the client retries 3 times, 1 s apart), and
//    the stream dies (the consumer is replaced). Such a request is not sent: it is answered
//    empty, and the refresh, once done, starts the next fetch itself.
// Consumer.fetch is public and the only path by which the stream fetches.

export interface FetchRequestLike {
  topics: Array<{ partitions: Array<{ fetchOffset: bigint | undefined }> }>;
}
export interface FetchAnswerLike {
  throttleTimeMs: number;
  errorCode: number;
  sessionId: number;
  responses: Array<{ partitions: Array<{ records?: unknown }> }>;
}
type Callback<A> = (err: Error | null, answer?: A) => void;
export interface FetchCall<R, A> {
  (request: R): Promise<A>;
  (request: R, callback: Callback<A>): void;
}

export interface FetchesAcrossJoins<R, A> {
  /** The fenced fetch, in place of the consumer's own. */
  fetch: FetchCall<R, A>;
  /** Call at every join of the consumer's group, before the stream hears of it. */
  joined(): void;
}

export function fenceFetchesAcrossJoins<R extends FetchRequestLike, A extends FetchAnswerLike>(fetchOnce: FetchCall<R, A>): FetchesAcrossJoins<R, A> {
  let joins = 0;
  const empty = (): A => ({ throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: [] }) as unknown as A;
  function fetch(request: R): Promise<A>;
  function fetch(request: R, callback: Callback<A>): void;
  function fetch(request: R, callback?: Callback<A>): Promise<A> | void {
    const sentAt = joins;
    const emptiedIfStale = (answer: A): A => {
      if (joins !== sentAt) for (const topic of answer.responses) for (const partition of topic.partitions) partition.records = undefined;
      return answer;
    };
    const positionless = request.topics.some((topic) => topic.partitions.some((p) => p.fetchOffset === undefined));
    if (!callback) return positionless ? Promise.resolve(empty()) : fetchOnce(request).then(emptiedIfStale);
    if (positionless) {
      process.nextTick(() => callback(null, empty()));
      return;
    }
    fetchOnce(request, (err, answer) => callback(err, err || !answer ? answer : emptiedIfStale(answer)));
  }
  return {
    fetch,
    joined: () => {
      joins++;
    },
  };
}
