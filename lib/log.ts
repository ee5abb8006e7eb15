import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Credentials never reach the logs (issue 12: an API key's secret appears in no log): pino
 * censors these paths wherever a request, its headers or a body is logged. Attune logs no
 * request headers or bodies itself; this is the net under anything that might.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'body.client_secret',
  'body.secret',
  'body.key',
  'client_secret',
  'secret',
  'api_key',
  '*.client_secret',
  '*.secret',
  '*.api_key',
];

/** One structured logger per process; roles take children (`log.child({ role: 'worker' })`). `destination`: tests capture the lines. */
export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream; stderr?: boolean } = {}): Logger {
  const options: LoggerOptions = {
    name: opts.name ?? 'attune',
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  const destination = opts.destination ?? (opts.stderr ? pino.destination(2) : undefined);
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything, for tests and benchmarks. */
export const silentLogger: Logger = pino({ level: 'silent' });
