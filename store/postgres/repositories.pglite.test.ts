// The repository contract on PGlite (in memory): the embedded default's database.
import { repositoryContract } from './repositories.contract.test-util.js';
import { pgliteDatabase } from './test-databases.test-util.js';

repositoryContract('pglite', pgliteDatabase);
