import { userInfo } from 'node:os';
import { FedlhsError, combineStats, computeClinicStats, normalizationFrom, studyFeatureNames, verifyManifestJson, type Normalization, type StudyManifest } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { AgentState } from '../agent-state.js';
import type { LocalData } from '../local-data.js';
import { listKept, readDeployed, verifyKept, writeDeployed, type Deployment } from './local-releases.js';

/** What deploying needs: where releases are kept, the pinned key, and this clinic's data (for local normalisation). */
export interface DeployContext {
  stateDir: string;
  state: AgentState;
  /** The release key pinned at enrolment (PEM). */
  pinnedPem: string;
  /** This clinic's data; needed only for releases normalised with none / local-zscore. */
  data: LocalData | undefined;
  /** Who deploys: `operator:<OS user>` or `auto-policy`. */
  by: string;
  coordinator: string;
  log?: Logger | undefined;
}

/** `operator:<OS user>`, or `operator` where the process has no user name (e.g. an arbitrary uid in a container). */
export function operatorName(): string {
  try {
    return `operator:${userInfo().username}`;
  } catch {
    return 'operator';
  }
}

/**
 * The scaling a release normalised with 'none' or 'local-zscore' needs at this clinic, from its
 * own training split, exactly as LocalData.prepared computes it for training: 'none' leaves
 * values as they are but fills missing ones with the training mean; 'local-zscore' scales with
 * this clinic's training mean and standard deviation.
 */
export async function localNormalization(data: LocalData, manifest: StudyManifest, method: 'none' | 'local-zscore'): Promise<Normalization> {
  const split = await data.require(manifest);
  const names = studyFeatureNames(manifest);
  const stats = combineStats([computeClinicStats(split.train.x, split.train.y, names, 0)]);
  if (method === 'none') return { method: 'zscore', features: stats.features.map((f) => ({ name: f.name, mean: 0, std: 1, impute: f.mean })) };
  return normalizationFrom(stats);
}

/**
 * The deployments of a study that are still "underneath" the current one: each deploy pushes a
 * version, each rollback pops back to the one before. The last element is the current one.
 */
export function deploymentStack(history: readonly Deployment[], studyName: string): Deployment[] {
  const stack: Deployment[] = [];
  for (const d of history) {
    if (d.studyName !== studyName) continue;
    if (d.action === 'rollback') {
      stack.pop();
      // The entry rolled back to replaces the one it restores (same version, its normalisation).
      if (stack.length > 0) stack[stack.length - 1] = d;
      else stack.push(d);
    } else stack.push(d);
  }
  return stack;
}

/**
 * Deploys a kept release after verifying it again with the pinned key: computes this clinic's
 * normalisation when the release needs one, records the step in deployed.json (atomically) and
 * the audit log. A version already deployed is left as it is (returns undefined).
 */
export async function deployRelease(ctx: DeployContext, studyName: string, version: number, action: 'deploy' | 'auto' = 'deploy'): Promise<Deployment | undefined> {
  const kept = verifyKept(ctx.stateDir, studyName, version, ctx.pinnedPem);
  const deployed = readDeployed(ctx.stateDir);
  if (deployed.current[studyName]?.version === version) return undefined;
  const method = kept.descriptor.normalization.method;
  let normalization: Normalization | undefined;
  if (method !== 'federated-zscore') {
    if (ctx.data === undefined) {
      throw new FedlhsError('CONFIG_INVALID', `release ${studyName} v${version} uses ${method} normalisation, computed from this clinic's training data at deploy time: configure data.path and data.format (--data-path, --data-format)`, { details: { key: 'data.path' } });
    }
    const manifest = verifyManifestJson(Buffer.from(kept.files['manifest.json']).toString('utf8'), kept.descriptor.study.manifestSha256);
    normalization = await localNormalization(ctx.data, manifest, method);
  }
  const step: Deployment = { studyName, version, action, at: new Date().toISOString(), by: ctx.by, ...(normalization === undefined ? {} : { normalization: normalization as NonNullable<Deployment['normalization']> }) };
  const previous = deployed.current[studyName];
  deployed.current[studyName] = step;
  deployed.history.push(step);
  writeDeployed(ctx.stateDir, deployed);
  ctx.state.audit({
    event: 'release_deployed', coordinator: ctx.coordinator, studyId: kept.descriptor.study.id, round: kept.descriptor.round, outcome: action === 'auto' ? 'deployed (auto policy)' : 'deployed',
    detail: `release ${studyName} v${version} deployed by ${ctx.by}${previous === undefined ? '' : ` (was v${previous.version})`}`,
    release: { studyName, version, previousVersion: previous?.version, by: ctx.by, normalization: method },
  });
  ctx.log?.info({ event: action === 'auto' ? 'release.auto_deployed' : 'release.deployed', studyName, version, previousVersion: previous?.version, by: ctx.by }, `release ${studyName} v${version} deployed${action === 'auto' ? ' by the auto policy (champion)' : ''}`);
  return step;
}

/**
 * Goes back to the version deployed before the current one, verifying it again; its
 * normalisation is the one it was deployed with. NOT_FOUND when there is nothing to go back to.
 */
export function rollbackRelease(ctx: DeployContext, studyName: string): { from: number; to: Deployment } {
  const deployed = readDeployed(ctx.stateDir);
  const current = deployed.current[studyName];
  if (current === undefined) {
    throw new FedlhsError('NOT_FOUND', `no release of study ${JSON.stringify(studyName)} is deployed, so there is nothing to roll back; see \`fedlhs-agent release list\``, { details: { what: 'release', id: studyName } });
  }
  const stack = deploymentStack(deployed.history, studyName);
  const target = stack[stack.length - 2];
  if (target === undefined) {
    throw new FedlhsError('NOT_FOUND', `release ${studyName} v${current.version} is the first one deployed here: there is no earlier deployment to roll back to (deploy another version with \`fedlhs-agent release deploy ${studyName} <version>\`)`, { details: { what: 'release', id: studyName } });
  }
  const kept = verifyKept(ctx.stateDir, studyName, target.version, ctx.pinnedPem);
  const step: Deployment = { studyName, version: target.version, action: 'rollback', at: new Date().toISOString(), by: ctx.by, ...(target.normalization === undefined ? {} : { normalization: target.normalization }) };
  deployed.current[studyName] = step;
  deployed.history.push(step);
  writeDeployed(ctx.stateDir, deployed);
  ctx.state.audit({
    event: 'release_rolled_back', coordinator: ctx.coordinator, studyId: kept.descriptor.study.id, round: kept.descriptor.round, outcome: 'rolled back',
    detail: `release ${studyName} rolled back from v${current.version} to v${target.version} by ${ctx.by}`,
    release: { studyName, version: target.version, previousVersion: current.version, by: ctx.by },
  });
  ctx.log?.info({ event: 'release.rolled_back', studyName, from: current.version, to: target.version, by: ctx.by }, `release ${studyName} rolled back to v${target.version}`);
  return { from: current.version, to: step };
}

/**
 * The auto policy 'champion': for each study name, deploys the kept version the coordinator's
 * operators alias 'champion' when it is not already deployed. A champion that does not verify
 * or cannot be deployed is logged loudly and left undeployed.
 */
export async function autoDeployChampions(ctx: DeployContext, listed: readonly { studyName: string; version: number; aliases: readonly string[] }[]): Promise<Deployment[]> {
  const keptSet = new Set(listKept(ctx.stateDir).map((k) => `${k.studyName}@${k.version}`));
  const done: Deployment[] = [];
  for (const r of listed) {
    if (!r.aliases.includes('champion') || !keptSet.has(`${r.studyName}@${r.version}`)) continue;
    try {
      const step = await deployRelease(ctx, r.studyName, r.version, 'auto');
      if (step !== undefined) done.push(step);
    } catch (err) {
      ctx.log?.error({ event: 'release.auto_deploy_failed', studyName: r.studyName, version: r.version, err: (err as Error).message }, `the champion release ${r.studyName} v${r.version} was not deployed: ${(err as Error).message}`);
    }
  }
  return done;
}
