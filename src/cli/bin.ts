#!/usr/bin/env node
import { main } from './main.ts';

// A closed pipe (`custody … | head`) is the reader's choice, not our error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const code = await main(process.argv.slice(2));
// Let stdout drain before exiting: a piped `--json` must arrive whole.
process.exitCode = code;
