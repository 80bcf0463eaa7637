import { describe, expect, it } from 'vitest';
import { studyRelease } from './admin/views.js';
import type { Coordinator } from './coordinator.js';
import type { ReleaseRecord, StudyRecord } from './store.js';
import { studyReleaseLine } from './study-release-line.js';

describe('studyReleaseLine (study show)', () => {
  it('names the release, or says loudly why there is none', () => {
    expect(studyReleaseLine('COMPLETED', { studyName: 'sepsis', version: 2, round: 3 })).toBe('release: sepsis version 2 (round 3); `fedlhs-coordinator release show sepsis 2` for its figures\n\n');
    expect(studyReleaseLine('COMPLETED', { failed: 'blob store: disk full' })).toBe('release: NOT MADE: blob store: disk full (tried again when storage recovers, every 5 minutes and at start)\n\n');
    expect(studyReleaseLine('COMPLETED', null)).toMatch(/^release: none yet/);
    expect(studyReleaseLine('RUNNING', null)).toBe('');
    expect(studyReleaseLine('COMPLETED', undefined)).toBe('');
  });

  it('escapes a failure message for the terminal', () => {
    expect(studyReleaseLine('COMPLETED', { failed: 'bad\u001b[31m\nline' })).not.toMatch(/\u001b|\nline/);
  });
});

describe('studyRelease (study detail, review hospital MEDIUM 5)', () => {
  const coordinator = (made: Partial<ReleaseRecord> | undefined, failed: string | undefined) => ({
    store: { releaseOfStudy: async () => made },
    releaseFailure: () => (failed === undefined ? undefined : { at: 1, message: failed }),
  }) as unknown as Coordinator;
  const study = { id: 'study_1' } as StudyRecord;

  it('shows the release made, else the build failure, else null', async () => {
    await expect(studyRelease(coordinator({ studyName: 'sepsis', version: 1, round: 2, studyId: 'study_1' }, undefined), study)).resolves.toEqual({ studyName: 'sepsis', version: 1, round: 2 });
    await expect(studyRelease(coordinator(undefined, 'STALE: another coordinator wrote the store'), study)).resolves.toEqual({ failed: 'STALE: another coordinator wrote the store' });
    await expect(studyRelease(coordinator(undefined, undefined), study)).resolves.toBeNull();
  });
});
