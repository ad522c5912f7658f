import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import { join, relative } from 'node:path';
import { MllpClient } from '../../../runtime/index.js';
import type { Logger } from '../../../runtime/index.js';
import { startServing } from '../../serve/serve.js';
import type { CliIo } from '../io.js';
import { startReceiver } from './listen.js';

export interface DemoArgs {
  out: string;
  logger: Logger;
}

/**
 * `hl7c demo`: the main job end to end on the example specs, with nothing to set up. It starts
 * stand-ins for the app's webhook and the EHR's MLLP port, serves `examples/` with the embedded
 * SQLite store, pushes the example messages through (HL7 over MLLP in, JSON over HTTP for the
 * write-back channels), waits for the destination queues to empty, and prints what happened.
 */
export async function demoCommand(args: DemoArgs, io: CliIo): Promise<number> {
  const examples = join(io.cwd, 'examples');
  const webhook = await startWebhookStandIn();
  const ehr = await startReceiver({ host: '127.0.0.1', port: 0, out: join(args.out, 'ehr-received'), logger: args.logger });
  // The write-back sources take requests only with a bearer token: one made for this run.
  const token = randomBytes(24).toString('hex');
  const env = {
    ...process.env,
    RESULTS_TOKEN: token,
    NOTES_TOKEN: token,
    ADT_PORT: '0',
    SIU_PORT: '0',
    RESULTS_HTTP_PORT: '0',
    NOTES_HTTP_PORT: '0',
    WEBHOOK_URL: `http://127.0.0.1:${webhook.port}/hl7/patient-events`,
    APPOINTMENTS_DIR: join(args.out, 'appointments'),
    BED_BOARD_DIR: join(args.out, 'bed-board'),
    EHR_HOST: '127.0.0.1',
    EHR_RESULTS_PORT: String(ehr.port),
    EHR_NOTES_PORT: String(ehr.port),
  };
  const serving = await startServing({ specs: [examples], storePath: join(args.out, 'store.db'), cwd: io.cwd, env, logger: args.logger, watch: false });
  const ports = serving.ports();
  io.stdout(`serving ${Object.keys(ports).length} channels from examples/ (store ${relative(io.cwd, join(args.out, 'store.db'))})\n`);
  let failures = 0;
  try {
    const messages = join(examples, 'messages');
    const send = async (channel: string, files: string[]) => {
      const client = new MllpClient({ host: '127.0.0.1', port: ports[channel]!, logger: args.logger });
      for (const file of files) {
        const ack = await client.send(await readFile(join(messages, file)));
        io.stdout(`  ${channel.padEnd(18)} ${file.padEnd(30)} -> ${ack.code || '-'} ${ack.acknowledgedControlId}${ack.text ? `  (${ack.text})` : ''}\n`);
      }
      await client.close();
    };
    io.stdout('HL7 in over MLLP:\n');
    const adt = (await readdir(messages)).filter((f) => f.startsWith('adt-')).sort();
    await send('adt-to-webhook', [...adt, 'orm-o01-order.hl7']);
    await send('siu-appointments', ['siu-s12-new-appointment.hl7']);

    io.stdout('JSON in over HTTP (write-back to the EHR):\n');
    const post = async (channel: string, path: string, body: string) => {
      const response = await fetch(`http://127.0.0.1:${ports[channel]}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
      const json = (await response.json()) as { status: string; control_id?: string; reason?: string };
      if (response.status !== 200) failures++;
      io.stdout(`  ${channel.padEnd(18)} POST ${path.padEnd(25)} -> ${response.status} ${json.status} ${json.control_id ?? ''}${json.reason ? `  (${json.reason})` : ''}\n`);
    };
    await post('results-to-ehr', '/results', await readFile(join(examples, 'json/glucose-results.json'), 'utf8'));
    await post('notes-to-ehr', '/notes', JSON.stringify({ patient: { mrn: 'E1234567', family_name: 'TESTPATIENT' }, note: { id: 'NOTE-1', status: 'signed', written_at: '2026-11-25T10:00:00-05:00', text: 'Seen today.\nPlan: follow up in 3 months.' } }));

    // Deliveries happen in the background; give the queues a moment to empty.
    const deadline = Date.now() + 10_000;
    while ((await serving.store.openQueues()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    io.stdout('delivered:\n');
    const rows = (await serving.store.metrics()).deliveries.filter((r) => r.count > 0).sort((a, b) => a.channel.localeCompare(b.channel) || a.destination.localeCompare(b.destination) || a.state.localeCompare(b.state));
    for (const row of rows) {
      io.stdout(`  ${row.channel.padEnd(18)} -> ${row.destination.padEnd(16)} ${row.state} ${row.count}\n`);
      if (row.state !== 'sent') failures++;
    }
    const ehrFiles = (await readdir(join(args.out, 'ehr-received'))).length;
    io.stdout(`  the app's webhook stand-in got ${webhook.received} patient event(s); the EHR stand-in holds ${ehrFiles} message(s) in ${relative(io.cwd, join(args.out, 'ehr-received'))}/\n`);
    io.stdout(`next: npx hl7c messages --store ${relative(io.cwd, join(args.out, 'store.db'))}\n`);
  } finally {
    await serving.close();
    await ehr.close();
    await webhook.close();
  }
  return failures > 0 ? 1 : 0;
}

async function startWebhookStandIn(): Promise<{ port: number; received: number; close(): Promise<void> }> {
  const state = { port: 0, received: 0, close: async () => undefined as void };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.received++;
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.port = (server.address() as { port: number }).port;
  state.close = () => new Promise<void>((r) => server.close(() => r()));
  return state;
}
