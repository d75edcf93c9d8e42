#!/usr/bin/env node
import { enableCompileCache } from 'node:module';
import { exitOnClosedPipe } from './pipes.ts';

// V8's code cache for Custody's own modules and its dependencies (kept in the
// OS temporary folder): a short CLI process spends most of its life compiling.
enableCompileCache();
// zod compiles a parser per object schema with `new Function` on first use: a
// server parses millions of requests and gains, a CLI process parses a handful
// and pays the compilation. zod reads this global before any schema is built.
// (An argument that merely reads `server` costs a one-shot command nothing.)
if (!process.argv.slice(2).includes('server')) (globalThis as { __zod_globalConfig?: { jitless?: boolean } }).__zod_globalConfig = { jitless: true };
const { main } = await import('./main.ts');

exitOnClosedPipe();

const code = await main(process.argv.slice(2));
// Let stdout drain before exiting: a piped `--json` must arrive whole.
process.exitCode = code;
