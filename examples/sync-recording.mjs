#!/usr/bin/env node
// A device integration in one file: sends a recording of RR intervals to Attune as one
// device's session through the public API, then prints what Attune computed of it.
//
//   TOKEN=$(npx attune token --user me --org acme \
//     --scopes "write:devices write:sessions write:readings read:sessions")
//   node examples/sync-recording.mjs --token "$TOKEN"
//
// Options: --url (http://localhost:8080), --file (a text file of RR intervals in ms, one per
// line; default the slow-breathing meditation recording in ../shared/data/rr/), --minutes (5,
// from the recording's start), --device (example-strap), --after-end (end the session first and
// sync afterwards, as a device that keeps its beats until it is back in range).
//
// What it does, in the order a device app would:
//  1. POST /v1/devices registers the device (200 when it already is);
//  2. POST /v1/sessions starts a session for it, dated `minutes` ago (`started_at`), so that
//     the recording's beats, laid end to end from then, end now (a reading is refused when
//     dated outside its session or in the future);
//  3. POST /v1/devices/{id}/sync sends the beats as readings of 5 intervals each (a reading's
//     timestamp is when its last interval ended), 1,000 readings to a request;
//  4. POST /v1/sessions/{id}/end ends the session, which closes its last 64 s windows (with
//     --after-end, step 4 comes before step 3: the request that reaches the session's end
//     closes them);
//  5. GET /v1/sessions/{id} until its timeline reaches the end, then prints the metrics.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const DEFAULT_FILE = fileURLToPath(new URL('../../shared/data/rr/meditation_Y3med_kundalini_slowbreath.rr_ms.txt', import.meta.url));
const INTERVALS_PER_READING = 5;
const READINGS_PER_REQUEST = 1000;

/** RR intervals (ms) of a text file, one per line. */
export function readIntervals(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map(Number);
}

/**
 * The readings of `rrMs` laid end to end from `startMs`, at most `untilMs` (beats after it are
 * left out): integer intervals, 5 to a reading, each dated at its last beat (epoch ms).
 */
export function readingsOf(rrMs, startMs, untilMs) {
  const readings = [];
  let t = startMs;
  let pending = [];
  for (const rr of rrMs) {
    const ms = Math.round(rr);
    if (t + ms > untilMs) break;
    t += ms;
    pending.push(ms);
    if (pending.length === INTERVALS_PER_READING) {
      readings.push({ timestamp: t, rr_intervals_ms: pending });
      pending = [];
    }
  }
  if (pending.length > 0) readings.push({ timestamp: t, rr_intervals_ms: pending });
  return readings;
}

/** Sends the first `minutes` of `rrMs` as a session of `deviceId`; answers the session as GET gives it. */
export async function syncRecording({ url, token, rrMs, minutes = 5, deviceId = 'example-strap', now = Date.now(), waitMs = 60_000, afterEnd = false, ended = async (_sessionId) => {} }) {
  const call = async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(answer)}`);
    return answer;
  };
  const startMs = now - Math.round(minutes * 60_000);
  const readings = readingsOf(rrMs, startMs, now);
  await call('POST', '/v1/devices', { device_id: deviceId, name: 'Example strap' });
  const session = await call('POST', '/v1/sessions', { type: 'solo', protocol: 'heart_breath_sync', device_id: deviceId, started_at: startMs, title: 'Example recording' });
  let accepted = 0;
  if (afterEnd) {
    await call('POST', `/v1/sessions/${session.id}/end`, { ended_at: new Date(now).toISOString() });
    // (A device syncs when it is back in range, minutes later; a test waits here until the end has reached the worker.)
    await ended(session.id);
  }
  for (let i = 0; i < readings.length; i += READINGS_PER_REQUEST) {
    const answer = await call('POST', `/v1/devices/${encodeURIComponent(deviceId)}/sync`, { session_id: session.id, readings: readings.slice(i, i + READINGS_PER_REQUEST) });
    accepted += answer.accepted;
  }
  if (!afterEnd) await call('POST', `/v1/sessions/${session.id}/end`, {});
  // The last windows are computed once the end reaches the worker: wait until the timeline
  // has the window that ends with the session (its last point starts 64 s before the end).
  const lastBeatS = (readings.at(-1).timestamp - startMs) / 1000;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const s = await call('GET', `/v1/sessions/${session.id}`);
    if ((s.timeline?.at(-1)?.time ?? -Infinity) >= lastBeatS - 64 - 5) return { sessionId: session.id, readings: readings.length, accepted, session: s };
    if (Date.now() > deadline) throw new Error(`session ${session.id}: its last windows did not appear within ${waitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://localhost:8080' },
      token: { type: 'string' },
      file: { type: 'string', default: DEFAULT_FILE },
      minutes: { type: 'string', default: '5' },
      device: { type: 'string', default: 'example-strap' },
      'after-end': { type: 'boolean', default: false },
    },
  });
  if (!values.token) {
    console.error('--token is required (npx attune token --user me --org acme --scopes "write:devices write:sessions write:readings read:sessions")');
    process.exit(2);
  }
  const { sessionId, readings, accepted, session } = await syncRecording({
    url: values.url,
    token: values.token,
    rrMs: readIntervals(values.file),
    minutes: Number(values.minutes),
    deviceId: values.device,
    afterEnd: values['after-end'],
  });
  const windows = session.timeline.filter((p) => p.valid);
  console.log(`session ${sessionId}: ${accepted} of ${readings} readings accepted; ${session.metrics.valid_window_count} valid windows`);
  console.log(JSON.stringify(session.metrics, null, 2));
  console.log(`breathing rate of the valid windows (breaths/min): ${windows.map((p) => p.breathing_rate?.toFixed(1)).join(' ')}`);
}
