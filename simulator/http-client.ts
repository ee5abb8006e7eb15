// POSTs JSON to the Attune API the way a well-behaved device does: retries what may
// succeed later (5xx, 429, 408, network errors, timeouts) with capped exponential
// back-off and jitter, honouring Retry-After, and gives up on other 4xx answers, which
// will not change on retry.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../lib/log.js';
import type { Prng } from '../lib/prng.js';

export interface RetryPolicy {
  /** First back-off, ms; doubles per failed attempt. Default 200. */
  initialDelayMs: number;
  /** Longest back-off, ms (a larger Retry-After is still honoured, up to 60 s). Default 5000. */
  maxDelayMs: number;
  /** Attempts per request before giving up; Infinity retries until aborted. Default Infinity. */
  maxAttempts: number;
  /** One attempt's time limit, ms; a timeout counts as a network error. Default 30000. */
  requestTimeoutMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  initialDelayMs: 200,
  maxDelayMs: 5000,
  maxAttempts: Infinity,
  requestTimeoutMs: 30_000,
};

export interface RequestCounters {
  /** HTTP attempts made. */
  requests: number;
  /** Attempts that failed (any non-2xx answer or network error). */
  errors: number;
  /** Attempts that were retries of a failed one. */
  retries: number;
}

export type PostOutcome =
  | { kind: 'ok'; status: number; body: unknown }
  /** A 4xx other than 408/429: the request will never succeed as it is. */
  | { kind: 'refused'; status: number; body: unknown }
  /** maxAttempts retryable failures in a row. */
  | { kind: 'exhausted'; status?: number; message: string }
  | { kind: 'aborted' };

export interface PostRequest {
  url: string;
  body: unknown;
  /** Asked before every attempt, so an expiring token can be renewed. */
  token: () => string;
  log: Logger;
  counters: RequestCounters;
  /** Jitter source. */
  rng: Prng;
  retry: RetryPolicy;
  signal?: AbortSignal;
}

const maxRetryAfterMs = 60_000;
const maxLoggedBodyChars = 2000;

/** Waits `ms`; false when `signal` aborted the wait. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return false;
  if (ms <= 0) return true;
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (header.trim() !== '' && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text.length > maxLoggedBodyChars ? `${text.slice(0, maxLoggedBodyChars)}…` : text;
  }
}

const retryable = (status: number) => status >= 500 || status === 429 || status === 408;

export async function postWithRetry(req: PostRequest): Promise<PostOutcome> {
  const { url, log, counters, retry, signal } = req;
  const payload = JSON.stringify(req.body);
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) return { kind: 'aborted' };
    if (attempt > 1) counters.retries++;
    counters.requests++;
    let status: number | undefined;
    let body: unknown;
    let waitHintMs: number | undefined;
    let failure: string;
    try {
      const timeout = AbortSignal.timeout(retry.requestTimeoutMs);
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${req.token()}`,
          'content-type': 'application/json',
          'user-agent': 'attune-simulator',
        },
        body: payload,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      status = res.status;
      body = await readBody(res);
      if (res.ok) return { kind: 'ok', status, body };
      counters.errors++;
      if (!retryable(status)) {
        log.error({ url, status, body, attempt }, `POST ${url} refused with ${status}; not retrying`);
        return { kind: 'refused', status, body };
      }
      waitHintMs = retryAfterMs(res.headers.get('retry-after'), Date.now());
      failure = `status ${status}`;
    } catch (err) {
      if (signal?.aborted) return { kind: 'aborted' };
      counters.errors++;
      failure = err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err);
    }
    if (attempt >= retry.maxAttempts) {
      log.error({ url, status, body, attempt, failure }, `POST ${url} failed ${attempt} times; giving up`);
      return { kind: 'exhausted', status, message: failure };
    }
    const backoff = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1)) * (0.5 + 0.5 * req.rng.next());
    const waitMs = waitHintMs === undefined ? backoff : Math.min(maxRetryAfterMs, Math.max(backoff, waitHintMs));
    log.warn({ url, status, body, attempt, failure, retryInMs: Math.round(waitMs) }, `POST ${url} failed (${failure}); retrying`);
    if (!(await sleep(waitMs, signal))) return { kind: 'aborted' };
  }
}
