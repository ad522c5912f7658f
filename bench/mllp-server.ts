/**
 * An MLLP server for the benchmark, run in its own process so that server and clients each
 * have a core: `node mllp-server.js bare|hl7c|medplum`. Prints the port, runs until killed.
 */
import net from 'node:net';
import { Hl7Server } from '@medplum/hl7';
import { acknowledgements, MllpServer, receive } from '../runtime/index.js';

const kind = process.argv[2];

/**
 * About the fastest an MLLP server can be: no parsing, a fixed ACK whose only variable part is
 * MSA-2, copied from MSH-10 by counting field separators (senders match ACKs by MSA-2).
 */
function startBare(): Promise<number> {
  const head = Buffer.from('\x0bMSH|^~\\&|HL7C|APP|EPIC|HOSP|20261125120000||ACK^A01^ACK|1|P|2.5.1\rMSA|AA|');
  const tail = Buffer.from('\r\x1c\r');
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let pending: Buffer | null = null;
    socket.on('data', (chunk: Buffer) => {
      let data = pending ? Buffer.concat([pending, chunk]) : chunk;
      let end = data.indexOf(0x1c);
      while (end !== -1) {
        const start = data.indexOf(0x0b);
        let at = start;
        for (let n = 0; n < 9; n++) at = data.indexOf(0x7c, at + 1);
        const idEnd = data.indexOf(0x7c, at + 1);
        socket.write(Buffer.concat([head, data.subarray(at + 1, idEnd), tail]));
        data = data.subarray(end + 1);
        end = data.indexOf(0x1c);
      }
      pending = data.length > 0 && data.indexOf(0x0b) !== -1 ? data : null;
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

async function startHl7c(): Promise<number> {
  const server = new MllpServer({
    host: '127.0.0.1',
    port: 0,
    handler: (payload) => {
      const r = receive(payload);
      return r.ok ? acknowledgements(r.message, 'accept') : r.reject;
    },
  });
  return server.listen();
}

async function startMedplum(): Promise<number> {
  const probe = net.createServer();
  const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)));
  await new Promise((r) => probe.close(r));
  const server = new Hl7Server((connection) => {
    connection.addEventListener('message', (event: { message: { buildAck(): import('@medplum/core').Hl7Message } }) => connection.send(event.message.buildAck()));
  });
  server.start(port);
  await new Promise((r) => setTimeout(r, 200));
  return port;
}

const start = { bare: startBare, hl7c: startHl7c, medplum: startMedplum }[kind as 'bare' | 'hl7c' | 'medplum'];
if (!start) throw new Error(`unknown server kind ${kind}`);
const port = await start();
process.stdout.write(`port ${port}\n`);
