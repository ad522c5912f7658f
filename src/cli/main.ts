import { processIo } from './io.js';
import { runCli } from './program.js';

// The only place that touches process: everything below returns an exit code.
process.exitCode = await runCli(process.argv.slice(2), processIo());
// Long-running commands have closed their sockets; anything left (signal listeners) must not keep us alive.
process.exit();
