import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { forTerminal } from '@fedlhs/service';
import { loadCoordinatorConfig } from '../config.js';
import { postgresUrlAuditSource, sqliteAuditSource, type AuditSource } from './sources.js';
import { auditReportLine, parseKeptHead, verifyAuditChain, type KeptHead } from './verify.js';

interface AuditVerifyOptions {
  config?: string;
  dataDir?: string;
  store?: string;
  storeUrl?: string;
  json?: boolean;
  head?: string;
}

/** Where the store is: the serve config file when given, else flags and the FEDLHS_* environment. */
function storeOf(o: AuditVerifyOptions, env: NodeJS.ProcessEnv): { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string } {
  if (o.config !== undefined) {
    const c = loadCoordinatorConfig({ file: o.config, args: [] });
    return c.store.kind === 'postgres' ? { kind: 'postgres', url: c.store.url } : { kind: 'sqlite', path: join(c.dataDir, 'coordinator.db') };
  }
  const kind = o.store ?? env.FEDLHS_STORE ?? 'sqlite';
  if (kind === 'postgres') {
    const url = o.storeUrl ?? env.FEDLHS_STORE_URL ?? '';
    if (!/^postgres(ql)?:\/\//i.test(url)) throw new Error('--store postgres needs --store-url (or FEDLHS_STORE_URL) set to a postgres:// URL');
    return { kind, url };
  }
  if (kind !== 'sqlite') throw new Error(`--store must be sqlite or postgres, not ${JSON.stringify(kind)}`);
  return { kind, path: join(o.dataDir ?? env.FEDLHS_DATA_DIR ?? './.fedlhs/coordinator', 'coordinator.db') };
}

/**
 * `fedlhs-coordinator audit verify`: reads the store's database directly (read-only; beside a
 * running coordinator too, in one snapshot) and checks the audit chain (audit/verify.ts), and
 * with `--head` that it still holds a head printed earlier. Exit 0: intact; 1: the first edited,
 * removed or reordered entry or row is named; 2: it could not be checked.
 */
export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('the hash-chained audit trail (admin actions, contributions, releases and alias moves, node revocations)')
    .command('verify')
    .description('recompute the audit chain and every audited row\'s digest; exit 1 naming the first edited, removed or reordered entry')
    .option('--config <file>', 'the JSON config file the coordinator serves with (for store.kind, store.url, dataDir)')
    .option('--data-dir <dir>', 'coordinator data directory (SQLite store; env FEDLHS_DATA_DIR)')
    .option('--store <kind>', 'sqlite or postgres (env FEDLHS_STORE)')
    .option('--store-url <url>', 'PostgreSQL URL (env FEDLHS_STORE_URL, which keeps the password out of ps)')
    .option('--head <seq:hash>', 'a head an earlier verify printed, kept outside the database: fail unless the chain still holds that entry (a cut tail)')
    .option('--json', 'print the report as JSON')
    .action(async (o: AuditVerifyOptions) => {
      const fail = (message: string, code: number): never => {
        process.stderr.write(`fedlhs-coordinator: ${forTerminal(message, { newlines: true })}\n`);
        process.exit(code);
      };
      let source: AuditSource;
      let kept: KeptHead | undefined;
      try {
        kept = o.head === undefined ? undefined : parseKeptHead(o.head);
      } catch (err) {
        return fail((err as Error).message, 2);
      }
      try {
        const where = storeOf(o, process.env);
        if (where.kind === 'sqlite' && !existsSync(where.path)) fail(`no coordinator database at ${where.path}`, 2);
        source = where.kind === 'sqlite' ? sqliteAuditSource(where.path) : postgresUrlAuditSource(where.url);
      } catch (err) {
        return fail(`cannot open the store: ${(err as Error).message}`, 2);
      }
      let report;
      try {
        report = await verifyAuditChain(source, kept === undefined ? {} : { kept });
      } catch (err) {
        return fail(`cannot read the audit chain: ${(err as Error).message}`, 2);
      } finally {
        await source.close().catch(() => undefined);
      }
      if (o.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
      else (report.ok ? process.stdout : process.stderr).write(`${forTerminal(auditReportLine(report))}\n`);
      process.exit(report.ok ? 0 : report.problem?.problem === 'not_ready' ? 2 : 1);
    });
}
