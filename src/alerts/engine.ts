import { hostname } from 'node:os';
import type { Logger } from '../../runtime/index.js';
import type { StoreMetrics } from '../../runtime/serve/index.js';
import type { AlertRule, AlertsConfig } from '../config/serve-config.js';

/**
 * One alert notice, as sent to the webhook and by e-mail. It names rules, channels,
 * destinations and counts, never anything from a message (no field values, no identifiers, no
 * error text, which can quote a receiver's answer): alerts travel by mail and chat, outside the
 * places allowed to hold patient data.
 */
export interface AlertNotice {
  rule: string;
  kind: AlertRule['kind'];
  state: 'firing' | 'resolved';
  /** ISO-8601, UTC. */
  at: string;
  /** When the condition started (firing) or ended (resolved). */
  since: string;
  channel?: string;
  destination?: string;
  /** reload_rejected: the node whose spec reload was rejected (`node` is the one alerting). */
  reload_node?: string;
  /** The figure the rule compares (a count, or seconds), and its threshold. */
  value: number;
  threshold: number;
  summary: string;
  node: string;
}

/** What GET /api/alerts returns. */
export interface AlertsView {
  rules: Array<{ name: string; kind: AlertRule['kind']; state: 'ok' | 'firing'; since: string | null; firing: Array<{ channel?: string; destination?: string; reload_node?: string; since: string; summary: string }> }>;
  /** The node that sends the notices (several nodes on one store: one at a time), and whether it is this one. */
  alerting?: { node: string | null; self: boolean };
  recent: Array<{ rule: string; state: 'firing' | 'resolved'; at: string; summary: string; channel?: string; destination?: string; reload_node?: string; notified: boolean }>;
}

/** Where the engine reads: the store's counters (one read per check) and the channels running. */
export interface AlertInputs {
  metrics(): Promise<StoreMetrics>;
  /** Channels running now (no_messages watches each). */
  channels(): string[];
  /**
   * Several nodes on one store: takes or renews the alerting lease for this node, for `ttlMs`,
   * and says who holds it. Only the holder sends notices; the others evaluate the same store
   * counters and keep the same states, so whichever takes over knows what was told. Without it
   * this node alerts.
   */
  alertingLease?(ttlMs: number): Promise<{ holder: string; self: boolean; until: number }>;
}

/** What one rule finds for one subject (a channel, a queue, a node's specs) at one check. */
interface Finding {
  channel?: string;
  destination?: string;
  node?: string;
  active: boolean;
  value: number;
  threshold: number;
  summary: string;
}

interface SubjectState {
  firing: boolean;
  since: number;
  summary: string;
  channel?: string;
  destination?: string;
  node?: string;
  /** A firing notice is due (the condition started) but the cool-down holds it. */
  pending: boolean;
  lastFiringNoticeAt?: number;
  /** A firing notice went out and its resolved notice has not. */
  open: boolean;
}

interface Sample {
  at: number;
  counts: Map<string, number>;
}

const RECENT = 200;
const NODE = hostname();

/**
 * Checks the rules every `checkEveryMs` against the store's counters (`metrics()`, kept by the
 * store as messages are written and attempts end, never a table scan), which hold what every
 * node on the store saw: its messages, its delivery attempts, its last spec reload. Edge-triggered: a subject (a channel, a queue) sends one notice when its
 * condition starts and one when it ends; after a firing notice the same rule and subject stay
 * quiet for the cool-down, and a condition that starts again meanwhile is told once the
 * cool-down is over, if it still holds.
 */
export class AlertEngine {
  private readonly states = new Map<string, SubjectState>();
  private readonly recent: AlertsView['recent'] = [];
  private readonly samples: Sample[] = [];
  /** Per channel: its total of stored messages, and since when it has had that total. */
  private readonly lastTotals = new Map<string, { total: number; since: number }>();
  private timer: NodeJS.Timeout | null = null;
  /** Whether this node sends the notices now (see AlertInputs.alertingLease), and who does. */
  private alerting = true;
  private holder: { node: string; until: number } | null = null;
  private checking: Promise<void> | null = null;
  private keepSamplesMs: number;

  constructor(
    private config: AlertsConfig,
    private readonly inputs: AlertInputs,
    private notify: (notice: AlertNotice) => Promise<void>,
    private readonly log?: Logger,
  ) {
    this.keepSamplesMs = Math.max(0, ...config.rules.map((r) => r.windowMs ?? 0));
  }

  start(): void {
    if (this.timer) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), this.config.checkEveryMs);
    this.timer.unref();
  }

  /**
   * New rules from a changed serve config. A rule kept under its name keeps its state (a
   * condition already told is not told again); a removed rule's subjects are dropped without a
   * notice; a new rule starts from nothing. The next check runs at once.
   */
  async reconfigure(config: AlertsConfig, notify: (notice: AlertNotice) => Promise<void>): Promise<void> {
    await this.checking;
    const names = new Set(config.rules.map((r) => r.name));
    for (const key of [...this.states.keys()]) if (!names.has(key.split('\u0000')[0]!)) this.states.delete(key);
    const restart = this.timer !== null && config.checkEveryMs !== this.config.checkEveryMs;
    this.config = config;
    this.notify = notify;
    this.keepSamplesMs = Math.max(0, ...config.rules.map((r) => r.windowMs ?? 0));
    if (restart) {
      clearInterval(this.timer!);
      this.timer = setInterval(() => void this.check(), config.checkEveryMs);
      this.timer.unref();
    }
    void this.check();
  }

  /** Stops checking; waits for a check in progress. Notices already handed over are the notifier's. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.checking;
  }

  /**
   * This node's spec reload went one way or the other (and is in the store): checked now rather
   * than at the next check (after one in progress, which may have read the store before it),
   * since whoever saved the spec is waiting to hear.
   */
  reloaded(): void {
    void (this.checking ?? Promise.resolve()).then(() => this.check());
  }

  /** One check of every rule; concurrent calls share the one in progress. */
  check(now?: number): Promise<void> {
    this.checking ??= this.runCheck(now ?? Date.now())
      .catch((err: Error) => this.log?.error({ err: err.message }, 'alert rules could not be checked (the store could not be read); checking again at the next interval'))
      .finally(() => (this.checking = null));
    return this.checking;
  }

  view(): AlertsView {
    return {
      rules: this.config.rules.map((rule) => {
        const firing = [...this.states.entries()]
          .filter(([key, s]) => key.startsWith(`${rule.name}\u0000`) && s.firing)
          .map(([, s]) => ({ ...subjectOf(s), since: iso(s.since), summary: s.summary }));
        const since = firing.length ? firing.map((f) => f.since).sort()[0]! : null;
        return { name: rule.name, kind: rule.kind, state: firing.length ? ('firing' as const) : ('ok' as const), since, firing };
      }),
      recent: [...this.recent].reverse(),
      ...(this.inputs.alertingLease ? { alerting: { node: this.holder?.node ?? null, self: this.alerting } } : {}),
    };
  }

  /** How long the alerting lease holds without a check renewing it. */
  private get leaseMs(): number {
    return Math.max(3 * this.config.checkEveryMs, 1000);
  }

  /**
   * Takes or renews the alerting lease. A node taking it over from another (that one died, or
   * stopped) sends what started after that node's last renewal: it may not have seen it. What
   * started before, it told.
   */
  private async takeAlerting(now: number): Promise<void> {
    if (!this.inputs.alertingLease) return;
    const lease = await this.inputs.alertingLease(this.leaseMs);
    const before = this.holder;
    this.holder = { node: lease.holder, until: lease.until };
    const was = this.alerting;
    this.alerting = lease.self;
    if (!lease.self || was) return;
    const lastRenewal = before && before.node !== lease.holder ? before.until - this.leaseMs : now;
    this.log?.info({ from: before?.node ?? null }, 'this node sends the alert notices now');
    for (const state of this.states.values()) {
      if (state.firing && state.since >= lastRenewal) {
        state.pending = true;
        state.open = false;
        state.lastFiringNoticeAt = undefined;
      }
    }
  }

  private async runCheck(now: number): Promise<void> {
    await this.takeAlerting(now);
    const metrics = await this.inputs.metrics();
    this.sample(metrics, now);
    for (const rule of this.config.rules) {
      const findings = this.evaluate(rule, metrics, now);
      const seen = new Set<string>();
      for (const f of findings) {
        const key = `${rule.name}\u0000${f.channel ?? ''}\u0000${f.destination ?? ''}\u0000${f.node ?? ''}`;
        seen.add(key);
        this.step(rule, key, f, now);
      }
      // A subject no longer reported (a queue emptied, a channel removed) is no longer firing.
      for (const [key, state] of this.states) {
        if (!key.startsWith(`${rule.name}\u0000`) || seen.has(key) || !state.firing) continue;
        this.step(rule, key, { channel: state.channel, destination: state.destination, node: state.node, active: false, value: 0, threshold: 0, summary: `${subjectText(state)}: no longer reported` }, now);
      }
    }
  }

  /** Moves one subject's state on: the edges, and the cool-down. */
  private step(rule: AlertRule, key: string, f: Finding, now: number): void {
    let state = this.states.get(key);
    if (!state) {
      if (!f.active) return;
      state = { firing: false, since: now, summary: f.summary, channel: f.channel, destination: f.destination, node: f.node, pending: false, open: false };
      this.states.set(key, state);
    }
    if (f.active) {
      if (!state.firing) {
        state.firing = true;
        state.since = now;
        state.pending = true;
      }
      state.summary = f.summary;
      const cooled = state.lastFiringNoticeAt === undefined || now - state.lastFiringNoticeAt >= rule.coolDownMs;
      if (state.pending && cooled) {
        state.pending = false;
        state.lastFiringNoticeAt = now;
        state.open = true;
        this.emit(rule, 'firing', f, state.since, now, true);
      } else if (state.pending && !state.open && state.since === now) {
        // Started again within the cool-down: shown, told when the cool-down is over.
        this.emit(rule, 'firing', f, state.since, now, false);
      }
    } else if (state.firing) {
      state.firing = false;
      state.pending = false;
      state.since = now;
      state.summary = f.summary;
      const told = state.open;
      state.open = false;
      this.emit(rule, 'resolved', f, now, now, told);
    }
  }

  private emit(rule: AlertRule, kind: 'firing' | 'resolved', f: Finding, since: number, now: number, send: boolean): void {
    const summary = kind === 'firing' ? f.summary : `resolved: ${f.summary}`;
    // Another node holds the alerting lease: it sends this one (the states here say it was told).
    send &&= this.alerting;
    this.recent.push({ rule: rule.name, state: kind, at: iso(now), summary, ...subjectOf(f), notified: send });
    if (this.recent.length > RECENT) this.recent.splice(0, this.recent.length - RECENT);
    const line = { rule: rule.name, state: kind, channel: f.channel, destination: f.destination, reloadNode: f.node };
    if (kind === 'firing') this.log?.warn(line, `alert: ${summary}`);
    else this.log?.info(line, `alert: ${summary}`);
    if (!send) return;
    const notice: AlertNotice = {
      rule: rule.name,
      kind: rule.kind,
      state: kind,
      at: iso(now),
      since: iso(since),
      ...subjectOf(f),
      value: f.value,
      threshold: f.threshold,
      summary,
      node: this.holder?.node ?? NODE,
    };
    this.notify(notice).catch((err: Error) => this.log?.error({ rule: rule.name, err: err.message }, 'alert notice could not be delivered'));
  }

  /** Keeps the counts by channel and status for windowed rules, and each channel's last change. */
  private sample(metrics: StoreMetrics, now: number): void {
    const counts = new Map<string, number>();
    const totals = new Map<string, number>();
    for (const m of metrics.messages) {
      // Number(): a database driver may hand counts over as text.
      counts.set(`${m.channel}\u0000${m.status}`, Number(m.count));
      totals.set(m.channel, (totals.get(m.channel) ?? 0) + Number(m.count));
    }
    this.samples.push({ at: now, counts });
    // Keep the newest sample at or before the longest window's start, and everything after it.
    while (this.samples.length > 2 && this.samples[1]!.at <= now - this.keepSamplesMs) this.samples.shift();
    for (const channel of new Set([...totals.keys(), ...this.inputs.channels()])) {
      const total = totals.get(channel) ?? 0;
      const last = this.lastTotals.get(channel);
      if (!last || last.total !== total) this.lastTotals.set(channel, { total, since: now });
    }
  }

  /** How many messages of a channel got a status within the window, from the counters. */
  private countIn(channel: string, status: string, windowMs: number, now: number): number {
    const key = `${channel}\u0000${status}`;
    const current = this.samples[this.samples.length - 1]?.counts.get(key) ?? 0;
    let base = this.samples[0];
    for (const s of this.samples) if (s.at <= now - windowMs) base = s;
    return current - (base?.counts.get(key) ?? 0);
  }

  private evaluate(rule: AlertRule, metrics: StoreMetrics, now: number): Finding[] {
    const wanted = (channel: string, destination?: string) => (!rule.channel || rule.channel === channel) && (!rule.destination || rule.destination === destination);
    switch (rule.kind) {
      case 'errors':
      case 'rejects': {
        const status = rule.kind === 'errors' ? 'error' : 'rejected';
        const word = rule.kind === 'errors' ? 'stored as error' : 'rejected';
        const channels = new Set([...metrics.messages.map((m) => m.channel), ...this.inputs.channels()].filter((c) => wanted(c)));
        return [...channels].map((channel) => {
          const n = this.countIn(channel, status, rule.windowMs!, now);
          return { channel, active: n > rule.over!, value: n, threshold: rule.over!, summary: `channel ${channel}: ${n} message(s) ${word} in the last ${duration(rule.windowMs!)} (alert above ${rule.over})` };
        });
      }
      case 'queue_age':
        return metrics.oldestOpen
          .filter((q) => wanted(q.channel, q.destination))
          .map((q) => {
            const age = Math.max(0, now - Number(q.oldest));
            return { channel: q.channel, destination: q.destination, active: age > rule.olderThanMs!, value: Math.round(age / 1000), threshold: rule.olderThanMs! / 1000, summary: `queue ${q.channel} → ${q.destination}: oldest entry waiting ${duration(age)} (alert above ${duration(rule.olderThanMs!)})` };
          });
      case 'destination_failing':
        // From the store: the attempts of every node (the node that alerts may not send to it).
        return metrics.failing
          .filter((q) => wanted(q.channel, q.destination))
          .map(({ channel, destination, since, failures }) => {
            const age = Math.max(0, now - Number(since));
            return { channel, destination, active: age >= rule.forMs!, value: Math.round(age / 1000), threshold: rule.forMs! / 1000, summary: `destination ${channel} → ${destination}: every attempt failing for ${duration(age)} (${Number(failures)} failed attempt(s); alert at ${duration(rule.forMs!)})` };
          });
      case 'no_messages':
        return [...this.lastTotals.entries()]
          .filter(([channel]) => wanted(channel) && this.inputs.channels().includes(channel))
          .map(([channel, last]) => {
            const quiet = now - last.since;
            return { channel, active: quiet >= rule.forMs!, value: Math.round(quiet / 1000), threshold: rule.forMs! / 1000, summary: `channel ${channel}: no message received for ${duration(quiet)} (alert at ${duration(rule.forMs!)})` };
          });
      case 'dead_letters':
      case 'queue_stopped': {
        const state = rule.kind === 'dead_letters' ? 'dead' : 'stopped';
        const threshold = rule.kind === 'dead_letters' ? rule.over! : 0;
        return metrics.deliveries
          .filter((d) => d.state === state && wanted(d.channel, d.destination))
          .map((d) => ({
            channel: d.channel,
            destination: d.destination,
            active: d.count > threshold,
            value: d.count,
            threshold,
            summary: state === 'dead' ? `queue ${d.channel} → ${d.destination}: ${d.count} dead-lettered entr${d.count === 1 ? 'y' : 'ies'} (alert above ${threshold})` : `queue ${d.channel} → ${d.destination}: stopped, ${d.count} entr${d.count === 1 ? 'y holds' : 'ies hold'} it until replayed or discarded`,
          }));
      }
      case 'reload_rejected':
        // Each live node's last reload, from the store: a rejection on any node is told by the alerting one.
        return metrics.reloads.map((r) =>
          r.outcome === 'rejected'
            ? { node: r.node, active: true, value: 1, threshold: 0, summary: `node ${r.node}: a spec change was rejected; the running version stays: ${r.summary ?? 'see its log'}` }
            : { node: r.node, active: false, value: 0, threshold: 0, summary: `node ${r.node}: the specs reloaded` },
        );
    }
  }
}

/** The subject's fields as a notice and the view carry them. */
function subjectOf(s: { channel?: string; destination?: string; node?: string }): { channel?: string; destination?: string; reload_node?: string } {
  return { ...(s.channel ? { channel: s.channel } : {}), ...(s.destination ? { destination: s.destination } : {}), ...(s.node ? { reload_node: s.node } : {}) };
}

function subjectText(s: { channel?: string; destination?: string; node?: string }): string {
  if (s.channel && s.destination) return `queue ${s.channel} → ${s.destination}`;
  if (s.channel) return `channel ${s.channel}`;
  return s.node ? `node ${s.node}` : 'the specs';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** 90000 → "1m 30s": for summaries. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  const parts: Array<[number, string]> = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const shown = parts.filter(([n]) => n > 0).slice(0, 2);
  return shown.map(([n, u]) => `${n}${u}`).join(' ') || '0s';
}
