/**
 * Tells, among the records a consumer's stream still holds, those fetched before a rebalance
 * for a partition that the rebalance assigned to this member anew. Such a partition starts at
 * its commit; records of it fetched under an earlier ownership (left in the stream while the
 * member's queues were full, then not read before the partition was taken away) would otherwise
 * be taken for where it starts, and the records between its commit and them skipped.
 *
 * The stream is read in order, so the records it held at a join are the next ones read: one
 * segment per join, with the count of records it added and the partitions whose records in it are
 * stale. A later join adds the partitions it assigns anew to every segment still unread (their
 * records there are older still), but not to its own records of partitions it kept: those were
 * fetched after the earlier join, under this ownership. Why not simply replace the stream at such
 * a join: a new consumer costs one more join round for the whole group, at every rebalance that
 * moves a partition back to a member.
 */
export class RecordsBeforeJoin {
  private segments: Array<{ left: number; parts: Set<string> }> = [];

  /** A join that assigned the partitions `anew` (keys), with `held` records in the stream. */
  joined(held: number, anew: readonly string[]): void {
    let older = 0;
    for (const seg of this.segments) {
      older += seg.left;
      for (const key of anew) seg.parts.add(key);
    }
    if (anew.length > 0 && held > older) this.segments.push({ left: held - older, parts: new Set(anew) });
  }

  /** For each record read from the stream, in order: whether it is one to drop. */
  stale(key: string): boolean {
    const seg = this.segments[0];
    if (!seg) return false;
    if (--seg.left === 0) this.segments.shift();
    return seg.parts.has(key);
  }

  /** A new stream: nothing in it is from before. */
  clear(): void {
    this.segments = [];
  }
}
