// The measured phase of a benchmark part: its process CPU time (all threads: chDB's, the
// compute thread's) and, with BENCH_CPU_PROF=<dir>, a V8 CPU profile of the main thread for
// that phase only (setup excluded), written as <dir>/<name>-<pid>.cpuprofile. Summarise it
// with bench/lib/cpu-profile-summary.ts.
import { Session } from 'node:inspector/promises';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MeasuredPhase {
  /**
   * Stops the clock (and the profiler); CPU seconds used by this process in the phase (all
   * threads) and by its main thread alone (null where /proc is missing).
   */
  end(): Promise<PhaseCpu>;
}

export interface PhaseCpu {
  cpu_s: number;
  main_thread_cpu_s: number | null;
  threads_cpu_s: Record<string, number>;
  /**
   * Busy CPU seconds of the whole machine in the phase (every process, every core; /proc/stat),
   * so a reader can tell a rate bound by the machine's CPU from one bound by a single thread.
   */
  machine_busy_cpu_s: number | null;
  /** CPU seconds of the local Kafka broker's JVM in the phase (a process running kafka.Kafka), null when none runs here. */
  broker_cpu_s: number | null;
}

let clockTicks: number | null = null;

/** Seconds in `ticks` of the kernel's clock (CLK_TCK, read once). */
function ticksToS(ticks: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks / clockTicks;
}

/** A /proc/…/stat line's command name and CPU seconds (user + system: fields 14 and 15, after the name, which may hold spaces). */
function statCpu(stat: string): { name: string; cpuS: number } {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), cpuS: ticksToS(Number(fields[11]) + Number(fields[12])) };
}

/** Busy CPU seconds of the machine so far, all cores (/proc/stat's cpu line less idle and iowait), or null. */
export function machineBusyCpuS(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    return ticksToS(ticks.slice(0, 8).reduce((a, b) => a + b, 0) - ticks[3] - ticks[4]);
  } catch {
    return null;
  }
}

/** CPU seconds so far (user + system) of the processes whose command line contains `match`; null when none does. */
export function processesCpuS(match: string): number | null {
  let total: number | null = null;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(match)) continue;
      total = (total ?? 0) + statCpu(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuS;
    } catch {
      // Gone meanwhile, or not readable: not counted.
    }
  }
  return total;
}

/** Kafka's main class, in the command line of a broker JVM (infra/kafka/kafka.sh starts one). */
const KAFKA_BROKER_CLASS = 'kafka.Kafka';

/**
 * CPU seconds of this process's main thread so far (Linux: /proc/self/task/<pid>/stat, user +
 * system, in clock ticks of 10 ms), or null. The main thread is where the event loop, and so
 * the gateway, the workers and the Kafka client, runs: the one that limits throughput, while
 * process.cpuUsage() also counts chDB's and the compute thread's.
 */
export function mainThreadCpuS(): number | null {
  return threadCpuS(String(process.pid))?.cpuS ?? null;
}

/** A thread's name and CPU seconds so far (user + system), from /proc; null without it. */
function threadCpuS(tid: string): { name: string; cpuS: number } | null {
  try {
    return statCpu(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * CPU seconds of this process's threads so far, summed by thread name (V8's GC helpers, libuv's
 * pool, chDB's, a worker thread's...); the main thread as `main`. Empty without /proc.
 * BENCH_THREADS_BY_ID=1 keys them `name:tid` instead: Node names its GC helpers, worker threads
 * and libuv's pool all `node`, so a worker thread (the coherence metrics thread) shows only as
 * one `node` thread with its own id (12-04, a bench:kafka pipeline run: four started with the
 * process, V8's GC helpers, 0.5-0.7 s each; one started later, by its id the metrics thread, 0.5 s).
 */
export function threadsCpuS(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    const t = threadCpuS(tid);
    if (!t) continue;
    const name = tid === String(process.pid) ? 'main' : (process.env.BENCH_THREADS_BY_ID ? `${t.name}:${tid}` : t.name);
    out.set(name, (out.get(name) ?? 0) + t.cpuS);
  }
  return out;
}

export async function measuredPhase(name: string): Promise<MeasuredPhase> {
  const dir = process.env.BENCH_CPU_PROF;
  // BENCH_HEAP_PROF=<dir>: V8's sampling heap profile of the phase (what allocates, by function:
  // the garbage the GC threads then collect), <dir>/<name>-<pid>.heapprofile.
  const heapDir = process.env.BENCH_HEAP_PROF;
  let session: Session | null = null;
  if (dir || heapDir) {
    session = new Session();
    session.connect();
  }
  if (session && dir) {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 500 });
    await session.post('Profiler.start');
  }
  if (session && heapDir) {
    await session.post('HeapProfiler.enable');
    // Every 32 KB allocated on average; samples kept even once collected (includeObjectsCollectedBy*GC).
    await session.post('HeapProfiler.startSampling', { samplingInterval: 32_768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  }
  const threads0 = threadsCpuS();
  const main0 = mainThreadCpuS();
  const machine0 = machineBusyCpuS();
  const broker0 = processesCpuS(KAFKA_BROKER_CLASS);
  const cpu0 = process.cpuUsage();
  return {
    async end() {
      const cpu = process.cpuUsage(cpu0);
      const main1 = mainThreadCpuS();
      const machine1 = machineBusyCpuS();
      const broker1 = processesCpuS(KAFKA_BROKER_CLASS);
      // Threads that ended in the phase are missing here; ones that started count from 0.
      const threads: Record<string, number> = {};
      for (const [name, s] of [...threadsCpuS()].sort((a, b) => b[1] - a[1])) {
        const d = Number((s - (threads0.get(name) ?? 0)).toFixed(2));
        if (d > 0) threads[name] = d;
      }
      if (session && dir) {
        const { profile } = await session.post('Profiler.stop');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(profile));
      }
      if (session && heapDir) {
        const { profile } = await session.post('HeapProfiler.stopSampling');
        mkdirSync(heapDir, { recursive: true });
        writeFileSync(join(heapDir, `${name}-${process.pid}.heapprofile`), JSON.stringify(profile));
      }
      session?.disconnect();
      const diff = (a: number | null, b: number | null) => (a === null || b === null ? null : Number((b - a).toFixed(2)));
      return {
        cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
        main_thread_cpu_s: diff(main0, main1),
        threads_cpu_s: threads,
        machine_busy_cpu_s: diff(machine0, machine1),
        broker_cpu_s: diff(broker0, broker1),
      };
    },
  };
}
