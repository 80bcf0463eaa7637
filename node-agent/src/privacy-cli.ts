import type { Command } from 'commander';
import { AgentState } from './agent-state.js';
import type { AgentCli } from './cli-kit.js';
import type { AgentConfig } from './config.js';
import { readIdentityKey } from './identity-key.js';
import { identityLine, registerPeersCommands } from './peers-cli.js';
import { PrivacyBudget, fmtEpsilon, holdsBudget } from './privacy-budget.js';

/** One study's line of `fedlhs-agent privacy`. */
export interface StudySpendView {
  studyId: string;
  name: string;
  rounds: number;
  epsilon: number;
  /** Limit minus spent (Infinity: no limit). */
  remaining: number;
}

/** What `fedlhs-agent privacy` shows, from the ledger alone (works offline). */
export interface PrivacyReport {
  delta: number;
  limits: { perStudy: number; lifetime: number };
  studies: StudySpendView[];
  lifetime: { epsilon: number; remaining: number };
}

/** The clinic's spend per study and over its lifetime, from the ledger in `state`. */
export function privacyReport(state: AgentState, c: AgentConfig['privacy']): PrivacyReport {
  const budget = new PrivacyBudget(state, c);
  const names = new Map(state.listManifests().map((m) => [m.studyId, m.name]));
  const ids = [...new Set(state.listPrivacySpends().map((r) => r.studyId))];
  const left = (limit: number, spent: number): number => (limit > 0 ? Math.max(0, limit - spent) : Infinity);
  const studies = ids.map((studyId) => {
    const s = budget.spent(studyId);
    return { studyId, name: names.get(studyId) ?? '?', rounds: s.rounds, epsilon: s.study, remaining: left(c.maxEpsilonPerStudy, s.study) };
  });
  const lifetime = ids.length === 0 ? 0 : budget.spent(ids[0]!).lifetime;
  return { delta: c.delta, limits: { perStudy: c.maxEpsilonPerStudy, lifetime: c.maxEpsilonLifetime }, studies, lifetime: { epsilon: lifetime, remaining: left(c.maxEpsilonLifetime, lifetime) } };
}

/** The report as text for the terminal (values from outside go through `v`). */
export function formatPrivacyReport(r: PrivacyReport, v: AgentCli['v']): string {
  const lim = (x: number): string => (x > 0 ? String(x) : 'none');
  const rem = (x: number): string => (Number.isFinite(x) ? fmtEpsilon(x) : 'no limit');
  const lines = [
    `privacy budget (δ=${r.delta}): per study ${lim(r.limits.perStudy)}, lifetime ${lim(r.limits.lifetime)}${holdsBudget({ maxEpsilonPerStudy: r.limits.perStudy, maxEpsilonLifetime: r.limits.lifetime, delta: r.delta, trustCoordinatorNoise: false }) ? '' : ' (no budget held: studies are not declined on privacy)'}`,
    `lifetime: spent ε=${fmtEpsilon(r.lifetime.epsilon)}, remaining ${rem(r.lifetime.remaining)}`,
  ];
  if (r.studies.length === 0) lines.push('no differentially private round recorded yet');
  for (const s of r.studies) lines.push(`  study ${v(s.studyId)} (${v(s.name)}): ${s.rounds} round(s), spent ε=${fmtEpsilon(s.epsilon)}, remaining ${rem(s.remaining)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Adds `fedlhs-agent privacy`: spent and remaining per study and over the lifetime, from the
 * local ledger, and this clinic's secure-aggregation identity key fingerprint; and the `peers`
 * commands (peers-cli.ts), registered here so main.ts keeps one privacy entry point.
 */
export function registerPrivacyCommand(cli: AgentCli): void {
  registerPeersCommands(cli);
  cli.withConfig('privacy', "this clinic's differential-privacy spend per study and over its lifetime, and what remains of its budget (from the local ledger; works offline)")
    .option('--json', 'print the report as JSON')
    .action((options: { config?: string; json?: boolean }, command: Command) => {
      const c = cli.config(options, command);
      const state = new AgentState(c.stateDir);
      try {
        const report = privacyReport(state, c.privacy);
        // The identity key is shown, never created, here; one that cannot be read is said, loudly, without hiding the budget.
        let identity: { fingerprint: string; path: string } | { error: string } | null;
        let line: string;
        try {
          const key = readIdentityKey(state.dir);
          identity = key === undefined ? null : { fingerprint: key.fingerprint, path: key.path };
          line = identityLine(key);
        } catch (err) {
          identity = { error: (err as Error).message };
          line = `this clinic's secure-aggregation identity key cannot be used: ${(err as Error).message}`;
          cli.errOut(`warning: ${line}\n`);
        }
        // JSON cannot hold Infinity: an unlimited remaining budget is null there.
        cli.out(options.json === true ? `${JSON.stringify({ ...report, identity }, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? null : x), 2)}\n` : `${formatPrivacyReport(report, cli.v)}${line}\n`);
      } finally {
        state.close();
      }
    });
}
