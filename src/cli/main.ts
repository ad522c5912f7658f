import { processIo } from './io.js';
import { runCli } from './program.js';

// The only place that touches process: everything below returns an exit code.
const code = await runCli(process.argv.slice(2), processIo());
// stdout and stderr to a pipe are written asynchronously: exiting now would cut what is still
// queued (a 4 MB parse piped to `cat` ended at 128 KiB with exit 0). Wait until both are
// flushed; a reader that went away (`| head`) is no error of ours.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exitCode = code;
// Long-running commands have closed their sockets; anything left (signal listeners, a
// keep-alive agent) must not keep us alive.
process.exit();

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve();
    stream.write('', () => resolve());
  });
}
