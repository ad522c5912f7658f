import type { Logger } from '../../../runtime/index.js';
import { loadAdminTokens } from '../../serve/admin-tokens.js';
import { startServing } from '../../serve/serve.js';
import type { CliIo } from '../io.js';

export interface ServeArgs {
  specs: string[];
  store: string;
  durability: 'disk' | 'process';
  adminPort?: number;
  /** Where the admin port binds (default 127.0.0.1). */
  adminHost?: string;
  /** A tokens file for the admin API (with HL7C_ADMIN_TOKEN). */
  adminTokens?: string;
  watch: boolean;
  processingBudgetMs?: number;
  /** Where `hl7c build` left compiled channels. */
  buildDir?: string;
  /** The serve config (alerts). */
  config?: string;
  logger: Logger;
}

/**
 * `hl7c serve`: runs the channels until SIGINT/SIGTERM, then stops cleanly (exit 0).
 *
 * A promise rejected with nobody to handle it is a bug that may have left a message or a queue
 * in an unknown state: it is logged, the server stops as for SIGTERM (sockets closed, messages
 * in flight answered, queues' attempts recorded), and the process exits 1 so that a supervisor
 * (systemd, Kubernetes) restarts it; the store makes the restart lose nothing ACKed.
 */
export async function serveCommand(args: ServeArgs, io: CliIo): Promise<number> {
  let fatal: (err: unknown) => void = () => undefined;
  const failed = new Promise<{ err: unknown }>((resolve) => (fatal = (err) => resolve({ err })));
  const onUnhandled = (err: unknown) => fatal(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    const adminTokens = loadAdminTokens(args.adminTokens, process.env, io.cwd);
    const serving = await startServing({
      specs: args.specs,
      storePath: args.store,
      durability: args.durability,
      adminPort: args.adminPort,
      adminHost: args.adminHost,
      adminTokens,
      cwd: io.cwd,
      logger: args.logger,
      watch: args.watch,
      buildDir: args.buildDir,
      processingBudgetMs: args.processingBudgetMs,
      configPath: args.config,
    });
    for (const [channel, port] of Object.entries(serving.ports())) io.stdout(`channel ${channel} on port ${port}\n`);
    if (serving.adminPort !== undefined) io.stdout(`admin on port ${serving.adminPort} (the dashboard at /, /health, /metrics, /api)\n`);
    io.stdout(`serving; store ${args.store}\n`);
    const stop = await Promise.race([io.stopSignal.then((signal) => ({ signal })), failed]);
    if ('err' in stop) {
      const err = stop.err instanceof Error ? stop.err : new Error(String(stop.err));
      args.logger.fatal({ err: err.message, stack: err.stack }, 'unhandled rejection: stopping (exit 1) so that a supervisor restarts hl7c');
    } else args.logger.info({ signal: stop.signal }, 'stopping: no new messages; finishing the ones in flight');
    await serving.close();
    args.logger.info('stopped');
    return 'err' in stop ? 1 : 0;
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
}
