// Webhooks, their events and the delivery outbox in PostgreSQL (schemas/postgres/
// 0005_api_keys_webhooks.sql). The API manages webhooks and reads the delivery log; the
// dispatcher (pipelines/webhooks/) adds events from the bus, fans ready events out to the
// organisation's webhooks, and takes due deliveries FOR UPDATE SKIP LOCKED (several
// dispatchers share the outbox without sending one delivery twice at once). Every time is the
// caller's clock, so back-off can be driven by a test clock.
import { randomUUID } from 'node:crypto';
import { AttuneError } from '../../lib/errors.js';
import type { SqlClient, SqlQueryable } from './client.js';
import { isUuid, ms, msOrNull, toDate } from './sql.js';

export interface Webhook {
  id: string;
  orgId: string;
  createdBy: string;
  url: string;
  events: string[];
  description: string;
  createdAt: number;
  /** false: paused (deliveries held pending, none attempted). */
  active: boolean;
}

export interface WebhookDelivery {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  createdAt: number;
  nextAttemptAt: number | null;
  lastAttemptAt: number | null;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: number | null;
}

export interface WebhookEventInput {
  eventId: string;
  orgId: string;
  type: string;
  /** When it happened (the payload's `created`). */
  created: number;
  /** Ids the data is computed from when it is not known yet. */
  subject: Record<string, unknown>;
  /** null: computed when ready (WebhookEventReady). */
  data: Record<string, unknown> | null;
  readyAt: number;
}

export interface ReadyEvent extends WebhookEventInput {}

/** What fan-out does with a ready event whose data is not complete yet: it waits until `until`, its subject replaced. */
export interface Postponed {
  postponeUntil: number;
  subject: Record<string, unknown>;
}

/** A ready event's data, filled (null: dropped), with events it makes (stored with its fan-out, in one transaction). */
export interface Completed {
  data: Record<string, unknown> | null;
  events?: WebhookEventInput[];
}

/** A delivery taken for an attempt, with what it needs to be sent. */
export interface DueDelivery {
  id: string;
  webhookId: string;
  eventId: string;
  url: string;
  secret: string;
  body: string;
  /** Attempts including the one now being made. */
  attempts: number;
  /** Attempts including this one since the delivery was last sent again by hand (the retry schedule's count). */
  scheduleAttempts: number;
  createdAt: number;
}

interface WebhookRow {
  webhook_id: string;
  org_id: string;
  created_by: string;
  url: string;
  events: string[];
  description: string;
  created_at: Date;
  active: boolean;
}
const WEBHOOK_COLUMNS = 'webhook_id::text AS webhook_id, org_id, created_by, url, events, description, created_at, active';
const toWebhook = (r: WebhookRow): Webhook => ({
  id: r.webhook_id,
  orgId: r.org_id,
  createdBy: r.created_by,
  url: r.url,
  events: [...r.events],
  description: r.description,
  createdAt: ms(r.created_at),
  active: r.active !== false,
});

interface DeliveryRow {
  delivery_id: string | number;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: WebhookDelivery['status'];
  attempts: number;
  created_at: Date;
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Date | null;
}
const DELIVERY_COLUMNS =
  'delivery_id, webhook_id::text AS webhook_id, event_id, event_type, status, attempts, created_at, next_attempt_at, last_attempt_at, last_status_code, last_error, delivered_at';
const toDelivery = (r: DeliveryRow): WebhookDelivery => ({
  id: String(r.delivery_id),
  webhookId: r.webhook_id,
  eventId: r.event_id,
  eventType: r.event_type,
  status: r.status,
  attempts: Number(r.attempts),
  createdAt: ms(r.created_at),
  nextAttemptAt: r.status === 'pending' ? msOrNull(r.next_attempt_at) : null,
  lastAttemptAt: msOrNull(r.last_attempt_at),
  lastStatusCode: r.last_status_code === null ? null : Number(r.last_status_code),
  lastError: r.last_error,
  deliveredAt: msOrNull(r.delivered_at),
});

const notFound = (id: string) => new AttuneError('not_found', `webhook ${id} not found`, [{ field: 'id', reason: 'not_found' }]);

export class WebhooksRepository {
  private readonly clock: () => number;
  constructor(private readonly sql: SqlClient, opts: { clock?: () => number } = {}) {
    this.clock = opts.clock ?? Date.now;
  }

  // --- the API's side ---

  async create(input: { orgId: string; createdBy: string; url: string; events: string[]; secret: string; description: string }): Promise<Webhook> {
    const { rows } = await this.sql.query<WebhookRow>(
      `INSERT INTO webhooks (webhook_id, org_id, created_by, url, events, secret, description, created_at)
       VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8) RETURNING ${WEBHOOK_COLUMNS}`,
      [randomUUID(), input.orgId, input.createdBy, input.url, input.events, input.secret, input.description, toDate(this.clock())],
    );
    return toWebhook(rows[0]);
  }

  async list(orgId: string): Promise<Webhook[]> {
    const { rows } = await this.sql.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 ORDER BY created_at DESC, webhook_id LIMIT 1000`, [orgId]);
    return rows.map(toWebhook);
  }

  async get(orgId: string, id: string): Promise<Webhook> {
    if (!isUuid(id)) throw notFound(id);
    const { rows } = await this.sql.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 AND webhook_id = $2`, [orgId, id]);
    if (rows.length === 0) throw notFound(id);
    return toWebhook(rows[0]);
  }

  /**
   * Changes what is given: `active` (false pauses: deliveries are held pending, none is
   * attempted; true resumes), the event types, the URL (checked by the caller), the description.
   */
  async update(orgId: string, id: string, change: { active?: boolean; events?: string[]; url?: string; description?: string }): Promise<Webhook> {
    if (!isUuid(id)) throw notFound(id);
    const { rows } = await this.sql.query<WebhookRow>(
      `UPDATE webhooks SET active = COALESCE($3, active), events = COALESCE($4::text[], events), url = COALESCE($5, url), description = COALESCE($6, description)
       WHERE org_id = $1 AND webhook_id = $2 RETURNING ${WEBHOOK_COLUMNS}`,
      [orgId, id, change.active ?? null, change.events ?? null, change.url ?? null, change.description ?? null],
    );
    if (rows.length === 0) throw notFound(id);
    return toWebhook(rows[0]);
  }

  /**
   * Sends a delivered or failed delivery again by hand (a receiver that lost what it stored, or
   * was down for more than the retry schedule): pending, due at `now`, with the whole retry
   * schedule ahead (the attempts so far stay counted). A pending one is refused (409
   * delivery_pending): it is still to be tried, maybe right now, and its attempt's outcome
   * would overwrite this. Null when the webhook has no such delivery.
   */
  async redeliver(orgId: string, id: string, deliveryId: string, now: number): Promise<WebhookDelivery | null> {
    await this.get(orgId, id);
    if (!/^\d{1,18}$/.test(deliveryId)) return null;
    const { rows } = await this.sql.query<DeliveryRow>(
      `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, schedule_from = attempts, delivered_at = NULL
       WHERE webhook_id = $1 AND delivery_id = $2 AND status <> 'pending' RETURNING ${DELIVERY_COLUMNS}`,
      [id, deliveryId, toDate(now)],
    );
    if (rows.length > 0) return toDelivery(rows[0]);
    const { rows: exists } = await this.sql.query(`SELECT 1 FROM webhook_deliveries WHERE webhook_id = $1 AND delivery_id = $2`, [id, deliveryId]);
    if (exists.length === 0) return null;
    throw new AttuneError('conflict', `delivery ${deliveryId} is still pending: it will be tried again on its own`, [{ field: 'delivery_id', reason: 'delivery_pending' }]);
  }

  /** Deletes a webhook and its delivery log; pending deliveries are not sent. */
  async delete(orgId: string, id: string): Promise<void> {
    if (!isUuid(id)) throw notFound(id);
    const { rows } = await this.sql.query(`DELETE FROM webhooks WHERE org_id = $1 AND webhook_id = $2 RETURNING webhook_id`, [orgId, id]);
    if (rows.length === 0) throw notFound(id);
  }

  /** The delivery log of a webhook, newest first. */
  async deliveries(orgId: string, id: string, limit: number): Promise<WebhookDelivery[]> {
    await this.get(orgId, id);
    const { rows } = await this.sql.query<DeliveryRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY delivery_id DESC LIMIT $2`,
      [id, limit],
    );
    return rows.map(toDelivery);
  }

  // --- the dispatcher's side ---

  /** Adds events (an event id already known is left as it is: a replayed record is the same event). */
  async addEvents(events: WebhookEventInput[], q: SqlQueryable = this.sql): Promise<void> {
    for (const e of events) {
      await q.query(
        `INSERT INTO webhook_events (event_id, org_id, type, created, subject, data, ready_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) ON CONFLICT (event_id) DO NOTHING`,
        [e.eventId, e.orgId, e.type, toDate(e.created), JSON.stringify(e.subject), e.data === null ? null : JSON.stringify(e.data), toDate(e.readyAt)],
      );
    }
  }

  /**
   * Fans out up to `limit` ready events: `complete` fills the data of those that have none
   * (null: the event is dropped, e.g. its session vanished), then one delivery per webhook of
   * the event's organisation subscribed to its type, with the body `render` makes. Returns how
   * many events it fanned out or postponed.
   *
   * Two steps: `complete` runs before the transaction (it reads ClickHouse: a session's windows
   * and beats, a user's streak), then one transaction locks the events still not fanned out and
   * applies what it found, so two dispatchers never fan out one event twice (the second skips
   * it, or finds it done). Until 12-06 `complete` ran inside the transaction, which held the
   * PostgreSQL connection through the ClickHouse queries: with PGlite, the one connection, every
   * other request waited for them (a review).
   */
  async fanOut(
    now: number,
    limit: number,
    complete: (e: ReadyEvent) => Promise<Completed | Postponed>,
    render: (e: ReadyEvent & { data: Record<string, unknown> }) => string,
  ): Promise<number> {
    type Row = { event_id: string; org_id: string; type: string; created: Date; subject: Record<string, unknown>; data: Record<string, unknown> | null; ready_at: Date };
    const readyEventOf = (r: Row): ReadyEvent => ({ eventId: r.event_id, orgId: r.org_id, type: r.type, created: ms(r.created), subject: r.subject ?? {}, data: r.data, readyAt: ms(r.ready_at) });
    const { rows: candidates } = await this.sql.query<Row>(
      `SELECT event_id, org_id, type, created, subject, data, ready_at FROM webhook_events
       WHERE NOT fanned_out AND ready_at <= $1 ORDER BY ready_at, event_id LIMIT $2`,
      [toDate(now), limit],
    );
    if (candidates.length === 0) return 0;
    const outcomes = new Map<string, Completed | Postponed>();
    for (const r of candidates) {
      const e = readyEventOf(r);
      outcomes.set(e.eventId, e.data !== null ? { data: e.data } : await complete(e));
    }
    return this.sql.transaction(async (tx) => {
      // Those still to fan out (another dispatcher may have done some meanwhile, or hold them).
      const { rows } = await tx.query<Row>(
        `SELECT event_id, org_id, type, created, subject, data, ready_at FROM webhook_events
         WHERE event_id = ANY($1::text[]) AND NOT fanned_out AND ready_at <= $2 ORDER BY ready_at, event_id FOR UPDATE SKIP LOCKED`,
        [candidates.map((r) => r.event_id), toDate(now)],
      );
      for (const r of rows) {
        const e = readyEventOf(r);
        const done = outcomes.get(e.eventId)!;
        if ('postponeUntil' in done) {
          await tx.query(`UPDATE webhook_events SET ready_at = $2, subject = $3::jsonb WHERE event_id = $1`, [e.eventId, toDate(done.postponeUntil), JSON.stringify(done.subject)]);
          continue;
        }
        if (done.events?.length) await this.addEvents(done.events, tx);
        const data = done.data;
        if (data !== null) {
          const body = render({ ...e, data });
          await tx.query(
            `INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, body, created_at, next_attempt_at)
             SELECT webhook_id, $2, $3, $4, $5, $5 FROM webhooks WHERE org_id = $1 AND $3 = ANY(events)
             ON CONFLICT (webhook_id, event_id) DO NOTHING`,
            [e.orgId, e.eventId, e.type, body, toDate(now)],
          );
        }
        await tx.query(`UPDATE webhook_events SET fanned_out = true, data = $2::jsonb WHERE event_id = $1`, [e.eventId, data === null ? null : JSON.stringify(data)]);
      }
      return rows.length;
    });
  }

  /**
   * Takes up to `limit` deliveries due at `now` for an attempt: their next attempt moves to
   * `now + leaseMs` (a dispatcher that dies mid-attempt leaves them to be tried again then)
   * and the attempt is counted.
   */
  async takeDue(now: number, leaseMs: number, limit: number): Promise<DueDelivery[]> {
    // A paused webhook's deliveries stay pending, untouched, until it is active again.
    const { rows } = await this.sql.query<{ delivery_id: string | number; webhook_id: string; event_id: string; url: string; secret: string; body: string; attempts: number; schedule_from: number; created_at: Date }>(
      `UPDATE webhook_deliveries d SET next_attempt_at = $2, attempts = d.attempts + 1, last_attempt_at = $1
       FROM webhooks w
       WHERE w.webhook_id = d.webhook_id AND d.delivery_id IN (
         SELECT dd.delivery_id FROM webhook_deliveries dd JOIN webhooks ww ON ww.webhook_id = dd.webhook_id
         WHERE dd.status = 'pending' AND dd.next_attempt_at <= $1 AND ww.active
         ORDER BY dd.next_attempt_at, dd.delivery_id LIMIT $3 FOR UPDATE OF dd SKIP LOCKED)
       RETURNING d.delivery_id, d.webhook_id::text AS webhook_id, d.event_id, w.url, w.secret, d.body, d.attempts, d.schedule_from, d.created_at`,
      [toDate(now), toDate(now + leaseMs), limit],
    );
    return rows.map((r) => ({
      id: String(r.delivery_id),
      webhookId: r.webhook_id,
      eventId: r.event_id,
      url: r.url,
      secret: r.secret,
      body: r.body,
      attempts: Number(r.attempts),
      scheduleAttempts: Number(r.attempts) - Number(r.schedule_from),
      createdAt: ms(r.created_at),
    }));
  }

  /** Records an attempt's outcome: delivered, or pending until `nextAttemptAt`, or failed for good (nextAttemptAt null). */
  async recordAttempt(id: string, outcome: { delivered: boolean; statusCode: number | null; error: string | null; nextAttemptAt: number | null; at: number }): Promise<void> {
    const status = outcome.delivered ? 'delivered' : outcome.nextAttemptAt === null ? 'failed' : 'pending';
    await this.sql.query(
      `UPDATE webhook_deliveries SET status = $2, last_status_code = $3, last_error = $4, next_attempt_at = $5, delivered_at = $6 WHERE delivery_id = $1`,
      [id, status, outcome.statusCode, outcome.error, outcome.nextAttemptAt === null ? null : toDate(outcome.nextAttemptAt), outcome.delivered ? toDate(outcome.at) : null],
    );
  }

  /**
   * Forgets what is older than `before`: delivered and failed deliveries created before it,
   * then fanned-out events ready before it that no delivery names any more. Pending deliveries
   * stay whatever their age (they are still to be tried), except those a paused webhook holds.
   */
  async prune(before: number): Promise<{ deliveries: number; events: number }> {
    const d = await this.sql.query(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1`, [toDate(before)]);
    // A paused webhook holds its deliveries, but not for longer than the log keeps anything.
    const held = await this.sql.query(
      `DELETE FROM webhook_deliveries d USING webhooks w WHERE w.webhook_id = d.webhook_id AND NOT w.active AND d.status = 'pending' AND d.created_at < $1`,
      [toDate(before)],
    );
    const e = await this.sql.query(
      `DELETE FROM webhook_events e WHERE fanned_out AND ready_at < $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.event_id)`,
      [toDate(before)],
    );
    return { deliveries: d.rowCount + held.rowCount, events: e.rowCount };
  }

  /** Records a device's battery state; true when it has just fallen below the level (it was not low, or unknown). */
  async batteryFell(orgId: string, deviceId: string, low: boolean, event?: WebhookEventInput): Promise<boolean> {
    // The state and the event it makes are written together: with the state saved first and
    // the event after, a failure in between (the batch then redelivered) found the device
    // already low and the fall was never reported.
    return this.sql.transaction(async (tx) => {
      const { rows } = await tx.query<{ low: boolean }>(
        `INSERT INTO webhook_device_battery (org_id, device_id, low) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, device_id) DO UPDATE SET low = EXCLUDED.low WHERE webhook_device_battery.low IS DISTINCT FROM EXCLUDED.low
         RETURNING low`,
        [orgId, deviceId, low],
      );
      const fell = rows.length > 0 && rows[0].low === true;
      if (fell && event) await this.addEvents([event], tx);
      return fell;
    });
  }
}
