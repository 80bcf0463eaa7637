import { combineStats, publishPerformance, type ClinicStats, type Normalization, type Performance, type PublishedPerformance, type ReleaseDescriptor, type StudyManifest } from '@fedlhs/core';
import { FedlhsError } from '@fedlhs/core';
import { withheldFigures } from '../disclosure.js';
import type { MetricRecord, StatisticsRecord } from '../store.js';

/**
 * The figures of release.json from the stored rows of the released round: the validation and
 * test parts (per site and pooled, small cells withheld), the data summary and the
 * normalisation. Pure: the builder reads the rows.
 */

type Row = MetricRecord & { round: number };
type Part = ReleaseDescriptor['metrics']['validation'];

function parsePerformance(json: string, where: string): Performance {
  try {
    return JSON.parse(json) as Performance;
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', `the stored performance of ${where} is not JSON`, { cause: err });
  }
}

/** A global row without performance JSON: what its metrics say, the rest not available. */
function fromMetrics(row: MetricRecord): PublishedPerformance {
  return { numExamples: row.numExamples, positives: null, auc: row.auc ?? null, aucInterval: null, brier: null, calibrationSlope: null, calibrationIntercept: null, calibration: [] };
}

export interface PartInput {
  /** The study's metric rows (any round, any phase). */
  rows: readonly Row[];
  /** RoundRecord.id of the released attempt. */
  roundId: number;
  /** Nodes whose EVALUATE task of that attempt was accepted. */
  evaluated: readonly string[];
  siteName: (nodeId: string) => string;
  minCellCount: number;
}

/**
 * One part of release.json `metrics`. A site with a row of the phase and performance JSON is
 * published (publishPerformance: small cells null) unless complementary suppression over
 * patients, cases and non-cases (disclosure.ts withheldByCounts, as the evaluation phase runs
 * it before storing; run again here for rows stored before it did) withholds it; a row without
 * performance is a site that sent no figures. A site that evaluated but has no row of the phase
 * was withheld by the small-cell rules (the evaluation phase drops the row of a site whose
 * figures it withholds), except in the test part when its validation row has no figures either
 * (an agent that sends no Performance at all): then it is named among the sites without figures.
 */
export function metricsPart(phase: 'evaluation' | 'test', input: PartInput): Part {
  const ofRound = input.rows.filter((r) => r.roundId === input.roundId);
  const rowsOf = (p: 'evaluation' | 'test'): Map<string | null, Row> => new Map(ofRound.filter((r) => r.phase === p).map((r) => [r.nodeId, r]));
  const mine = rowsOf(phase);
  const validation = rowsOf('evaluation');
  const k = input.minCellCount;
  const figures = new Map<string, Performance>();
  for (const nodeId of input.evaluated) {
    const row = mine.get(nodeId);
    if (row?.performance != null) figures.set(nodeId, parsePerformance(row.performance, `${phase} of ${input.siteName(nodeId)}`));
  }
  const hidden = withheldFigures(figures, k);
  const sites: Part['sites'] = [];
  const without: string[] = [];
  let withheld = 0;
  for (const nodeId of input.evaluated) {
    const row = mine.get(nodeId);
    const site = input.siteName(nodeId);
    const p = figures.get(nodeId);
    if (row === undefined) {
      const v = validation.get(nodeId);
      if (phase === 'test' && v !== undefined && v.performance == null) without.push(site);
      else withheld++;
    } else if (p === undefined) without.push(site);
    else if (hidden.has(nodeId)) withheld++;
    else sites.push({ site, performance: publishPerformance(p, k) });
  }
  const global = mine.get(null);
  const pooled = global === undefined ? null : global.performance == null ? fromMetrics(global) : publishPerformance(parsePerformance(global.performance, `pooled ${phase}`), k);
  sites.sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
  return { pooled, sites, withheldSites: withheld, sitesWithoutFigures: without.sort() };
}

/** `dataSummary.perSite`: examples of each evaluating site in the released round (null: withheld). */
export function perSite(input: PartInput): ReleaseDescriptor['dataSummary']['perSite'] {
  const ofRound = input.rows.filter((r) => r.roundId === input.roundId && r.nodeId !== null);
  const examples = (nodeId: string, phase: 'evaluation' | 'test'): number | null => {
    const row = ofRound.find((r) => r.nodeId === nodeId && r.phase === phase);
    return row === undefined || row.numExamples < input.minCellCount ? null : row.numExamples;
  };
  return input.evaluated
    .map((nodeId) => ({ site: input.siteName(nodeId), validationExamples: examples(nodeId, 'evaluation'), testExamples: examples(nodeId, 'test') }))
    .sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
}

/** `dataSummary.features` and its note: pooled means and SDs from the statistics phase, if the study had one. */
export function featureSummary(statistics: readonly StatisticsRecord[], m: StudyManifest): { features: ReleaseDescriptor['dataSummary']['features']; note: string } {
  if (statistics.length === 0) {
    return { features: [], note: `No statistics phase (data.normalization ${m.data.normalization}): no pooled feature statistics.` };
  }
  const reports = statistics.map((s) => {
    try {
      return JSON.parse(s.report) as ClinicStats;
    } catch (err) {
      throw new FedlhsError('DATA_LOSS', `a stored statistics report of study ${s.studyId} is not JSON`, { cause: err });
    }
  });
  const combined = combineStats(reports);
  return {
    features: combined.features.map((f) => ({ name: f.name, mean: f.count > 0 ? f.mean : null, std: f.count > 0 ? f.std : null })),
    note:
      `Feature means and SDs pooled from ${combined.clinics} clinic(s)' statistics of their training split (${combined.rows} records reported; ` +
      `a feature withheld at every clinic for small cells is null). Per-site example counts below ${m.data.minCellCount} are withheld.`,
  };
}

/**
 * release.json `normalization`: federated-zscore carries the study's parameters (the
 * normalisation every clinic applied, from the statistics phase); the others carry none and
 * the note says what the agent does instead.
 */
export function normalizationOf(m: StudyManifest, parameters: string | null): ReleaseDescriptor['normalization'] {
  const method = m.data.normalization;
  if (method === 'none') return { method, features: [], note: 'Features are used as they are; a missing value becomes 0.' };
  if (method === 'local-zscore') {
    return {
      method, features: [],
      note: 'Each clinic scales every feature by the mean and SD of its own training split (missing values become the mean): the agent derives them from its own training split before scoring.',
    };
  }
  let normalization: Normalization | undefined;
  try {
    normalization = parameters === null ? undefined : (JSON.parse(parameters) as { normalization?: Normalization }).normalization;
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', 'the study\'s parameters are not JSON', { cause: err });
  }
  if (normalization === undefined || !Array.isArray(normalization.features)) {
    throw new FedlhsError('DATA_LOSS', 'the study uses federated-zscore but has no normalisation parameters stored (its statistics phase never completed)');
  }
  const features = normalization.features.map((f) => ({
    name: f.name, mean: f.mean, std: f.std, impute: f.impute ?? f.mean, ...(f.excluded === true ? { excluded: true } : {}),
  }));
  const fallbacks = normalization.features.filter((f) => f.source !== undefined && f.source !== 'federated').map((f) => `${f.name} (${f.source === 'excluded' ? 'excluded: the constant 0' : 'scaled by its declared range'})`);
  return {
    method, features,
    note:
      `(value − mean) / std with the study's federated means and SDs from ${normalization.clinics ?? 'the'} clinic(s); a missing value takes \`impute\` first.` +
      (fallbacks.length > 0 ? ` Not from federated statistics: ${fallbacks.join(', ')}.` : ''),
  };
}
