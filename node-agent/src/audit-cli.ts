import type { Command } from 'commander';
import { AgentState } from './agent-state.js';
import { parseKeptHead, verifyAuditBytes, type AuditHead, type AuditLogReport } from './audit-chain.js';
import type { AgentCli } from './cli-kit.js';

/** `audit verify` as one line: "N entries, chain intact, head <hash>" or the first problem. */
export function auditVerifyLine(path: string, r: AuditLogReport): string {
  if (r.ok) {
    const legacy = r.entries - r.chained;
    return `${r.entries} entries, chain intact, head ${r.headSeq}:${r.head}${legacy > 0 ? ` (${legacy} line(s) from before the chain, covered by the SHA-256 its first line records${r.chained === 0 ? ': the chain starts with the next entry' : ''})` : ''}`;
  }
  const p = r.problem!;
  return `${path}: audit chain broken (${p.problem})${p.line === undefined ? '' : ` at line ${p.line}`}${p.seq === undefined ? '' : `, seq ${p.seq}`}: ${p.message}`;
}

/** The log and head of `state` read together (AgentState.auditSnapshot) and checked, with a kept head if given. */
export function verifyAgentAudit(state: AgentState, kept?: AuditHead, between?: () => void): AuditLogReport {
  const { bytes, head, pending } = state.auditSnapshot(between);
  return verifyAuditBytes(bytes, head, kept, pending);
}

/**
 * `fedlhs-agent audit verify [--json] [--head <seq>:<hash>]`: checks audit.jsonl's hash chain (audit-chain.ts) against
 * itself and the head kept in the agent database, and with `--head` that it still holds a head
 * printed earlier and kept elsewhere (a cut tail). Exit 0: intact; 1: the first edited, removed,
 * reordered or cut entry is named. Works offline, beside a running agent.
 */
export function registerAuditCommand(cli: AgentCli): void {
  const group = cli.withConfig('audit', "this clinic's audit log (audit.jsonl: everything that left the clinic), hash-chained");
  group
    .command('verify')
    .description('check the audit log\'s hash chain; exit 1 naming the first edited, removed, reordered or cut entry')
    .option('--config <file>', 'JSON config file')
    .option('--head <seq:hash>', 'a head an earlier verify printed, kept outside this machine: fail unless the log still holds that entry (a cut tail)')
    .option('--json', 'print the report as JSON')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action((options: { config?: string; json?: boolean; head?: string }, command: Command) => {
      let kept: AuditHead | undefined;
      try {
        kept = options.head === undefined ? undefined : parseKeptHead(options.head);
      } catch (err) {
        cli.die((err as Error).message, 2);
      }
      const c = cli.config(options, command);
      const state = new AgentState(c.stateDir);
      let report: AuditLogReport;
      try {
        report = verifyAgentAudit(state, kept);
      } finally {
        state.close();
      }
      if (options.json === true) cli.out(`${JSON.stringify({ path: state.auditPath, ...report })}\n`);
      else if (report.ok) cli.out(`${auditVerifyLine(state.auditPath, report)}\n`);
      else cli.errOut(`${auditVerifyLine(state.auditPath, report)}\n`);
      process.exitCode = report.ok ? 0 : 1;
    });
}
