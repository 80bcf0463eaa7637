import { join } from 'node:path';
import type { Command } from 'commander';
import { isoToDay, type IndexRule } from '@fedlhs/ehr';
import { initBackend } from '@fedlhs/model';
import { trustedReleasePem } from '../release-pin.js';
import { AgentState } from '../agent-state.js';
import type { AgentCli } from '../cli-kit.js';
import { loadDeployedRelease, type DeployedRelease } from '../releases/local-releases.js';
import { releaseName, writeScoreFiles } from './outputs.js';
import { scoreExport, type ScoredExport } from './pipeline.js';

/** The pinned release key (PEM) of this agent's enrolment: what every deployed release is verified against. */
export function pinnedReleaseKey(stateDir: string): { pem: string } | { error: string } {
  const state = new AgentState(stateDir);
  try {
    const credential = state.loadCredential();
    if (credential === undefined) return { error: `not enrolled (state dir ${stateDir}): there is no pinned release key, so no release can be verified` };
    if (credential.releaseKey === undefined) return { error: 'this agent pinned no release key at enrolment (the coordinator sent none): its releases cannot be verified, so none is scored' };
    return { pem: trustedReleasePem(credential.releaseKey) };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    state.close();
  }
}

/** `--index-date YYYY-MM-DD` as an index rule; undefined for a date that is not one. */
export function parseIndexDate(text: string): IndexRule | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return undefined;
  const day = isoToDay(text);
  // Date.parse rolls 2021-02-30 over to March: a date must read back as itself.
  if (day === undefined || new Date(day * 86_400_000).toISOString().slice(0, 10) !== text) return undefined;
  return { kind: 'date', day };
}

/** The terminal summary of a scoring run: counts only, never a patient. */
export function scoreSummary(scored: ScoredExport, index: string, paths: { csv: string; ndjson: string }): string {
  const { features, scores, release } = scored;
  const lines = [`scored ${scores.length} ${scores.length === 1 ? 'patient' : 'patients'} with ${releaseName(release)} (index: ${index})`];
  const bands = new Map<string, number>(release.descriptor.riskBands.map((b) => [b.name, 0]));
  for (const s of scores) bands.set(s.band, (bands.get(s.band) ?? 0) + 1);
  lines.push(`  by band          ${[...bands].map(([b, n]) => `${b} ${n}`).join(', ')}`);
  const excluded = Object.entries(features.excluded).sort(([a], [b]) => (a < b ? -1 : 1));
  lines.push(`  not scored       ${excluded.length === 0 ? 'none' : excluded.map(([why, n]) => `${why}: ${n}`).join('; ')}`);
  const units = features.unitMismatch;
  lines.push(
    `  unit mismatches  ${units.length === 0 ? 'none' : `${units.map((u) => `${u.feature} in ${u.unit}: ${u.count}`).join('; ')} (those values were dropped, not converted: the feature is missing for them)`}`,
  );
  for (const w of features.warnings) lines.push(`  warning: ${w}`);
  lines.push(`  wrote            ${paths.csv}`, `                   ${paths.ndjson}`, '  (identifiers stay in these local files; nothing was sent anywhere)');
  return `${lines.join('\n')}\n`;
}

/** `fedlhs-agent score`: the clinic's current export scored with the deployed release, written locally. */
export function registerScoringCommands(cli: AgentCli): void {
  cli
    .withConfig('score', "score this clinic's current export with the deployed release; writes scores.csv and FHIR RiskAssessment ndjson locally (nothing is sent)")
    .option('--study <name>', 'the study whose deployed release to use (needed when several are deployed)')
    .option('--index-date <YYYY-MM-DD>', 'one index date for every patient (default: each patient\'s latest qualifying encounter)')
    .option('--out <dir>', 'output directory (default: <state dir>/scores/<study>-v<version>)')
    .action(async (options: { config?: string; study?: string; indexDate?: string; out?: string }, command: Command) => {
      const c = cli.config(options, command);
      // Each patient's latest qualifying visit up to today (a visit dated later has not happened).
      let index: IndexRule = { kind: 'latest', asOf: Math.floor(Date.now() / 86_400_000) };
      if (options.indexDate !== undefined) {
        const parsed = parseIndexDate(options.indexDate);
        if (parsed === undefined) cli.die(`--index-date: ${JSON.stringify(options.indexDate)} is not a date (YYYY-MM-DD)`, 2);
        index = parsed;
      }
      if (c.data.path === '') cli.die('no local data configured: set data.path (--data-path) and data.format (--data-format)', 2);
      const key = pinnedReleaseKey(c.stateDir);
      if ('error' in key) cli.die(key.error, 2);
      let release: DeployedRelease;
      try {
        release = loadDeployedRelease(c.stateDir, options.study, key.pem);
      } catch (err) {
        cli.die((err as Error).message, 2);
      }
      await initBackend(c.backend);
      let scored: ScoredExport;
      try {
        scored = await scoreExport(release, { format: c.data.format, path: c.data.path, keyColumn: c.data.keyColumn, encoding: c.data.encoding }, index);
      } catch (err) {
        cli.die(`cannot score with ${releaseName(release)}: ${(err as Error).message}`);
      }
      const dir = options.out ?? join(c.stateDir, 'scores', `${release.studyName}-v${release.version}`);
      const paths = writeScoreFiles(dir, release, scored.scores, c.data.format);
      const indexText = index.kind === 'date' ? options.indexDate! : release.descriptor.features.featureSpec === 'flat-table/v1' ? 'none (flat table)' : "each patient's latest qualifying encounter";
      cli.out(scoreSummary(scored, indexText, paths));
    });
}
