// What a benchmark result ran on, recorded with every result file.
import { cpus, loadavg, platform, release, totalmem } from 'node:os';

export function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    load_average_at_start: loadavg().map((x) => Number(x.toFixed(2))),
  };
}
