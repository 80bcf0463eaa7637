// Test doubles for the release registry's unit tests (not used by the coordinator itself).
import { RELEASE_FORMAT, type ReleaseDescriptor } from '@fedlhs/core';

const H = (c: string): string => c.repeat(64);
const published = { numExamples: 500, positives: 80, auc: 0.8, aucInterval: [0.76, 0.84] as [number, number], brier: 0.1, calibrationSlope: 1, calibrationIntercept: 0, calibration: [] };

/** A release.json that satisfies the schema (the builder's real one is tested with the builder). */
export function descriptorFixture(studyName: string, version: number): ReleaseDescriptor {
  const part = { pooled: published, sites: [{ site: 'north', performance: published }], withheldSites: 0, sitesWithoutFigures: [] };
  return {
    format: RELEASE_FORMAT,
    study: { name: studyName, id: `${studyName}-abc123`, manifestSha256: H('a'), description: 'test' },
    version, round: 3, createdAt: '2026-11-30T00:00:00.000Z',
    selection: { rule: 'best-validation-auc', reason: 'best validation AUC 0.800 of 3 rounds', warnings: [], candidates: [{ round: 3, validationAuc: 0.8, validationLoss: 0.4, evaluatedSites: 1 }] },
    model: { format: 'tfjs-layers', inputs: 2, tensors: [{ name: 'w', shape: [2, 1] }], weightsSha256: H('b'), output: 'risk' },
    features: { featureSpec: 'flat-table/v1', names: ['x1', 'x2'], label: 'y', needs: ['x1: a number', 'x2: a number'] },
    normalization: { method: 'none', features: [], note: '' },
    riskBands: [{ name: 'low', upTo: 0.1 }, { name: 'high', upTo: 1 }],
    metrics: { validation: part, test: part, minCellCount: 10 },
    dataSummary: { sites: 1, sitesThatTrained: 1, perSite: [{ site: 'north', validationExamples: 500, testExamples: 500 }], features: [], note: '' },
    lineage: { studyId: `${studyName}-abc123`, round: 3, checkpointSha256: H('c'), parent: null, signer: H('d') },
    modelCard: { intendedUse: 'tests', outcome: 'y', population: 'synthetic', limitations: [] },
  };
}

