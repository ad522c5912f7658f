import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, test } from 'vitest';
import { MllpClient } from '../../runtime/index.js';
import { startServing } from '../../src/serve/serve.js';
import { validateSpecs } from '../../src/spec/validate.js';
import { memoryLogger, waitFor } from '../serve/helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real SMTP server on port 0 that keeps each mail as received; `refuse` answers RCPT with 550. */
async function startSmtp(options: { refuse?: boolean } = {}) {
  const mails: Array<{ from: string; to: string[]; raw: string; user?: string }> = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === 'lab' && auth.password === 'smtp-pass-from-env') callback(null, { user: auth.username });
      else callback(new Error('bad login'));
    },
    onRcptTo(_address, _session, callback) {
      if (options.refuse) callback(Object.assign(new Error('no such mailbox'), { responseCode: 550 }));
      else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8'), user: session.user as string | undefined });
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.server.address() as { port: number }).port, mails };
}

const ORU = 'MSH|^~\\&|LAB|LRH|HL7C|ALERTS|20261125083000||ORU^R01^ORU_R01|CR-1|P|2.5.1\rPID|1||E55^^^LRH^MR||Doe^Jane\rOBR|1||ACC-9|K^Potassium\rOBX|1|NM|K^Potassium||6.9|mmol/L||HH\r';

async function serve(smtpPort: number, extra = '') {
  const dir = mkdtempSync(join(tmpdir(), 'hv2-smtp-'));
  const file = join(dir, 'alerts.yaml');
  writeFileSync(file, `channel: critical-alerts
source: { mllp: { host: 127.0.0.1, port: 0 } }
destinations:
  supervisors:
    smtp:
      host: 127.0.0.1
      port: \${SMTP_PORT}
      user: \${SMTP_USER}
      password: \${SMTP_PASSWORD}
      from: interfaces-noreply@lrh.example
      to: \${ALERT_TO}
      reply_to: lab-supervisors@lrh.example
      headers: { X-Priority: "1" }
      subject: "CRITICAL lab result: MRN {{PID-3.1}}, accession {{OBR-3.1}}"
      body: |
        Patient: {{PID-5.1}}, {{PID-5.2}}
        {{OBX-3.2}} {{OBX-5}} {{OBX-6}} ({{OBX-8}})
        Channel: {{channel}}
    retry: { attempts: 3, backoff_ms: 20 }
${extra}`);
  const { logger } = memoryLogger();
  const env = { SMTP_PORT: String(smtpPort), SMTP_USER: 'lab', SMTP_PASSWORD: 'smtp-pass-from-env', ALERT_TO: 'a@lrh.example, b@lrh.example' };
  const serving = await startServing({ specs: [file], storePath: join(dir, 'store.db'), cwd: dir, env, logger, watch: false });
  cleanups.push(() => serving.close());
  const client = new MllpClient({ host: '127.0.0.1', port: serving.ports()['critical-alerts']! });
  cleanups.push(() => client.close());
  return { serving, send: (m: string) => client.send(m) };
}

describe('smtp destination', () => {
  test('a critical result is mailed with the rendered subject and text, authenticated, to every address', async () => {
    const smtp = await startSmtp();
    const { serving, send } = await serve(smtp.port);
    expect((await send(ORU)).code).toBe('AA');
    await waitFor(() => smtp.mails.length === 1, 10_000, 'the mail');
    const mail = smtp.mails[0]!;
    expect(mail.from).toBe('interfaces-noreply@lrh.example');
    expect(mail.to).toEqual(['a@lrh.example', 'b@lrh.example']);
    expect(mail.user).toBe('lab');
    expect(mail.raw).toMatch(/^Subject: CRITICAL lab result: MRN E55, accession ACC-9\r?$/m);
    expect(mail.raw).toMatch(/^Reply-To: lab-supervisors@lrh\.example\r?$/m);
    expect(mail.raw).toMatch(/^X-Priority: 1\r?$/m);
    const text = mail.raw.split(/\r?\n\r?\n/).slice(1).join('\n\n').replace(/\r\n/g, '\n');
    expect(text).toBe('Patient: Doe, Jane\nPotassium 6.9 mmol/L (HH)\nChannel: critical-alerts\n');
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.state === 'sent', 5000, 'delivery recorded');
  });

  test('a refused recipient (5xx) fails for good at once, with the server\'s answer', async () => {
    const smtp = await startSmtp({ refuse: true });
    const { serving, send } = await serve(smtp.port);
    expect((await send(ORU)).code).toBe('AA');
    await waitFor(async () => (await serving.store.getMessage(1))!.deliveries[0]!.state === 'dead', 10_000, 'dead-lettered');
    const d = (await serving.store.getMessage(1))!.deliveries[0]!;
    expect(d.attempts).toBe(1);
    expect(d.last_error).toMatch(/^SMTP 550: /);
    expect(smtp.mails).toEqual([]);
  });

  test('validate: templates are checked, a written password is a warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2-smtp-validate-'));
    const file = join(dir, 'm.yaml');
    writeFileSync(file, `channel: m
source: { mllp: { port: 2951 } }
destinations:
  mail:
    smtp: { host: h, from: a@b, to: [c@d], password: hunter2, subject: "{{PID-3.1}} {{mrn}}" }
`);
    const result = await validateSpecs([file], { cwd: dir, env: {} });
    expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.code}`)).toEqual(['5:54 warning spec/credential-in-spec', '5:87 error spec/template-placeholder']);
  });
});
