import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isFedlhsError } from './errors.js';
import { signRelease, verifyRelease, type ReleaseFiles } from './release-bundle.js';
import { RELEASE_FORMAT, type ReleaseDescriptor, type ReleasePredicate } from './release-format.js';

const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const emptyPart = { pooled: null, sites: [], withheldSites: 0, sitesWithoutFigures: [] };

/**
 * A release of `studyName` signed with the test key whose manifest.json is `manifestText` (signed
 * as it is: the predicate names its hash), so only the manifest's content can be wrong.
 */
function release(studyName: string, manifestText: string): { envelope: unknown; files: ReleaseFiles } {
  const manifest = Buffer.from(manifestText, 'utf8');
  const weights = Buffer.from(new Float32Array([1, 2, 3]).buffer);
  const predicate: ReleasePredicate = { studyName, version: 1, studyId: 'study-1', round: 2, manifestSha256: sha256(manifest), createdAt: '2026-01-01T00:00:00.000Z' };
  const descriptor: ReleaseDescriptor = {
    format: RELEASE_FORMAT,
    study: { name: studyName, id: 'study-1', manifestSha256: sha256(manifest), description: 'test' },
    version: 1,
    round: 2,
    createdAt: predicate.createdAt,
    selection: { rule: 'last-round', reason: 'test', warnings: [], candidates: [] },
    model: { format: 'tfjs-layers', inputs: 2, tensors: [{ name: 'dense/kernel', shape: [2, 1] }, { name: 'dense/bias', shape: [1] }], weightsSha256: sha256(weights), output: 'risk' },
    features: { featureSpec: 'flat-table/v1', names: ['x0', 'x1'], label: 'y', needs: [] },
    normalization: { method: 'none', features: [], note: '' },
    riskBands: [{ name: 'all', upTo: 1 }],
    metrics: { validation: emptyPart, test: emptyPart, minCellCount: 5 },
    dataSummary: { sites: 1, sitesThatTrained: 1, perSite: [], features: [], note: '' },
    lineage: { studyId: 'study-1', round: 2, checkpointSha256: sha256(weights), parent: null, signer: 'test' },
    modelCard: { intendedUse: '', outcome: '', population: '', limitations: [] },
  };
  const files: ReleaseFiles = {
    'manifest.json': manifest,
    'model.json': Buffer.from('{}'),
    'weights.bin': weights,
    'release.json': Buffer.from(JSON.stringify(descriptor)),
    'model-card.md': Buffer.from('# card\n'),
  };
  return { envelope: JSON.parse(JSON.stringify(signRelease(files, predicate, privateKey))) as unknown, files };
}

/** details.why of the SIGNATURE_INVALID that verifyRelease throws, or 'accepted'. */
function refusal(r: { envelope: unknown; files: ReleaseFiles }): string {
  try {
    verifyRelease(r.envelope, r.files, publicKey);
    return 'accepted';
  } catch (err) {
    if (!isFedlhsError(err, 'SIGNATURE_INVALID')) throw err;
    return (err.details as { why: string }).why;
  }
}

describe('verifyRelease: manifest.json', () => {
  it('accepts a release whose manifest names the signed study', () => {
    const r = release('sepsis', JSON.stringify({ apiVersion: 'fedlhs.v1', kind: 'Study', name: 'sepsis' }));
    expect(verifyRelease(r.envelope, r.files, publicKey).predicate.studyName).toBe('sepsis');
  });

  it('refuses a release signed as one study that carries the manifest of another (review "clinic" #10)', () => {
    const r = release('other', JSON.stringify({ apiVersion: 'fedlhs.v1', kind: 'Study', name: 'sepsis' }));
    expect(refusal(r)).toBe('manifest');
    expect(() => verifyRelease(r.envelope, r.files, publicKey)).toThrow(/manifest\.json names study "sepsis".*signed.*"other"/);
  });

  it('refuses a manifest.json that is not JSON, or has no string name', () => {
    expect(refusal(release('sepsis', 'name: sepsis'))).toBe('manifest');
    expect(refusal(release('sepsis', JSON.stringify(['sepsis'])))).toBe('manifest');
    expect(refusal(release('sepsis', JSON.stringify({ name: 7 })))).toBe('manifest');
    expect(refusal(release('sepsis', 'null'))).toBe('manifest');
  });
});
