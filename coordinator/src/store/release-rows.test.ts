import { describe, expect, it } from 'vitest';
import { FedlhsError } from '@fedlhs/core';
import { blobReferenceSet } from './blob-references.js';
import { releaseFiles } from './rows.js';

const file = { name: 'release.json', sha256: 'a'.repeat(64), size: 12 };
const dataLoss = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('DATA_LOSS');
    return (err as Error).message;
  }
  throw new Error('expected DATA_LOSS');
};

describe('release files column', () => {
  it('reads a files list back', () => {
    expect(releaseFiles(JSON.stringify([file]), 'sepsis', 2)).toEqual([file]);
    expect(releaseFiles('[]', 'sepsis', 2)).toEqual([]);
  });

  it('refuses a list it cannot read with DATA_LOSS naming the release', () => {
    expect(dataLoss(() => releaseFiles('not json', 'sepsis', 2))).toMatch(/release sepsis v2 .*not JSON/);
    expect(dataLoss(() => releaseFiles('{}', 'sepsis', 2))).toMatch(/not an array/);
    expect(dataLoss(() => releaseFiles(JSON.stringify([{ ...file, sha256: 'XYZ' }]), 'sepsis', 2))).toMatch(/SHA-256/);
    expect(dataLoss(() => releaseFiles(JSON.stringify([{ ...file, size: -1 }]), 'sepsis', 2))).toMatch(/size/);
    expect(dataLoss(() => releaseFiles(JSON.stringify([null]), 'sepsis', 2))).toMatch(/name/);
  });

  it('blob references include release files, and stop at a list they cannot read', () => {
    const other = { ...file, sha256: 'b'.repeat(64) };
    expect(blobReferenceSet([], [], [], [{ studyName: 's', version: 1, files: JSON.stringify([file, other]) }])).toEqual(new Set([file.sha256, other.sha256]));
    dataLoss(() => blobReferenceSet([], [], [], [{ studyName: 's', version: 1, files: '[{}]' }]));
  });
});
