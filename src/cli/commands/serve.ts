import type { Logger } from '../../../runtime/index.js';
import { startServing } from '../../serve/serve.js';
import type { CliIo } from '../io.js';

export interface ServeArgs {
  specs: string[];
  store: string;
  durability: 'disk' | 'process';
  adminPort?: number;
  watch: boolean;
  /** Where `hl7c build` left compiled channels. */
  buildDir?: string;
  logger: Logger;
}

/** `hl7c serve`: runs the channels until SIGINT/SIGTERM, then stops cleanly. */
export async function serveCommand(args: ServeArgs, io: CliIo): Promise<number> {
  const serving = await startServing({ specs: args.specs, storePath: args.store, durability: args.durability, adminPort: args.adminPort, cwd: io.cwd, logger: args.logger, watch: args.watch, buildDir: args.buildDir });
  for (const [channel, port] of Object.entries(serving.ports())) io.stdout(`channel ${channel} on port ${port}\n`);
  if (serving.adminPort !== undefined) io.stdout(`admin on port ${serving.adminPort} (/health, /metrics)\n`);
  io.stdout(`serving; store ${args.store}\n`);
  const signal = await io.stopSignal;
  args.logger.info({ signal }, 'stopping: no new messages; finishing the ones in flight');
  await serving.close();
  args.logger.info('stopped');
  return 0;
}
