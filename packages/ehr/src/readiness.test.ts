import { describe, expect, it } from 'vitest';
import type { SplitDataset } from './flat-table.js';
import { assessReadiness } from './readiness.js';

/** A split with the given cases and non-cases in each part (one feature, values irrelevant). */
function split(train: [number, number], holdout: [number, number]): SplitDataset {
  const part = ([cases, nonCases]: [number, number]) => {
    const y = Float32Array.from([...Array<number>(cases).fill(1), ...Array<number>(nonCases).fill(0)]);
    return { features: ['a'], x: new Float32Array(y.length), y, keys: Array.from(y, (_, i) => String(i)), rows: y.length, skipped: {} };
  };
  return { train: part(train), holdout: part(holdout) };
}

const rules = { minCohort: 20, minCellCount: 10 };

describe('assessReadiness', () => {
  it('is READY with enough records and at least minCellCount cases and non-cases in each split', () => {
    expect(assessReadiness(split([10, 50], [10, 20]), rules)).toEqual({ ready: true });
  });

  it('refuses, naming the rule and never the small count', () => {
    const cases: Array<[SplitDataset, string]> = [
      [split([1, 5], [1, 5]), 'fewer than 20 usable records (the configured minimum cohort); this clinic does not train on so few'],
      [split([0, 60], [0, 30]), 'no eligible patient has the outcome (no cases): nothing to learn from or evaluate on here'],
      [split([60, 0], [30, 0]), 'every eligible patient has the outcome (no non-cases): nothing to learn from or evaluate on here'],
      [split([9, 60], [10, 30]), "fewer than 10 cases in the training split (the study's minimum cell count)"],
      [split([10, 60], [3, 30]), "fewer than 10 cases in the hold-out split (the study's minimum cell count)"],
      [split([10, 60], [30, 2]), "fewer than 10 non-cases in the hold-out split (the study's minimum cell count)"],
      [split([40, 40], [0, 0]), "fewer than 10 cases in the hold-out split (the study's minimum cell count)"],
    ];
    for (const [data, detail] of cases) {
      const verdict = assessReadiness(data, rules);
      expect(verdict).toEqual({ ready: false, detail });
      expect(detail).not.toMatch(/\b[1-9]\b/);
    }
  });
});
