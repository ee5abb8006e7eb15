// The coherence platform document's device forms beside Attune's: registration by serial
// number (server-assigned id, serial unique per organisation) and by device_id (unchanged),
// and the device's last_sync and battery kept from HTTP syncs and live readings alike.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestAttune, waitFor, type TestAttune } from '../test/attune.js';

const SCOPES = ['read:user', 'write:devices', 'write:readings'];
let app: TestAttune;
before(async () => {
  app = await startTestAttune();
});
after(async () => {
  await app?.cleanup();
});

test('registration: by serial (server id, 200 on repeat, 409 for another user of the organisation) and by device_id, side by side', async () => {
  const token = app.token('u-dev', 'o-dev', SCOPES);
  const a = await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-X-1', firmware_version: '2.1.4' } });
  assert.equal(a.status, 201, JSON.stringify(a.body));
  assert.match(a.body.id, /^dev_solas_[0-9a-f]{8}$/);
  assert.deepEqual([a.body.device_id, a.body.firmware_version, a.body.firmware, a.body.last_sync], [a.body.id, '2.1.4', '2.1.4', null]);
  const again = await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-X-1', firmware_version: '2.2.0' } });
  assert.deepEqual([again.status, again.body.id, again.body.firmware_version], [200, a.body.id, '2.2.0']);
  const other = await app.request('POST', '/v1/devices', { token: app.token('u-other', 'o-dev', SCOPES), body: { type: 'solas', serial_number: 'SOL-X-1' } });
  assert.deepEqual([other.status, other.body.error.code, other.body.error.details[0].reason], [409, 'conflict', 'already_registered']);
  // Another organisation may register the same serial.
  assert.equal((await app.request('POST', '/v1/devices', { token: app.token('u-dev', 'o-dev-2', SCOPES), body: { type: 'solas', serial_number: 'SOL-X-1' } })).status, 201);

  const byId = await app.request('POST', '/v1/devices', { token, body: { device_id: 'H10-legacy', name: 'strap', model: 'Polar H10', firmware: '3.1' } });
  assert.equal(byId.status, 201, JSON.stringify(byId.body));
  assert.deepEqual([byId.body.device_id, byId.body.id, byId.body.name, byId.body.model, byId.body.firmware, byId.body.type], ['H10-legacy', 'H10-legacy', 'strap', 'Polar H10', '3.1', '']);
  const neither = await app.request('POST', '/v1/devices', { token, body: { type: 'solas' } });
  assert.equal(neither.status, 400, JSON.stringify(neither.body));
  // The forms mixed: the document's type and firmware_version kept with device_id (they were
  // dropped); a serial number with device_id is refused, naming it.
  const mixed = await app.request('POST', '/v1/devices', { token, body: { device_id: 'solas-own-id', type: 'solas', firmware_version: '2.0.1' } });
  assert.equal(mixed.status, 201, JSON.stringify(mixed.body));
  assert.deepEqual([mixed.body.type, mixed.body.firmware_version, mixed.body.firmware, mixed.body.model], ['solas', '2.0.1', '2.0.1', 'solas']);
  const withSerial = await app.request('POST', '/v1/devices', { token, body: { device_id: 'solas-own-id-2', type: 'solas', serial_number: 'SOL-MIX-1' } });
  assert.deepEqual([withSerial.status, withSerial.body.error.details[0].field], [400, '/serial_number']);
  assert.equal((await app.request('DELETE', '/v1/devices/solas-own-id', { token })).status, 200);

  const me = await app.request('GET', '/v1/users/me', { token });
  assert.deepEqual(me.body.devices.map((d: { id: string }) => d.id), [a.body.id, 'H10-legacy']);
});

test("the device quota counts devices registered by serial: a free-tier user's third is refused; re-registering one of the two is not", async () => {
  const token = app.auth.sign({ userId: 'u-free', orgId: 'o-dev', scopes: SCOPES, tier: 'free' });
  for (const serial of ['SOL-Q-1', 'SOL-Q-2']) assert.equal((await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: serial } })).status, 201);
  const third = await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-Q-3' } });
  assert.deepEqual([third.status, third.body.error.details[0].reason], [409, 'device_quota'], JSON.stringify(third.body));
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-Q-2', firmware_version: '2.2' } })).status, 200);
  const byId = await app.request('POST', '/v1/devices', { token, body: { device_id: 'strap-q' } });
  assert.deepEqual([byId.status, byId.body.error.details[0].reason], [409, 'device_quota'], 'the two forms share the quota');
});

test('a removed device frees its place in the quota, takes no readings and leaves the user\'s devices; registering it again restores it, by id or serial', async () => {
  // The plus tier: 5 devices (and a burst of requests this test stays within).
  const token = app.auth.sign({ userId: 'u-rm', orgId: 'o-dev', scopes: SCOPES, tier: 'plus' });
  const a = await app.request('POST', '/v1/devices', { token, body: { device_id: 'strap-rm-a' } });
  const b = await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-RM-1' } });
  assert.deepEqual([a.status, b.status], [201, 201]);
  for (const id of ['strap-rm-x', 'strap-rm-y', 'strap-rm-z']) assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: id } })).status, 201);
  const now = Date.now();
  assert.equal((await app.request('POST', '/v1/devices/strap-rm-a/sync', { token, body: { readings: [{ timestamp: now - 60_000, hr: 70 }] } })).status, 202);
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: 'strap-rm-c' } })).status, 409, 'the tier is full');

  // Another user cannot remove it; the owner can, once.
  const stranger = await app.request('DELETE', '/v1/devices/strap-rm-a', { token: app.token('u-stranger', 'o-dev', SCOPES) });
  assert.deepEqual([stranger.status, stranger.body.error.details[0]], [404, { field: 'device_id', reason: 'unknown_device' }]);
  const removed = await app.request('DELETE', '/v1/devices/strap-rm-a', { token });
  assert.deepEqual([removed.status, removed.body], [200, { device_id: 'strap-rm-a', removed: true }]);
  assert.equal((await app.request('DELETE', '/v1/devices/strap-rm-a', { token })).status, 404, 'removed already');
  const sync = await app.request('POST', '/v1/devices/strap-rm-a/sync', { token, body: { readings: [{ timestamp: now - 30_000, hr: 70 }] } });
  assert.deepEqual([sync.status, sync.body.error.details[0].reason], [404, 'unknown_device']);
  const me = await app.request('GET', '/v1/users/me', { token });
  assert.deepEqual(me.body.devices.map((d: { id: string }) => d.id), [b.body.id, 'strap-rm-x', 'strap-rm-y', 'strap-rm-z']);

  // Its place is free: another device fits, and then the removed one no longer does.
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: 'strap-rm-c' } })).status, 201);
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: 'strap-rm-a' } })).status, 409, 'registering it again counts it again');
  // The serial form: removed, then registered again by serial, the same id back (201: it counts again).
  assert.equal((await app.request('DELETE', `/v1/devices/${b.body.id}`, { token })).status, 200);
  const back = await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-RM-1' } });
  assert.deepEqual([back.status, back.body.id], [201, b.body.id]);
  // Removed again and registered by serial by another user: none of its last owner's sync,
  // battery or name comes with it.
  assert.equal((await app.request('POST', `/v1/devices/${b.body.id}/sync`, { token, body: { readings: [{ timestamp: now - 25_000, hr: 70 }], battery_level: 66 } })).status, 202);
  assert.equal((await app.request('DELETE', `/v1/devices/${b.body.id}`, { token })).status, 200);
  const otherUser = app.auth.sign({ userId: 'u-rm-serial-2', orgId: 'o-dev', scopes: SCOPES, tier: 'plus' });
  const taken = await app.request('POST', '/v1/devices', { token: otherUser, body: { type: 'solas', serial_number: 'SOL-RM-1' } });
  assert.deepEqual([taken.status, taken.body.id, taken.body.last_sync, taken.body.battery_level], [201, b.body.id, null, null], JSON.stringify(taken.body));
  assert.equal((await app.request('DELETE', `/v1/devices/${b.body.id}`, { token: otherUser })).status, 200);
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-RM-1' } })).status, 201);
  assert.equal((await app.request('POST', `/v1/devices/${b.body.id}/sync`, { token, body: { readings: [{ timestamp: now - 20_000, hr: 71 }] } })).status, 202);
  // By id: strap-rm-c removed, strap-rm-a registered again in its place, to its readings.
  assert.equal((await app.request('DELETE', '/v1/devices/strap-rm-c', { token })).status, 200);
  const restored = await app.request('POST', '/v1/devices', { token, body: { device_id: 'strap-rm-a' } });
  assert.equal(restored.status, 201, JSON.stringify(restored.body));
  assert.equal((await app.request('POST', '/v1/devices/strap-rm-a/sync', { token, body: { readings: [{ timestamp: now - 10_000, hr: 72 }] } })).status, 202);
});

test("the coherence platform document's scopes are enough: write:user registers and removes a device, write:sessions syncs its readings; neither alone does the other's", async () => {
  // Every scope the document lists; Attune's write:devices and write:readings are not among them.
  const documented = ['read:user', 'write:user', 'read:sessions', 'write:sessions', 'read:coherence', 'mesh:join'];
  const token = app.token('u-doc-scopes', 'o-doc-scopes', documented);
  const reg = await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-DOC-1', firmware_version: '2.1.4' } });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const sync = await app.request('POST', `/v1/devices/${reg.body.id}/sync`, { token, body: { readings: [{ timestamp: new Date(Date.now() - 60_000).toISOString(), hrv: 45, hr: 72, coherence: 0.62 }], battery_level: 87 } });
  assert.equal(sync.status, 202, JSON.stringify(sync.body));
  assert.equal((await app.request('DELETE', `/v1/devices/${reg.body.id}`, { token })).status, 200);
  // write:sessions alone does not register a device, nor write:user alone sync.
  const sessionsOnly = app.token('u-doc-scopes-2', 'o-doc-scopes', ['write:sessions']);
  const refused = await app.request('POST', '/v1/devices', { token: sessionsOnly, body: { type: 'solas', serial_number: 'SOL-DOC-2' } });
  assert.deepEqual([refused.status, refused.body.error.details[0].scope], [403, 'write:devices']);
  const userOnly = app.token('u-doc-scopes-3', 'o-doc-scopes', ['write:user']);
  const own = await app.request('POST', '/v1/devices', { token: userOnly, body: { device_id: 'doc-scopes-strap' } });
  assert.equal(own.status, 201, JSON.stringify(own.body));
  const noSync = await app.request('POST', '/v1/devices/doc-scopes-strap/sync', { token: userOnly, body: { readings: [{ timestamp: new Date(Date.now() - 60_000).toISOString(), hr: 70 }] } });
  assert.deepEqual([noSync.status, noSync.body.error.details[0].scope], [403, 'write:readings']);
});

test('a user is created on first sight: registering a device by id, before any call of /v1/users/me', async () => {
  const token = app.token('u-first-sight', 'o-dev', SCOPES);
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: 'first-sight-strap' } })).status, 201);
  const seen = Date.now();
  // The next millisecond, so a user created by the call below could not pass the check.
  while (Date.now() <= seen) {
    /* at most 1 ms */
  }
  const me = await app.request('GET', '/v1/users/me', { token });
  assert.ok(Date.parse(me.body.created_at) <= seen, `created ${me.body.created_at}, first /v1/users/me after ${new Date(seen).toISOString()}`);
});

test('last_sync and battery: from the sync body, else from the last reading with one, and from live readings', async () => {
  const token = app.token('u-sync', 'o-dev', SCOPES);
  const dev = await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-S-1' } });
  const id = dev.body.id as string;
  const now = Date.now();
  const device = async () => (await app.request('GET', '/v1/users/me', { token })).body.devices.find((d: { id: string }) => d.id === id);

  const first = await app.request('POST', `/v1/devices/${id}/sync`, { token, body: { readings: [{ timestamp: now - 60_000, hr: 70 }], battery_level: 87, last_worn: new Date(now - 30_000).toISOString() } });
  assert.equal(first.status, 202, JSON.stringify(first.body));
  let d = await device();
  assert.deepEqual([d.battery_level, Date.parse(d.last_worn)], [87, now - 30_000]);
  const firstSync = Date.parse(d.last_sync);
  assert.ok(Math.abs(firstSync - Date.now()) < 60_000, d.last_sync);

  // No battery in the body: the last reading's that has one.
  const second = await app.request('POST', `/v1/devices/${id}/sync`, { token, body: { readings: [{ timestamp: now - 50_000, hr: 70, battery_level: 64 }, { timestamp: now - 40_000, hr: 71 }] } });
  assert.equal(second.status, 202);
  d = await device();
  assert.equal(d.battery_level, 64);
  assert.ok(Date.parse(d.last_sync) >= firstSync);

  // Live readings over the ingest socket count as a sync too.
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ingest/devices/${id}?token=${token}`);
  const inbox: Array<{ type: string; id?: unknown }> = [];
  ws.on('message', (m) => inbox.push(JSON.parse(m.toString())));
  await waitFor('authenticated', () => inbox.find((m) => m.type === 'authenticated'), 10_000);
  ws.send(JSON.stringify({ type: 'readings', id: 'live-1', readings: [{ timestamp: Date.now() - 1000, hr: 72, battery_level: 42 }] }));
  await waitFor('the ack', () => inbox.find((m) => m.type === 'ack' && m.id === 'live-1'), 10_000);
  d = await device();
  assert.equal(d.battery_level, 42);
  // The document's battery beside the readings, on the socket as over HTTP: the device's level.
  ws.send(JSON.stringify({ type: 'readings', id: 'live-2', readings: [{ timestamp: Date.now() - 500, hr: 72 }], battery_level: 33 }));
  await waitFor('the second ack', () => inbox.find((m) => m.type === 'ack' && m.id === 'live-2'), 10_000);
  ws.close();
  d = await device();
  assert.equal(d.battery_level, 33);
});

test('a live ingest socket opened before its device was removed takes no more readings: the next message is 404 unknown_device and the socket closes (4404); the new owner of the id gets nothing from it', async () => {
  const token = app.token('u-rm-live', 'o-dev', SCOPES);
  const id = 'strap-rm-live';
  assert.equal((await app.request('POST', '/v1/devices', { token, body: { device_id: id } })).status, 201);
  const ws = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ingest/devices/${id}?token=${token}`);
  const inbox: Array<{ type: string; id?: unknown; error?: { code: string; details?: Array<{ reason: string }> } }> = [];
  ws.on('message', (m) => inbox.push(JSON.parse(m.toString())));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await waitFor('authenticated', () => inbox.find((m) => m.type === 'authenticated'), 10_000);
  ws.send(JSON.stringify({ type: 'readings', id: 'before', readings: [{ timestamp: Date.now() - 1000, hr: 72 }] }));
  await waitFor('the ack', () => inbox.find((m) => m.type === 'ack' && m.id === 'before'), 10_000);

  assert.equal((await app.request('DELETE', `/v1/devices/${id}`, { token })).status, 200);
  // Another user of the organisation registers the id.
  const other = app.token('u-rm-live-2', 'o-dev', SCOPES);
  assert.equal((await app.request('POST', '/v1/devices', { token: other, body: { device_id: id } })).status, 201);
  ws.send(JSON.stringify({ type: 'readings', id: 'after', readings: [{ timestamp: Date.now() - 500, hr: 72, battery_level: 3 }] }));
  assert.equal(await closed, 4404);
  const refusal = inbox.find((m) => m.type === 'error' && m.id === 'after');
  assert.deepEqual([refusal?.error?.code, refusal?.error?.details?.[0]?.reason], ['not_found', 'unknown_device'], JSON.stringify(inbox));
  assert.equal(inbox.find((m) => m.type === 'ack' && m.id === 'after'), undefined);
  const me = await app.request('GET', '/v1/users/me', { token: other });
  const d = me.body.devices.find((x: { id: string }) => x.id === id);
  assert.deepEqual([d.battery_level, d.last_sync], [null, null], "the old socket wrote nothing onto the new owner's device");
});

test("last_worn takes the readings' bounds: a date in the future (a device's wrong clock) is 400 and the device keeps its last_worn, which a later true one still moves", async () => {
  // Before, 2030-01-01 was taken and, the latest seen being kept, stayed the device's last_worn for good.
  const token = app.token('u-worn', 'o-dev', SCOPES);
  const id = (await app.request('POST', '/v1/devices', { token, body: { type: 'solas', serial_number: 'SOL-W-1' } })).body.id as string;
  const now = Date.now();
  const device = async () => (await app.request('GET', '/v1/users/me', { token })).body.devices.find((d: { id: string }) => d.id === id);
  const sync = (lastWorn: string) => app.request('POST', `/v1/devices/${id}/sync`, { token, body: { readings: [{ timestamp: now - 60_000, hrv: 45, hr: 72, coherence: 0.62 }], battery_level: 80, last_worn: lastWorn } });
  assert.equal((await sync(new Date(now - 30_000).toISOString())).status, 202);
  const future = await sync('2030-01-01T00:00:00Z');
  assert.equal(future.status, 400, JSON.stringify(future.body));
  assert.deepEqual([future.body.error.details[0].field, future.body.error.details[0].reason], ['/last_worn', 'out_of_range']);
  const old = await sync('1999-12-31T23:59:59Z');
  assert.equal(old.status, 400, JSON.stringify(old.body));
  assert.equal(Date.parse((await device()).last_worn), now - 30_000);
  await new Promise((r) => setTimeout(r, 1100)); // the device's sync figures are written at most once a second
  assert.equal((await sync(new Date(now - 10_000).toISOString())).status, 202);
  await waitFor('the newer last_worn', async () => Date.parse((await device()).last_worn) === now - 10_000, 10_000);
});
