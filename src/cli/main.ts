import { CommanderError, type Command } from 'commander';
import { CustodyError } from '../core/errors.ts';
import { registerArtifact } from './commands/artifact.ts';
import { registerAudit } from './commands/audit.ts';
import { registerDemo } from './commands/demo.ts';
import { registerException } from './commands/exception.ts';
import { registerInit } from './commands/init.ts';
import { registerPolicy } from './commands/policy.ts';
import { registerPromote } from './commands/promote.ts';
import { registerKey } from './commands/key.ts';
import { registerServer } from './commands/server.ts';
import { registerSign } from './commands/sign.ts';
import { registerToken } from './commands/token.ts';
import { registerVerify } from './commands/verify.ts';
import { registerWhoami } from './commands/whoami.ts';
import { emit, emitError, type GlobalOptions, type Streams } from './output.ts';
import { addGlobalOptions, newProgram, type Action, type Registrar } from './program.ts';
import { VERSION } from './version.ts';
import { startedAs } from '../adapters/module-url.ts';

const REGISTER = [
  registerInit,
  registerArtifact,
  registerKey,
  registerSign,
  registerVerify,
  registerPolicy,
  registerException,
  registerPromote,
  registerToken,
  registerWhoami,
  registerAudit,
  registerServer,
  registerDemo,
];

export interface Cli {
  program: Command;
  pending: () => { action: Action; cmd: Command } | undefined;
}

/** Builds the whole command tree; `main` parses with it, and tests walk it. */
export function buildCli(streams: Streams): Cli {
  const program = newProgram(VERSION, streams);
  let pending: { action: Action; cmd: Command } | undefined;
  let current: Command = program;
  const registrar: Registrar = {
    program,
    streams,
    group(name, description) {
      return program.command(name).description(description).exitOverride();
    },
    command(parent, spec, description, example) {
      const cmd = addGlobalOptions(parent.command(spec))
        .description(description)
        .addHelpText('after', `\nExample:\n  ${example.split('\n').join('\n  ')}\n`)
        .exitOverride();
      cmd.hook('preAction', (_this, actionCmd) => {
        current = actionCmd;
      });
      return cmd;
    },
    run(action) {
      pending = { action, cmd: current };
    },
  };
  for (const register of REGISTER) register(registrar);
  return { program, pending: () => pending };
}

export async function main(argv: readonly string[], streams: Streams = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { program, pending: getPending } = buildCli(streams);
  let pending: { action: Action; cmd: Command } | undefined;
  let options: GlobalOptions | undefined;
  try {
    await program.parseAsync([...argv], { from: 'user' });
    pending = getPending();
    if (!pending) {
      program.outputHelp();
      return 2;
    }
    const g = pending.cmd.optsWithGlobals<GlobalOptions>();
    options = g;
    // Which start-up path ran (snapshot, bundle or sources) is the first question when a command is slow.
    if (g.debug === true) streams.stderr.write(`debug: custody ${VERSION} on Node ${process.version}, started from the ${startedAs(import.meta.url)}\n`);
    return emit(await pending.action(g), g, streams);
  } catch (e) {
    pending ??= getPending();
    const g = options ?? (pending ? pending.cmd.optsWithGlobals<GlobalOptions>() : rawGlobals(argv));
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      const message = e.message.replace(/^error: /, '');
      return emitError(new CustodyError('USAGE', message, { hint: 'see `custody --help` or `custody <command> --help`' }), g, streams);
    }
    return emitError(e, g, streams);
  }
}

/** When parsing failed, commander has no options for us: read the two that shape error output. */
function rawGlobals(argv: readonly string[]): GlobalOptions {
  return { json: argv.includes('--json'), debug: argv.includes('--debug') };
}
