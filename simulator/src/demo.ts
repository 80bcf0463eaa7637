/**
 * The README demo: a coordinator and three clinic agents as separate processes on loopback,
 * over real gRPC. Each clinic is enrolled with a one-time join token, its operator reviews and
 * approves the study manifest, the study runs to completion and the per-round federated
 * evaluation is printed.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { terminalWriter } from '@fedlhs/service';
import { learnableManifest, writeLearnableCsv, type ManagedProcess } from '@fedlhs/testing';
import { agentCli, enrolAgent, repoRoot, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions } from './local-network.js';

// What the demo echoes (agent CLI output, study details) is printed through forTerminal.
const out = terminalWriter(process.stdout);
const say = (text: string): void => out(`${text}\n`);

async function main(): Promise<void> {
  const root = join(repoRoot, 'demo-run');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  say(`fedlhs demo — working directory ${root}\n`);

  const clinics = [
    { name: 'clinic-large', rows: 1200, shift: 0 },
    { name: 'clinic-medium', rows: 400, shift: 0.3 },
    { name: 'clinic-small', rows: 120, shift: -0.3 },
  ];
  const coordinator = await startCoordinator({ dataDir: join(root, 'coordinator'), heartbeatIntervalMs: 1000, selectionGraceMs: 500 });
  say(`coordinator up: gRPC 127.0.0.1:${coordinator.grpcPort} (plaintext, loopback only), admin API 127.0.0.1:${coordinator.adminPort}`);
  const agents: ManagedProcess[] = [];
  try {
    const options: AgentOptions[] = [];
    const nodeIds: string[] = [];
    for (const [i, c] of clinics.entries()) {
      const dir = join(root, c.name);
      mkdirSync(dir, { recursive: true });
      const dataPath = join(dir, 'ehr-export.csv');
      writeLearnableCsv(dataPath, { rows: c.rows, seed: 100 + i, shift: c.shift });
      const o: AgentOptions = { name: c.name, stateDir: join(dir, 'state'), dataPath, coordinator: coordinator.address };
      const nodeId = await enrolAgent(coordinator, o);
      nodeIds.push(nodeId);
      say(`${c.name}: ${c.rows} local records, enrolled as ${nodeId}`);
      options.push(o);
      agents.push(startAgent(o));
    }
    const manifest = learnableManifest({ name: 'demo-risk-model', rounds: 5, min: 3, max: 3, quorum: 2 });
    const study = await startStudy(coordinator, manifest);
    say(`\nstudy ${study.id} started (manifest sha256 ${study.manifestSha256})\n`);
    for (const [i, o] of options.entries()) {
      await agents[i]!.waitForMsg(/awaits approval/);
      const review = await agentCli(o, ['review']);
      if (i === 0) say(`what ${o.name}'s operator sees with \`fedlhs-agent review\`:\n${review.stdout}`);
      await agentCli(o, ['approve', study.manifestSha256]);
      say(`${o.name}: operator approved ${study.manifestSha256.slice(0, 12)}…`);
    }
    say('\ntraining…');
    const detail = await waitForStudyEnd(coordinator, study.id);
    say(`\nstudy ${detail.state}, ${detail.lastCommittedRound} rounds committed\n`);
    say(`round  hold-out loss  accuracy  AUC    | AUC per site: ${clinics.map((c) => c.name).join(', ')}`);
    for (let r = 1; r <= detail.lastCommittedRound; r++) {
      const evals = detail.metrics.filter((m) => m.round === r && m.phase === 'evaluation');
      const global = evals.find((m) => m.nodeId === null);
      const perSite = nodeIds.map((id) => evals.find((m) => m.nodeId === id)?.auc?.toFixed(3) ?? '  -  ').join('  ');
      say(`${String(r).padStart(5)}  ${(global?.loss ?? NaN).toFixed(4).padStart(13)}  ${(global?.accuracy ?? NaN).toFixed(3).padStart(8)}  ${(global?.auc ?? NaN).toFixed(3)}  | ${perSite}`);
    }
    const rejected = detail.contributions.filter((c) => !c.accepted);
    say(`\n${detail.contributions.filter((c) => c.accepted).length} updates accepted, ${rejected.length} rejected`);
    const audit = await agentCli(options[2]!, ['status', '--last', '4']);
    say(`\nclinic-small's audit of what left the clinic (\`fedlhs-agent status\`):\n${audit.stdout}`);
    if (detail.state !== 'COMPLETED') process.exitCode = 1;
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await coordinator.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
