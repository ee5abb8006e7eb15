// The webhook dispatcher (issue 12): events from the bus → PostgreSQL outbox → signed HTTP
// deliveries with exponential back-off.
//
//  1. Intake: a consumer group (`attune-webhooks`) reads session changes, mesh events, speech
//     events and heart readings, turns what a webhook can report into events (events.ts) and
//     stores them in webhook_events (one row per deterministic event id: a replayed record is the
//     same event); the offset is committed only after the insert. A new group starts at the
//     topics' ends (history is not replayed into webhooks created today).
//  2. Fan-out: a ready event (session.completed waits `settleMs` for the session's last windows,
//     then reads its figures from ClickHouse) becomes one delivery per webhook of its
//     organisation subscribed to its type, with the exact body that will be signed.
//  3. Delivery: due deliveries are taken FOR UPDATE SKIP LOCKED with a lease, POSTed with
//     `X-AUF-Signature: sha256=<hex HMAC-SHA256 of the raw body with the webhook's secret>`
//     (the coherence platform document's verifyWebhook) and `X-Attune-Signature: t=…,v1=…`
//     (the same HMAC over the attempt's time and the body, for receivers that refuse replays),
//     and recorded. A 2xx is delivered;
//     anything else (other status, timeout, refused connection, refused address) is retried
//     after RETRY_DELAYS_S[attempt - 1]: 30 s doubling to 6 h, 14 attempts over 26.5 h, then
//     failed. The SSRF guard (lib/net-guard.ts) runs inside the connection's DNS lookup.
//     Each attempt has a total deadline (`timeoutMs`, 10 s by default) covering the DNS
//     lookup, the connection, the answer's headers and its whole body (read up to
//     MAX_RESPONSE_BYTES, the rest not read): a receiver that answers 200 and then trickles its
//     body is cut off at the deadline and the attempt is a failure (timeout), retried as above.
//     The lease is the deadline + LEASE_MARGIN_MS (30 s), so another dispatcher takes a
//     delivery again only once its attempt here is over, or this dispatcher died.
//  Fan-out and delivery do not wait for each other: fan-out runs on each poll and each new
//  batch; attempts run in a pool of at most `concurrency` (20) in flight, each recorded when it
//  ends, and due deliveries are taken (oldest due first) as slots free. One slow receiver holds
//  one slot for at most the deadline, not a round of every organisation's deliveries (until
//  12-06 a round waited for all 20 of its attempts, and a receiver trickling its answer held it
//  for ever, so no organisation's webhooks were fanned out or sent).
// All state is in PostgreSQL, so a restart loses nothing: pending deliveries are taken again.
// Time comes from `clock` (injectable: the tests drive two minutes of receiver downtime and
// the back-off without sleeping); only an attempt's deadline is a timer of real time.
import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Bus, Subscription } from '../../bus/types.js';
import type { Logger } from '../../lib/log.js';
import { addressAllowed, guardedLookup, PrivateAddressError, type NetGuardOptions } from '../../lib/net-guard.js';
import { decodeRecord, type Codec } from '../../schemas/registry/codec.js';
import { decodeReadingsValue } from '../../schemas/reading-batches.js';
import { HIGH_COHERENCE_SCORE, deviceFigures, summariseDeviceSteps } from '../../store/device-figures.js';
import type { HeartReading, MeshEvent, SessionChange, SpeechEvent } from '../../schemas/registry/schemas.js';
import type { TopicNames } from '../../schemas/topics.js';
import type { StoreClient } from '../../store/clickhouse.js';
import type { SqlClient, SqlQueryable } from '../../store/postgres/client.js';
import type { Completed, DueDelivery, Postponed, ReadyEvent, WebhookEventInput, WebhooksRepository } from '../../store/postgres/webhooks-repo.js';
import { groupIdFor } from '../group-id.js';
import { defaultStepMs } from '../coherence/session-windows.js';

/** The event types a webhook may subscribe to. */
export const WEBHOOK_EVENT_TYPES = ['session.started', 'session.completed', 'user.streak_milestone', 'mesh.threshold_reached', 'device.low_battery', 'speech.session.completed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Wait after attempt n (1-based) failed: 30 s doubling, at most 6 h; after the last, the delivery has failed (26.5 h after the first attempt). */
export const RETRY_DELAYS_S = [30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600, 21600];
export const MAX_ATTEMPTS = RETRY_DELAYS_S.length + 1;
export const LOW_BATTERY_PCT = 15;
/** Delivered and failed deliveries, and events no delivery names, are forgotten after this (the delivery log's depth). */
export const RETENTION_MS = 30 * 86_400_000;
export const STREAK_MILESTONES = [7, 30, 100];
export const SIGNATURE_HEADER = 'x-auf-signature';
/** One attempt's total deadline by default (connect, headers and the whole answer), ms. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** A delivery's lease is the attempt's deadline plus this (time to record the outcome). */
export const LEASE_MARGIN_MS = 30_000;
/** Attempts in flight at once in one dispatcher, by default. */
export const DEFAULT_CONCURRENCY = 20;
/** The receiver's answer is read up to this many bytes; the rest is not read (its status counts). */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** The document's signature: `sha256=` + hex HMAC-SHA256 of the raw body. */
export function signatureOf(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Attune's own signature, beside the document's: `t=<unix seconds of this attempt>,v1=<hex
 * HMAC-SHA256 of "<t>.<raw body>">`. The document's signature covers the body only, so a
 * captured delivery verifies for ever; this one binds the attempt's time, so a receiver that
 * also checks the time (examples/webhook-receiver.mjs, 5 minutes) refuses a copy sent again
 * later. Each attempt is signed at its own time.
 */
export const TIMESTAMPED_SIGNATURE_HEADER = 'x-attune-signature';
export function timestampedSignatureOf(body: string, secret: string, atMs: number): string {
  const t = Math.floor(atMs / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * The documents' top-level webhook fields. The speech-coaching document's, for its session.completed (a speech
 * session, Attune's speech.session.completed: /sessions is /v1/speech-sessions there, so its
 * event type has the same prefix): {event: "session.completed", sessionId, userId, timestamp}
 * beside Attune's {id, type, created}; its data {status, score, duration} is in `data`.
 */
function documentFields(e: { type: string; created: number; data: Record<string, unknown> }): Record<string, unknown> {
  // Every other event: the communication platform document's payload style, {event, timestamp,
  // data}, beside Attune's {id, type, created} (its clients read `event` and `timestamp`).
  if (e.type !== 'speech.session.completed') return { event: e.type, timestamp: iso(e.created) };
  return { event: 'session.completed', sessionId: e.data.speech_session_id ?? null, userId: e.data.user_id ?? null, timestamp: iso(e.created) };
}

/** evt_ + 24 hex of sha-256 over what the event is about: the same record always makes the same id. */
export const eventIdOf = (key: string): string => `evt_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;

export interface SendResult {
  statusCode: number | null;
  error: string | null;
}

export interface WebhookDispatcherOptions {
  bus: Bus;
  topics: TopicNames;
  codec: Codec;
  sql: SqlClient;
  webhooks: WebhooksRepository;
  /** ClickHouse: session.completed figures and streaks; without it they are null / not computed. */
  store?: StoreClient | null;
  log: Logger;
  clock?: () => number;
  guard: NetGuardOptions;
  /** How long a completed session's event waits for its last windows (default 30 s). */
  settleMs?: number;
  /**
   * How long it waits at most when, after settleMs, its windows do not reach its last beat yet
   * (a worker or sink behind: it looks again every settleMs); then it is sent with the windows
   * there are. Default 10 min.
   */
  maxSettleMs?: number;
  /** Poll of the outbox when idle, ms (default 1000). 0: no timer (tests call runOnce). */
  pollMs?: number;
  /** One attempt's total deadline, ms (default 10 s): connect, headers and the whole answer. */
  timeoutMs?: number;
  /** Attempts in flight at once (default 20); due deliveries are taken as slots free. */
  concurrency?: number;
  /** How long delivered and failed deliveries, and their events, are kept (default 30 days; pruned hourly). */
  retentionMs?: number;
  /** The HTTP sender (tests may replace it; the deadline is then its own); the guarded node:http(s) request by default. */
  send?: (d: DueDelivery, headers: Record<string, string>) => Promise<SendResult>;
}

const iso = (t: number) => new Date(t).toISOString();
const round = (v: number | null | undefined, digits = 4) => (v === null || v === undefined || !Number.isFinite(Number(v)) ? null : Number(Number(v).toFixed(digits)));

function parseJson(s: string | undefined): Record<string, unknown> {
  try {
    const v = JSON.parse(s ?? '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

export class WebhookDispatcher {
  private subscription: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = true;
  private readonly clock: () => number;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  private readonly concurrency: number;
  /** The attempts under way (at most `concurrency`), each settled once its outcome is recorded. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Takes of due deliveries, one at a time (so that the pool never holds more than `concurrency`). */
  private taking: Promise<unknown> = Promise.resolve();
  /** The last take filled every free slot: more may be due, so a slot that frees takes again. */
  private moreDue = false;
  /** The running loop's filling of free slots, and whether it should look again when done. */
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  /** Devices' last known battery state (low or not), so PostgreSQL is asked only on a change. */
  private readonly battery = new Map<string, boolean>();
  /**
   * Whether any webhook takes device.low_battery (asked at most every 10 s of wall time): the
   * readings topic is the busiest, and without such a webhook its records are not decoded.
   */
  private batteryWanted: { value: boolean; at: number } | null = null;
  /** When (clock) the outbox was last pruned. */
  private prunedAt = -Infinity;
  readonly stats = { events: 0, delivered: 0, failedAttempts: 0, failed: 0 };

  constructor(private readonly opts: WebhookDispatcherOptions) {
    this.clock = opts.clock ?? Date.now;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.leaseMs = this.timeoutMs + LEASE_MARGIN_MS;
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_CONCURRENCY));
  }

  async start(): Promise<void> {
    this.stopped = false;
    const t = this.opts.topics;
    this.subscription = await this.opts.bus.subscribe({
      groupId: groupIdFor('attune-webhooks', t),
      topics: [t.sessionChanges, t.meshEvents, t.speechEvents, t.heartReadings],
      fromBeginning: false,
      // The devices' battery states seen here are a cache of PostgreSQL's; a partition that
      // moved to another dispatcher and back may have changed them meanwhile.
      onAssignment: () => {
        this.battery.clear();
      },
      eachBatch: async (batch) => {
        const events: WebhookEventInput[] = [];
        const skip = batch.topic === t.heartReadings && !(await this.wantsBattery());
        for (const rec of skip ? [] : batch.records) {
          let values: unknown[];
          try {
            if (batch.topic === t.heartReadings) {
              // The gateway publishes a request's readings as HeartReadingBatch records: each
              // reading of one can report a battery level.
              let v = decodeReadingsValue(this.opts.codec, rec.value);
              if (v instanceof Promise) v = await v;
              values = v.kind === 'batch' ? v.readings : [v.value];
            } else {
              let value = decodeRecord<unknown>(this.opts.codec, rec.value);
              if (value instanceof Promise) value = await value;
              values = [value];
            }
          } catch {
            continue; // undecodable: the workers dead-letter it; nothing a webhook can report
          }
          for (const value of values) events.push(...(await this.eventsOf(batch.topic, value)));
        }
        if (events.length > 0) {
          await this.opts.webhooks.addEvents(events);
          this.stats.events += events.length;
        }
        const last = batch.records[batch.records.length - 1];
        if (last) await this.subscription?.commit(batch.topic, batch.partition, (BigInt(last.offset) + 1n).toString());
        if (events.length > 0) this.kick();
      },
    });
    if ((this.opts.pollMs ?? 1000) > 0) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.subscription?.stop();
    this.subscription = null;
    await this.running.catch(() => undefined);
    await this.pumping;
    // Each ends within its deadline; an attempt cut short here would only be retried after its lease.
    await Promise.allSettled([...this.inFlight]);
  }

  /** The running loop (a timer) takes and attempts deliveries; with pollMs 0 only runOnce does. */
  private get looping(): boolean {
    return !this.stopped && (this.opts.pollMs ?? 1000) > 0;
  }

  private async wantsBattery(): Promise<boolean> {
    const now = Date.now();
    if (this.batteryWanted && now - this.batteryWanted.at < 10_000) return this.batteryWanted.value;
    const { rows } = await this.opts.sql.query<{ wanted: boolean }>(`SELECT EXISTS (SELECT 1 FROM webhooks WHERE 'device.low_battery' = ANY(events)) AS wanted`);
    this.batteryWanted = { value: rows[0]?.wanted === true, at: now };
    return this.batteryWanted.value;
  }

  /** The webhook events one bus record makes (none for most). */
  async eventsOf(topic: string, value: unknown): Promise<WebhookEventInput[]> {
    const t = this.opts.topics;
    const now = this.clock();
    if (topic === t.sessionChanges) {
      const s = value as SessionChange;
      const out: WebhookEventInput[] = [];
      // The topic carries each session's state after a change; a session created and ended
      // between two relay rounds arrives ended only: it has started all the same.
      out.push({
        eventId: eventIdOf(`session.started:${s.session_id}`),
        orgId: s.org_id,
        type: 'session.started',
        created: s.started_at,
        subject: {},
        data: { user_id: s.user_id, session_id: s.session_id, type: s.type, started_at: iso(s.started_at), device_id: s.device_id || null },
        readyAt: now,
      });
      if (s.status !== 'active' && s.ended_at !== null && s.ended_at !== undefined) {
        out.push({
          eventId: eventIdOf(`session.completed:${s.session_id}`),
          orgId: s.org_id,
          type: 'session.completed',
          created: s.ended_at,
          subject: { session_id: s.session_id, user_id: s.user_id, org_id: s.org_id, started_at: s.started_at, ended_at: s.ended_at, status: s.status },
          data: null,
          readyAt: now + (this.opts.settleMs ?? 30_000),
        });
      }
      return out;
    }
    if (topic === t.meshEvents) {
      const m = value as MeshEvent;
      if (m.type !== 'manifestation_event') return [];
      return [{ eventId: eventIdOf(`mesh.threshold_reached:${m.event_id}`), orgId: m.org_id, type: 'mesh.threshold_reached', created: m.occurred_at, subject: {}, data: { mesh_session_id: m.mesh_id, ...parseJson(m.payload_json) }, readyAt: now }];
    }
    if (topic === t.speechEvents) {
      const e = value as SpeechEvent;
      if (e.type !== 'processing:status') return [];
      const p = parseJson(e.payload_json);
      if (p.status !== 'completed') return [];
      const source = typeof p.uploadId === 'string' ? { upload_id: p.uploadId } : { stream_id: p.streamId ?? null };
      return [
        {
          eventId: eventIdOf(`speech.session.completed:${e.session_id}:${String(p.uploadId ?? p.streamId ?? '')}`),
          orgId: e.org_id,
          type: 'speech.session.completed',
          created: e.occurred_at,
          subject: {},
          // status and score: the speech-coaching document's session.completed data {status, score, duration} (render adds its top-level fields).
          data: { user_id: e.user_id, speech_session_id: e.session_id, ...source, word_count: p.wordCount ?? null, duration: p.durationS ?? null, status: 'completed', score: typeof p.score === 'number' ? p.score : null },
          readyAt: now,
        },
      ];
    }
    if (topic === t.heartReadings) {
      const r = value as HeartReading;
      if (r.battery_level_pct === null || r.battery_level_pct === undefined) return [];
      const low = r.battery_level_pct < LOW_BATTERY_PCT;
      const k = `${r.org_id}/${r.device_id}`;
      if (this.battery.get(k) === low) return [];
      const event: WebhookEventInput = {
        eventId: eventIdOf(`device.low_battery:${r.org_id}:${r.device_id}:${r.reading_id}`),
        orgId: r.org_id,
        type: 'device.low_battery',
        created: r.recorded_at,
        subject: {},
        data: { device_id: r.device_id, user_id: r.user_id, battery_level: r.battery_level_pct, threshold: LOW_BATTERY_PCT, recorded_at: iso(r.recorded_at) },
        readyAt: now,
      };
      // Stored with the state change, in one transaction; returned too (stored again as a no-op:
      // its id is deterministic) so that the caller counts it and wakes the fan-out.
      const fell = await this.opts.webhooks.batteryFell(r.org_id, r.device_id, low, event);
      this.battery.set(k, low);
      return fell ? [event] : [];
    }
    return [];
  }

  /**
   * For tests (pollMs 0) and tools: fan out every ready event, then attempt every due delivery
   * through the pool, and wait for the attempts this call started. Returns how many it started.
   * The running loop does not call it: it fans out (tick) and fills the pool (pump) without
   * waiting for any attempt.
   */
  async runOnce(): Promise<number> {
    await this.fanOutReady();
    let attempts = 0;
    const mine: Promise<void>[] = [];
    for (;;) {
      const { started, more } = await this.take();
      attempts += started.length;
      mine.push(...started);
      if (!more) break;
      if (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
    }
    await Promise.all(mine);
    return attempts;
  }

  /** Prunes the outbox (hourly), then fans out every ready event. Never waits for an attempt. */
  private async fanOutReady(): Promise<void> {
    const now = this.clock();
    if (now - this.prunedAt >= 3600_000) {
      this.prunedAt = now;
      const pruned = await this.opts.webhooks.prune(now - (this.opts.retentionMs ?? RETENTION_MS));
      if (pruned.deliveries + pruned.events > 0) this.opts.log.info(pruned, 'webhook outbox pruned');
    }
    while ((await this.opts.webhooks.fanOut(now, 100, (e) => this.complete(e), (e) => this.render(e))) === 100) {
      // more ready events
    }
  }

  /**
   * Takes as many due deliveries as the pool has free slots and starts their attempts (not
   * waited for). `more`: every free slot was filled (or none was free), so more may be due.
   */
  private take(): Promise<{ started: Promise<void>[]; more: boolean }> {
    const next = this.taking.then(async () => {
      const free = this.concurrency - this.inFlight.size;
      if (free <= 0) return { started: [], more: true };
      const due = await this.opts.webhooks.takeDue(this.clock(), this.leaseMs, free);
      this.moreDue = due.length === free;
      return { started: due.map((d) => this.launch(d)), more: this.moreDue };
    });
    this.taking = next.catch(() => undefined);
    return next;
  }

  /** One attempt in the pool: it ends on its own (within the deadline) and frees its slot. */
  private launch(d: DueDelivery): Promise<void> {
    const p: Promise<void> = this.attempt(d)
      .catch((err) => {
        // Not recorded (PostgreSQL unreachable?): the lease runs out and the delivery is taken again.
        this.opts.log.warn({ err, delivery: d.id }, 'webhook attempt not recorded; retried after its lease');
      })
      .finally(() => {
        this.inFlight.delete(p);
        if (this.moreDue) this.pump();
      });
    this.inFlight.add(p);
    return p;
  }

  /** The running loop's filling of free slots (after a fan-out, a poll, or an attempt's end). */
  private pump(): void {
    if (!this.looping) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = (async () => {
      do {
        this.pumpAgain = false;
        const { more } = await this.take();
        // Slots freed while taking, and more is due: take again.
        if (more && this.inFlight.size < this.concurrency) this.pumpAgain = true;
      } while (this.pumpAgain && this.looping);
    })()
      .catch((err) => this.opts.log.warn({ err }, 'webhook deliveries could not be taken; retrying'))
      .finally(() => {
        this.pumping = null;
      });
  }

  /**
   * When to look again at a completed session whose windows do not reach its last beat (one
   * with RR intervals dated up to its end), or null when they do, when it has none, or when it
   * has waited maxSettleMs. The end call's marker closes windows up to the first one ending
   * after the last beat (5 s grid); the settle time is a guess of how long that takes, and a
   * worker or sink behind it (a backlog, a restart) made the webhook carry the figures of the
   * windows stored so far, which GET then no longer gave.
   */
  private async windowsPending(store: StoreClient, s: { session_id: string; user_id: string; org_id: string; ended_at: number; waiting_since?: number }, lastWindowEndMs: number | null): Promise<number | null> {
    const now = this.clock();
    const settle = this.opts.settleMs ?? 30_000;
    // Counted from the first look (the settle time after the end was read).
    if (now - (s.waiting_since ?? now) >= (this.opts.maxSettleMs ?? 600_000)) {
      this.opts.log.warn({ session_id: s.session_id, last_window_end: lastWindowEndMs }, 'session.completed sent with the windows stored so far: its last windows did not come within the longest settle time');
      return null;
    }
    const rs = await store.client.query({
      query: `SELECT toUnixTimestamp64Milli(max(event_time)) AS last_beat, count() AS beats
              FROM ${store.database}.heart_readings
              WHERE org_id = {org:String} AND user_id = {user:String} AND session_id = {sid:String}
                AND rr_ms IS NOT NULL AND event_time <= fromUnixTimestamp64Milli({ended:Int64})`,
      query_params: { org: s.org_id, user: s.user_id, sid: s.session_id, ended: s.ended_at },
      format: 'JSONEachRow',
    });
    const [beats] = (await rs.json()) as Array<{ last_beat: string | number | null; beats: string | number }>;
    if (!beats || Number(beats.beats) === 0) return null;
    const needEnd = Math.floor(Number(beats.last_beat) / defaultStepMs) * defaultStepMs + defaultStepMs;
    if (lastWindowEndMs !== null && lastWindowEndMs >= needEnd) return null;
    return now + Math.max(settle, 1000);
  }

  private render(e: ReadyEvent & { data: Record<string, unknown> }): string {
    return JSON.stringify({ id: e.eventId, type: e.type, created: iso(e.created), ...documentFields(e), data: e.data });
  }

  /** The data of an event that waited (session.completed), and the streak milestone it may make; or, while its windows are not all in, when to look again. */
  private async complete(e: ReadyEvent): Promise<Completed | Postponed> {
    if (e.type !== 'session.completed') return { data: null };
    const s = e.subject as { session_id: string; user_id: string; org_id: string; started_at: number; ended_at: number; waiting_since?: number };
    let average: number | null = null;
    let peak: number | null = null;
    let validWindows = 0;
    let source: 'rr' | 'device' | null = null;
    const events: WebhookEventInput[] = [];
    const store = this.opts.store;
    if (store) {
      const trusted = 'valid AND NOT partial AND coherence IS NOT NULL';
      const rs = await store.client.query({
        query: `SELECT count() AS windows, countIf(${trusted}) AS n, avgIf(coherence, ${trusted}) AS average, maxIf(coherence, ${trusted}) AS peak,
                       toUnixTimestamp64Milli(max(window_end)) AS last_end
                FROM ${store.database}.coherence_windows FINAL
                WHERE org_id = {org:String} AND user_id = {user:String} AND session_id = {sid:String}`,
        query_params: { org: s.org_id, user: s.user_id, sid: s.session_id },
        format: 'JSONEachRow',
      });
      const [row] = (await rs.json()) as Array<{ windows: string | number; n: string | number; average: number | null; peak: number | null; last_end: string | number | null }>;
      const waitUntil = await this.windowsPending(store, s, Number(row?.windows ?? 0) > 0 ? Number(row.last_end) : null);
      if (waitUntil !== null) return { postponeUntil: waitUntil, subject: { ...s, waiting_since: s.waiting_since ?? this.clock() } };
      validWindows = Number(row?.n ?? 0);
      average = validWindows > 0 ? round(row.average) : null;
      peak = validWindows > 0 ? round(row.peak) : null;
      if (validWindows > 0) source = 'rr';
      else if (Number(row?.windows ?? 0) === 0) {
        // No RR intervals, so no window: the figures the devices reported, as the session's
        // detail shows them (api/sessions.ts, store/device-figures.ts).
        const figures = await deviceFigures(store.client, store.database, { orgId: s.org_id, userId: s.user_id, sessionId: s.session_id, startedAtMs: s.started_at });
        const d = summariseDeviceSteps(figures.steps, HIGH_COHERENCE_SCORE, s.started_at);
        // Only for a session without RR intervals: one with them whose windows are not in yet
        // (the settle time passed first) keeps null figures rather than the device's.
        if (figures.rrReadings === 0 && d.readings > 0) {
          source = 'device';
          average = round(d.averageCoherence);
          peak = round(d.peakCoherence);
        }
      }
      const milestone = await this.streakMilestone(s, store);
      if (milestone) events.push(milestone);
    }
    const data = {
      user_id: s.user_id,
      session_id: s.session_id,
      duration: Math.max(0, Math.round((s.ended_at - s.started_at) / 1000)),
      average_coherence: average,
      peak_coherence: peak,
      valid_window_count: validWindows,
      metrics_source: source,
      started_at: iso(s.started_at),
      ended_at: iso(s.ended_at),
    };
    return { data, events };
  }

  /**
   * user.streak_milestone: after a completed session, the user's practice days in a row
   * (calendar days in their time zone with a valid window, as GET /v1/users/me counts them)
   * ending on the session's day; an event when that is 7, 30 or 100. Its id names the user,
   * the milestone and the day, so a streak reaches each milestone once.
   */
  private async streakMilestone(s: { session_id: string; user_id: string; org_id: string; ended_at: number }, store: StoreClient): Promise<WebhookEventInput | null> {
    const { rows } = await this.opts.sql.query<{ timezone: string }>('SELECT timezone FROM users WHERE org_id = $1 AND user_id = $2', [s.org_id, s.user_id]);
    const tz = rows[0]?.timezone ?? 'UTC';
    const rs = await store.client.query({
      query: `SELECT toString(toDate(window_end, {tz:String})) AS d, toString(toDate(fromUnixTimestamp64Milli({end:Int64}), {tz:String})) AS today
              FROM ${store.database}.coherence_windows FINAL
              WHERE org_id = {org:String} AND user_id = {user:String} AND valid AND coherence IS NOT NULL
              GROUP BY d ORDER BY d DESC LIMIT 101`,
      query_params: { org: s.org_id, user: s.user_id, tz, end: s.ended_at },
      format: 'JSONEachRow',
    });
    const days = (await rs.json()) as Array<{ d: string; today: string }>;
    if (days.length === 0) return null;
    const dayNum = (d: string) => Math.round(Date.parse(`${d}T00:00:00Z`) / 86_400_000);
    const have = new Set(days.map((r) => dayNum(r.d)));
    const end = dayNum(days[0].today);
    let streak = 0;
    while (have.has(end - streak)) streak++;
    if (!STREAK_MILESTONES.includes(streak)) return null;
    return {
      eventId: eventIdOf(`user.streak_milestone:${s.org_id}:${s.user_id}:${streak}:${days[0].today}`),
      orgId: s.org_id,
      type: 'user.streak_milestone',
      created: s.ended_at,
      subject: {},
      data: { user_id: s.user_id, streak_days: streak, milestone: streak, date: days[0].today, timezone: tz, session_id: s.session_id },
      readyAt: this.clock(),
    };
  }

  private async attempt(d: DueDelivery): Promise<void> {
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Attune-Webhooks/1',
      [SIGNATURE_HEADER]: signatureOf(d.body, d.secret),
      // The speech-coaching document's name for the same signature.
      'x-webhook-signature': signatureOf(d.body, d.secret),
      [TIMESTAMPED_SIGNATURE_HEADER]: timestampedSignatureOf(d.body, d.secret, this.clock()),
      'x-auf-event-id': d.eventId,
      'x-auf-delivery': d.id,
      'x-auf-attempt': String(d.attempts),
    };
    let result: SendResult;
    try {
      result = await (this.opts.send ?? ((x, h) => this.post(x, h)))(d, headers);
    } catch (err) {
      result = { statusCode: null, error: (err as Error).message };
    }
    const at = this.clock();
    // A 2xx whose answer did not complete (error set: the deadline passed) is not delivered.
    const delivered = result.error === null && result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
    // The schedule counts from the last redelivery by hand (scheduleAttempts), the header and log from the first attempt.
    const n = d.scheduleAttempts;
    const next = delivered || n >= MAX_ATTEMPTS ? null : at + RETRY_DELAYS_S[n - 1] * 1000;
    await this.opts.webhooks.recordAttempt(d.id, { delivered, statusCode: result.statusCode, error: delivered ? null : result.error ?? `HTTP ${result.statusCode}`, nextAttemptAt: next, at });
    if (delivered) this.stats.delivered++;
    else {
      this.stats.failedAttempts++;
      if (next === null) this.stats.failed++;
      this.opts.log.info({ delivery: d.id, webhook: d.webhookId, attempt: d.attempts, status: result.statusCode, error: result.error, next_attempt_at: next === null ? null : iso(next) }, 'webhook delivery failed');
    }
  }

  /**
   * POST with the SSRF guard in the connection's DNS lookup; no redirects followed. One total
   * deadline (`timeoutMs`) for the lookup, the connection, the headers and the whole answer:
   * node's `timeout` option is only an idle-socket timeout, which a receiver sending a byte now
   * and then never trips. A timer rather than `AbortSignal.timeout`: it is cleared as soon as
   * the attempt ends (no timer left per attempt), and the outcome says which stage the deadline
   * cut (an AbortError would not); on expiry the request and its socket are destroyed.
   */
  private post(d: DueDelivery, headers: Record<string, string>): Promise<SendResult> {
    const u = new URL(d.url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && !addressAllowed(this.opts.guard, host)) {
      return Promise.resolve({ statusCode: null, error: `private_address: ${host} may not be reached` });
    }
    const timeoutMs = this.timeoutMs;
    return new Promise((resolve) => {
      let settled = false;
      let status: number | null = null;
      let deadline: NodeJS.Timeout | undefined;
      const finish = (r: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(r);
      };
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
        u,
        { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(d.body)) }, lookup: guardedLookup(this.opts.guard) as never },
        (res: IncomingMessage) => {
          status = res.statusCode ?? null;
          // The answer's body is read (to its end, which is when the attempt is over) but not
          // kept; past MAX_RESPONSE_BYTES it is not read further: its status is the outcome.
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > MAX_RESPONSE_BYTES) {
              finish({ statusCode: status, error: null });
              req.destroy();
            }
          });
          res.on('end', () => finish({ statusCode: status, error: null }));
          res.on('error', (err) => finish({ statusCode: null, error: `HTTP ${status}, answer cut off: ${err.message}` }));
          res.on('close', () => finish({ statusCode: null, error: `HTTP ${status}, answer cut off` }));
        },
      );
      deadline = setTimeout(() => {
        finish({ statusCode: null, error: status === null ? `timeout: no answer within ${timeoutMs} ms` : `timeout: the answer (HTTP ${status}) did not complete within ${timeoutMs} ms` });
        req.destroy();
      }, timeoutMs);
      req.on('error', (err) => finish({ statusCode: null, error: err instanceof PrivateAddressError ? `private_address: ${err.message}` : err.message }));
      req.end(d.body);
    });
  }

  /** The running loop's round: fan out what is ready, then fill the pool's free slots (not waiting for attempts). */
  private async tick(): Promise<void> {
    try {
      await this.fanOutReady();
    } finally {
      this.pump();
    }
  }

  private kick(): void {
    if ((this.opts.pollMs ?? 1000) > 0 && !this.stopped) this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.running
        .then(() => this.tick())
        .catch((err) => this.opts.log.warn({ err }, 'webhook dispatcher round failed; retrying'))
        .finally(() => this.schedule(this.opts.pollMs ?? 1000));
    }, delayMs);
    this.timer.unref();
  }
}
