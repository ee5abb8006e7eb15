// The measured phase's CPU accounting (bench/lib/phase-profile.ts): the main thread's own CPU
// and the per-thread sums come from /proc, so they are checked against work done here.
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { mainThreadCpuS, measuredPhase, processesCpuS, threadsCpuS } from './phase-profile.js';

/** A fixed amount of work (CPU time, whatever the load): `n` square roots. */
const work = (n: number) => {
  let x = 0;
  for (let i = 0; i < n; i++) x += Math.sqrt(x + i);
  return x;
};

// Linux only (/proc), as Attune's CI and benchmark machines are: without /proc it fails, not skips.
test('the main thread is counted apart from a worker thread busy at the same time', async () => {
  assert.ok(existsSync('/proc/self/task'), 'this test needs /proc (Linux)');
  const before = mainThreadCpuS();
  assert.equal(typeof before, 'number');
  const phase = await measuredPhase('phase-profile-test');
  // The worker does twice the main thread's work: the process counts both, the main thread
  // only its own (about a third).
  const worker = new Worker(`const { parentPort } = require('node:worker_threads'); let x = 0; for (let i = 0; i < ${1e8}; i++) x += Math.sqrt(x + i); parentPort.postMessage(x); parentPort.on('message', () => undefined);`, { eval: true });
  const done = new Promise((r) => worker.once('message', r));
  work(5e7);
  await done;
  // Ended while the worker thread still exists (a thread gone before the end is not in the per-thread
  // sums): its listener on parentPort keeps it alive until terminate(). Without it the thread
  // sometimes exited between its message and end(), and its CPU was missing (1 run in 4 here, CI).
  const cpu = await phase.end();
  await worker.terminate();
  assert.ok(cpu.main_thread_cpu_s !== null && cpu.main_thread_cpu_s >= 0.05, `main thread ${cpu.main_thread_cpu_s} s`);
  assert.ok(cpu.main_thread_cpu_s <= 0.6 * cpu.cpu_s, `main thread ${cpu.main_thread_cpu_s} s of the process's ${cpu.cpu_s} s: the worker's work is not the main thread's`);
  assert.ok((threadsCpuS().get('main') ?? 0) >= before! + cpu.main_thread_cpu_s - 0.02);
  assert.ok(Object.values(cpu.threads_cpu_s).reduce((a, b) => a + b, 0) >= 0.9 * cpu.cpu_s - 0.05, 'the threads add up to the process');
  // The machine was at least as busy as this process (other processes add to it).
  assert.ok(cpu.machine_busy_cpu_s !== null && cpu.machine_busy_cpu_s >= 0.9 * cpu.cpu_s - 0.05, `machine ${cpu.machine_busy_cpu_s} s, process ${cpu.cpu_s} s`);
});

test('processesCpuS counts the processes whose command line matches, and says null when none does', async () => {
  const marker = `phase-profile-busy-${process.pid}`;
  // A child that does a fixed amount of work (a few tenths of a second of CPU, whatever the
  // load), its command line carrying the marker; measured while it waits on stdin.
  const child = spawn(process.execPath, ['-e', `let x = 0; for (let i = 0; i < 5e7; i++) x += Math.sqrt(x + i); process.stdout.write(String(x > 0)); process.stdin.resume();`, marker], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const s = processesCpuS(marker);
    assert.ok(s !== null && s >= 0.1, `${s} s`);
    assert.equal(processesCpuS(`${marker}-nobody`), null);
  } finally {
    child.kill();
  }
});
