import { forTerminal } from '@fedlhs/service';

/** A study's release as the study detail shows it (admin views.ts `studyRelease`). */
export type StudyReleaseView = { studyName: string; version: number; round: number } | { failed: string } | null;

/**
 * The release line of `fedlhs-coordinator study show`: the release made of the study, or loudly
 * why there is none (a failed build is otherwise seen only in the coordinator's log). Empty for
 * a study that is not COMPLETED and has none, and for a coordinator that sends no `release`.
 */
export function studyReleaseLine(state: string, release: StudyReleaseView | undefined): string {
  const v = (text: string): string => forTerminal(text);
  if (release === undefined) return '';
  if (release === null) return state === 'COMPLETED' ? 'release: none yet (the coordinator builds it when the study completes, and again at every start)\n\n' : '';
  if ('failed' in release) return `release: NOT MADE: ${v(release.failed)} (tried again when storage recovers, every 5 minutes and at start)\n\n`;
  return `release: ${v(release.studyName)} version ${release.version} (round ${release.round}); \`fedlhs-coordinator release show ${v(release.studyName)} ${release.version}\` for its figures\n\n`;
}
