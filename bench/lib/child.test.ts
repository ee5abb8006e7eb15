import test from 'node:test';
import assert from 'node:assert/strict';
import { runChild } from './child.js';

test('runChild resolves with the RESULT line of a child that exits 0', async () => {
  const r = await runChild(process.execPath, ['-e', 'console.log("warming up"); console.log(\'RESULT {"readings_per_s": 123}\')']);
  assert.deepEqual(r, { readings_per_s: 123 });
});

test('a failed child rejects with its exit code and the end of its stderr, so a result file says why', async () => {
  const script = 'process.stderr.write("x".repeat(5000)); console.error("only 3 of 5 accepted readings arrived"); process.exit(3)';
  await assert.rejects(runChild(process.execPath, ['-e', script]), (err: Error) => {
    assert.match(err.message, /exited with 3: x+only 3 of 5 accepted readings arrived$/);
    assert.ok(err.message.length < 2500, `kept ${err.message.length} characters of stderr`);
    return true;
  });
});

test('a child that exits 0 without a RESULT line is a failure too', async () => {
  await assert.rejects(runChild(process.execPath, ['-e', 'console.log("no result")']), /exited with 0 without a RESULT line/);
});
