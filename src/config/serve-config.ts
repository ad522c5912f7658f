import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import type { LoadedSpec } from '../spec/load.js';
import { loadSpecText } from '../spec/load.js';
import { editDistance, packageSchema, schemaDiagnostics } from '../spec/schema.js';

/** What a rule watches; see schema/hl7c-config.schema.json for what each one means. */
export type AlertKind = 'errors' | 'rejects' | 'queue_age' | 'destination_failing' | 'no_messages' | 'dead_letters' | 'queue_stopped' | 'reload_rejected';

/** One alert rule, durations in milliseconds. */
export interface AlertRule {
  name: string;
  kind: AlertKind;
  channel?: string;
  destination?: string;
  over?: number;
  windowMs?: number;
  olderThanMs?: number;
  forMs?: number;
  coolDownMs: number;
}

export interface WebhookTarget {
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

export interface EmailTarget {
  smtp: { host: string; port?: number; secure?: boolean; user?: string; password?: string };
  from: string;
  to: string[];
}

export interface AlertsConfig {
  checkEveryMs: number;
  webhook?: WebhookTarget;
  email?: EmailTarget;
  rules: AlertRule[];
}

export interface ServeConfig {
  /** Where it was read from (as given, for messages). */
  file: string;
  alerts?: AlertsConfig;
}

/** The channels the config may name, with their destinations (from the specs served or validated with it). */
export type KnownChannels = Map<string, string[]>;

const DEFAULT_CHECK_EVERY_MS = 10_000;
const DEFAULT_COOL_DOWN_MS = 15 * 60_000;
/** Keys a rule may set beyond name, kind, channel and cool_down, by kind. */
const KIND_KEYS: Record<AlertKind, string[]> = {
  errors: ['over', 'window'],
  rejects: ['over', 'window'],
  queue_age: ['older_than', 'destination'],
  destination_failing: ['for', 'destination'],
  no_messages: ['for'],
  dead_letters: ['over', 'destination'],
  queue_stopped: ['destination'],
  reload_rejected: [],
};
const COMMON_KEYS = ['name', 'kind', 'channel', 'cool_down'];

let checkConfig: ReturnType<typeof packageSchema> | undefined;

/** "15m" and the like (the schema allows only these forms) in milliseconds. */
export function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text)!;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
}

/** Reads and checks the serve config file: YAML, `${ENV}`, the JSON Schema, then its meaning against the specs. */
export async function loadServeConfig(path: string, env: NodeJS.ProcessEnv, cwd: string, channels?: KnownChannels): Promise<{ config?: ServeConfig; diagnostics: Diagnostic[] }> {
  const file = relative(cwd, path) || path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { diagnostics: [{ file, line: 1, column: 1, severity: 'error', code: 'config/unreadable', message: missing ? 'the config file does not exist' : `the config file cannot be read: ${(err as Error).message}`, hint: missing ? 'check the --config path' : undefined }] };
  }
  return checkServeConfigText(file, text, env, channels);
}

export function checkServeConfigText(file: string, text: string, env: NodeJS.ProcessEnv, channels?: KnownChannels): { config?: ServeConfig; diagnostics: Diagnostic[] } {
  const loaded = loadSpecText(file, text, env);
  if (!loaded.spec) return { diagnostics: loaded.diagnostics };
  checkConfig ??= packageSchema('hl7c-config.schema.json');
  const schema = schemaDiagnostics(loaded.spec, checkConfig);
  if (schema.length > 0 || loaded.diagnostics.length > 0) return { diagnostics: [...loaded.diagnostics, ...schema] };
  const diagnostics = meaningDiagnostics(loaded.spec, channels);
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };
  return { config: toConfig(file, loaded.spec.data as RawConfig), diagnostics };
}

interface RawRule {
  name: string;
  kind: AlertKind;
  channel?: string;
  destination?: string;
  over?: number;
  window?: string;
  older_than?: string;
  for?: string;
  cool_down?: string;
}
interface RawConfig {
  alerts?: {
    check_every?: string;
    cool_down?: string;
    webhook?: { url: string; headers?: Record<string, string>; timeout_ms?: number };
    email?: EmailTarget;
    rules: RawRule[];
  };
}

/** What the schema cannot see: names used twice, keys that mean nothing for a kind, channels and destinations that do not exist. */
function meaningDiagnostics(spec: LoadedSpec, channels?: KnownChannels): Diagnostic[] {
  const data = spec.data as RawConfig;
  const out: Diagnostic[] = [];
  const at = (path: Array<string | number>, key = false) => ({ file: spec.file, ...(key ? spec.sourceMap.keyAt(path) : spec.sourceMap.valueAt(path)) });
  const rules = data.alerts?.rules ?? [];
  const seen = new Map<string, number>();
  rules.forEach((rule, i) => {
    const first = seen.get(rule.name);
    if (first !== undefined) {
      const where = spec.sourceMap.valueAt(['alerts', 'rules', first, 'name']);
      out.push({ ...at(['alerts', 'rules', i, 'name']), severity: 'error', code: 'config/duplicate-rule', message: `rule "${rule.name}" is defined twice (first at line ${where.line})`, hint: 'give each rule its own name' });
    } else seen.set(rule.name, i);
    const allowed = new Set([...COMMON_KEYS, ...KIND_KEYS[rule.kind]]);
    for (const key of Object.keys(rule)) {
      if (allowed.has(key)) continue;
      out.push({
        ...at(['alerts', 'rules', i, key], true),
        severity: 'error',
        code: 'config/not-for-kind',
        message: `"${key}" means nothing for a ${rule.kind} rule`,
        hint: KIND_KEYS[rule.kind].length ? `a ${rule.kind} rule takes ${[...KIND_KEYS[rule.kind], 'channel', 'cool_down'].join(', ')}` : `a ${rule.kind} rule takes only name, kind and cool_down`,
      });
    }
    if (rule.destination !== undefined && rule.channel === undefined) {
      out.push({ ...at(['alerts', 'rules', i, 'destination'], true), severity: 'error', code: 'config/destination-without-channel', message: 'a destination is named without its channel', hint: 'add channel: <the channel whose destination this is>' });
    }
    if (rule.kind === 'reload_rejected' && rule.channel !== undefined) {
      out.push({ ...at(['alerts', 'rules', i, 'channel'], true), severity: 'error', code: 'config/not-for-kind', message: 'a reload_rejected rule watches every spec; it takes no channel', hint: 'remove channel' });
    }
    if (!channels || rule.channel === undefined) return;
    const destinations = channels.get(rule.channel);
    if (!destinations) {
      const close = [...channels.keys()].find((c) => editDistance(c, rule.channel!) <= 2);
      out.push({
        ...at(['alerts', 'rules', i, 'channel']),
        severity: 'error',
        code: 'config/unknown-channel',
        message: `no spec defines channel "${rule.channel}"`,
        hint: close ? `did you mean "${close}"?` : `channels: ${[...channels.keys()].join(', ') || 'none'}`,
      });
    } else if (rule.destination !== undefined && !destinations.includes(rule.destination)) {
      const close = destinations.find((d) => editDistance(d, rule.destination!) <= 2);
      out.push({
        ...at(['alerts', 'rules', i, 'destination']),
        severity: 'error',
        code: 'config/unknown-destination',
        message: `channel "${rule.channel}" has no destination "${rule.destination}"`,
        hint: close ? `did you mean "${close}"?` : `its destinations: ${destinations.join(', ') || 'none'}`,
      });
    }
  });
  if (data.alerts && rules.length > 0 && !data.alerts.webhook && !data.alerts.email) {
    out.push({ ...at(['alerts'], true), severity: 'warning', code: 'config/alerts-not-delivered', message: 'alerts have neither webhook nor email: they show only on the dashboard and GET /api/alerts', hint: 'add webhook: { url: … } or email: { smtp, from, to }' });
  }
  return out;
}

function toConfig(file: string, data: RawConfig): ServeConfig {
  const a = data.alerts;
  if (!a) return { file };
  const coolDownMs = a.cool_down ? durationMs(a.cool_down) : DEFAULT_COOL_DOWN_MS;
  return {
    file,
    alerts: {
      checkEveryMs: a.check_every ? durationMs(a.check_every) : DEFAULT_CHECK_EVERY_MS,
      webhook: a.webhook ? { url: a.webhook.url, headers: a.webhook.headers ?? {}, timeoutMs: a.webhook.timeout_ms ?? 5000 } : undefined,
      email: a.email,
      rules: a.rules.map((r) => ({
        name: r.name,
        kind: r.kind,
        channel: r.channel,
        destination: r.destination,
        over: r.over ?? (r.kind === 'dead_letters' ? 0 : undefined),
        windowMs: r.window ? durationMs(r.window) : undefined,
        olderThanMs: r.older_than ? durationMs(r.older_than) : undefined,
        forMs: r.for ? durationMs(r.for) : undefined,
        coolDownMs: r.cool_down ? durationMs(r.cool_down) : coolDownMs,
      })),
    },
  };
}

/** Channel names and their destinations, from specs as loaded (validate) or compiled (serve). */
export function knownChannels(specs: Array<{ data: unknown }>): KnownChannels {
  const out: KnownChannels = new Map();
  for (const s of specs) {
    const d = s.data as { channel?: unknown; destinations?: Record<string, unknown> };
    if (typeof d?.channel === 'string') out.set(d.channel, Object.keys(d.destinations ?? {}));
  }
  return out;
}
