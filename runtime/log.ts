import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs. Callers log message control ids and types, never field values:
 * patient data must not reach a log by default.
 */
export function createLogger(options: { level?: string; name?: string; destination?: pino.DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.HL7C_LOG_LEVEL ?? 'info';
  return pino(
    { level, base: options.name ? { name: options.name } : undefined, timestamp: pino.stdTimeFunctions.isoTime },
    options.destination ?? pino.destination(2),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
