import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { runBin } from './helpers.js';

test('a source port in use: hl7c serve names the channel and its spec (tester finding: "listen EADDRINUSE 0.0.0.0:2610" alone)', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const dir = mkdtempSync(join(tmpdir(), 'hl7c-in-use-'));
    const spec = join(dir, 'busy.yaml');
    writeFileSync(spec, `channel: busy\nsource: { mllp: { host: 127.0.0.1, port: ${port} } }\ndestinations:\n  b: { file: { dir: ./x } }\n`);
    const run = await runBin(['serve', spec, '--store', join(dir, 's.db'), '--no-watch'], { timeoutMs: 30_000 });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`hl7c: channel busy (${spec}): its source could not listen: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
  } finally {
    taken.close();
  }
});
