import { createHash } from 'node:crypto';
import { FedlhsError } from '@fedlhs/core';
import type { Metrics__Output } from '@fedlhs/proto';
import { describe, expect, it } from 'vitest';
import { reportDigest, toEvalMetrics } from './wire.js';

const good: Metrics__Output = { numExamples: 120, loss: 0.5, accuracy: 0.75, auc: 0.8 };

function rejected(m: Metrics__Output, maxExamples?: number): FedlhsError {
  try {
    toEvalMetrics(m, maxExamples);
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected INVALID_METRICS, nothing was thrown');
}

describe('toEvalMetrics', () => {
  it('converts plausible metrics, auc optional', () => {
    expect(toEvalMetrics(good)).toEqual({ numExamples: 120, loss: 0.5, accuracy: 0.75, auc: 0.8 });
    expect(toEvalMetrics({ ...good, auc: null } as unknown as Metrics__Output)).toEqual({ numExamples: 120, loss: 0.5, accuracy: 0.75, auc: undefined });
    expect(toEvalMetrics(null)).toBeUndefined();
  });

  it.each([
    ['loss NaN', { ...good, loss: NaN }, 'loss (NaN)', '0 to 1000000'],
    ['loss infinite', { ...good, loss: Infinity }, 'loss (Infinity)', '0 to 1000000'],
    ['loss negative', { ...good, loss: -0.1 }, 'loss (-0.1)', '0 to 1000000'],
    // Finite, but no measurement: one such report made the stored global loss Infinity (issue 11).
    ['loss 1.7e308', { ...good, loss: 1.7e308 }, 'loss (1.7e+308)', '0 to 1000000'],
    ['loss above the maximum', { ...good, loss: 1e6 + 1 }, 'loss (1000001)', '0 to 1000000'],
    ['accuracy above 1', { ...good, accuracy: 1.5 }, 'accuracy (1.5)', '0 to 1'],
    ['accuracy NaN', { ...good, accuracy: NaN }, 'accuracy (NaN)', '0 to 1'],
    ['auc below 0', { ...good, auc: -1 }, 'auc (-1)', '0 to 1'],
    ['no examples', { ...good, numExamples: 0 }, 'num_examples (0)', 'a positive integer'],
    ['2^53 - 1 examples', { ...good, numExamples: Number.MAX_SAFE_INTEGER }, 'num_examples (9007199254740991)', '1 to 10000000, limits.maxExamplesPerUpdate'],
  ])('rejects %s as INVALID_METRICS, a closing rejection', (label, m, what, range) => {
    const err = rejected(m, label === '2^53 - 1 examples' ? 10_000_000 : undefined);
    expect({ code: err.code, status: err.status, isRejection: err.isRejection, closesTask: err.closesTask, message: err.message }).toEqual({
      code: 'INVALID_METRICS', status: 'INVALID_ARGUMENT', isRejection: true, closesTask: true, message: `metric ${what} is out of range (${range})`,
    });
  });

  it('accepts the bounds themselves', () => {
    expect(toEvalMetrics({ numExamples: 10_000_000, loss: 1e6, accuracy: 1, auc: 0 }, 10_000_000)).toEqual({ numExamples: 10_000_000, loss: 1e6, accuracy: 1, auc: 0 });
    expect(toEvalMetrics({ numExamples: 1, loss: 0, accuracy: 0 })).toEqual({ numExamples: 1, loss: 0, accuracy: 0, auc: undefined });
  });
});

describe('reportDigest', () => {
  it('is the SHA-256 of the canonical JSON: key order and undefined members do not matter, values do', () => {
    const a = reportDigest({ numExamples: 120, loss: 0.5, accuracy: 0.75, auc: undefined });
    expect(a).toBe(createHash('sha256').update('{"accuracy":0.75,"loss":0.5,"numExamples":120}').digest('hex'));
    expect(reportDigest({ accuracy: 0.75, numExamples: 120, loss: 0.5 })).toBe(a);
    expect(reportDigest({ numExamples: 120, loss: 0.5, accuracy: 0.76 })).not.toBe(a);
  });
});
