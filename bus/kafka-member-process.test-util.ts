// The test's side of bus/kafka-member.test-util.ts: a group member in its own process, so a test
// can kill it (SIGKILL) or stall it (SIGSTOP, SIGCONT), with what it reports collected as it comes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface ChildMember {
  /** The latest assignment, null before the first. */
  readonly assigned: number[] | null;
  /** Every assignment reported, in order. */
  readonly assignments: number[][];
  /** What the member reported, in order: each assignment, and each batch as its handler started. */
  events: Array<{ assigned: number[] } | { handling: number; keys: string[] }>;
  /** Keys reported after their batch's commit. */
  keys: Set<string>;
  partitions: Set<number>;
  subscribed: boolean;
  exited: boolean;
  stderr: string;
  child: ChildProcess;
}

export function childMember(brokers: string[], topic: string, group: string, client: 'platformatic' | 'kafkajs' = 'platformatic'): ChildMember {
  const script = fileURLToPath(new URL('./kafka-member.test-util.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, brokers.join(','), topic, group, client], { stdio: ['ignore', 'pipe', 'pipe'] });
  const m: ChildMember = {
    get assignments() {
      return this.events.flatMap((e) => ('assigned' in e ? [e.assigned] : []));
    },
    get assigned() {
      return this.assignments.at(-1) ?? null;
    },
    events: [],
    keys: new Set(),
    partitions: new Set(),
    subscribed: false,
    exited: false,
    stderr: '',
    child,
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const msg = JSON.parse(line) as { assigned?: number[]; handling?: number; partition?: number; keys?: string[]; subscribed?: boolean };
    if (msg.handling !== undefined) m.events.push({ handling: msg.handling, keys: msg.keys! });
    if (msg.assigned) m.events.push({ assigned: msg.assigned });
    if (msg.subscribed) m.subscribed = true;
    if (msg.partition !== undefined && msg.keys) {
      for (const k of msg.keys) m.keys.add(k);
      m.partitions.add(msg.partition!);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (m.stderr = (m.stderr + d.toString()).slice(-4000)));
  child.once('exit', () => (m.exited = true));
  return m;
}

/** Polls `check` every 50 ms until it answers something truthy, which it returns. */
export async function until<T>(what: string, check: () => T | null | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
