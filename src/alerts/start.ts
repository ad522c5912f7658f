import type { Logger } from '../../runtime/index.js';
import type { ChannelHost, LoadedChannel, Store } from '../../runtime/serve/index.js';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import { formatDiagnostic } from '../diagnostics/diagnostic.js';
import { loadServeConfig } from '../config/serve-config.js';
import type { AlertsView } from './engine.js';
import { AlertEngine } from './engine.js';
import { createNotifier } from './notify.js';

/** The alerts of a running serve: fed by the host and the reloads, read by GET /api/alerts. */
export interface Alerts {
  /** Starts checking the rules against this store's counters and this host's attempts and channels. */
  watch(host: ChannelHost, store: Store): void;
  reloadRejected(diagnostics: Diagnostic[]): void;
  reloadApplied(): void;
  view(): AlertsView;
  close(): Promise<void>;
}

/**
 * Reads the serve config and sets up its alert rules; a config with errors stops the start as a
 * spec with errors does (each finding logged with file:line:col). Undefined when it has no alerts.
 */
export async function startAlerts(file: string, channels: LoadedChannel[], env: NodeJS.ProcessEnv, cwd: string, log: Logger): Promise<Alerts | undefined> {
  const known = new Map(channels.map((c) => [c.definition.name, Object.keys(c.definition.destinations)]));
  const { config, diagnostics } = await loadServeConfig(file, env, cwd, known);
  for (const d of diagnostics) log[d.severity === 'error' ? 'error' : 'warn']({ code: d.code }, formatDiagnostic(d));
  if (!config) throw new Error(`the serve config ${file} has errors; nothing was started`);
  if (!config.alerts) return undefined;
  const alerts = config.alerts;
  log.info({ config: config.file, rules: alerts.rules.length, webhook: !!alerts.webhook, email: !!alerts.email }, 'alert rules loaded');
  const notifier = createNotifier(alerts, log);
  let engine: AlertEngine | undefined;
  let unsubscribe: () => unknown = () => undefined;
  return {
    watch(host, store) {
      engine = new AlertEngine(alerts, { metrics: () => store.metrics(), channels: () => Object.keys(host.ports()) }, (n) => notifier.send(n), log);
      unsubscribe = host.onAttempt((channel, destination, ok) => engine?.attempt(channel, destination, ok));
      engine.start();
    },
    reloadRejected(list) {
      const errors = list.filter((d) => d.severity === 'error');
      const first = errors[0];
      // Where and which code, not the message text: a finding can quote a spec's sample message.
      engine?.reload(false, `${errors.length} error(s)${first ? `, the first ${first.file}:${first.line}:${first.column} ${first.code}` : ''}`);
    },
    reloadApplied() {
      engine?.reload(true);
    },
    view() {
      return engine?.view() ?? { rules: [], recent: [] };
    },
    async close() {
      unsubscribe();
      await engine?.stop();
      await notifier.close();
    },
  };
}
