// The users repository's contract on a PostgreSQL server (DATABASE_URL, else the local
// server; in CI a missing server fails the run instead of skipping).
import { test } from 'node:test';
import { usersContract } from './users-repo.contract.test-util.js';
import { serverDatabase, serverDatabaseUrl } from './test-databases.test-util.js';

const url = await serverDatabaseUrl();
if (url === null) {
  test('postgres users repository (server)', (t) => t.skip('no PostgreSQL server: set DATABASE_URL or install PostgreSQL (infra/postgres/postgres.sh)'));
} else {
  usersContract('server', () => serverDatabase(url));
}
