import type { Command } from 'commander';
import type { AgentConfig } from './config.js';

/** What main.ts gives a module that adds commands: its command factory, config loader and terminal writers. */
export interface AgentCli {
  /** A new subcommand taking --config and every config key as a flag. */
  withConfig: (name: string, description: string) => Command;
  /** The command's configuration (with what enrolment recorded). */
  config: (options: { config?: string }, command: Command) => AgentConfig;
  /** Writes to stdout / stderr through forTerminal (text from outside cannot move the cursor). */
  out: (text: string) => void;
  errOut: (text: string) => void;
  /** Prints `fedlhs-agent: message` to stderr and exits with `code` (default 1). */
  die: (message: string, code?: number) => never;
  /** A value inside a line, escaped. */
  v: (text: string | number | undefined) => string;
}
