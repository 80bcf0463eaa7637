import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AgentState } from '../agent-state.js';
import { LocalData } from '../local-data.js';
import { autoDeployChampions, deployRelease, rollbackRelease, type DeployContext } from './deploy.js';
import { loadDeployedRelease, readDeployed } from './local-releases.js';
import { buildRelease, releaseKeyPair, writeKept, writeTestCsv } from './test-support.js';

const key = releaseKeyPair();

function setup(o: { dataRows?: number } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'fedlhs-deploy-'));
  const state = new AgentState(stateDir);
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  let data: LocalData | undefined;
  if (o.dataRows !== undefined) {
    const csv = join(stateDir, 'data.csv');
    writeTestCsv(csv, o.dataRows);
    data = new LocalData({ format: 'flat-table', path: csv, keyColumn: 'record_id', minCohort: 20 });
  }
  const ctx: DeployContext = { stateDir, state, pinnedPem: key.pinned.publicPem, data, by: 'operator:tester', coordinator: 'coord:1', log };
  return { stateDir, state, ctx, lines };
}

const keep = (stateDir: string, version: number, o: { normalization?: 'none' | 'federated-zscore' | 'local-zscore'; aliases?: string[]; studyName?: string } = {}) =>
  writeKept(stateDir, buildRelease({ studyName: o.studyName ?? 'sepsis', version, privateKey: key.privateKey, ...(o.normalization === undefined ? {} : { normalization: o.normalization }), weights: [version, 0, 0, 0] }), { aliases: o.aliases ?? [] });

describe('deploy, rollback and the deployment history', () => {
  it('deploys a kept release after verifying it, records who, and loadDeployedRelease returns it ready to score', async () => {
    const t = setup();
    keep(t.stateDir, 1);
    const step = await deployRelease(t.ctx, 'sepsis', 1);
    expect(step).toMatchObject({ studyName: 'sepsis', version: 1, action: 'deploy', by: 'operator:tester' });
    expect(readDeployed(t.stateDir).current.sepsis?.version).toBe(1);
    const audit = t.state.readAudit().filter((a) => a.event === 'release_deployed');
    expect(audit).toHaveLength(1);
    expect(audit[0]!.release).toMatchObject({ studyName: 'sepsis', version: 1, by: 'operator:tester' });
    const d = loadDeployedRelease(t.stateDir, undefined, key.pinned.publicPem);
    expect(d).toMatchObject({ studyName: 'sepsis', version: 1 });
    expect(Array.from(d.weights)).toEqual([1, 0, 0, 0]);
    expect(d.manifest.name).toBe('sepsis');
    expect(d.modelTopology).toMatchObject({ class_name: 'Sequential' });
    expect(d.normalization?.features.map((f) => f.name)).toEqual(['x1', 'x2', 'x3']);
    // Deploying the same version again changes nothing.
    expect(await deployRelease(t.ctx, 'sepsis', 1)).toBeUndefined();
    expect(readDeployed(t.stateDir).history).toHaveLength(1);
  });

  it('rolls back step by step through the history, and says clearly when there is nothing earlier', async () => {
    const t = setup();
    for (const v of [1, 2, 3]) keep(t.stateDir, v);
    expect(() => rollbackRelease(t.ctx, 'sepsis')).toThrow(/nothing to roll back/);
    for (const v of [1, 2, 3]) await deployRelease(t.ctx, 'sepsis', v);
    expect(rollbackRelease(t.ctx, 'sepsis')).toMatchObject({ from: 3, to: { version: 2, action: 'rollback' } });
    expect(rollbackRelease(t.ctx, 'sepsis')).toMatchObject({ from: 2, to: { version: 1 } });
    expect(() => rollbackRelease(t.ctx, 'sepsis')).toThrow(/v1 is the first one deployed here: there is no earlier deployment/);
    expect(loadDeployedRelease(t.stateDir, 'sepsis', key.pinned.publicPem).version).toBe(1);
    await deployRelease(t.ctx, 'sepsis', 3);
    expect(rollbackRelease(t.ctx, 'sepsis').to.version).toBe(1);
    expect(t.state.readAudit().filter((a) => a.event === 'release_rolled_back')).toHaveLength(3);
  });

  it('refuses to deploy or load a release whose files changed on disk after it was kept', async () => {
    const t = setup();
    const dir = keep(t.stateDir, 1);
    keep(t.stateDir, 2);
    await deployRelease(t.ctx, 'sepsis', 1);
    const weights = readFileSync(join(dir, 'weights.bin'));
    weights[0] = weights[0]! ^ 1;
    writeFileSync(join(dir, 'weights.bin'), weights);
    expect(() => loadDeployedRelease(t.stateDir, 'sepsis', key.pinned.publicPem)).toThrow(/REFUSED: release sepsis v1 .* no longer verifies .*weights\.bin.*changed after they were kept/);
    await deployRelease(t.ctx, 'sepsis', 2);
    expect(() => rollbackRelease(t.ctx, 'sepsis')).toThrow(/no longer verifies/);
    expect(readDeployed(t.stateDir).current.sepsis?.version).toBe(2);
  });

  it('refuses a release checked against another key than the pinned one', async () => {
    const t = setup();
    keep(t.stateDir, 1);
    await expect(deployRelease({ ...t.ctx, pinnedPem: releaseKeyPair().pinned.publicPem }, 'sepsis', 1)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID', details: { why: 'signature' } });
    expect(readDeployed(t.stateDir).current).toEqual({});
  });

  it('deploys only kept releases', async () => {
    const t = setup();
    await expect(deployRelease(t.ctx, 'sepsis', 4)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('is not kept here') });
  });

  it('computes local-zscore normalisation from this clinic\'s training split at deploy time, and needs the data for it', async () => {
    const t = setup({ dataRows: 300 });
    keep(t.stateDir, 1, { normalization: 'local-zscore' });
    await expect(deployRelease({ ...t.ctx, data: undefined }, 'sepsis', 1)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('data.path') });
    const step = await deployRelease(t.ctx, 'sepsis', 1);
    const features = step!.normalization!.features;
    expect(features.map((f) => f.name)).toEqual(['x1', 'x2', 'x3']);
    // Uniform on [-2, 2]: mean near 0, standard deviation near 4 / sqrt(12).
    for (const f of features) {
      expect(Math.abs(f.mean)).toBeLessThan(0.3);
      expect(f.std).toBeGreaterThan(0.95);
      expect(f.std).toBeLessThan(1.35);
    }
    expect(loadDeployedRelease(t.stateDir, 'sepsis', key.pinned.publicPem).normalization).toEqual(step!.normalization);
  });

  it('loadDeployedRelease without a name: NOT_FOUND with the command when none is deployed, INVALID_ARGUMENT naming them when several are', async () => {
    const t = setup();
    expect(() => loadDeployedRelease(t.stateDir, undefined, key.pinned.publicPem)).toThrow(/no release is deployed.*fedlhs-agent release deploy <study> <version>/);
    keep(t.stateDir, 1);
    keep(t.stateDir, 1, { studyName: 'stroke' });
    await deployRelease(t.ctx, 'sepsis', 1);
    await deployRelease(t.ctx, 'stroke', 1);
    expect(() => loadDeployedRelease(t.stateDir, undefined, key.pinned.publicPem)).toThrow(/several releases are deployed \(sepsis, stroke\); name the study/);
    expect(() => loadDeployedRelease(t.stateDir, 'heart', key.pinned.publicPem)).toThrow(/no release of study "heart" is deployed/);
  });

  it('the champion policy deploys the kept version aliased champion, once', async () => {
    const t = setup();
    keep(t.stateDir, 1);
    keep(t.stateDir, 2);
    const listing = [{ studyName: 'sepsis', version: 2, aliases: ['champion'] }, { studyName: 'sepsis', version: 1, aliases: [] }, { studyName: 'sepsis', version: 3, aliases: ['challenger'] }];
    const first = await autoDeployChampions({ ...t.ctx, by: 'auto-policy' }, listing);
    expect(first).toEqual([expect.objectContaining({ version: 2, action: 'auto', by: 'auto-policy' })]);
    expect(t.lines.filter((l) => l.event === 'release.auto_deployed')).toHaveLength(1);
    expect(await autoDeployChampions(t.ctx, listing)).toEqual([]);
    // A champion not kept here (e.g. refused) is not deployed.
    expect(await autoDeployChampions(t.ctx, [{ studyName: 'sepsis', version: 3, aliases: ['champion'] }])).toEqual([]);
    expect(readDeployed(t.stateDir).current.sepsis?.version).toBe(2);
  });

  it('an operator\'s rollback stands: the policy does not deploy the version rolled back from, nor anything until the champion alias moves', async () => {
    const t = setup();
    for (const v of [1, 2, 3]) keep(t.stateDir, v, { aliases: v === 2 ? ['champion'] : [] });
    const auto = { ...t.ctx, by: 'auto-policy' };
    const champion = (v: number) => [{ studyName: 'sepsis', version: v, aliases: ['champion'] }];
    await deployRelease(t.ctx, 'sepsis', 1);
    // The operator deployed v1 by hand while v2 was the champion: held.
    expect(await autoDeployChampions(auto, champion(2))).toEqual([]);
    expect(readDeployed(t.stateDir).current.sepsis?.version).toBe(1);
    const skipped = t.lines.filter((l) => l.event === 'release.auto_deploy_skipped');
    expect(skipped).toEqual([expect.objectContaining({ studyName: 'sepsis', version: 2, reason: expect.stringContaining('deployed v1 by hand') })]);
    expect(skipped[0]!.level).toBe(30); // info
    // The operator deploys the champion, then rolls back: the next polls leave v1 in place, logged once.
    await deployRelease(t.ctx, 'sepsis', 2);
    const back = rollbackRelease(t.ctx, 'sepsis');
    expect(back.autoPolicy).toMatch(/auto-deploy policy will leave sepsis alone: it will not deploy v2 again.*until an operator deploys/);
    for (let i = 0; i < 3; i++) expect(await autoDeployChampions(auto, champion(2))).toEqual([]);
    expect(readDeployed(t.stateDir).history.map((d) => `${d.action}:v${d.version}`)).toEqual(['deploy:v1', 'deploy:v2', 'rollback:v1']);
    expect(t.lines.filter((l) => l.event === 'release.auto_deploy_skipped').map((l) => l.reason)).toEqual([skipped[0]!.reason, expect.stringContaining('rolled back from v2')]);
    // The alias moves to v3: the policy deploys it; moving back to v2 (rolled back from) is still held.
    expect(await autoDeployChampions(auto, champion(3))).toEqual([expect.objectContaining({ version: 3, action: 'auto' })]);
    expect(await autoDeployChampions(auto, champion(2))).toEqual([]);
    expect(readDeployed(t.stateDir).current.sepsis?.version).toBe(3);
    // An operator deploy starts afresh: deploying the champion by hand lets the policy follow the alias again.
    await deployRelease(t.ctx, 'sepsis', 2);
    await deployRelease(t.ctx, 'sepsis', 1);
    expect(await autoDeployChampions(auto, champion(3))).toEqual([expect.objectContaining({ version: 3 })]);
  });

  it('refuses a stored local normalisation that is not usable, naming deployed.json and how to fix it; deploying again repairs it', async () => {
    const t = setup({ dataRows: 300 });
    keep(t.stateDir, 1, { normalization: 'local-zscore' });
    await deployRelease(t.ctx, 'sepsis', 1);
    const path = join(t.stateDir, 'releases', 'deployed.json');
    const good = readFileSync(path, 'utf8');
    const edit = (f: (features: { name: string; mean: number; std: number; impute?: number }[]) => void) => {
      const record = JSON.parse(good) as { current: { sepsis: { normalization: { features: { name: string; mean: number; std: number; impute?: number }[] } } } };
      f(record.current.sepsis.normalization.features);
      // JSON has no Infinity, but JSON.parse reads 1e400 as one: the sentinel 424242 becomes it.
      writeFileSync(path, JSON.stringify(record).replaceAll('424242', '1e400'));
    };
    const cases: [string, (features: { name: string; mean: number; std: number; impute?: number }[]) => void, RegExp][] = [
      ['negative std', (fs) => void (fs[0]!.std = -fs[0]!.std), /x1: standard deviation -[0-9.]+ is not a finite number above 0/],
      ['zero std', (fs) => void (fs[1]!.std = 0), /x2: standard deviation 0 is not a finite number above 0/],
      ['reordered', (fs) => void fs.reverse(), /its features are \["x3","x2","x1"\], the release's \["x1","x2","x3"\]/],
      ['missing feature', (fs) => void fs.pop(), /the release's \["x1","x2","x3"\]/],
    ];
    // Infinite values are refused when deployed.json is parsed, naming the file as well.
    for (const f of [(fs: { mean: number }[]) => void (fs[2]!.mean = 424242), (fs: { impute?: number }[]) => void (fs[0]!.impute = 424242)]) {
      edit(f);
      expect(() => loadDeployedRelease(t.stateDir, 'sepsis', key.pinned.publicPem)).toThrow(`${path} is not a fedlhs deployment record`);
    }
    for (const [what, f, message] of cases) {
      edit(f);
      let err: Error | undefined;
      try {
        loadDeployedRelease(t.stateDir, 'sepsis', key.pinned.publicPem);
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message, what).toMatch(message);
      expect(err?.message, what).toContain(`${path}: the normalisation stored for release sepsis v1 is unusable`);
      expect(err?.message, what).toContain('deploy it again with `fedlhs-agent release deploy sepsis 1`');
    }
    // Deploying the same version again computes it afresh instead of saying it is already deployed.
    edit((fs) => void (fs[0]!.std = -1));
    expect(await deployRelease(t.ctx, 'sepsis', 1)).toMatchObject({ version: 1, action: 'deploy' });
    expect(loadDeployedRelease(t.stateDir, 'sepsis', key.pinned.publicPem).normalization?.features[0]!.std).toBeGreaterThan(0);
  });
});
