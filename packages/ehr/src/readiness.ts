import type { SplitDataset } from './flat-table.js';

/**
 * The verdict on a clinic's split data for a study: ready, or too small to take part (the
 * wire's READINESS_COHORT_TOO_SMALL) with why, in words that disclose no small count.
 */
export type ReadinessVerdict = { ready: true } | { ready: false; detail: string };

/** What readiness is judged against: the agent's own minimum cohort and the study's minimum cell count. */
export interface ReadinessRules {
  /** The clinic's configured minimum number of usable records (config minCohort). */
  minCohort: number;
  /** The study's data.minCellCount: fewest cases and fewest non-cases in each split. */
  minCellCount: number;
}

const count = (y: Float32Array): { cases: number; nonCases: number } => {
  let cases = 0;
  for (const v of y) if (v >= 0.5) cases++;
  return { cases, nonCases: y.length - cases };
};

/**
 * The one function that decides whether a clinic's data can take part in a study, used by the
 * running agent, `fedlhs-agent data check` and the simulator alike. Not READY (COHORT_TOO_SMALL) when the usable
 * records are fewer than the clinic's minimum cohort, or when the training or the hold-out
 * split has fewer than `minCellCount` cases or non-cases: training on no cases teaches
 * nothing, and an evaluation on a handful of them is noise that would be reported as a figure
 * and would single out those patients. Details name the rule, never the small count.
 */
export function assessReadiness(data: SplitDataset, rules: ReadinessRules): ReadinessVerdict {
  const tooSmall = (detail: string): ReadinessVerdict => ({ ready: false, detail });
  const usable = data.train.rows + data.holdout.rows;
  if (usable < rules.minCohort) {
    return tooSmall(`fewer than ${rules.minCohort} usable records (the configured minimum cohort); this clinic does not train on so few`);
  }
  const train = count(data.train.y);
  const holdout = count(data.holdout.y);
  if (train.cases + holdout.cases === 0) return tooSmall('no eligible patient has the outcome (no cases): nothing to learn from or evaluate on here');
  if (train.nonCases + holdout.nonCases === 0) return tooSmall('every eligible patient has the outcome (no non-cases): nothing to learn from or evaluate on here');
  const k = rules.minCellCount;
  for (const [split, c] of [['training', train], ['hold-out', holdout]] as const) {
    if (c.cases < k) return tooSmall(`fewer than ${k} cases in the ${split} split (the study's minimum cell count)`);
    if (c.nonCases < k) return tooSmall(`fewer than ${k} non-cases in the ${split} split (the study's minimum cell count)`);
  }
  return { ready: true };
}
