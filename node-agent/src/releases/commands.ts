import type { AgentCli } from '../cli-kit.js';

/** `fedlhs-agent release list | show | deploy | rollback` (being built). */
export function registerReleaseCommands(_cli: AgentCli): void {}
