import { statSync } from 'node:fs';
import type { Logger } from '../../runtime/index.js';
import type { ChannelHost, LoadedChannel, Store } from '../../runtime/serve/index.js';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import { formatDiagnostic } from '../diagnostics/diagnostic.js';
import { loadServeConfig } from '../config/serve-config.js';
import type { AlertsView } from './engine.js';
import { AlertEngine } from './engine.js';
import { createNotifier } from './notify.js';
import type { Notifier } from './notify.js';
import type { AlertsConfig } from '../config/serve-config.js';

/** The store lease held by the node that sends the alert notices. */
const ALERTING_LEASE = 'alerting';

/** The alerts of a running serve: fed by the host and the reloads, read by GET /api/alerts. */
export interface Alerts {
  /** Starts checking the rules against this store's counters and this host's channels. */
  watch(host: ChannelHost, store: Store): void;
  /** This node's spec reload went one way or the other, and is in the store: the rules are checked now. */
  reloaded(): void;
  /** The rules of a changed serve config (checked already) take over from the running ones. */
  reconfigure(config: AlertsConfig | undefined): Promise<void>;
  view(): AlertsView;
  close(): Promise<void>;
}

/**
 * Reads and checks the serve config against the channels: its alert rules, or its findings
 * (each `file:line:col`) when it has errors.
 */
export async function readAlertsConfig(file: string, channels: LoadedChannel[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ ok: boolean; alerts?: AlertsConfig; file: string; diagnostics: Diagnostic[] }> {
  const known = new Map(channels.map((c) => [c.definition.name, Object.keys(c.definition.destinations)]));
  const { config, diagnostics } = await loadServeConfig(file, env, cwd, known);
  return { ok: !!config, alerts: config?.alerts, file: config?.file ?? file, diagnostics };
}

/**
 * Reads the serve config and sets up its alert rules; a config with errors stops the start as a
 * spec with errors does (each finding logged with file:line:col). A config without alerts gets
 * none until a change to it adds some (see reconfigure). `optional`: the file need not exist
 * yet (the default place beside the specs, not a --config given).
 */
export async function startAlerts(file: string, channels: LoadedChannel[], env: NodeJS.ProcessEnv, cwd: string, log: Logger, options: { optional?: boolean } = {}): Promise<Alerts> {
  const missing = options.optional && !statSync(file, { throwIfNoEntry: false })?.isFile();
  const read = missing ? { ok: true, alerts: undefined, file, diagnostics: [] as Diagnostic[] } : await readAlertsConfig(file, channels, env, cwd);
  for (const d of read.diagnostics) log[d.severity === 'error' ? 'error' : 'warn']({ code: d.code }, formatDiagnostic(d));
  if (!read.ok) throw new Error(`the serve config ${file} has errors; nothing was started`);
  let alerts = read.alerts;
  const describe = (a: AlertsConfig) => ({ config: read.file, rules: a.rules.length, webhook: !!a.webhook, email: !!a.email });
  if (alerts) log.info(describe(alerts), 'alert rules loaded');
  let notifier = alerts ? createNotifier(alerts, log) : undefined;
  let engine: AlertEngine | undefined;
  let inputs: { host: ChannelHost; store: Store } | undefined;
  const startEngine = (a: AlertsConfig, n: Notifier) => {
    const { host, store } = inputs!;
    engine = new AlertEngine(
      a,
      {
        metrics: () => store.metrics(),
        channels: () => Object.keys(host.ports()),
        // A store several nodes share (it lists them): one of them alerts at a time.
        ...(store.status
          ? {
              alertingLease: async (ttlMs: number) => {
                const lease = await store.takeLease(ALERTING_LEASE, host.owner, ttlMs);
                return { holder: lease.owner, self: lease.owner === host.owner, until: lease.until };
              },
            }
          : {}),
      },
      (x) => n.send(x),
      log,
    );
    engine.start();
  };
  return {
    watch(host, store) {
      inputs = { host, store };
      if (alerts && notifier) startEngine(alerts, notifier);
    },
    reloaded() {
      engine?.reloaded();
    },
    async reconfigure(next) {
      const old = notifier;
      notifier = next ? createNotifier(next, log) : undefined;
      alerts = next;
      if (next) log.info(describe(next), 'alert rules reloaded');
      else log.info({ config: read.file }, 'the serve config has no alerts any more; alert rules stopped');
      if (engine && next) await engine.reconfigure(next, (x) => notifier!.send(x));
      else if (engine) {
        await engine.stop();
        engine = undefined;
      } else if (next && inputs) startEngine(next, notifier!);
      await old?.close();
    },
    view() {
      return engine?.view() ?? { rules: [], recent: [] };
    },
    async close() {
      await engine?.stop();
      // Stopping cleanly: another node alerts from its next check, not after the lease runs out.
      if (inputs?.store.status) await inputs.store.releaseLease(ALERTING_LEASE, inputs.host.owner).catch(() => undefined);
      await notifier?.close();
    },
  };
}

/**
 * What a rejected spec reload's record in the store (and its alert) says: how many errors and
 * where the first is, with its code. Not the finding's text: it can quote a spec's sample message.
 */
export function reloadSummary(diagnostics: Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  const first = errors[0];
  return `${errors.length} error(s)${first ? `, the first ${first.file}:${first.line}:${first.column} ${first.code}` : ''}`;
}
