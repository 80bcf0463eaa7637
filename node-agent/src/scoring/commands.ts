import type { AgentCli } from '../cli-kit.js';

/** `fedlhs-agent score` (being built). */
export function registerScoringCommands(_cli: AgentCli): void {}
