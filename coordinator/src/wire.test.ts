import { createHash } from 'node:crypto';
import { FedlhsError } from '@fedlhs/core';
import type { Metrics__Output } from '@fedlhs/proto';
import { describe, expect, it } from 'vitest';
import { reportDigest, toEvalMetrics } from './wire.js';

const good: Metrics__Output = { numExamples: 120, loss: 0.5, accuracy: 0.75, auc: 0.8 };

function rejected(m: Metrics__Output): FedlhsError {
  try {
    toEvalMetrics(m);
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
    ['loss NaN', { ...good, loss: NaN }, 'loss (NaN)'],
    ['loss infinite', { ...good, loss: Infinity }, 'loss (Infinity)'],
    ['loss negative', { ...good, loss: -0.1 }, 'loss (-0.1)'],
    ['accuracy above 1', { ...good, accuracy: 1.5 }, 'accuracy (1.5)'],
    ['accuracy NaN', { ...good, accuracy: NaN }, 'accuracy (NaN)'],
    ['auc below 0', { ...good, auc: -1 }, 'auc (-1)'],
    ['no examples', { ...good, numExamples: 0 }, 'num_examples (0)'],
  ])('rejects %s as INVALID_METRICS, a closing rejection', (_label, m, what) => {
    const err = rejected(m);
    expect({ code: err.code, status: err.status, isRejection: err.isRejection, closesTask: err.closesTask, message: err.message }).toEqual({
      code: 'INVALID_METRICS', status: 'INVALID_ARGUMENT', isRejection: true, closesTask: true, message: `metric ${what} is out of range`,
    });
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
