// The users repository's contract on PGlite (in memory): the embedded default's database.
import { usersContract } from './users-repo.contract.test-util.js';
import { pgliteDatabase } from './test-databases.test-util.js';

usersContract('pglite', pgliteDatabase);
