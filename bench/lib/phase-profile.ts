// The measured phase of a benchmark part: its process CPU time (all threads: chDB's, the
// compute thread's) and, with BENCH_CPU_PROF=<dir>, a V8 CPU profile of the main thread for
// that phase only (setup excluded), written as <dir>/<name>-<pid>.cpuprofile. Summarise it
// with bench/lib/cpu-profile-summary.ts.
import { Session } from 'node:inspector/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MeasuredPhase {
  /** Stops the clock (and the profiler); CPU seconds used by this process in the phase. */
  end(): Promise<{ cpu_s: number }>;
}

export async function measuredPhase(name: string): Promise<MeasuredPhase> {
  const dir = process.env.BENCH_CPU_PROF;
  let session: Session | null = null;
  if (dir) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 500 });
    await session.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  return {
    async end() {
      const cpu = process.cpuUsage(cpu0);
      if (session && dir) {
        const { profile } = await session.post('Profiler.stop');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(profile));
        session.disconnect();
      }
      return { cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)) };
    },
  };
}
