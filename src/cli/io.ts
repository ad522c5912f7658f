/** Where a command writes; the real process streams in the CLI, buffers in tests. */
export interface CliIo {
  /** Text, or bytes written exactly as given (an HL7 message in its own character set). */
  stdout(text: string | Uint8Array): void;
  stderr(text: string): void;
  /** True when stdout is a terminal: a person reads it, not a program. */
  stdoutIsTerminal?: boolean;
  cwd: string;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands await it. */
  stopSignal: Promise<string>;
}

export function processIo(): CliIo {
  const stopSignal = new Promise<string>((resolve) => {
    const onSignal = (signal: string) => resolve(signal);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  // A reader that closed the pipe early (`hl7c messages | head`) has what it wanted: stop
  // writing quietly instead of dying on EPIPE with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    });
  }
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    stdoutIsTerminal: process.stdout.isTTY === true,
    cwd: process.cwd(),
    stopSignal,
  };
}
