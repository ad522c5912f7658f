import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, Hl7ParseError, Hl7PathError, readPem } from '../../runtime/index.js';
import type { ClientTlsOptions, ServerTlsOptions } from '../../runtime/index.js';
import type { CliIo } from './io.js';
import { existingStore } from './store-path.js';
import { HL7C_VERSION } from '../version.js';


function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

const pem = readPem;

const LOG_LEVELS = ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** A level in any case; empty (a variable left blank by a service manager) means the command's default. */
function logLevel(value: string): string | undefined {
  const level = value.trim().toLowerCase();
  if (level === '') return undefined;
  if (!LOG_LEVELS.includes(level)) throw new InvalidArgumentError(`a log level is one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/**
 * Builds the command table. Each action only turns options into a command's arguments; the
 * command itself returns the exit code.
 */
export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('hl7c')
    .description('HL7 v2 interface engine: parse, inspect, send and receive HL7 v2 over MLLP')
    .version(HL7C_VERSION)
    .addOption(new Option('--log-level <level>', `log level for the JSON logs on stderr (${LOG_LEVELS.join(', ')})`).env('HL7C_LOG_LEVEL').argParser(logLevel))
    .showHelpAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  const run = (fn: () => Promise<number>) => async () => setExitCode(await fn());
  /**
   * The level asked for with --log-level or HL7C_LOG_LEVEL, or the command's own default:
   * long-running commands log their life (info), the demo only errors (it prints its own
   * account), the rest warnings.
   */
  const logger = (levelByDefault = 'warn') => createLogger({ level: (program.opts().logLevel as string | undefined) ?? levelByDefault, sync: false });

  program
    .command('parse')
    .description('print a message (or every message of a batch) as JSON or re-encoded HL7')
    .argument('<file>', 'file with an HL7 message or batch')
    .addOption(new Option('--to <format>', 'output format').choices(['json', 'hl7']).default('json'))
    .action((file: string, opts: { to: 'json' | 'hl7' }) => run(async () => (await import('./commands/parse.js')).parseCommand({ file, to: opts.to }, io))());

  program
    .command('get')
    .description('print the decoded value at each HL7 path (e.g. PID-3[2].4.1), one line each')
    .argument('<file>', 'file with an HL7 message or batch')
    .argument('<paths...>', 'HL7 paths')
    .option('--json', 'print a JSON object of path to value')
    .action((file: string, paths: string[], opts: { json?: boolean }) => run(async () => (await import('./commands/get.js')).getCommand({ file, paths, json: !!opts.json }, io))());

  program
    .command('send')
    .description('send every message in the files over MLLP; prints "<MSA-1> <MSA-2>" per ACK, exits 1 unless all are AA/CA')
    .requiredOption('--host <host>', 'receiver host')
    .requiredOption('--port <port>', 'receiver port', integer)
    .option('--tls', 'use TLS')
    .option('--ca <file>', 'CA certificate (PEM) to verify the receiver')
    .option('--cert <file>', 'client certificate (PEM) for mutual TLS')
    .option('--key <file>', 'client key (PEM) for mutual TLS')
    .option('--servername <name>', 'name to verify the receiver certificate against')
    .option('--insecure', 'do not verify the receiver certificate (testing only)')
    .option('--timeout <ms>', 'ACK timeout per message', integer, 30_000)
    .argument('<files...>', 'files with HL7 messages or batches')
    .action((files: string[], o: Record<string, string | number | boolean | undefined>) => {
      const useTls = !!(o.tls || o.ca || o.cert || o.insecure);
      const tls: ClientTlsOptions | undefined = useTls
        ? { ca: pem(o.ca as string), cert: pem(o.cert as string), key: pem(o.key as string), servername: o.servername as string | undefined, insecure: !!o.insecure }
        : undefined;
      return run(async () =>
        (await import('./commands/send.js')).sendCommand({ host: o.host as string, port: o.port as number, files, tls, timeoutMs: o.timeout as number, logger: logger() }, io),
      )();
    });

  program
    .command('listen')
    .description('MLLP receiver: stores each message as <out>/<MSH-10>.hl7 and answers AA (AR when unreadable)')
    .requiredOption('--port <port>', 'port to listen on (0 picks a free one)', integer)
    .option('--host <host>', 'address to bind', '0.0.0.0')
    .option('--out <dir>', 'directory for received messages')
    .option('--tls-key <file>', 'server key (PEM); with --tls-cert enables TLS')
    .option('--tls-cert <file>', 'server certificate (PEM)')
    .option('--tls-ca <file>', 'CA (PEM) that client certificates must chain to')
    .option('--require-client-cert', 'mutual TLS: refuse clients without a certificate signed by --tls-ca')
    .option('--max-message-bytes <n>', 'largest message accepted', integer, 10 * 1024 * 1024)
    .option('--idle-timeout <ms>', 'close connections idle this long (0: never)', integer, 0)
    .action((o: Record<string, string | number | boolean | undefined>) => {
      let tls: ServerTlsOptions | undefined;
      if (o.tlsKey || o.tlsCert) {
        if (!o.tlsKey || !o.tlsCert) throw new InvalidArgumentError('--tls-key and --tls-cert go together');
        tls = { key: pem(o.tlsKey as string)!, cert: pem(o.tlsCert as string)!, ca: pem(o.tlsCa as string), requireClientCertificate: !!o.requireClientCert };
      }
      return run(async () =>
        (await import('./commands/listen.js')).listenCommand(
          {
            host: o.host as string,
            port: o.port as number,
            out: o.out as string | undefined,
            tls,
            maxMessageBytes: o.maxMessageBytes as number,
            idleTimeoutMs: o.idleTimeout as number,
            logger: logger('info'),
          },
          io,
        ),
      )();
    });

  program
    .command('validate')
    .description('check specs: file:line:col: severity code: message, with a hint; exit 1 on any error')
    .argument('<specs...>', 'spec files (YAML), or directories of them')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--config <file>', 'the serve config to check (default: hl7c.config.yaml beside the specs)')
    .action((specs: string[], o: { format: 'text' | 'json'; config?: string }) => run(async () => (await import('./commands/validate.js')).validateCommand({ specs, format: o.format, config: o.config }, io))());

  program
    .command('build')
    .description('generate one TypeScript channel module per spec, and the compiled channel serve and test run without the compiler (nothing is written if a spec has errors)')
    .argument('<specs...>', 'spec files (YAML), or directories of them')
    .option('--out <dir>', 'output directory', '.hl7c/build')
    .action((specs: string[], o: { out: string }) => run(async () => (await import('./commands/build.js')).buildCommand({ specs, out: o.out }, io))());

  program
    .command('test')
    .description("run each spec's test cases against its compiled channel; prints pass/fail and 'N passed, N failed'")
    .argument('<specs...>', 'spec files (YAML), or directories of them')
    .option('--build <dir>', 'where hl7c build left compiled channels (fresh ones run without the compiler)', '.hl7c/build')
    .action((specs: string[], o: { build: string }) => run(async () => (await import('./commands/test.js')).testCommand({ specs, buildDir: o.build }, io))());

  program
    .command('import')
    .description('translate channels from another engine into hl7c specs')
    .command('mirth')
    .description('one spec per channel of Mirth Connect exports (a channel, a group or a server export); what it cannot translate becomes a # TODO(import): comment, listed at the end')
    .argument('<exports...>', 'Mirth Connect export files (XML)')
    .option('--out <dir>', 'where to write the specs', '.')
    .option('--force', 'overwrite specs that already exist')
    .action((files: string[], o: { out: string; force?: boolean }) => run(async () => (await import('./commands/import-mirth.js')).importMirthCommand({ files, out: o.out, force: !!o.force }, io))());

  program
    .command('preview')
    .description('what the channel does with one input: outcome and ACKs, identifiers, route, each destination\'s payload (no store, no network)')
    .argument('<spec>', 'spec file (YAML)')
    .argument('<input>', 'file with an HL7 message or JSON (or the message or JSON itself)')
    .option('--json', 'JSON output, for scripts')
    .action((spec: string, input: string, o: { json?: boolean }) => run(async () => (await import('./commands/preview.js')).previewCommand({ spec, input, json: !!o.json }, io))());

  program
    .command('init')
    .description('scaffold a spec with a sample message and one passing test')
    .argument('<dir>', 'directory to create it in')
    .action((dir: string) => run(async () => (await import('./commands/init.js')).initCommand({ dir, schemaPath: (await import('../spec/schema.js')).SCHEMA_PATH }, io))());

  program
    .command('serve')
    .description('run the channels: store before ACK, destination queues with retry, hot reload of the specs')
    .argument('<specs...>', 'spec files, or directories of them')
    .addOption(storeOption())
    .addOption(new Option('--durability <level>', 'disk: each message is synced to disk before its ACK (survives a power cut); process: written, not synced (survives a crash of hl7c, not of the machine)').choices(['disk', 'process']).default('disk'))
    .option('--admin-port <port>', 'serve /health, /metrics and the admin API on this port', integer)
    .option('--admin-host <host>', 'address the admin port binds (default 127.0.0.1; anything else needs HL7C_ADMIN_TOKEN or --admin-tokens)', '127.0.0.1')
    .option('--admin-tokens <file>', 'YAML/JSON list of admin API tokens: [{name, token, role: viewer|operator}]')
    .option('--no-watch', 'do not reload when a spec changes')
    .option('--build <dir>', 'where hl7c build left compiled channels (fresh ones run without the compiler)', '.hl7c/build')
    .option('--processing-budget-ms <ms>', 'event-loop time one message may take; over it the message is stored as an error and answered AE', integer, 1000)
    .option('--config <file>', 'the serve config (alerts); default hl7c.config.yaml beside the specs')
    .action((specs: string[], o: { store: string; durability: 'disk' | 'process'; adminPort?: number; adminHost: string; adminTokens?: string; watch: boolean; build: string; processingBudgetMs: number; config?: string }) =>
      run(async () =>
        (await import('./commands/serve.js')).serveCommand(
          { specs, store: o.store, durability: o.durability, adminPort: o.adminPort, adminHost: o.adminHost, adminTokens: o.adminTokens, watch: o.watch, buildDir: o.build, processingBudgetMs: o.processingBudgetMs, config: o.config, logger: logger('info') },
          io,
        ),
      )(),
    );

  const messages = program
    .command('messages')
    .description('list stored messages (patient identifiers masked unless --show-phi)')
    .addOption(storeOption())
    .option('--channel <name>', 'only this channel')
    .option('--status <status>', 'accepted, filtered, rejected, error, or a delivery state: queued, sent, dead, stopped')
    .option('--since <when>', 'e.g. 24h, 7d, or an ISO date')
    .option('--until <when>', 'received before: e.g. 1h, or an ISO date')
    .option('--control-id <id>', 'the message with this MSH-10')
    .option('--type <type>', 'MSH-9: ADT for every ADT event, ADT^A08 for one')
    .option('--identifier <value>', 'messages in which this identifier (MRN, order or visit number …) was found')
    .option('--limit <n>', 'at most this many (the newest, unless --oldest-first)', integer, 1000)
    .option('--oldest-first', 'oldest first (default: newest first)')
    .option('--show-phi', 'show identifiers and message content')
    .option('--json', 'JSON output')
    .action(
      (o: { store: string; channel?: string; status?: string; since?: string; until?: string; controlId?: string; type?: string; identifier?: string; limit: number; oldestFirst?: boolean; showPhi?: boolean; json?: boolean }) =>
        run(async () =>
          (await import('./commands/messages.js')).messagesCommand(
            { store: existingStore(o.store, io.cwd), channel: o.channel, status: o.status, since: o.since, until: o.until, controlId: o.controlId, type: o.type, identifier: o.identifier, limit: o.limit, oldestFirst: !!o.oldestFirst, showPhi: !!o.showPhi, json: !!o.json },
            io,
          ),
        )(),
    );
  messages
    .command('show')
    .description("one message's whole history")
    .argument('<id>', 'message id', integer)
    .option('--show-phi', 'print the message content')
    // --store belongs to `messages`, so it is read from there, wherever it is written.
    .action((id: number, o: { showPhi?: boolean }) => run(async () => (await import('./commands/messages.js')).showCommand({ store: existingStore(messages.opts().store as string, io.cwd), id, showPhi: !!(o.showPhi || messages.opts().showPhi) }, io))());

  program
    .command('replay')
    .description('send stored messages again through the current spec version (a running serve delivers them)')
    .argument('[ids...]', 'message ids')
    .addOption(storeOption())
    .option('--channel <name>', 'with --status: every such message of this channel')
    .option('--status <status>', 'dead, stopped, error, rejected, or error_queue (all four)')
    .option('--destination <name>', 'queue for this destination only (again, even if it was delivered); without it, every destination not yet delivered to')
    .action((ids: string[], o: { store: string; channel?: string; status?: string; destination?: string }) =>
      run(async () => (await import('./commands/messages.js')).replayCommand({ store: existingStore(o.store, io.cwd), ids: ids.map((i) => integer(i)), channel: o.channel, status: o.status, destination: o.destination }, io))(),
    );

  program
    .command('discard')
    .description('give up on dead or stopped entries (a stopped one no longer holds its queue): by message id, or a filtered set with --yes; the entries stay, marked discarded')
    .argument('[ids...]', 'message ids (every dead or stopped entry of each, or the one for --destination)')
    .addOption(storeOption())
    .option('--destination <name>', "only this destination's entries")
    .option('--channel <name>', 'a set: every dead or stopped entry of this channel')
    .addOption(new Option('--status <state>', 'a set: only dead, or only stopped, entries').choices(['dead', 'stopped']))
    .option('--yes', 'discard the set (without it, the set is listed and nothing is discarded)')
    .action((ids: string[], o: { store: string; destination?: string; channel?: string; status?: string; yes?: boolean }) =>
      run(async () =>
        (await import('./commands/operate.js')).discardCommand({ store: existingStore(o.store, io.cwd), ids: ids.map((i) => integer(i)), destination: o.destination, channel: o.channel, status: o.status, yes: !!o.yes }, io),
      )(),
    );

  for (const pause of [true, false]) {
    program
      .command(pause ? 'pause' : 'resume')
      .description(
        pause
          ? 'pause a destination for every node on the store (kept across restarts): messages keep being queued, none is sent until hl7c resume'
          : 'resume a paused destination: the serve working it sends its queue again, without a restart',
      )
      .argument('<channel>', 'the channel')
      .argument('<destination>', 'one of its destinations')
      .addOption(storeOption())
      .action((channel: string, destination: string, o: { store: string }) =>
        run(async () => (await import('./commands/operate.js')).pauseCommand({ store: existingStore(o.store, io.cwd), channel, destination, pause }, io))(),
      );
  }

  program
    .command('audit')
    .description('who looked at patient data or acted (replay, discard, pause/resume, token use) through the admin API or the CLI, newest first')
    .addOption(storeOption())
    .option('--limit <n>', 'at most this many', integer, 100)
    .option('--json', 'JSON output')
    .action((o: { store: string; limit: number; json?: boolean }) => run(async () => (await import('./commands/messages.js')).auditCommand({ store: existingStore(o.store, io.cwd), limit: o.limit, json: !!o.json }, io))());

  program
    .command('prune')
    .description('remove the content of old messages, keeping their counts and history')
    .requiredOption('--older-than <age>', 'e.g. 30d')
    .addOption(storeOption())
    .action((o: { store: string; olderThan: string }) => run(async () => (await import('./commands/messages.js')).pruneCommand({ store: existingStore(o.store, io.cwd), olderThan: o.olderThan }, io))());

  program
    .command('status')
    .description('nodes on the store (alive, stopped or lost), the spec version each runs per channel, queue depths and oldest ages')
    .addOption(storeOption())
    .option('--json', 'JSON output')
    .action((o: { store: string; json?: boolean }) => run(async () => (await import('./commands/status.js')).statusCommand({ store: existingStore(o.store, io.cwd), json: !!o.json }, io))());

  program
    .command('migrate')
    .description("create or update hl7c's PostgreSQL schema (hl7c serve does it too; this is for a deploy step)")
    .addOption(storeOption())
    .action((o: { store: string }) => run(async () => (await import('./commands/status.js')).migrateCommand({ store: o.store }, io))());

  program
    .command('demo')
    .description('the main job end to end: serve examples/ with the embedded store, push the example messages, show the deliveries')
    .option('--out <dir>', 'where the demo keeps its store and outputs', '.hl7c/demo')
    .action((o: { out: string }) =>
      run(async () => (await import('./commands/demo.js')).demoCommand({ out: resolve(io.cwd, o.out), logger: logger('error') }, io))(),
    );

  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  program.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof Error && 'exitCode' in err && typeof (err as { exitCode: unknown }).exitCode === 'number') {
      // commander already printed usage or help
      return (err as { exitCode: number }).exitCode;
    }
    io.stderr(`hl7c: ${describeError(err)}\n`);
    return err instanceof Hl7ParseError || err instanceof Hl7PathError ? 1 : 2;
  }
}

function describeError(err: unknown): string {
  if (err instanceof Hl7ParseError) return `cannot read the message (${err.code}): ${err.message}`;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `no such file: ${(err as NodeJS.ErrnoException).path}`;
    return err.message;
  }
  return String(err);
}

/** `--store`: a SQLite file or a `postgres://` URL; `HL7C_STORE` when not given. */
function storeOption(): Option {
  return new Option('--store <path-or-url>', 'the store: a SQLite file, or postgres://user@host/db for several nodes on one PostgreSQL').env('HL7C_STORE').default('.hl7c/store.db');
}
