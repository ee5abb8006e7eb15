import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** One structured logger per process; roles take children (`log.child({ role: 'worker' })`). */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  const options: LoggerOptions = {
    name: opts.name ?? 'attune',
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options);
}

/** A logger that drops everything, for tests and benchmarks. */
export const silentLogger: Logger = pino({ level: 'silent' });
