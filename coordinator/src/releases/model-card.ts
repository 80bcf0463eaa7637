import { describeIndex, releasePolicy, studyFeatureNames, type CohortFeature, type ReleaseDescriptor, type StudyManifest } from '@fedlhs/core';

/**
 * The model card of a release (release.json `modelCard` and `features.needs`, and model-card.md):
 * the operator's words from the manifest's release.modelCard, with every field they left out
 * filled from the manifest itself, so a card is never empty.
 */

const codes = (system: string, list: readonly string[]): string => `${system} ${list.length <= 12 ? list.join(', ') : `${list.slice(0, 12).join(', ')} (+${list.length - 12} more)`}`;

/** What one cohort feature needs from a clinic's data, in words. */
function cohortNeed(f: CohortFeature, lookbackDays: number): string {
  switch (f.type) {
    case 'age':
      return `${f.name}: age in years at the index day (from the date of birth)`;
    case 'sex':
      return `${f.name}: 1 if the recorded sex is ${f.value}, else 0`;
    case 'latest':
      return `${f.name}: latest value of ${codes(f.system, f.codes)} in the ${lookbackDays} days before the index day, in ${f.unit}; values outside [${f.range[0]}, ${f.range[1]}] ${f.unit} count as missing`;
    case 'latest-coded':
      return `${f.name}: latest coded result of ${codes(f.system, f.codes)} in the ${lookbackDays} days before the index day: 1 if it is one of ${f.positive.join(', ')}, 0 otherwise, missing if none`;
    case 'condition':
      return `${f.name}: 1 if a condition ${codes(f.system, f.codes)} began before the index day, else 0`;
    case 'count':
      return `${f.name}: number of ${f.kind} events${f.codes === undefined ? '' : ` coded ${codes(f.system ?? 'OTHER', f.codes)}`} in the ${lookbackDays} days before the index day`;
  }
}

/** `features.needs`: one line per model input, in the model's input order. */
export function featureNeeds(m: StudyManifest): string[] {
  const cohort = m.data.cohort;
  if (m.data.featureSpec === 'cohort/v1' && cohort !== undefined) return cohort.features.map((f) => cohortNeed(f, cohort.lookbackDays));
  return studyFeatureNames(m).map((name) => `${name}: numeric column "${name}" of the clinic's flat table (missing values are imputed)`);
}

/** The outcome in words: the cohort's label condition and horizon, or the flat table's label column. */
function outcomeOf(m: StudyManifest): string {
  const label = m.data.cohort?.label;
  if (label !== undefined) return `onset of a condition ${codes(label.condition.system, label.condition.codes)} within ${label.horizonDays} days after the index day`;
  return `the 0/1 outcome in column "${m.data.label}" of the clinic's flat table`;
}

function populationOf(m: StudyManifest): string {
  const cohort = m.data.cohort;
  if (cohort === undefined) return `patients of the clinics that took part in study "${m.name}", as each clinic's flat table defines them`;
  const e = cohort.eligibility;
  const excluded = e.excludeConditions.length > 0 ? `; excluding patients with ${e.excludeConditions.map((c) => codes(c.system, c.codes)).join(' or ')}` : '';
  return `patients aged ${e.minAge} to ${e.maxAge} with a ${describeIndex(cohort.index)} (index day) at the clinics of study "${m.name}"${excluded}`;
}

/**
 * release.json's `modelCard`: the manifest's release.modelCard, every absent field filled from
 * the manifest. Limitations always name the number of sites and carry every selection warning
 * (and `extraLimitations`) after the operator's own.
 */
export function modelCardOf(m: StudyManifest, facts: { sites: number; sitesThatTrained: number; warnings: readonly string[]; extraLimitations?: readonly string[] }): ReleaseDescriptor['modelCard'] {
  const card = releasePolicy(m).modelCard;
  return {
    intendedUse:
      card.intendedUse ??
      `Decision support: an estimate of the risk of ${outcomeOf(m)}, for clinicians of the clinics of study "${m.name}" to weigh alongside their own judgement. It does not make decisions and is not a diagnosis.`,
    outcome: card.outcome ?? outcomeOf(m),
    population: card.population ?? populationOf(m),
    limitations: [
      ...(card.limitations ?? []),
      `Trained on ${m.data.featureSpec} data of ${facts.sitesThatTrained} site(s) (${facts.sites} took part); it may not transfer to other populations or data recording practices.`,
      ...facts.warnings,
      ...(facts.extraLimitations ?? []),
    ],
  };
}

const num = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined ? 'withheld / not available' : x.toFixed(digits));

/** model-card.md: the card and the figures of release.json, for people. */
export function renderModelCard(d: ReleaseDescriptor): string {
  const lines: string[] = [];
  const part = (title: string, p: ReleaseDescriptor['metrics']['validation']): void => {
    lines.push(`### ${title}`, '');
    if (p.pooled === null) lines.push('Pooled: withheld (fewer than the minimum cell count) or not reported.');
    else {
      const i = p.pooled.aucInterval;
      lines.push(`Pooled over the sites that reported (${p.pooled.numExamples} patients): AUC ${num(p.pooled.auc)}${i === null ? '' : ` (95 % CI ${num(i[0])}–${num(i[1])})`}, Brier ${num(p.pooled.brier)}, calibration slope ${num(p.pooled.calibrationSlope, 2)}, intercept ${num(p.pooled.calibrationIntercept, 2)}.`);
    }
    if (p.sites.length > 0) {
      lines.push('', '| site | patients | AUC | 95 % CI | Brier |', '| --- | --- | --- | --- | --- |');
      for (const s of p.sites) {
        const i = s.performance.aucInterval;
        lines.push(`| ${s.site} | ${s.performance.numExamples} | ${num(s.performance.auc)} | ${i === null ? '–' : `${num(i[0])}–${num(i[1])}`} | ${num(s.performance.brier)} |`);
      }
    }
    if (p.withheldSites > 0) lines.push('', `${p.withheldSites} site(s) count only in the pooled figures (small cells).`);
    if (p.sitesWithoutFigures.length > 0) lines.push('', `Sites that sent no figures: ${p.sitesWithoutFigures.join(', ')}.`);
    lines.push('');
  };
  lines.push(
    `# Model card: ${d.study.name}, release ${d.version}`, '',
    `Study ${d.study.id} (manifest ${d.study.manifestSha256}), round ${d.round}, released ${d.createdAt}. Signed by release key ${d.lineage.signer}.`, '',
    ...(d.study.description === '' ? [] : [d.study.description, '']),
    '## Intended use', '', d.modelCard.intendedUse, '',
    '## Outcome', '', d.modelCard.outcome, '',
    '## Population', '', d.modelCard.population, '',
    '## Limitations', '', ...d.modelCard.limitations.map((l) => `- ${l}`), '',
    '## What the model needs from your data', '', ...d.features.needs.map((n) => `- ${n}`), '',
    `Normalisation: ${d.normalization.method}. ${d.normalization.note}`, '',
    '## Risk bands', '', ...d.riskBands.map((b, i) => `- ${b.name}: risk ${i === 0 ? 'from 0' : `from ${d.riskBands[i - 1]!.upTo}`} ${b.upTo === 1 ? 'to 1' : `to below ${b.upTo}`}`), '',
    '## Why this round', '', `${d.selection.rule}: ${d.selection.reason}.`, ...d.selection.warnings.map((w) => `\n**Warning:** ${w}`), '',
    '## Performance', '',
    'Validation figures chose the round; test figures are on patients never used to choose it.', '',
  );
  part('Validation', d.metrics.validation);
  part('Test', d.metrics.test);
  lines.push('## Data', '', `${d.dataSummary.sites} site(s) took part, ${d.dataSummary.sitesThatTrained} trained. ${d.dataSummary.note}`, '');
  if (d.lineage.parent !== null) lines.push('## Lineage', '', `Follows release ${d.lineage.parent.version} (study ${d.lineage.parent.studyId}, round ${d.lineage.parent.round}).`, '');
  return `${lines.join('\n')}\n`;
}
