import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkServeConfigText } from '../../src/config/serve-config.js';
import { runCli } from '../../src/index.js';
import { adtSpec } from '../serve/helpers.js';

async function validate(dir: string, ...extra: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['validate', dir, ...extra], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), cwd: dir, stopSignal: new Promise(() => undefined) });
  return { code, stdout, stderr };
}

function specsDir(config?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hdash-config-'));
  writeFileSync(join(dir, 'adt.yaml'), adtSpec());
  if (config !== undefined) writeFileSync(join(dir, 'hl7c.config.yaml'), config);
  return dir;
}

const env = { TEST_WEBHOOK_URL: 'http://127.0.0.1:9/x' };

describe('serve config (alerts) checked by hl7c validate', () => {
  test('hl7c.config.yaml beside the specs is checked, not read as a spec; a good one passes', async () => {
    process.env.TEST_WEBHOOK_URL ??= env.TEST_WEBHOOK_URL;
    const dir = specsDir(`alerts:
  webhook: { url: "http://127.0.0.1:9/alerts" }
  rules:
    - { name: adt-errors, kind: errors, channel: adt-in, over: 5, window: 10m }
    - { name: webhook-dead, kind: dead_letters, channel: adt-in, destination: webhook }
    - { name: adt-silent, kind: no_messages, channel: adt-in, for: 30m }
`);
    const r = await validate(dir);
    expect(r.stderr).toBe('1 spec(s) and the serve config: 0 error(s), 0 warning(s)\n');
    expect(r.code).toBe(0);
  });

  test('each finding as file:line:col with its code and a hint', async () => {
    process.env.TEST_WEBHOOK_URL ??= env.TEST_WEBHOOK_URL;
    const dir = specsDir(`alerts:
  cool_down: 15 minutes
  rules:
    - name: adt-errors
      kind: errors
      channle: adt-in
      over: 5
    - name: adt-errors
      kind: no_messages
      channel: adt-inn
      for: 30m
      over: 3
    - name: stuck
      kind: queue_age
      channel: adt-in
      destination: archive
      older_than: 5m
`);
    const r = await validate(dir, '--format', 'json');
    expect(r.code).toBe(1);
    const found = (JSON.parse(r.stdout) as Array<{ file: string; line: number; column: number; code: string; message: string; hint?: string }>).map((d) => `${d.file}:${d.line}:${d.column} ${d.code}${d.hint ? ` (${d.hint})` : ''}`);
    // Schema findings first (they stop the meaning checks of the same file).
    expect(found).toEqual([
      'hl7c.config.yaml:2:14 schema/invalid-format (a number and a unit: 500ms, 30s, 15m, 2h, 1d)',
      'hl7c.config.yaml:4:7 schema/missing-property (add window: …)',
      'hl7c.config.yaml:6:7 schema/unknown-property (did you mean "channel"?)',
    ]);
    // Fixed for the schema, the meaning is checked against the specs.
    writeFileSync(
      join(dir, 'hl7c.config.yaml'),
      `alerts:
  rules:
    - { name: adt-errors, kind: errors, channel: adt-in, over: 5, window: 10m }
    - name: adt-errors
      kind: no_messages
      channel: adt-inn
      for: 30m
      over: 3
    - { name: stuck, kind: queue_age, channel: adt-in, destination: archive, older_than: 5m }
`,
    );
    const text = await validate(dir);
    expect(text.code).toBe(1);
    expect(text.stderr.split('\n').filter((l) => /^hl7c\.config/.test(l))).toEqual([
      'hl7c.config.yaml:1:1: warning config/alerts-not-delivered: alerts have neither webhook nor email: they show only on the dashboard and GET /api/alerts',
      'hl7c.config.yaml:4:13: error config/duplicate-rule: rule "adt-errors" is defined twice (first at line 3)',
      'hl7c.config.yaml:6:16: error config/unknown-channel: no spec defines channel "adt-inn"',
      'hl7c.config.yaml:8:7: error config/not-for-kind: "over" means nothing for a no_messages rule',
      'hl7c.config.yaml:9:69: error config/unknown-destination: channel "adt-in" has no destination "archive"',
    ]);
    expect(text.stderr).toContain('hint: did you mean "adt-in"?');
  });

  test('--config names a file elsewhere; a missing one is an error', async () => {
    process.env.TEST_WEBHOOK_URL ??= env.TEST_WEBHOOK_URL;
    const dir = specsDir();
    const other = join(dir, 'ops.yaml.txt');
    writeFileSync(other, 'alerts:\n  rules:\n    - { name: r, kind: reload_rejected, channel: adt-in }\n');
    const r = await validate(dir, '--config', other);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ops.yaml.txt:3:41: error config/not-for-kind: a reload_rejected rule watches every spec; it takes no channel');
    const missing = await validate(dir, '--config', join(dir, 'nope.yaml'));
    expect(missing.stderr).toContain('nope.yaml:1:1: error config/unreadable: the config file does not exist');
  });

  test('${ENV} in the config, as in specs: a secret stays out of the file', () => {
    const r = checkServeConfigText('c.yaml', 'alerts:\n  webhook: { url: "${OPS_URL}", headers: { Authorization: "Bearer ${OPS_TOKEN}" } }\n  rules: []\n', { OPS_URL: 'https://ops.example.org/h', OPS_TOKEN: 't0k3n' });
    expect(r.diagnostics).toEqual([]);
    expect(r.config!.alerts!.webhook).toEqual({ url: 'https://ops.example.org/h', headers: { Authorization: 'Bearer t0k3n' }, timeoutMs: 5000 });
    const unset = checkServeConfigText('c.yaml', 'alerts:\n  webhook: { url: "${OPS_URL}" }\n  rules: []\n', {});
    expect(unset.diagnostics.map((d) => d.code)).toEqual(['spec/env-unset']);
  });
});
