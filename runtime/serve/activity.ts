/**
 * What this node saw, kept in memory for the admin API, /health and /metrics: per channel the
 * last message time, messages per minute over the last hour (and how many were answered with an
 * error or a rejection), the time from receipt to ACK; and the outcome of spec reloads. It is
 * this process's view (a restart starts it afresh; each node of a PostgreSQL store has its
 * own): the store keeps the counts that must survive.
 */

/** Upper bounds (seconds) of the ACK latency histogram's buckets. */
export const ACK_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const MINUTE = 60_000;
/** Minutes of per-minute counts kept. */
const MINUTES = 60;

/** Message outcomes that mean the sender was answered with an error or a rejection. */
const PROBLEM_STATUSES = new Set(['rejected', 'error', 'not_stored']);

interface ChannelActivity {
  lastMessageAt: number | null;
  /** Minute number (ms / 60000) → received, problems. */
  minutes: Map<number, { received: number; problems: number }>;
}

export interface ReloadOutcome {
  at: number;
  outcome: 'applied' | 'rejected';
  /** For a rejected reload: the first error, `file:line:col: …`. */
  error?: string;
}

/** Something an operator or an alert would want to know about, as it happens. */
export interface ServeEvent {
  kind: 'reload-applied' | 'reload-rejected' | 'config-applied' | 'config-rejected' | 'replay' | 'discard' | 'pause' | 'resume' | 'auth-refused';
  at: number;
  channel?: string;
  destination?: string;
  /** Never patient data. */
  summary: string;
}

export type AckListener = (channel: string, seconds: number) => void;
export type EventListener = (event: ServeEvent) => void;

export class ServeActivity {
  private readonly channels = new Map<string, ChannelActivity>();
  private readonly ackListeners: AckListener[] = [];
  private readonly eventListeners: EventListener[] = [];
  readonly reloads = { applied: 0, rejected: 0, last: null as ReloadOutcome | null };
  /** Channel → MSH-12 → messages whose version is not the one the channel's spec states. */
  readonly otherVersions = new Map<string, Map<string, number>>();
  /** Changes to the serve config (alert rules) taken or refused since start. */
  readonly configReloads = { applied: 0, rejected: 0, last: null as ReloadOutcome | null };

  private of(channel: string): ChannelActivity {
    let a = this.channels.get(channel);
    if (!a) this.channels.set(channel, (a = { lastMessageAt: null, minutes: new Map() }));
    return a;
  }

  /** A message was answered (`status` is its outcome, `not_stored` when the store failed). */
  received(channel: string, status: string, at: number, ackSeconds?: number): void {
    const a = this.of(channel);
    a.lastMessageAt = at;
    const minute = Math.floor(at / MINUTE);
    const m = a.minutes.get(minute) ?? { received: 0, problems: 0 };
    m.received++;
    if (PROBLEM_STATUSES.has(status)) m.problems++;
    a.minutes.set(minute, m);
    if (a.minutes.size > MINUTES + 1) for (const k of a.minutes.keys()) if (k <= minute - MINUTES) a.minutes.delete(k);
    if (ackSeconds !== undefined) for (const l of this.ackListeners) l(channel, ackSeconds);
  }

  lastMessageAt(channel: string): number | null {
    return this.channels.get(channel)?.lastMessageAt ?? null;
  }

  /** Messages received per minute over the last hour, oldest first (the current minute last). */
  perMinute(channel: string, now = Date.now()): number[] {
    const a = this.channels.get(channel);
    const current = Math.floor(now / MINUTE);
    return Array.from({ length: MINUTES }, (_, i) => a?.minutes.get(current - MINUTES + 1 + i)?.received ?? 0);
  }

  /** Messages answered with an error or a rejection within the last `minutes` minutes. */
  recentProblems(channel: string, minutes: number, now = Date.now()): number {
    const a = this.channels.get(channel);
    if (!a) return 0;
    const current = Math.floor(now / MINUTE);
    let n = 0;
    for (const [k, m] of a.minutes) if (k > current - minutes) n += m.problems;
    return n;
  }

  /** A message of HL7 version `version` (MSH-12) came to a channel whose spec states another; returns the count so far. */
  otherVersion(channel: string, version: string): number {
    let byVersion = this.otherVersions.get(channel);
    if (!byVersion) this.otherVersions.set(channel, (byVersion = new Map()));
    const n = (byVersion.get(version) ?? 0) + 1;
    byVersion.set(version, n);
    return n;
  }

  reload(outcome: ReloadOutcome): void {
    this.reloads[outcome.outcome]++;
    this.reloads.last = outcome;
    this.emit({ kind: outcome.outcome === 'applied' ? 'reload-applied' : 'reload-rejected', at: outcome.at, summary: outcome.outcome === 'applied' ? 'spec change applied' : `spec change rejected: ${outcome.error ?? 'see the log'}` });
  }

  /** A changed serve config was applied, or refused (the rules in force stay). */
  configReload(outcome: ReloadOutcome): void {
    this.configReloads[outcome.outcome]++;
    this.configReloads.last = outcome;
    this.emit({
      kind: outcome.outcome === 'applied' ? 'config-applied' : 'config-rejected',
      at: outcome.at,
      summary: outcome.outcome === 'applied' ? 'serve config change applied' : `serve config change rejected: ${outcome.error ?? 'see the log'}`,
    });
  }

  onAck(listener: AckListener): void {
    this.ackListeners.push(listener);
  }

  /** Told of every ServeEvent (the alert engine listens here). Returns a function that stops it. */
  onEvent(listener: EventListener): () => void {
    this.eventListeners.push(listener);
    return () => {
      const i = this.eventListeners.indexOf(listener);
      if (i >= 0) this.eventListeners.splice(i, 1);
    };
  }

  emit(event: ServeEvent): void {
    for (const l of this.eventListeners) {
      try {
        l(event);
      } catch {
        // A listener's bug must not break what emitted the event (a reload, a replay).
      }
    }
  }
}
