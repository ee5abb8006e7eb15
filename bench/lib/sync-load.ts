// Load generator for bench/ingest.bench.ts, run in its own process so that building and
// sending requests does not share the server's event loop. Reads its job from argv[2]
// (JSON), sends every prepared body with `concurrency` requests in flight, and prints one
// JSON line with what happened.
import { request, Agent } from 'node:http';

interface Job {
  baseUrl: string;
  token: string;
  devices: string[];
  sessions: string[];
  requestsPerDevice: number;
  readingsPerRequest: number;
  startMs: number;
  concurrency: number;
}

const job = JSON.parse(process.argv[2]) as Job;
const url = new URL(job.baseUrl);
const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });

// Every body is built before the clock starts. One RR interval per reading: one row each.
const bodies: Array<{ path: string; body: Buffer }> = [];
for (let r = 0; r < job.requestsPerDevice; r++) {
  for (let d = 0; d < job.devices.length; d++) {
    const readings = [];
    for (let i = 0; i < job.readingsPerRequest; i++) {
      const n = r * job.readingsPerRequest + i;
      const rr = 800 + Math.round(60 * Math.sin(n / 2.5));
      readings.push({ timestamp: job.startMs + n * 1000, hr: Math.round(60000 / rr), rr_intervals_ms: [rr] });
    }
    bodies.push({ path: `/v1/devices/${job.devices[d]}/sync`, body: Buffer.from(JSON.stringify({ session_id: job.sessions[d], readings })) });
  }
}

function post(path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${job.token}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

process.stdout.write(JSON.stringify({ ready: true }) + '\n');
process.stdin.once('data', async () => {
  const cpu0 = process.cpuUsage();
  const began = Date.now();
  let next = 0;
  let accepted = 0;
  let failed = 0;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (next < bodies.length) {
        const b = bodies[next++];
        const t = performance.now();
        const status = await post(b.path, b.body);
        latencies.push(performance.now() - t);
        if (status === 202) accepted += job.readingsPerRequest;
        else failed++;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const p = (q: number) => Number(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(1));
  const cpu = process.cpuUsage(cpu0);
  const cpu_s = Number(((cpu.user + cpu.system) / 1e6).toFixed(2));
  process.stdout.write(JSON.stringify({ began, ended: Date.now(), accepted, failed, p50_ms: p(0.5), p99_ms: p(0.99), cpu_s }) + '\n');
  agent.destroy();
});
