import type { StudyManifest } from '@fedlhs/core';

/**
 * A count as it may leave this clinic (manifest privacy.counts): exact, or rounded to the nearest
 * multiple of roundTo (halves up). Rounding is monotone, so what the coordinator checks between
 * counts (positives ≤ rows, an update's examples ≤ the readiness's training rows) still holds
 * when both sides are rounded; a positive count never rounds to 0 (it would read as "none").
 */
export function roundCount(manifest: Pick<StudyManifest, 'privacy'>, n: number): number {
  const counts = manifest.privacy?.counts;
  if (counts === undefined || counts.disclosure !== 'rounded' || n <= 0) return n;
  const r = counts.roundTo;
  return Math.max(r, Math.round(n / r) * r);
}

/** Whether counts leaving this clinic are rounded in this study. */
export function countsRounded(manifest: Pick<StudyManifest, 'privacy'>): boolean {
  return manifest.privacy?.counts?.disclosure === 'rounded';
}

/** The count fields of a proto Performance (common.proto), as evaluate.ts sends it. */
interface PerformanceCounts {
  numExamples: number;
  positives: number;
  auc?: number | undefined;
  calibration: { count: number; predictedSum: number; observed: number }[];
}

/**
 * A part's figures with their counts rounded (privacy.counts 'rounded'), or why none can be sent.
 * The calibration bins are left out: rounded bin counts cannot add up to the rounded total as the
 * coordinator requires (core performance-check.ts), and exact ones would give the total away.
 * Figures whose rounded positives equal the rounded total while an AUC is given would read as a
 * single class present, which the coordinator refuses: such a part sends no figures.
 */
export function roundPerformance<T extends PerformanceCounts>(manifest: Pick<StudyManifest, 'privacy'>, p: T): T | string {
  if (!countsRounded(manifest)) return p;
  const numExamples = roundCount(manifest, p.numExamples);
  const positives = roundCount(manifest, p.positives);
  if (p.auc !== undefined && positives >= numExamples) return 'with counts rounded as the manifest asks, its cases would equal its records (no AUC can be stated)';
  return { ...p, numExamples, positives: Math.min(positives, numExamples), calibration: [] };
}
