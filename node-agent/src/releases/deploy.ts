import { userInfo } from 'node:os';
import { FedlhsError, combineStats, computeClinicStats, normalizationFrom, studyFeatureNames, verifyManifestJson, type Normalization, type StudyManifest } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { AgentState } from '../agent-state.js';
import type { LocalData } from '../local-data.js';
import { listKept, normalizationProblems, readDeployed, verifyKept, writeDeployed, type Deployment } from './local-releases.js';

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
/** The kept version of `studyName` aliased 'champion' as last listed (kept.json); the highest when several are. */
export function keptChampion(stateDir: string, studyName: string): number | undefined {
  const versions = listKept(stateDir).filter((k) => k.studyName === studyName && k.kept.aliases.includes('champion')).map((k) => k.version);
  return versions.length === 0 ? undefined : Math.max(...versions);
}

/**
 * Why the champion auto-deploy policy must leave `studyName` alone instead of deploying the
 * version `champion`, or undefined when it may deploy it. An operator's choice stands over the
 * policy: it never deploys a version the operator rolled back from, and after an operator's
 * rollback, or deploy of a version other than the champion, it deploys nothing until the
 * champion alias moves to another version than the one aliased when the operator acted (or an
 * operator deploys again, which starts afresh).
 */
export function autoPolicyHold(history: readonly Deployment[], studyName: string, champion: number): string | undefined {
  let current: number | undefined;
  let operator: Deployment | undefined;
  const rolledBackFrom = new Map<number, Deployment>();
  for (const d of history) {
    if (d.studyName !== studyName) continue;
    if (d.action === 'rollback') {
      if (current !== undefined) rolledBackFrom.set(current, d);
      operator = d;
    } else if (d.action === 'deploy') {
      rolledBackFrom.clear();
      operator = d;
    }
    current = d.version;
  }
  if (operator === undefined) return undefined;
  const from = rolledBackFrom.get(champion);
  if (from !== undefined) return `${from.by} rolled back from v${champion} at ${from.at}; the policy does not deploy it again (deploy it by hand to go back to it)`;
  // Records from before `champion` was kept hold nothing more than the versions rolled back from.
  const aliasedThen = operator.champion;
  if (aliasedThen === undefined || champion !== aliasedThen) return undefined;
  if (operator.action === 'rollback') return `${operator.by} rolled back to v${operator.version} at ${operator.at}; the policy waits until the champion alias moves to another version than v${champion} or an operator deploys`;
  if (operator.version !== champion) return `${operator.by} deployed v${operator.version} by hand at ${operator.at} while v${champion} was the champion; the policy waits until the champion alias moves to another version or an operator deploys`;
  return undefined;
}

export async function deployRelease(ctx: DeployContext, studyName: string, version: number, action: 'deploy' | 'auto' = 'deploy'): Promise<Deployment | undefined> {
  const kept = verifyKept(ctx.stateDir, studyName, version, ctx.pinnedPem);
  const deployed = readDeployed(ctx.stateDir);
  const method = kept.descriptor.normalization.method;
  const manifest = verifyManifestJson(Buffer.from(kept.files['manifest.json']).toString('utf8'), kept.descriptor.study.manifestSha256);
  const names = studyFeatureNames(manifest);
  const same = deployed.current[studyName];
  // Deploying the current version again is a no-op, unless its stored normalisation is unusable
  // (loadDeployedRelease tells the operator to deploy again to compute it afresh).
  const storedUnusable = method !== 'federated-zscore' && same !== undefined && (same.normalization === undefined || normalizationProblems(same.normalization, names).length > 0);
  if (same?.version === version && !storedUnusable) return undefined;
  let normalization: Normalization | undefined;
  if (method !== 'federated-zscore') {
    if (ctx.data === undefined) {
      throw new FedlhsError('CONFIG_INVALID', `release ${studyName} v${version} uses ${method} normalisation, computed from this clinic's training data at deploy time: configure data.path and data.format (--data-path, --data-format)`, { details: { key: 'data.path' } });
    }
    normalization = await localNormalization(ctx.data, manifest, method);
    const problems = normalizationProblems(normalization, names);
    if (problems.length > 0) {
      throw new FedlhsError('NORMALIZATION_IMPOSSIBLE', `release ${studyName} v${version}: this clinic's ${method} normalisation computed from its training split is unusable (${problems.join('; ')}); check the export's values for these features`, { details: { features: normalization.features.filter((f) => problems.some((p) => p.startsWith(`${f.name}:`))).map((f) => f.name) } });
    }
  }
  const champion = action === 'auto' ? version : keptChampion(ctx.stateDir, studyName);
  const step: Deployment = {
    studyName, version, action, at: new Date().toISOString(), by: ctx.by,
    ...(normalization === undefined ? {} : { normalization: normalization as NonNullable<Deployment['normalization']> }),
    ...(champion === undefined ? {} : { champion }),
  };
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
export function rollbackRelease(ctx: DeployContext, studyName: string): { from: number; to: Deployment; autoPolicy: string } {
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
  const champion = keptChampion(ctx.stateDir, studyName);
  const step: Deployment = {
    studyName, version: target.version, action: 'rollback', at: new Date().toISOString(), by: ctx.by,
    ...(target.normalization === undefined ? {} : { normalization: target.normalization }),
    ...(champion === undefined ? {} : { champion }),
  };
  deployed.current[studyName] = step;
  deployed.history.push(step);
  writeDeployed(ctx.stateDir, deployed);
  ctx.state.audit({
    event: 'release_rolled_back', coordinator: ctx.coordinator, studyId: kept.descriptor.study.id, round: kept.descriptor.round, outcome: 'rolled back',
    detail: `release ${studyName} rolled back from v${current.version} to v${target.version} by ${ctx.by}`,
    release: { studyName, version: target.version, previousVersion: current.version, by: ctx.by },
  });
  ctx.log?.info({ event: 'release.rolled_back', studyName, from: current.version, to: target.version, by: ctx.by }, `release ${studyName} rolled back to v${target.version}`);
  // For the operator when releases.autoDeploy is 'champion' (the command prints it then).
  const autoPolicy = `the champion auto-deploy policy will leave ${studyName} alone: it will not deploy v${current.version} again, nor any version while the champion alias stays ${champion === undefined ? 'where it is' : `on v${champion}`}, until an operator deploys a version (\`fedlhs-agent release deploy ${studyName} <version>\`)`;
  return { from: current.version, to: step, autoPolicy };
}

/**
 * The last reason logged per state directory and study: the policy runs at every poll, and
 * says why it holds off once per reason rather than every time.
 */
const skipsSaid = new Map<string, string>();

/**
 * The auto policy 'champion': for each study name, deploys the kept version the coordinator's
 * operators alias 'champion' when it is not already deployed, unless an operator's rollback or
 * deploy holds it off (autoPolicyHold; logged as release.auto_deploy_skipped). A champion that
 * does not verify or cannot be deployed is logged loudly and left undeployed.
 */
export async function autoDeployChampions(ctx: DeployContext, listed: readonly { studyName: string; version: number; aliases: readonly string[] }[]): Promise<Deployment[]> {
  const keptSet = new Set(listKept(ctx.stateDir).map((k) => `${k.studyName}@${k.version}`));
  const done: Deployment[] = [];
  for (const r of listed) {
    if (!r.aliases.includes('champion') || !keptSet.has(`${r.studyName}@${r.version}`)) continue;
    const said = `${ctx.stateDir}\u0000${r.studyName}`;
    try {
      const deployed = readDeployed(ctx.stateDir);
      const hold = deployed.current[r.studyName]?.version === r.version ? undefined : autoPolicyHold(deployed.history, r.studyName, r.version);
      if (hold !== undefined) {
        if (skipsSaid.get(said) !== hold) {
          skipsSaid.set(said, hold);
          ctx.log?.info({ event: 'release.auto_deploy_skipped', studyName: r.studyName, version: r.version, reason: hold }, `the champion release ${r.studyName} v${r.version} was not deployed by the auto policy: ${hold}`);
        }
        continue;
      }
      skipsSaid.delete(said);
      const step = await deployRelease(ctx, r.studyName, r.version, 'auto');
      if (step !== undefined) done.push(step);
    } catch (err) {
      ctx.log?.error({ event: 'release.auto_deploy_failed', studyName: r.studyName, version: r.version, err: (err as Error).message }, `the champion release ${r.studyName} v${r.version} was not deployed: ${(err as Error).message}`);
    }
  }
  return done;
}
