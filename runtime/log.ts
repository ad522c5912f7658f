import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs. Callers log message control ids and types, never field values:
 * patient data must not reach a log by default.
 */
export function createLogger(options: { level?: string; name?: string; destination?: pino.DestinationStream; sync?: boolean } = {}): Logger {
  const level = options.level ?? process.env.HL7C_LOG_LEVEL ?? 'info';
  return pino(
    { level, base: options.name ? { name: options.name } : undefined, timestamp: pino.stdTimeFunctions.isoTime },
    options.destination ?? destination(options.sync ?? true),
  );
}

/**
 * stderr. Asynchronous (sync: false): lines are gathered and written 4 KB at a time, or after
 * a quarter of a second, in the background: a write per line cost a busy receiver a fifth of
 * its throughput. pino flushes what is left when the process exits (not on SIGKILL).
 */
function destination(sync: boolean): pino.DestinationStream {
  return sync ? pino.destination(2) : pino.destination({ dest: 2, sync: false, minLength: 4096, periodicFlush: 250 });
}

export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Warnings that a peer can trigger at will (noise between frames, refused connections) go
 * through this: a few lines, then at most one per interval for each kind, saying how many
 * were left out. The events are still counted by the caller; only the lines are limited.
 */
export class ThrottledLog {
  private readonly kinds = new Map<string, { tokens: number; refilledAt: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly burst = 5,
    private readonly intervalMs = 10_000,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    let state = this.kinds.get(kind);
    if (!state) {
      state = { tokens: this.burst, refilledAt: now, suppressed: 0 };
      this.kinds.set(kind, state);
    }
    if (now - state.refilledAt >= this.intervalMs) {
      state.tokens = Math.min(this.burst, state.tokens + Math.floor((now - state.refilledAt) / this.intervalMs));
      state.refilledAt = now;
    }
    if (state.tokens === 0) {
      state.suppressed++;
      return;
    }
    state.tokens--;
    const suppressed = state.suppressed;
    state.suppressed = 0;
    this.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, suppressed > 0 ? `${message} (${suppressed} more like it not logged)` : message);
  }
}
