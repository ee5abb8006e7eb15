// Prints the final ClickHouse state of a stopped Attune's data dir as JSON (for
// test/faults.kafka.test.ts): chDB opens one data dir per process, so each run's state is read
// by a process of its own. Usage: FAULTS_DUMP_DIR=<data dir> FAULTS_DUMP_DB=<database> node --import tsx test/faults-dump.ts
import { createStoreClient } from '../store/clickhouse.js';
import { silentLogger } from '../lib/log.js';

const dataDir = process.env.FAULTS_DUMP_DIR!;
const database = process.env.FAULTS_DUMP_DB!;
const store = await createStoreClient({ dataDir, database, log: silentLogger });
const q = async (query: string) => (await store.client.query({ query, format: 'JSONEachRow' })).json();
const db = store.database;
try {
  const out = {
    // Every column but computed_at (when it was computed).
    windows: await q(`SELECT session_id, user_id, org_id, device_id, toUnixTimestamp64Milli(window_start) AS start_ms, toUnixTimestamp64Milli(window_end) AS end_ms,
                        valid, invalid_reason, partial, coverage, longest_gap_ms, coherence, coherence_ratio, peak_frequency_hz, breathing_rate_bpm,
                        mean_hr_bpm, rmssd_ms, sdnn_ms, pnn50_pct, beat_count, artifact_ratio, late_beat_count
                      FROM ${db}.coherence_windows FINAL ORDER BY device_id, window_end`),
    // Rows as inserted, without FINAL: a window inserted twice is counted twice by the daily rollup.
    windowRowsInserted: await q(`SELECT count() AS n FROM ${db}.coherence_windows`),
    events: await q(`SELECT event_id, session_id, user_id, org_id, type, toUnixTimestamp64Milli(occurred_at) AS at_ms, payload_json
                     FROM ${db}.session_events FINAL ORDER BY session_id, occurred_at, event_id`),
    // received_at is the gateway's clock when it took the reading: not part of the input.
    readings: await q(`SELECT device_id, session_id, reading_id, beat_index, toUnixTimestamp64Milli(event_time) AS t_ms, rr_ms, hr_bpm, source
                       FROM ${db}.heart_readings FINAL ORDER BY device_id, event_time, beat_index`),
    daily: await q(`SELECT org_id, user_id, day, avgMerge(avg_coherence_state) AS avg_coherence, countMerge(window_count_state) AS windows,
                      sumMerge(high_coherence_s_state) AS high_s
                    FROM ${db}.user_daily_coherence GROUP BY org_id, user_id, day ORDER BY user_id, day`),
  };
  process.stdout.write(JSON.stringify(out));
} finally {
  await store.close();
}
