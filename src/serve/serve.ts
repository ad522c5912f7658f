import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { watch } from 'chokidar';
import type { Logger } from '../../runtime/index.js';
import { ChannelHost, openStore, Operations, startAdminServer } from '../../runtime/serve/index.js';
import type { AdminServer, AdminToken, ExtraRoute, LoadedChannel, Store } from '../../runtime/serve/index.js';
import { compileChannels as compileSpecs } from '../compiler/compile-channels.js';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import { formatDiagnostic } from '../diagnostics/diagnostic.js';
import { configFileFor, defaultConfigFile, specFiles } from '../spec/files.js';
import { faultPoint } from '../../runtime/faults.js';
import { readAlertsConfig, reloadSummary, startAlerts } from '../alerts/start.js';
import { dashboardRoutes } from '../dashboard/routes.js';
import type { Alerts } from '../alerts/start.js';
import { specLoader } from './replay.js';

export { specFiles };

export interface ServeOptions {
  /** Spec files, or directories whose *.yaml files are specs. */
  specs: string[];
  /** A SQLite path (relative to cwd) or a `postgres://` URL. */
  storePath: string;
  /**
   * disk (default): the received-message log is fdatasynced before the ACK (one sync for the
   * messages of one event-loop turn), so an ACKed message survives a power cut.
   * process: the log is written, not synced; an ACKed message survives a crash or SIGKILL of
   * hl7c, not of the machine.
   */
  durability?: 'disk' | 'process';
  adminPort?: number;
  /** Where the admin port binds (default 127.0.0.1); off loopback it needs `adminTokens`. */
  adminHost?: string;
  /** Bearer tokens of the admin API (HL7C_ADMIN_TOKEN, --admin-tokens). */
  adminTokens?: AdminToken[];
  /** Routes added to the admin server (the dashboard, the alert engine): see ADMIN-API.md. */
  adminRoutes?: ExtraRoute[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  /** Recompile and swap channels when a spec changes (default true). */
  watch?: boolean;
  /** Where `hl7c build` left compiled channels: fresh ones run without the compiler. */
  buildDir?: string;
  /** Quiet time after a file event before recompiling. */
  settleMs?: number;
  /** Milliseconds of event-loop time one message may take (default 1000); over it the message is an error answered AE. */
  processingBudgetMs?: number;
  /**
   * How long a claim on queue entries holds without renewal: a node that dies gives its entries
   * up after this. Default HL7C_LEASE_MS, else 30 s.
   */
  leaseMs?: number;
  /** The serve config (alerts): default hl7c.config.yaml beside the specs. */
  configPath?: string;
}

function leaseFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const ms = Number(env.HL7C_LEASE_MS);
  return Number.isInteger(ms) && ms > 0 ? ms : undefined;
}

export interface Serving {
  host: ChannelHost;
  store: Store;
  adminPort?: number;
  /** The admin server (its `registerRoute` adds routes), when --admin-port is given. */
  admin?: AdminServer;
  /** The query/action module the admin API and the CLI share, with this serve's host. */
  operations: Operations;
  /** Channel name to the port it listens on. */
  ports(): Record<string, number>;
  /** The alert rules of the serve config, when it has any. */
  alerts?: Alerts;
  /** Recompiles now; resolves with the diagnostics (and whether the new version was applied). */
  reload(): Promise<{ applied: boolean; diagnostics: Diagnostic[] }>;
  /** Reads the serve config again now (as a change to it does): its alert rules take over, or it is rejected. */
  reloadConfig(): Promise<{ applied: boolean; diagnostics: Diagnostic[] }>;
  close(): Promise<void>;
}

/**
 * Paths, sizes and modification times of the files the watcher reports (the specs, and the
 * YAML and CSV files in a directory given and its subdirectories, such as lookup tables):
 * changes when any of them does.
 */
function fingerprint(options: ServeOptions): string {
  const watched = options.specs.flatMap((p) => {
    const absolute = resolve(options.cwd, p);
    if (!statSync(absolute, { throwIfNoEntry: false })?.isDirectory()) return [];
    return readdirSync(absolute, { withFileTypes: true }).flatMap((e) => {
      if (e.isDirectory()) return readdirSync(join(absolute, e.name)).filter((f) => /\.(ya?ml|csv)$/.test(f)).map((f) => join(absolute, e.name, f));
      return /\.csv$/.test(e.name) ? [join(absolute, e.name)] : [];
    });
  });
  return [...specFiles(options.specs, options.cwd), ...watched.sort()]
    .map((f) => {
      const st = statSync(f, { throwIfNoEntry: false });
      return `${f}:${st?.size ?? -1}:${st?.mtimeMs ?? -1}`;
    })
    .join('|');
}

/**
 * Validates, builds and loads specs as running channels; none when any spec has an error.
 * With `buildDir`, channels `hl7c build` compiled there from the same input run from its cache.
 */
export async function compileChannels(files: string[], cwd: string, env: NodeJS.ProcessEnv, buildDir?: string, log?: Logger): Promise<{ channels?: LoadedChannel[]; diagnostics: Diagnostic[] }> {
  const result = await compileSpecs(files, { cwd, env, buildDir });
  if (!result.channels) return { diagnostics: result.diagnostics };
  const channels = result.channels.map((c) => {
    log?.info({ channel: c.definition.name, specVersion: c.specVersion, from: c.cached ? 'build cache' : 'spec' }, 'channel compiled');
    return { definition: c.definition, specPath: resolve(cwd, c.spec.file), specVersion: c.specVersion };
  });
  return { channels, diagnostics: result.diagnostics };
}

function compile(options: ServeOptions): Promise<{ channels?: LoadedChannel[]; diagnostics: Diagnostic[] }> {
  const buildDir = options.buildDir === undefined ? undefined : resolve(options.cwd, options.buildDir);
  return compileChannels(specFiles(options.specs, options.cwd), options.cwd, options.env ?? process.env, buildDir, options.logger);
}

/**
 * `hl7c serve`: compiles every spec, opens the store, starts the channels, and (by default)
 * watches the specs: a change that validates takes over between two messages; one that does
 * not is logged with file:line:col and the running version stays.
 */
export async function startServing(options: ServeOptions): Promise<Serving> {
  const log = options.logger;
  const first = await compile(options);
  for (const d of first.diagnostics) log[d.severity === 'error' ? 'error' : 'warn']({ code: d.code }, formatDiagnostic(d));
  if (!first.channels) throw new Error('the specs have errors; nothing was started');
  // Without one yet, the place one would be read from: written later, it is picked up (watched).
  const configFile = configFileFor(options.specs, options.cwd, options.configPath) ?? defaultConfigFile(options.specs, options.cwd);
  const configExists = () => !!configFile && !!statSync(configFile, { throwIfNoEntry: false })?.isFile();
  const alerts = configFile ? await startAlerts(configFile, first.channels, options.env ?? process.env, options.cwd, log, { optional: !options.configPath }) : undefined;
  const store = await openStore(options.storePath, {
    cwd: options.cwd,
    durability: options.durability,
    onIngestError: (err, waiting) => log.error({ err: err.message, waiting }, 'received messages could not be taken into the store; they are safe in the received-message log and will be tried again'),
    onHealthChange: (health) =>
      health.status === 'ok' ? log.warn('the store is reachable again; messages are acknowledged again') : log.error({ err: health.error }, 'the store cannot be reached: messages are answered AE until it is back'),
  });
  const host = new ChannelHost(store, log, { leaseMs: options.leaseMs ?? leaseFromEnv(options.env ?? process.env), processingBudgetMs: options.processingBudgetMs });
  alerts?.watch(host, store);
  try {
    await host.start();
  } catch (err) {
    await store.close();
    throw err;
  }
  log.info({ store: store.location, durability: options.durability ?? 'disk', node: host.owner }, 'store opened');
  // The admin port is bound before any source listens: a port in use stops the start with
  // nothing half-started (no listener accepting messages that nobody watches).
  let admin: AdminServer | undefined;
  // Replays from the admin API run through the channels as loaded here.
  // A channel no longer loaded (its spec removed) is replayed from the spec last recorded.
  const operations = new Operations({ store, host, loadChannel: specLoader(store, options.env ?? process.env) });
  try {
    if (options.adminPort !== undefined) {
      admin = await startAdminServer({ operations, port: options.adminPort, host: options.adminHost, tokens: options.adminTokens, log, extraRoutes: [...dashboardRoutes(alerts), ...(options.adminRoutes ?? [])] });
    }
    await host.apply(first.channels);
  } catch (err) {
    await alerts?.close().catch(() => undefined);
    await host.close().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw err;
  }

  let chain: Promise<unknown> = Promise.resolve();
  let seen = fingerprint(options);
  /** The channels running now: what the serve config's rules are checked against. */
  let running = first.channels;
  const configStamp = () => {
    const st = configFile ? statSync(configFile, { throwIfNoEntry: false }) : undefined;
    return `${st?.size ?? -1}:${st?.mtimeMs ?? -1}`;
  };
  let seenConfig = configStamp();
  /**
   * The serve config changed: checked like a spec first; valid, its alert rules take over; with
   * errors, each is logged with file:line:col, /health and hl7c_config_reloads_total say so, and
   * the rules in force stay. Removed, the rules in force stay too (an editor saving by rename,
   * or a deploy rewriting the folder, must not switch alerting off); a warning says so.
   */
  const reloadConfig = (onlyIfChanged = false) => {
    const run = chain.then(async () => {
      // A file event and the stat safety net can both see one save: it is read once.
      if (onlyIfChanged && configStamp() === seenConfig) return { applied: false, diagnostics: [] as Diagnostic[] };
      seenConfig = configStamp();
      if (!configFile || !alerts) return { applied: false, diagnostics: [] as Diagnostic[] };
      if (!configExists()) {
        log.warn({ config: configFile }, 'the serve config was removed; the alert rules in force stay until a config is written there again (a restart without it starts with no alert rules)');
        return { applied: false, diagnostics: [] as Diagnostic[] };
      }
      const read = await readAlertsConfig(configFile, running, options.env ?? process.env, options.cwd);
      if (!read.ok) {
        const errors = read.diagnostics.filter((x) => x.severity === 'error');
        for (const d of errors) log.error({ code: d.code }, `serve config change rejected, the alert rules in force stay: ${formatDiagnostic(d)}`);
        host.activity.configReload({ at: Date.now(), outcome: 'rejected', error: errors[0] ? formatDiagnostic(errors[0]).split('\n')[0] : undefined });
        return { applied: false, diagnostics: read.diagnostics };
      }
      for (const d of read.diagnostics) log.warn({ code: d.code }, formatDiagnostic(d));
      await alerts.reconfigure(read.alerts);
      host.activity.configReload({ at: Date.now(), outcome: 'applied' });
      return { applied: true, diagnostics: read.diagnostics };
    });
    chain = run.catch(() => undefined);
    return run;
  };
  /**
   * Kept in the store with this node's name: the node sending the alerts (maybe another) tells a
   * rejection while it is this node's latest outcome.
   */
  const recordReload = async (outcome: 'applied' | 'rejected', summary: string | null) => {
    await store.recordReload({ at: Date.now(), outcome, summary }).catch((err: Error) => log.error({ err: err.message }, 'the reload outcome could not be written to the store; the alert rules may not see it'));
    alerts?.reloaded();
  };
  const reload = (onlyIfChanged = false) => {
    const run = chain.then(async () => {
      // A file event and the stat safety net both see one save (whichever comes first
      // compiles it): it is compiled, and a rejection logged and counted, once.
      const now = fingerprint(options);
      if (onlyIfChanged && now === seen) return { applied: false, diagnostics: [] as Diagnostic[] };
      seen = now;
      const next = await compile(options);
      if (!next.channels) {
        const errors = next.diagnostics.filter((x) => x.severity === 'error');
        // One entry per rejected change, every error in it: a log reader sees one event.
        log.error({ codes: errors.map((d) => d.code), errors: errors.length }, `spec change rejected, the running version stays: ${errors.map((d) => formatDiagnostic(d)).join('\n')}`);
        host.activity.reload({ at: Date.now(), outcome: 'rejected', error: errors[0] ? formatDiagnostic(errors[0]).split('\n')[0] : undefined });
        await recordReload('rejected', reloadSummary(next.diagnostics));
        return { applied: false, diagnostics: next.diagnostics };
      }
      faultPoint('during-reload');
      try {
        await host.apply(next.channels);
      } catch (err) {
        host.activity.reload({ at: Date.now(), outcome: 'rejected', error: (err as Error).message });
        // The error can be a receiver's or the database's text: only that it failed goes to the store.
        await recordReload('rejected', 'the new version could not be started; see the log of this node');
        throw err;
      }
      running = next.channels;
      host.activity.reload({ at: Date.now(), outcome: 'applied' });
      await recordReload('applied', null);
      return { applied: true, diagnostics: next.diagnostics };
    });
    chain = run.catch(() => undefined);
    return run;
  };

  let watcher: ReturnType<typeof watch> | undefined;
  if (options.watch !== false) {
    // The serve config too, wherever --config puts it.
    watcher = watch([...options.specs.map((p) => resolve(options.cwd, p)), ...(configFile ? [configFile] : [])], { ignoreInitial: true, depth: 1, awaitWriteFinish: false });
    let timer: NodeJS.Timeout | undefined;
    let configTimer: NodeJS.Timeout | undefined;
    watcher.on('all', (event, path) => {
      if (configFile && resolve(path) === configFile) {
        log.info({ event, path }, 'serve config change seen');
        clearTimeout(configTimer);
        configTimer = setTimeout(() => void reloadConfig(true).catch((err: Error) => log.error({ err: err.message }, 'serve config reload failed')), options.settleMs ?? 150);
        return;
      }
      if (!/\.(ya?ml|csv)$/.test(path)) return;
      log.info({ event, path }, 'spec change seen');
      clearTimeout(timer);
      timer = setTimeout(() => void reload(true).catch((err: Error) => log.error({ err: err.message }, 'reload failed')), options.settleMs ?? 150);
    });
    await new Promise<void>((r) => watcher!.once('ready', () => r()));
  }
  // File events can be coalesced or dropped (two saves within the watcher's throttle window);
  // a cheap stat of the specs catches any change the events missed.
  const safetyNet =
    options.watch !== false
      ? setInterval(() => {
          if (fingerprint(options) !== seen) {
            void reload(true).catch((err: Error) => log.error({ err: err.message }, 'reload failed'));
          }
          if (configStamp() !== seenConfig) {
            void reloadConfig(true).catch((err: Error) => log.error({ err: err.message }, 'serve config reload failed'));
          }
        }, 500)
      : undefined;
  safetyNet?.unref();

  return {
    host,
    store,
    adminPort: admin?.port,
    alerts,
    admin,
    operations,
    ports: () => host.ports(),
    reload: () => reload(),
    reloadConfig: () => reloadConfig(),
    async close() {
      clearInterval(safetyNet);
      await watcher?.close();
      await chain;
      await alerts?.close();
      await host.close();
      await admin?.close();
      await store.close();
    },
  };
}
