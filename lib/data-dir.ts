// Data at rest: the data directory (embedded bus logs, chDB, PGlite, the JWT secret) holds
// user ids and heart data, so it is the owner's alone. The `attune` command sets the process
// umask to 077 before anything is created (chDB and PGlite create their files themselves, with
// the umask applied), Attune's own mkdir/open calls pass 0700/0600 explicitly, and at startup an
// existing data directory open to group or others is closed (chmod 0700) or, when that fails,
// startup is refused. A key file readable by group or others, or shorter than 32 bytes, is
// refused: it may already have leaked, and a short one can be guessed.
import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AttuneError } from './errors.js';

/** Mode of directories Attune creates under the data directory. */
export const DIR_MODE = 0o700;
/** Mode of files Attune creates under the data directory. */
export const FILE_MODE = 0o600;
/** The umask of the `attune` command: nothing it creates is open to group or others. */
export const ATTUNE_UMASK = 0o077;
/** Shortest key file accepted, bytes. */
export const MIN_KEY_BYTES = 32;

const octal = (mode: number): string => '0' + (mode & 0o777).toString(8);

/**
 * Creates the data directory 0700 if missing; an existing one open to group or others is
 * chmod-ed to 0700 (returned as `fixedFrom`), or refused with insecure_permissions when it
 * cannot be (another owner).
 */
export function secureDataDir(dir: string): { created: boolean; fixedFrom: string | null } {
  let created = false;
  try {
    statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    created = true;
  }
  const st = statSync(dir);
  if (!st.isDirectory()) {
    throw new AttuneError('validation_error', `data directory ${dir} is not a directory`, [{ reason: 'invalid_argument', path: dir }]);
  }
  if ((st.mode & 0o077) === 0) return { created, fixedFrom: null };
  const was = octal(st.mode);
  try {
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error('not the owner');
    chmodSync(dir, DIR_MODE);
  } catch (err) {
    throw new AttuneError(
      'internal_error',
      `data directory ${dir} is open to group or others (mode ${was}) and cannot be closed (${(err as Error).message}): chmod 700 it`,
      [{ reason: 'insecure_permissions', path: dir, mode: was }],
    );
  }
  return { created, fixedFrom: was };
}

/** Refuses a key file open to group or others, or shorter than 32 bytes (after trimming whitespace). */
export function checkKeyFile(file: string, content: string): void {
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0) {
    throw new AttuneError('internal_error', `key file ${file} is readable by group or others (mode ${octal(mode)}): chmod 600 it, or replace it if others may have read it`, [
      { reason: 'insecure_permissions', path: file, mode: octal(mode) },
    ]);
  }
  const bytes = Buffer.byteLength(content.trim());
  if (bytes < MIN_KEY_BYTES) {
    throw new AttuneError('internal_error', `key file ${file} holds ${bytes} bytes, fewer than ${MIN_KEY_BYTES}: replace it with a longer random key`, [
      { reason: 'weak_key', path: file, bytes },
    ]);
  }
}

/**
 * Closes a tree to group and others: files to 0600 (0700 if executable by the owner),
 * directories to 0700. For engines that set their files' modes themselves (PGlite unpacks its
 * initial database with explicit chmods to 0666, which no umask tightens); returns how many
 * entries it changed.
 */
export function closeTree(dir: string): number {
  let changed = 0;
  const visit = (path: string) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    const mode = st.mode & 0o777;
    const want = st.isDirectory() ? DIR_MODE : mode & 0o100 ? 0o700 : FILE_MODE;
    if (mode !== want && (mode & 0o077) !== 0) {
      chmodSync(path, want);
      changed++;
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return changed;
}
