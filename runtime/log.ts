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
