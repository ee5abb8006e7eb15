// API keys in PostgreSQL (table api_keys, schemas/postgres/0005_api_keys_webhooks.sql).
// A key is `atk_<key_id>.<secret>`: key_id (ak_ + 16 hex) is public, the client id of the
// coherence platform document's X-AUF-Client-ID header; the secret is 32 random bytes
// (base64url) and only its sha-256 is stored. Why sha-256 and not a password KDF: the secret
// has 256 bits of entropy, so no work factor makes guessing it any harder than it already is,
// and a key is checked on every request (a KDF would cost ~50-100 ms of CPU each).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AttuneError } from '../../lib/errors.js';
import { isTier, type Tier } from '../../lib/tiers.js';
import type { SqlClient } from './client.js';
import { ms, msOrNull, toDate, toDateOrNull } from './sql.js';

export interface ApiKey {
  id: string;
  orgId: string;
  /** The admin who created it: the key acts as this user. */
  createdBy: string;
  name: string;
  scopes: string[];
  /** The creating token's rate-limit tier, which requests made with the key get; null: the default tier. */
  tier: Tier | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

interface Row {
  key_id: string;
  org_id: string;
  created_by: string;
  name: string;
  scopes: string[];
  tier: string | null;
  secret_sha256?: Buffer | Uint8Array;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const COLUMNS = 'key_id, org_id, created_by, name, scopes, tier, created_at, expires_at, revoked_at, last_used_at';
const KEY_PATTERN = /^atk_(ak_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

const toKey = (r: Row): ApiKey => ({
  id: r.key_id,
  orgId: r.org_id,
  createdBy: r.created_by,
  name: r.name,
  scopes: [...r.scopes],
  tier: isTier(r.tier) ? r.tier : null,
  createdAt: ms(r.created_at),
  expiresAt: msOrNull(r.expires_at),
  revokedAt: msOrNull(r.revoked_at),
  lastUsedAt: msOrNull(r.last_used_at),
});

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Whether `token` has the form of an API key (not whether it is valid). */
export const looksLikeApiKey = (token: string): boolean => token.startsWith('atk_');

/** The key id (client id) of an API key, or null when `token` is not one. */
export function apiKeyIdOf(token: string): string | null {
  return KEY_PATTERN.exec(token)?.[1] ?? null;
}

export class ApiKeysRepository {
  private readonly clock: () => number;
  constructor(private readonly sql: SqlClient, opts: { clock?: () => number } = {}) {
    this.clock = opts.clock ?? Date.now;
  }

  /** Creates a key; the secret is in `key` and is never stored or shown again. */
  async create(input: { orgId: string; createdBy: string; name: string; scopes: string[]; tier?: Tier | null; expiresAt: number | null }): Promise<{ apiKey: ApiKey; key: string }> {
    const id = `ak_${randomBytes(8).toString('hex')}`;
    const secret = randomBytes(32).toString('base64url');
    const { rows } = await this.sql.query<Row>(
      `INSERT INTO api_keys (key_id, org_id, created_by, name, scopes, secret_sha256, created_at, expires_at, tier)
       VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8, $9) RETURNING ${COLUMNS}`,
      [id, input.orgId, input.createdBy, input.name, input.scopes, sha256(secret), toDate(this.clock()), toDateOrNull(input.expiresAt), input.tier ?? null],
    );
    return { apiKey: toKey(rows[0]), key: `atk_${id}.${secret}` };
  }

  async list(orgId: string): Promise<ApiKey[]> {
    const { rows } = await this.sql.query<Row>(`SELECT ${COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, key_id LIMIT 1000`, [orgId]);
    return rows.map(toKey);
  }

  /** Revokes a key of `orgId` (idempotent: a revoked key keeps its first revocation time). */
  async revoke(orgId: string, id: string): Promise<ApiKey> {
    const { rows } = await this.sql.query<Row>(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE org_id = $1 AND key_id = $2 RETURNING ${COLUMNS}`,
      [orgId, id, toDate(this.clock())],
    );
    if (rows.length === 0) throw new AttuneError('not_found', `API key ${id} not found`, [{ field: 'id', reason: 'not_found' }]);
    return toKey(rows[0]);
  }

  /** The key `token` names if its secret matches, whatever its state (the caller checks revocation and expiry); null otherwise. */
  async findByToken(token: string): Promise<ApiKey | null> {
    const m = KEY_PATTERN.exec(token);
    if (!m) return null;
    const key = await this.byId(m[1], true);
    if (!key) return null;
    const expected = key.secret;
    const given = sha256(m[2]);
    return expected.length === given.length && timingSafeEqual(expected, given) ? key.apiKey : null;
  }

  /** The key with id `id` (revoked and expired included), or null. */
  async get(id: string): Promise<ApiKey | null> {
    return (await this.byId(id, false))?.apiKey ?? null;
  }

  private async byId(id: string, withSecret: boolean): Promise<{ apiKey: ApiKey; secret: Buffer } | null> {
    const { rows } = await this.sql.query<Row>(`SELECT ${COLUMNS}${withSecret ? ', secret_sha256' : ''} FROM api_keys WHERE key_id = $1`, [id]);
    if (rows.length === 0) return null;
    return { apiKey: toKey(rows[0]), secret: Buffer.from(rows[0].secret_sha256 ?? []) };
  }
}
