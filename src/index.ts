/** hl7c's library API; the CLI is a thin layer over it. */
export * from '../runtime/index.js';
export { readBatchFile, readMessagesFile } from './messages-file.js';
export { runCli } from './cli/program.js';
export type { CliIo } from './cli/io.js';
