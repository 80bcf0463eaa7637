/**
 * Command-line plumbing shared by the apps' commander programs, typed structurally so this
 * package does not depend on commander.
 */

/** What `prepareArgv` needs of a command: its name, aliases and subcommands. */
export interface CommandTree {
  name(): string;
  aliases(): string[];
  readonly commands: readonly CommandTree[];
}

const HELP = new Set(['--help', '-h']);

/** The subcommand of `tree` called `token`, if any. */
function child(tree: CommandTree, token: string): CommandTree | undefined {
  return tree.commands.find((c) => c.name() === token || c.aliases().includes(token));
}

/**
 * Rewrites user arguments (without node and the script) so that
 * - options given before the subcommand apply to it (`--config agent.json review` becomes
 *   `review --config agent.json`): the first token naming a top-level command starts the
 *   command path, and what came before it moves to the end;
 * - `--help` / `-h` anywhere before `--` is honoured as help for the command path, even after
 *   flags the command passes through to its configuration (commander stops parsing at the
 *   first unknown option, so `serve --tls-mode plaintext --help` would otherwise start a
 *   server). Help never loads configuration.
 */
export function prepareArgv(program: CommandTree, args: readonly string[]): string[] {
  const end = args.indexOf('--');
  const head = end < 0 ? [...args] : args.slice(0, end);
  const tail = end < 0 ? [] : args.slice(end);
  const help = head.some((a) => HELP.has(a));
  const rest = head.filter((a) => !HELP.has(a));
  const start = rest.findIndex((a) => child(program, a) !== undefined);
  if (start < 0) return [...rest, ...(help ? ['--help'] : []), ...tail];
  const leading = rest.slice(0, start);
  const path: string[] = [];
  let node: CommandTree = program;
  let i = start;
  for (; i < rest.length; i++) {
    const next = child(node, rest[i]!);
    if (next === undefined) break;
    path.push(rest[i]!);
    node = next;
  }
  return [...path, ...(help ? ['--help'] : []), ...rest.slice(i), ...leading, ...tail];
}
