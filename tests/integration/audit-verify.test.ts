// The audit trails an auditor can check (issue 15): after a tiny study, `fedlhs-coordinator audit
// verify` (on SQLite and on PostgreSQL) and `fedlhs-agent audit verify` say the chains are
// intact; after one row of the coordinator's database or one line of the clinic's audit log is
// edited, each names what was edited and exits 1.
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

  it('reports both chains intact, then names an edited contribution row and an edited audit line (exit 1)', async () => {
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
      expect(intact.stdout).toMatch(/^\d+ entries, chain intact, head [0-9a-f]{64}\n$/);
      const json = await runCli(coordinatorMain, [...verifyArgs, '--json'], storeEnv);
      const report = JSON.parse(json.stdout) as { ok: boolean; entries: number };
      // At least: the join token and the study start (admin actions) and the clinic's update.
      expect(report.ok).toBe(true);
      expect(report.entries).toBeGreaterThanOrEqual(3);

      // The clinic's chain.
      const agentIntact = await runCli(agentMain, ['audit', 'verify', '--state-dir', o.stateDir]);
      expect(agentIntact.code, agentIntact.stderr).toBe(0);
      expect(agentIntact.stdout).toMatch(/^\d+ entries, chain intact, head [0-9a-f]{64}\n$/);

      // One edited row: the accepted contribution's size.
      const edit = `UPDATE contributions SET bytes = bytes + 1 WHERE accepted = ${kind === 'postgres' ? 'true' : '1'}`;
      if (database !== undefined) {
        const client = new pg.Client(database.connection);
        await client.connect();
        try {
          await client.query(edit);
        } finally {
          await client.end();
        }
      } else {
        const db = new Database(join(dataDir, 'coordinator.db'));
        db.exec(edit);
        db.close();
      }
      const broken = await runCli(coordinatorMain, verifyArgs, storeEnv);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toMatch(/audit chain broken \(edited\) at seq \d+, contribution "\d+": the contribution row "\d+" was edited/);

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
    } finally {
      await database?.drop();
    }
  });
});
