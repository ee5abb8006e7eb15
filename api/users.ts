// The caller's user (coherence platform document, "User Endpoints"): GET /v1/users/me with
// stats, devices and baseline, and PATCH /v1/users/me (display name and preferences). The user
// row (Postgres, store/postgres/users-repo.ts) is created on first sight of the token's
// subject; every figure is computed when asked, from ClickHouse's coherence_windows (valid
// windows only, FINAL) and Postgres' sessions and mesh participants, by the rules below.
//
// Rules (also in the README):
//  - total_sessions: the user's sessions of any status (Postgres).
//  - total_coherence_minutes: minutes of trusted coherence data, valid 5 s windows x 5 / 60,
//    rounded to the nearest minute.
//  - average_coherence: the mean coherence score (0..1) of all the user's valid windows.
//  - current_streak / longest_streak: practice days in a row, a practice day being a calendar
//    day in the user's time zone (preferences.timezone, UTC by default) with at least one
//    valid window. The current streak ends today, or yesterday when today has none yet (a day
//    not over does not break it); 0 otherwise.
//  - mesh_sessions_joined: distinct mesh sessions the user has a participant row in.
//  - baseline, over the valid windows of the last 30 days (null with fewer than
//    BASELINE_MIN_WINDOWS of them, a minute of data): resting_hr is the 10th percentile of the
//    windows' mean heart rate (bpm, rounded); resting_hrv is the median RMSSD (ms, rounded) of
//    the calmest quarter of those windows (mean HR at or below its 25th percentile), so time
//    spent exercising or stressed does not pull it down; coherence_threshold is the score from
//    which time counts as high coherence in every figure (HIGH_COHERENCE_SCORE).
import type { FastifyInstance } from 'fastify';
import { AttuneError } from '../lib/errors.js';
import { iso } from '../lib/time.js';
import { Scopes, type Principal } from '../lib/principal.js';
import { clickhouseOf, type AppContext } from '../http/context.js';
import { errorBodySchema } from '../http/errors.js';
import { principalOf } from '../http/auth-plugin.js';
import { deviceProfileJson, type User, type UsersRepository } from '../store/postgres/users-repo.js';
import { HIGH_COHERENCE_SCORE, WINDOW_STEP_S } from './sessions.js';

/** Valid windows of the last 30 days needed for a baseline (12 x 5 s: one minute). */
export const BASELINE_MIN_WINDOWS = 12;
const BASELINE_DAYS = 30;
const DAY_MS = 86_400_000;

/** Whether `tz` is an IANA zone name Intl knows (offsets like +05:00 and abbreviations are refused). */
export function isIanaZone(tz: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz) || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** YYYY-MM-DD of instant `t` in zone `tz`. */
export function localDay(t: number, tz: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date(t));
  const get = (k: string) => parts.find((p) => p.type === k)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

const dayNumber = (d: string) => Math.round(Date.parse(`${d}T00:00:00Z`) / DAY_MS);

/**
 * Streaks from the practice days (YYYY-MM-DD in the user's zone, any order) and today's date
 * in that zone: the current streak ends today or yesterday, the longest anywhere.
 */
export function streaks(days: string[], today: string): { current: number; longest: number } {
  const nums = [...new Set(days.map(dayNumber))].sort((a, b) => a - b);
  let longest = 0;
  let run = 0;
  for (let i = 0; i < nums.length; i++) {
    run = i > 0 && nums[i] === nums[i - 1] + 1 ? run + 1 : 1;
    if (run > longest) longest = run;
  }
  const set = new Set(nums);
  let end = dayNumber(today);
  if (!set.has(end)) end -= 1;
  let current = 0;
  while (set.has(end - current)) current++;
  return { current, longest };
}

const preferencesSchema = {
  type: 'object',
  properties: {
    notifications_enabled: { type: 'boolean' },
    reminder_time: { type: ['string', 'null'], pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'Local time HH:MM for the daily reminder; null: none.' },
    timezone: { type: 'string', maxLength: 64, description: 'IANA time zone name (e.g. America/Los_Angeles); streaks count days in it. Default UTC.' },
  },
} as const;

const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: "The identity provider's subject (token sub)." },
    org_id: { type: 'string' },
    email: { type: ['string', 'null'], description: 'Not known to Attune (identity stays with the identity provider): null.' },
    display_name: { type: 'string' },
    avatar_url: { type: ['string', 'null'], description: 'Attune stores no avatars: null.' },
    tier: { type: 'string', description: "The token's rate-limit tier (free, plus, pro, enterprise)." },
    created_at: { type: 'string', format: 'date-time', description: 'When Attune first saw the subject.' },
    preferences: preferencesSchema,
    stats: {
      type: 'object',
      properties: {
        total_sessions: { type: 'integer' },
        total_coherence_minutes: { type: 'integer', description: 'Minutes of valid coherence windows (5 s each), rounded.' },
        current_streak: { type: 'integer', description: "Practice days in a row up to today (or yesterday), in the user's time zone." },
        longest_streak: { type: 'integer' },
        average_coherence: { type: ['number', 'null'], description: 'Mean coherence score 0..1 of all valid windows; null without any.' },
        mesh_sessions_joined: { type: 'integer' },
      },
    },
    devices: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          type: { type: 'string', description: "'' for a device registered by id without a type." },
          serial_number: { type: ['string', 'null'] },
          firmware_version: { type: 'string' },
          last_sync: { type: ['string', 'null'], format: 'date-time', description: 'When a sync from the device was last accepted; null when never.' },
          battery_level: { type: ['number', 'null'], description: 'Percent, as last reported.' },
          last_worn: { type: ['string', 'null'], format: 'date-time' },
        },
      },
    },
    baseline: {
      type: 'object',
      description: `From the valid windows of the last ${BASELINE_DAYS} days; null values with fewer than ${BASELINE_MIN_WINDOWS}.`,
      properties: {
        resting_hrv: { type: ['number', 'null'], description: 'Median RMSSD (ms) of the windows in the lowest quarter of heart rate.' },
        resting_hr: { type: ['number', 'null'], description: "10th percentile of the windows' mean heart rate (bpm)." },
        coherence_threshold: { type: 'number', description: 'Score 0..1 from which time counts as high coherence.' },
        window_count: { type: 'integer', description: 'Valid windows the baseline is computed from.' },
      },
    },
  },
} as const;

interface WindowStatsRow {
  windows: number | string;
  average_coherence: number | null;
}
interface BaselineRow {
  n: number | string;
  resting_hr: number | null;
  resting_hrv: number | null;
}

const r4 = (v: number | null) => (v === null || !Number.isFinite(v) ? null : Number(v.toFixed(4)));

async function userJson(ctx: AppContext, users: UsersRepository, p: Principal, u: User) {
  const ch = clickhouseOf(ctx);
  const params = { org: p.orgId, user: p.userId, tz: u.timezone, since: iso(ctx.clock() - BASELINE_DAYS * DAY_MS) };
  const where = `org_id = {org:String} AND user_id = {user:String} AND valid AND coherence IS NOT NULL`;
  const [totals, days, baseline, sessions, mesh, devices] = await Promise.all([
    ch
      .query({
        query: `SELECT count() AS windows, avg(coherence) AS average_coherence FROM ${ctx.database}.coherence_windows FINAL WHERE ${where}`,
        query_params: params,
        format: 'JSONEachRow',
      })
      .then((rs) => rs.json() as Promise<WindowStatsRow[]>),
    ch
      .query({
        query: `SELECT DISTINCT toString(toDate(window_end, {tz:String})) AS d FROM ${ctx.database}.coherence_windows FINAL WHERE ${where} ORDER BY d`,
        query_params: params,
        format: 'JSONEachRow',
      })
      .then((rs) => rs.json() as Promise<{ d: string }[]>),
    ch
      .query({
        query: `WITH w AS (SELECT mean_hr_bpm AS hr, rmssd_ms AS hrv FROM ${ctx.database}.coherence_windows FINAL
                  WHERE ${where} AND window_end >= parseDateTime64BestEffort({since:String}, 3) AND mean_hr_bpm IS NOT NULL AND rmssd_ms IS NOT NULL)
                SELECT count() AS n, quantileExact(0.1)(assumeNotNull(hr)) AS resting_hr,
                  quantileExactIf(0.5)(assumeNotNull(hrv), assumeNotNull(hr) <= (SELECT quantileExact(0.25)(assumeNotNull(hr)) FROM w)) AS resting_hrv
                FROM w`,
        query_params: params,
        format: 'JSONEachRow',
      })
      .then((rs) => rs.json() as Promise<BaselineRow[]>),
    users.sessionCount(p.orgId, p.userId),
    users.meshSessionsJoined(p.orgId, p.userId),
    users.devicesOf(p.orgId, p.userId),
  ]);
  const windows = Number(totals[0]?.windows ?? 0);
  const { current, longest } = streaks(
    days.map((r) => r.d),
    localDay(ctx.clock(), u.timezone),
  );
  const bn = Number(baseline[0]?.n ?? 0);
  const enough = bn >= BASELINE_MIN_WINDOWS;
  return {
    id: u.userId,
    org_id: u.orgId,
    email: u.email,
    display_name: u.displayName,
    avatar_url: null,
    tier: p.tier ?? ctx.rateLimit?.defaultTier ?? 'free',
    created_at: iso(u.createdAt),
    preferences: { notifications_enabled: u.notificationsEnabled, reminder_time: u.reminderTime, timezone: u.timezone },
    stats: {
      total_sessions: sessions,
      total_coherence_minutes: Math.round((windows * WINDOW_STEP_S) / 60),
      current_streak: current,
      longest_streak: longest,
      average_coherence: windows === 0 ? null : r4(totals[0].average_coherence),
      mesh_sessions_joined: mesh,
    },
    devices: devices.map(deviceProfileJson),
    baseline: {
      resting_hrv: enough && baseline[0].resting_hrv !== null ? Math.round(baseline[0].resting_hrv) : null,
      resting_hr: enough && baseline[0].resting_hr !== null ? Math.round(baseline[0].resting_hr) : null,
      coherence_threshold: HIGH_COHERENCE_SCORE,
      window_count: bn,
    },
  };
}

export async function registerUserRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const users = ctx.users;
  if (!users) return;
  app.get(
    '/v1/users/me',
    {
      config: { auth: { scope: Scopes.readUser } },
      schema: {
        tags: ['users'],
        summary: 'The calling user: profile, preferences, stats, devices and baseline (created on first sight of the token subject).',
        security: [{ bearerAuth: [] }],
        response: { 200: userSchema, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const u = await users.getOrCreate(p.orgId, p.userId);
      return userJson(ctx, users, p, u);
    },
  );

  app.patch<{ Body: { display_name?: string; preferences?: { notifications_enabled?: boolean; reminder_time?: string | null; timezone?: string } } }>(
    '/v1/users/me',
    {
      config: { auth: { scope: Scopes.writeUser } },
      schema: {
        tags: ['users'],
        summary: "Change the calling user's display name and preferences (the fields given; time zones are IANA names).",
        security: [{ bearerAuth: [] }],
        body: {
          type: 'object',
          properties: {
            display_name: { type: 'string', minLength: 1, maxLength: 100 },
            preferences: { ...preferencesSchema, additionalProperties: false },
          },
          additionalProperties: false,
        },
        response: { 200: userSchema, '4xx': errorBodySchema },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const prefs = req.body.preferences ?? {};
      if (prefs.timezone !== undefined && !isIanaZone(prefs.timezone)) {
        throw new AttuneError('validation_error', `unknown time zone ${prefs.timezone}: use an IANA name such as America/Los_Angeles`, [
          { field: '/preferences/timezone', reason: 'invalid_value', message: 'not an IANA time zone name' },
        ]);
      }
      const u = await users.update(p.orgId, p.userId, {
        displayName: req.body.display_name,
        notificationsEnabled: prefs.notifications_enabled,
        reminderTime: prefs.reminder_time,
        timezone: prefs.timezone,
      });
      return userJson(ctx, users, p, u);
    },
  );
}
