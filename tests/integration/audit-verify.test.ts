// The audit trails an auditor can check (issue 15): after a tiny study, `fedlhs-coordinator audit
// verify` (on SQLite and on PostgreSQL) and `fedlhs-agent audit verify` say the chains are
// intact; after one row of the coordinator's database or one line of the clinic's audit log is
// edited, each names what was edited and exits 1. A cut tail with a rewritten head passes a plain
// verify (nothing in the database contradicts it) but not one given the head printed earlier.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase, learnableManifest, testPostgresUnavailable, writeLearnableCsv } from '@fedlhs/testing';
import { agentMain, coordinatorMain, enrolAgent, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();
const kinds = ['sqlite', 'postgres'] as const;
const postgresUnavailable = await testPostgresUnavailable();

describe.each(kinds)('audit verify after a tiny study on the %s store', (kind) => {
  if (kind === 'postgres' && postgresUnavailable !== undefined) {
    it('needs PostgreSQL', () => {
      throw postgresUnavailable;
    });
    return;
  }

  it('reports both chains intact, then names an edited contribution row, an edited audit line and, given the kept head, a cut tail (exit 1)', async () => {
    const database = kind === 'postgres' ? await createTestDatabase('audit') : undefined;
    try {
      const storeEnv: NodeJS.ProcessEnv = database === undefined ? {} : { FEDLHS_STORE: 'postgres', FEDLHS_STORE_URL: database.url };
      const dataDir = join(ws.dir(), 'coordinator');
      const c = ws.track(await startCoordinator({ dataDir, env: storeEnv }));
      const dir = join(ws.dir(), 'clinic');
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 120, seed: 7 });
      const o: AgentOptions = { name: 'clinic-a', stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      await enrolAgent(c, o);
      const agent = ws.track(startAgent(o));
      await agent.waitForEvent('agent.connected');
      const study = await startStudy(c, learnableManifest({ name: 'audited', rounds: 1, min: 1, max: 1, quorum: 1 }));
      expect((await waitForStudyEnd(c, study.id)).state).toBe('COMPLETED');
      await agent.stop();
      await c.stop();

      // The coordinator's chain: the store as `serve` was given it (flags and FEDLHS_* variables).
      const verifyArgs = ['audit', 'verify', '--data-dir', dataDir];
      const intact = await runCli(coordinatorMain, verifyArgs, storeEnv);
      expect(intact.code, intact.stderr).toBe(0);
      const keptHead = /^\d+ entries, chain intact, head (\d+:[0-9a-f]{64})\n$/.exec(intact.stdout)?.[1];
      expect(keptHead, intact.stdout).toBeDefined();
      const json = await runCli(coordinatorMain, [...verifyArgs, '--json'], storeEnv);
      const report = JSON.parse(json.stdout) as { ok: boolean; entries: number };
      // At least: the join token and the study start (admin actions) and the clinic's update.
      expect(report.ok).toBe(true);
      expect(report.entries).toBeGreaterThanOrEqual(3);

      // The clinic's chain.
      const agentIntact = await runCli(agentMain, ['audit', 'verify', '--state-dir', o.stateDir]);
      expect(agentIntact.code, agentIntact.stderr).toBe(0);
      const agentKept = /^\d+ entries, chain intact, head (\d+:[0-9a-f]{64})\n$/.exec(agentIntact.stdout)?.[1];
      expect(agentKept, agentIntact.stdout).toBeDefined();

      /** Runs SQL on the coordinator's database behind the store's back. */
      const sql = async (statements: string[]): Promise<unknown[][]> => {
        if (database !== undefined) {
          const client = new pg.Client(database.connection);
          await client.connect();
          try {
            const out: unknown[][] = [];
            for (const st of statements) out.push((await client.query(st)).rows as unknown[]);
            return out;
          } finally {
            await client.end();
          }
        }
        const db = new Database(join(dataDir, 'coordinator.db'));
        try {
          return statements.map((st) => {
            const stmt = db.prepare(st);
            if (stmt.reader) return stmt.all();
            stmt.run();
            return [];
          });
        } finally {
          db.close();
        }
      };

      // One edited row: the accepted contribution's size.
      await sql([`UPDATE contributions SET bytes = bytes + 1 WHERE accepted = ${kind === 'postgres' ? 'true' : '1'}`]);
      const broken = await runCli(coordinatorMain, verifyArgs, storeEnv);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toMatch(/audit chain broken \(edited\) at seq \d+, contribution "\d+": the contribution row "\d+" was edited/);

      // Undone; then a cut tail: the last entry, its audited row, and audit_head set to the entry before.
      await sql([`UPDATE contributions SET bytes = bytes - 1 WHERE accepted = ${kind === 'postgres' ? 'true' : '1'}`]);
      expect((await runCli(coordinatorMain, verifyArgs, storeEnv)).code).toBe(0);
      const [last] = (await sql([`SELECT kind, ref FROM audit_chain ORDER BY seq DESC LIMIT 1`]))[0] as { kind: string; ref: string }[];
      // The study's release (the last thing it wrote), or an admin action or contribution by id.
      const row = {
        admin: `DELETE FROM admin_actions WHERE id = ${Number(last!.ref)}`,
        contribution: `DELETE FROM contributions WHERE id = ${Number(last!.ref)}`,
        release: `DELETE FROM releases WHERE study_name || ' v' || CAST(version AS TEXT) = '${last!.ref.replace(/'/g, "''")}'`,
      }[last!.kind];
      expect(row, `last entry ${JSON.stringify(last)}`).toBeDefined();
      await sql([
        row!,
        `DELETE FROM audit_chain WHERE seq = (SELECT max(seq) FROM audit_chain)`,
        `UPDATE audit_head SET seq = seq - 1, hash = (SELECT hash FROM audit_chain WHERE seq = (SELECT max(seq) FROM audit_chain))`,
      ]);
      const cutPlain = await runCli(coordinatorMain, verifyArgs, storeEnv);
      expect(cutPlain.code, cutPlain.stderr).toBe(0);
      const cut = await runCli(coordinatorMain, [...verifyArgs, '--head', keptHead!], storeEnv);
      expect(cut.code).toBe(1);
      expect(cut.stderr).toMatch(/audit chain broken \(truncated\)/);
      expect(cut.stderr).toContain(`the kept head ${keptHead}`);
      expect((await runCli(coordinatorMain, [...verifyArgs, '--head', 'nonsense'], storeEnv)).code).toBe(2);

      // One edited line: what the clinic says it sent.
      const log = join(o.stateDir, 'audit.jsonl');
      const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
      const sentAt = lines.findIndex((l) => l.includes('"event":"update_sent"'));
      expect(sentAt).toBeGreaterThanOrEqual(0);
      lines[sentAt] = lines[sentAt]!.replace(/"bytes":(\d+)/, (_m, n: string) => `"bytes":${Number(n) - 1}`);
      writeFileSync(log, lines.map((l) => `${l}\n`).join(''));
      const agentBroken = await runCli(agentMain, ['audit', 'verify', '--state-dir', o.stateDir]);
      expect(agentBroken.code).toBe(1);
      expect(agentBroken.stderr).toContain(`audit chain broken (edited) at line ${sentAt + 1}, seq ${sentAt + 1}: line ${sentAt + 1} (seq ${sentAt + 1}) was edited`);

      // The clinic's cut tail: the last line gone and the agent database's head set to the line before.
      const original = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
      original[sentAt] = lines[sentAt]!.replace(/"bytes":(\d+)/, (_m, n: string) => `"bytes":${Number(n) + 1}`);
      writeFileSync(log, original.slice(0, -1).map((l) => `${l}\n`).join(''));
      const agentDb = new Database(join(o.stateDir, 'agent.db'));
      agentDb.prepare(`UPDATE audit_head SET seq = seq - 1, hash = ?`).run((JSON.parse(original.at(-2)!) as { hash: string }).hash);
      agentDb.close();
      const agentCutPlain = await runCli(agentMain, ['audit', 'verify', '--state-dir', o.stateDir]);
      expect(agentCutPlain.code, agentCutPlain.stderr).toBe(0);
      const agentCut = await runCli(agentMain, ['audit', 'verify', '--state-dir', o.stateDir, '--head', agentKept!]);
      expect(agentCut.code).toBe(1);
      expect(agentCut.stderr).toMatch(/audit chain broken \(truncated\)/);
      expect(agentCut.stderr).toContain(`the kept head ${agentKept}`);
    } finally {
      await database?.drop();
    }
  });
});
