import { Command, Option } from 'commander';
import type { CommandOutput, GlobalOptions, Streams } from './output.ts';

/** The action a command runs, once the arguments are parsed. */
export type Action = (g: GlobalOptions) => Promise<CommandOutput>;

/** Commands register an action through this sink rather than printing themselves, so output and exit codes stay uniform. */
export interface Registrar {
  program: Command;
  streams: Streams;
  /** A command that only groups subcommands (`custody artifact …`). */
  group(name: string, description: string): Command;
  /** Defines a runnable subcommand with the shared options, help layout and an example. */
  command(parent: Command, spec: string, description: string, example: string): Command;
  run(action: Action): void;
}

/**
 * The options every command accepts. They are declared on each command (not only
 * on the program) so they work after the subcommand too, while `--version` stays
 * free for `artifact add --version`.
 */
export function addGlobalOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--home <dir>', 'workspace directory (default: $CUSTODY_HOME or ./.custody)'))
    .addOption(new Option('--as <identity>', 'act as this identity (local mode)'))
    .addOption(new Option('--server <url>', 'run against a Custody server (default: $CUSTODY_SERVER); the token comes from $CUSTODY_TOKEN'))
    .addOption(new Option('--json', 'print one JSON object on stdout'))
    .addOption(new Option('--debug', 'print stack traces on errors'));
}

export function newProgram(version: string, streams: Streams): Command {
  const program = new Command('custody')
    .description('Custody: policy-gated, signed and audited artifact promotion')
    .version(version, '-V, --version')
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .configureHelp({ sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => streams.stdout.write(s),
      writeErr: (s) => streams.stderr.write(s),
      outputError: () => undefined,
    })
    .exitOverride();
  addGlobalOptions(program);
  return program;
}
