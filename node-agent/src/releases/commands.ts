import type { Command } from 'commander';
import type { PublishedPerformance, ReleaseDescriptor } from '@fedlhs/core';
import { trustedReleasePem } from '../release-pin.js';
import { AgentState } from '../agent-state.js';
import type { AgentCli } from '../cli-kit.js';
import type { AgentConfig } from '../config.js';
import { LocalData } from '../local-data.js';
import { deployRelease, deploymentStack, operatorName, rollbackRelease, type DeployContext } from './deploy.js';
import { registerReleaseKeyCommands } from './key-commands.js';
import { STUDY_NAME, listKept, readDeployed, verifyKept } from './local-releases.js';

const fmt = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined ? '—' : x.toFixed(digits));

/** One published figure set on one line: n, cases, AUC with its interval, Brier, calibration. */
export function formatPerformance(p: PublishedPerformance | null): string {
  if (p === null) return 'withheld (fewer than minCellCount patients)';
  const auc = p.auc === null ? 'AUC —' : `AUC ${fmt(p.auc)}${p.aucInterval === null ? '' : ` (95% CI ${fmt(p.aucInterval[0])}–${fmt(p.aucInterval[1])})`}`;
  return `n ${p.numExamples}, cases ${p.positives ?? 'withheld'}, ${auc}, Brier ${fmt(p.brier)}, calibration slope ${fmt(p.calibrationSlope, 2)} intercept ${fmt(p.calibrationIntercept, 2)}`;
}

/** `release show`: the model card, the selection, the figures and what the model needs from this clinic's data. */
export function formatRelease(d: ReleaseDescriptor, v: (t: string | number | undefined) => string, status: string): string {
  const lines: string[] = [];
  lines.push(`release ${v(d.study.name)} v${d.version}  (study ${v(d.study.id)}, round ${d.round}, created ${v(d.createdAt)})`);
  lines.push(`  status           ${status}`);
  lines.push(`  manifest         ${d.study.manifestSha256}`);
  lines.push(`  signed by        ${v(d.lineage.signer)}${d.lineage.parent === null ? '' : `; parent v${d.lineage.parent.version} (study ${v(d.lineage.parent.studyId)}, round ${d.lineage.parent.round})`}`);
  lines.push('', 'model card');
  lines.push(`  intended use     ${v(d.modelCard.intendedUse)}`);
  lines.push(`  outcome          ${v(d.modelCard.outcome)}`);
  lines.push(`  population       ${v(d.modelCard.population)}`);
  for (const l of d.modelCard.limitations) lines.push(`  limitation       ${v(l)}`);
  lines.push('', `selection (${d.selection.rule})`, `  ${v(d.selection.reason)}`);
  for (const w of d.selection.warnings) lines.push(`  WARNING: ${v(w)}`);
  lines.push('', `test figures (patients never used to choose the round; minCellCount ${d.metrics.minCellCount})`);
  lines.push(`  pooled           ${formatPerformance(d.metrics.test.pooled)}`);
  for (const s of d.metrics.test.sites) lines.push(`  ${v(s.site).padEnd(16)} ${formatPerformance(s.performance)}`);
  if (d.metrics.test.withheldSites > 0) lines.push(`  (${d.metrics.test.withheldSites} site(s) withheld: small cells; they count in the pooled figures only)`);
  if (d.metrics.test.sitesWithoutFigures.length > 0) lines.push(`  (no test figures from: ${d.metrics.test.sitesWithoutFigures.map((s) => v(s)).join(', ')})`);
  lines.push(`validation (pooled, used to choose)  ${formatPerformance(d.metrics.validation.pooled)}`);
  lines.push('', `what the model needs from this clinic's data (${d.features.featureSpec}, ${d.features.names.length} features, label ${v(d.features.label)})`);
  for (const n of d.features.needs) lines.push(`  - ${v(n)}`);
  lines.push(`  normalisation    ${d.normalization.method}: ${v(d.normalization.note)}`);
  lines.push(`  risk bands       ${d.riskBands.map((b, i) => `${v(b.name)} ${i === d.riskBands.length - 1 ? '≤' : '<'} ${b.upTo}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

const positiveInt = (text: string): number | undefined => (/^[1-9][0-9]{0,8}$/.test(text) ? Number(text) : undefined);

/** `fedlhs-agent release list | show | deploy | rollback`. */
export function registerReleaseCommands(cli: AgentCli): void {
  registerReleaseKeyCommands(cli);
  const { out, v } = cli;
  const release = cli.withConfig('release', 'model releases kept at this clinic: list, show, deploy, rollback');

  const open = (options: { config?: string }, command: Command): { c: AgentConfig; state: AgentState; pinnedPem: string; coordinator: string } => {
    const c = cli.config(options, command);
    const state = new AgentState(c.stateDir);
    let credential;
    try {
      credential = state.loadCredential();
    } catch (err) {
      cli.die((err as Error).message, 2);
    }
    if (credential === undefined) cli.die(`not enrolled (state dir ${c.stateDir}): releases are verified against the key pinned at enrolment`, 2);
    if (credential.releaseKey === undefined) cli.die('no release key was pinned at enrolment (the coordinator sent none): releases cannot be verified; re-enrol this agent', 2);
    return { c, state, pinnedPem: trustedReleasePem(credential.releaseKey), coordinator: credential.coordinator };
  };
  const studyArg = (name: string): string => (STUDY_NAME.test(name) ? name : cli.die(`${JSON.stringify(name)} is not a study name (lowercase letters, digits, ".", "_", "-")`, 2));
  const versionArg = (text: string): number => positiveInt(text) ?? cli.die(`${JSON.stringify(text)} is not a release version (a whole number from 1)`, 2);
  const sub = (name: string, description: string): Command =>
    release.command(name).description(description).option('--config <file>', 'JSON config file').allowUnknownOption(true).allowExcessArguments(true);

  sub('list', 'the kept versions per study, their aliases, and which one is deployed').action((options: { config?: string }, command: Command) => {
    const { c, state } = open(options, command);
    const kept = listKept(c.stateDir);
    let deployed;
    try {
      deployed = readDeployed(c.stateDir);
    } catch (err) {
      cli.die((err as Error).message, 1);
    }
    // Refusals are not kept, only recorded: the operator sees the latest here too.
    const refused = state.readAudit().filter((a) => a.event === 'release_refused').slice(-5);
    const showRefused = (): void => {
      if (refused.length === 0) return;
      out('\nrefused (latest; the full record is in the audit log):\n');
      for (const a of refused) out(`  ${v(a.time)}  ${v(a.release?.studyName)} v${v(a.release?.version)}  ${v(a.outcome)}: ${v(a.detail)}\n`);
    };
    if (kept.length === 0) {
      out('no releases kept yet; a running agent fetches the releases of studies this clinic approved\n');
      showRefused();
      return;
    }
    let study = '';
    for (const k of kept) {
      if (k.studyName !== study) {
        study = k.studyName;
        const current = deployed.current[study];
        out(`${v(study)}${current === undefined ? '  (none deployed)' : `  (deployed: v${current.version} since ${v(current.at)} by ${v(current.by)})`}\n`);
      }
      const isDeployed = deployed.current[study]?.version === k.version;
      out(`  ${isDeployed ? '*' : ' '} v${String(k.version).padEnd(4)} kept ${v(k.kept.keptAt)}${k.kept.aliases.length === 0 ? '' : `  aliases: ${k.kept.aliases.map((a) => v(a)).join(', ')}`}${isDeployed ? '  DEPLOYED' : ''}\n`);
    }
    showRefused();
  });

  sub('show', 'a release\'s model card, selection, test figures and what it needs from this clinic\'s data (default: the deployed version, else the newest)')
    .argument('<study>', 'study name').argument('[version]', 'version (default: deployed, else newest kept)')
    .action((studyText: string, versionText: string | undefined, options: { config?: string }, command: Command) => {
      const studyName = studyArg(studyText);
      const { c, pinnedPem } = open(options, command);
      // An option in the version's place (`show sepsis --state-dir …`) is a flag, not a version.
      let version = versionText === undefined || versionText.startsWith('-') ? undefined : versionArg(versionText);
      let deployedVersion: number | undefined;
      try {
        deployedVersion = readDeployed(c.stateDir).current[studyName]?.version;
      } catch (err) {
        cli.die((err as Error).message, 1);
      }
      if (version === undefined) {
        const versions = listKept(c.stateDir).filter((k) => k.studyName === studyName).map((k) => k.version);
        version = deployedVersion ?? versions[versions.length - 1] ?? cli.die(`no release of study ${JSON.stringify(studyName)} is kept here; see \`fedlhs-agent release list\``, 1);
      }
      let kept;
      try {
        kept = verifyKept(c.stateDir, studyName, version, pinnedPem);
      } catch (err) {
        cli.die((err as Error).message, 1);
      }
      const status = `verified against the pinned release key${kept.kept.aliases.length === 0 ? '' : `; aliases ${kept.kept.aliases.map((a) => v(a)).join(', ')}`}; ${deployedVersion === version ? 'DEPLOYED' : 'not deployed'}`;
      out(formatRelease(kept.descriptor, v, status));
    });

  sub('deploy', 'deploy a kept, verified release version for scoring at this clinic')
    .argument('<study>', 'study name').argument('<version>', 'version')
    .action(async (studyText: string, versionText: string, options: { config?: string }, command: Command) => {
      const studyName = studyArg(studyText);
      const version = versionArg(versionText);
      const { c, state, pinnedPem, coordinator } = open(options, command);
      const ctx: DeployContext = {
        stateDir: c.stateDir, state, pinnedPem, by: operatorName(), coordinator,
        data: c.data.path === '' ? undefined : new LocalData({ format: c.data.format, path: c.data.path, keyColumn: c.data.keyColumn, minCohort: c.minCohort, encoding: c.data.encoding }),
      };
      try {
        const step = await deployRelease(ctx, studyName, version, 'deploy');
        out(step === undefined ? `release ${studyName} v${version} is already deployed\n` : `deployed release ${studyName} v${version} (verified against the pinned key) by ${v(step.by)}${step.normalization === undefined ? '' : '; this clinic\'s normalisation computed from its training split'}\n`);
      } catch (err) {
        cli.die((err as Error).message, 1);
      } finally {
        state.close();
      }
    });

  sub('rollback', 'go back to the release version deployed before the current one')
    .argument('<study>', 'study name')
    .action((studyText: string, options: { config?: string }, command: Command) => {
      const studyName = studyArg(studyText);
      const { c, state, pinnedPem, coordinator } = open(options, command);
      try {
        const { from, to, autoPolicy } = rollbackRelease({ stateDir: c.stateDir, state, pinnedPem, by: operatorName(), coordinator, data: undefined }, studyName);
        const remaining = deploymentStack(readDeployed(c.stateDir).history, studyName).length - 1;
        out(`rolled back release ${studyName} from v${from} to v${to.version}${remaining === 0 ? ' (no earlier deployment left to roll back to)' : ''}\n`);
        if (c.releases.autoDeploy === 'champion') out(`${autoPolicy}\n`);
      } catch (err) {
        cli.die((err as Error).message, 1);
      } finally {
        state.close();
      }
    });
}
